"""Log in with an API key (a session cookie, never the key itself), log out."""

from __future__ import annotations

import threading
import time
from collections import deque

from fastapi import APIRouter, Request
from fastapi.responses import Response

from judgelab.db import Database
from judgelab.projects.service import authenticate
from judgelab.web.common import COOKIE, SESSION_HOURS, Web, create_session, end_session, form, render, see_other

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    # Only paths on this site: an open redirect would turn the login page into a phishing aid.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class LoginLimiter:
    """Failed logins per client address in a sliding minute; past the limit, a 429 until the window
    clears. Keys are 256 random bits, so this is about load and noise, not guessing."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, client: str, limit: int) -> float:
        """Seconds until this client may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            window = self._failures.get(client)
            while window and window[0] < now - 60:
                window.popleft()
            return 60 - (now - window[0]) if window and len(window) >= limit else 0.0

    def failed(self, client: str) -> None:
        with self._lock:
            if len(self._failures) > 10_000:
                self._failures.clear()
            self._failures.setdefault(client, deque()).append(time.monotonic())


def client_address(request: Request) -> str:
    if request.app.state.settings.trust_proxy and (forwarded := request.headers.get("x-forwarded-for")):
        return forwarded.split(",")[0].strip()
    return request.client.host if request.client else "unknown"


def is_https(request: Request) -> bool:
    if request.app.state.settings.trust_proxy and request.headers.get("x-forwarded-proto", "").lower() == "https":
        return True
    return request.url.scheme == "https"


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    return render(request, "login.html", None, next=_safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    data = await request.form()
    key = str(data.get("api_key", "")).strip()
    target = _safe_next(str(data.get("next", "/")))
    limiter: LoginLimiter = request.app.state.login_limiter
    client = client_address(request)
    wait = limiter.blocked(client, request.app.state.settings.login_failures_per_minute)
    if wait:
        refused = render(request, "login.html", None, 429, next=target,
                         error=f"Too many failed logins from this address: try again in {int(wait) + 1} s.")
        refused.headers["Retry-After"] = str(int(wait) + 1)
        return refused
    db: Database = request.app.state.db
    with db.session() as session:
        api_key = authenticate(session, key) if key else None
        if api_key is None:
            limiter.failed(client)
            return render(request, "login.html", None, 401, next=target, error="That API key is unknown or revoked.")
        token, _csrf = create_session(session, api_key)
    response = see_other(target)
    response.set_cookie(COOKIE, token, max_age=SESSION_HOURS * 3600, httponly=True, samesite="lax",
                        secure=is_https(request), path="/")
    return response


@router.post("/logout")
def logout(request: Request, ctx: Web) -> Response:
    end_session(ctx.session, request.cookies.get(COOKIE, ""))
    ctx.commit()
    response = see_other("/login")
    response.delete_cookie(COOKIE, path="/")
    return response


__all__ = ["router", "form"]
