"""What every page needs: the login session, CSRF, templates with filters, and HTML errors.

A browser logs in with an API key once; the cookie then holds a random session token whose hash
is stored (never the key). The session lives while its key is unrevoked and until it expires.
Every form post carries the session's CSRF token (a hidden field, or the X-CSRF-Token header
htmx sends), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from markupsafe import Markup
from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from judgelab.api.middleware import API_PREFIXES
from judgelab.calls.transcripts import format_clock
from judgelab.db import Database
from judgelab.db.models import ApiKey, WebSession
from judgelab.db.types import utcnow
from judgelab.errors import InvalidInput, JudgelabError, from_pydantic
from judgelab.feedback.votes import VoteIn

COOKIE = "judgelab_session"
SESSION_HOURS = 12
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")  # autoescapes .html: transcripts render as text


def _interval(est: Any, percent: bool = True) -> str:
    """`62% [48, 74] n=40` — a figure about agreement never goes out without its interval and n."""
    if not est or est.get("value") is None:
        return "–"
    if percent:
        v, lo, hi = (None if x is None else round(100 * x) for x in (est["value"], est.get("low"), est.get("high")))
        return f"{v}% [{'?' if lo is None else lo}, {'?' if hi is None else hi}] n={est.get('n', '?')}"
    lo, hi = est.get("low"), est.get("high")
    return (f"{est['value']:.2f} [{'?' if lo is None else f'{lo:.2f}'}, {'?' if hi is None else f'{hi:.2f}'}] "
            f"n={est.get('n', '?')}")


def _value(value: Any) -> str:
    if value is None:
        return "N/A"
    if isinstance(value, bool):
        return "pass" if value else "fail"
    return json.dumps(value) if not isinstance(value, str) else value


def _clock(seconds: Any) -> str:
    return format_clock(seconds) if isinstance(seconds, int | float) else ""


# Agent descriptions are markdown written by anyone with a key: rendered with raw HTML off (it is
# escaped, not passed through) and markdown-it's link check (no javascript: or data: URLs).
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).disable("image")


def _markdown(text: Any) -> Markup:
    return Markup(_MARKDOWN.render(str(text or "")))


templates.env.filters.update(interval=_interval, verdict=_value, clock=_clock, markdown=_markdown,
                             tojson_pretty=lambda v: json.dumps(v, indent=2, default=str, ensure_ascii=False))


@dataclass
class WebCtx:
    session: Session
    project_id: int
    reviewer: str
    csrf: str
    settings: Any

    def commit(self) -> None:
        self.session.commit()


class LoginRequired(Exception):
    pass


class BadCsrf(Exception):
    pass


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_session(session: Session, api_key: ApiKey) -> tuple[str, str]:
    """(cookie token, csrf token) for a new login with this key."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = utcnow()
    session.execute(delete(WebSession).where(WebSession.expires_at < now))  # sweep old logins as we go
    session.add(WebSession(token_hash=_hash(token), api_key_id=api_key.id, csrf_token=csrf,
                           expires_at=now + timedelta(hours=SESSION_HOURS)))
    return token, csrf


def end_session(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == _hash(token)))


async def read_form(request: Request) -> None:
    """Parse a posted form once, before `web_ctx` checks its CSRF field."""
    if request.method == "POST":
        request.state.form = await request.form()


def web_ctx(request: Request, _form: Annotated[None, Depends(read_form)]) -> Iterator[WebCtx]:
    """The logged-in project, or a redirect to the login page."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequired
    db: Database = request.app.state.db
    session = db.sessionmaker()
    try:
        row = session.execute(
            select(WebSession, ApiKey).join(ApiKey, ApiKey.id == WebSession.api_key_id)
            .where(WebSession.token_hash == _hash(token))
        ).first()
        if row is None or row[1].revoked_at is not None or row[0].expires_at < utcnow():
            raise LoginRequired
        web, key = row
        ctx = WebCtx(session, key.project_id, key.name or f"key:{key.prefix}", web.csrf_token, request.app.state.settings)
        if request.method == "POST":
            sent = request.headers.get("x-csrf-token") or ""
            if not sent:
                sent = str(request.state.form.get("csrf_token", "")) if hasattr(request.state, "form") else ""
            if not hmac.compare_digest(sent.encode(), ctx.csrf.encode()):
                raise BadCsrf
        yield ctx
    finally:
        session.close()


Web = Annotated[WebCtx, Depends(web_ctx)]


def form(request: Request) -> Any:
    return getattr(request.state, "form", {})


def optional_text(raw: str) -> str | None:
    """A form field left empty means "not given"."""
    return raw.strip() or None


def form_int(request: Request, name: str, default: int | None = None, low: int = 0, high: int = 2**31 - 1) -> int:
    """A whole number from the posted form; anything else is a 400 naming the field, never a 500."""
    raw = str(form(request).get(name, "")).strip()
    if raw == "" and default is not None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidInput(name, f"expected a whole number from {low} to {high}, got {raw!r}")
    return int(raw)


def vote_from_form(request: Request) -> VoteIn:
    """The feedback form as the API's vote body (the same validation and messages)."""
    data = form(request)
    try:
        return VoteIn(metric_id=form_int(request, "metric_id", low=1), vote=str(data.get("vote", "")),
                      feedback=str(data.get("feedback", "")),
                      expected_value=optional_text(str(data.get("expected_value", ""))))
    except ValidationError as exc:
        raise JudgelabError(errors=from_pydantic(exc.errors())) from None


def render(request: Request, name: str, ctx: WebCtx | None, status_code: int = 200, **values: Any) -> HTMLResponse:
    values.update(request=request, csrf=ctx.csrf if ctx else "", reviewer=ctx.reviewer if ctx else None,
                  htmx=request.headers.get("hx-request") == "true")
    return templates.TemplateResponse(request, name, values, status_code=status_code)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def is_ui_path(path: str) -> bool:
    return not path.startswith((*API_PREFIXES, "/mcp", "/docs", "/openapi", "/redoc", "/healthz", "/static/"))


def html_error(request: Request, exc: Exception) -> Response:
    """Errors on UI pages are pages (or, under htmx, a fragment), never JSON."""
    if isinstance(exc, LoginRequired):
        if request.headers.get("hx-request") == "true":
            return Response(status_code=204, headers={"HX-Redirect": "/login"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return see_other(f"/login?next={quote(target)}")
    if isinstance(exc, BadCsrf):
        return render(request, "error.html", None, 403, title="Form expired",
                      message="This form's security token did not match your session. Reload the page and try again.")
    status = getattr(exc, "status_code", 500)
    message = str(exc) if isinstance(exc, JudgelabError) else str(getattr(exc, "detail", exc))
    if request.headers.get("hx-request") == "true":
        return render(request, "_error.html", None, status, message=message)
    return render(request, "error.html", None, status, title="Not found" if status == 404 else "Cannot do that",
                  message=message)
