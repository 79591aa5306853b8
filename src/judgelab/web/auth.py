"""Log in with an API key (a session cookie, never the key itself), log out."""

from __future__ import annotations

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


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    return render(request, "login.html", None, next=_safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    data = await request.form()
    key = str(data.get("api_key", "")).strip()
    target = _safe_next(str(data.get("next", "/")))
    db: Database = request.app.state.db
    with db.session() as session:
        api_key = authenticate(session, key) if key else None
        if api_key is None:
            return render(request, "login.html", None, 401, next=target, error="That API key is unknown or revoked.")
        token, _csrf = create_session(session, api_key)
    response = see_other(target)
    response.set_cookie(COOKIE, token, max_age=SESSION_HOURS * 3600, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout")
def logout(request: Request, ctx: Web) -> Response:
    end_session(ctx.session, request.cookies.get(COOKIE, ""))
    ctx.commit()
    response = see_other("/login")
    response.delete_cookie(COOKIE, path="/")
    return response


__all__ = ["router", "form"]
