"""Per-request plumbing: the database session, the caller's project (from the API key), paging."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from judgelab.config import Settings
from judgelab.db import Database
from judgelab.errors import Forbidden, InvalidInput
from judgelab.projects.service import authenticate

# Path ids outside 32 bits cannot exist (PostgreSQL integers); saying 404 beats a database error.
PathId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@dataclass
class Ctx:
    session: Session
    project_id: int
    key_name: str
    settings: Settings
    db: Database
    is_admin: bool = False

    def require_admin(self, field: str, what: str) -> None:
        if not self.is_admin:
            raise Forbidden(field, f"only an admin key may {what} (the key `judgelab serve` printed first, or "
                                   "`judgelab keys create --admin`)")

    def commit(self) -> None:
        self.session.commit()


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def key_from_headers(headers: Mapping[str, str] | None) -> str | None:
    """The API key a request carries: `Authorization: Bearer`, `X-API-Key` or `X-CEKURA-API-KEY`."""
    if headers is None:
        return None
    auth = headers.get("authorization") or ""
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    for header in ("x-api-key", "x-cekura-api-key"):
        if value := (headers.get(header) or "").strip():
            return value
    return None


async def get_ctx(request: Request) -> AsyncIterator[Ctx]:
    """Authenticate, then hand the endpoint a session scoped to the key's project.

    An async dependency runs on the event loop, so a request pays one thread hop (its endpoint),
    not three; the key lookup is cached briefly, so most requests make no query for it.
    """
    db = get_db(request)
    key = key_from_headers(request.headers)
    if key is None:
        raise HTTPException(
            401,
            "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>' "
            "(create one with `judgelab keys create --project NAME`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    found = await resolve_key(request.app.state, key)
    if found is None:
        raise HTTPException(401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    session = db.sessionmaker()
    try:
        yield Ctx(session, found[0], found[1], request.app.state.settings, db, found[2])
    finally:
        session.close()


async def resolve_key(state: Any, key: str) -> tuple[int, str, bool] | None:
    """(project id, key name, admin) for a live key, through the app's short-lived cache; None otherwise."""
    cache: KeyCache = state.key_cache
    found = cache.get(key)
    if found is None:
        found = await run_in_threadpool(_lookup, state.db, key)
        if found is not None:
            cache.put(key, found)
    return found


def _lookup(db: Database, key: str) -> tuple[int, str, bool] | None:
    with db.sessionmaker() as session:
        api_key = authenticate(session, key)
        return None if api_key is None else (api_key.project_id, api_key.name or f"key:{api_key.prefix}", api_key.is_admin)


class KeyCache:
    """Key -> (project id, key name, admin) for a moment: a key revoked in another process stops
    working within `ttl`; one revoked through this process is dropped at once (`clear`)."""

    def __init__(self, ttl: float = 1.0, size: int = 1024) -> None:
        self.ttl = ttl
        self.size = size
        self._items: dict[str, tuple[float, tuple[int, str, bool]]] = {}

    def clear(self) -> None:
        self._items.clear()

    def get(self, key: str) -> tuple[int, str, bool] | None:
        hit = self._items.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: str, value: tuple[int, str, bool]) -> None:
        if len(self._items) >= self.size:
            self._items.clear()
        self._items[key] = (time.monotonic() + self.ttl, value)


CtxDep = Annotated[Ctx, Depends(get_ctx)]


@dataclass
class Paging:
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


async def get_paging(
    request: Request,
    page: Annotated[int, Query(description="1-based page number")] = 1,
    page_size: Annotated[int | None, Query(description="items per page, 1 to 200")] = None,
) -> Paging:
    settings: Settings = request.app.state.settings
    size = settings.default_page_size if page_size is None else page_size
    if size < 1 or size > settings.max_page_size:
        raise InvalidInput("page_size", f"must be between 1 and {settings.max_page_size} (got {size})")
    if page < 1 or page > 10_000_000:
        raise InvalidInput("page", f"must be a page number from 1 (got {page})")
    return Paging(page, size)


PagingDep = Annotated[Paging, Depends(get_paging)]


def paginated(request: Request, paging: Paging, count: int, results: list[Any], **extra: Any) -> dict[str, Any]:
    """The `{count, next, previous, results}` envelope, with absolute links like the platform we mirror."""

    def link(page: int) -> str:
        return str(request.url.include_query_params(page=page, page_size=paging.page_size))

    last = max(1, -(-count // paging.page_size))
    nxt = link(paging.page + 1) if paging.page < last else None
    prev = link(min(paging.page - 1, last)) if paging.page > 1 else None
    return {"count": count, "next": nxt, "previous": prev, "results": results, **extra}
