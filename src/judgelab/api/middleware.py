"""ASGI middleware: trailing-slash tolerance and a cap on request size."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_PREFIXES = ("/api/", "/observability/", "/test_framework/", "/webhooks/")


class TrailingSlash:
    """Serve `/path` as `/path/` (no redirect, so POST bodies survive clients that don't follow one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if not path.endswith("/") and path.startswith(API_PREFIXES):
                scope = dict(scope)
                scope["path"] = path + "/"
                raw = scope.get("raw_path")
                if raw is not None:
                    scope["raw_path"] = raw + b"/"
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse bodies over a limit with 413 before they fill memory; bulk import gets a larger one."""

    def __init__(self, app: ASGIApp, default_limit: int, import_limit: int) -> None:
        self.app = app
        self.default_limit = default_limit
        self.import_limit = import_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.import_limit if "/import" in scope["path"] else self.default_limit
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await _too_large(send, limit)


class _TooLarge(HTTPException):
    """An HTTPException, so FastAPI's body parsing passes it on as a 413 instead of calling it a
    malformed body (a chunked body has no Content-Length to refuse up front)."""

    def __init__(self, limit: int = 0) -> None:
        super().__init__(413, f"request body is larger than the limit of {limit} bytes")


async def _too_large(send: Send, limit: int) -> None:
    body: dict[str, Any] = {"detail": f"request body is larger than the limit of {limit} bytes", "errors": []}
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def lone_surrogate(value: Any, path: str = "") -> str | None:
    """The field path of the first string holding a lone UTF-16 surrogate (which no database can
    store, and UTF-8 cannot encode), or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "body"
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            found = lone_surrogate(k, path) or lone_surrogate(v, f"{path}.{k}" if path else str(k))
            if found:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if found := lone_surrogate(v, f"{path}[{i}]"):
                return found
    return None


class JsonGuard:
    """A JSON body with a lone surrogate (`"\\ud800"`) is a 400 naming the field, before any
    endpoint sees it. Only bodies whose bytes hold such an escape are parsed here (raw UTF-8
    cannot hold one), so ordinary requests pay a byte scan, not a second parse."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if _SURROGATE_ESCAPE.search(body):
            try:
                parsed = json.loads(body)
            except (ValueError, RecursionError):
                parsed = None
            field = lone_surrogate(parsed) if parsed is not None else None
            if field:
                payload = {"detail": f"{field}: holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text",
                           "errors": [{"field": field, "message": "holds a lone UTF-16 surrogate, which is not text"}]}
                data = json.dumps(payload).encode()
                await send({"type": "http.response.start", "status": 400,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": data})
                return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}]), send)


def _replay(messages: list[Message]) -> Receive:
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        return {"type": "http.disconnect"}

    return receive


# Style attributes (progress-bar widths, chart geometry) are allowed; style and script elements only from /static.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")


class SecurityHeaders:
    """Headers every answer carries: a Content-Security-Policy that allows only this site's own
    scripts and styles (htmx is served from /static), no framing, no MIME sniffing, no referrer
    to other sites. The interactive API docs load their viewer from a CDN, so they get no CSP."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"].startswith(("/docs", "/redoc"))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
                            (b"x-frame-options", b"DENY")]
                if not docs:
                    headers.append((b"content-security-policy", CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
