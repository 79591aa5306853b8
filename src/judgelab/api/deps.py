"""Per-request plumbing: the database session, the caller's project (from the API key), paging."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Query, Request
from sqlalchemy.orm import Session

from judgelab.config import Settings
from judgelab.db import Database
from judgelab.errors import InvalidInput
from judgelab.projects.service import authenticate

# Path ids outside 32 bits cannot exist (PostgreSQL integers); saying 404 beats a database error.
PathId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@dataclass
class Ctx:
    session: Session
    project_id: int
    key_name: str
    settings: Settings

    def commit(self) -> None:
        self.session.commit()


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _key_from_headers(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    for header in ("x-api-key", "x-cekura-api-key"):
        if value := request.headers.get(header, "").strip():
            return value
    return None


def get_ctx(request: Request) -> Iterator[Ctx]:
    db = get_db(request)
    key = _key_from_headers(request)
    if key is None:
        raise HTTPException(
            401,
            "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>' "
            "(create one with `judgelab keys create --project NAME`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    with db.sessionmaker() as session:
        api_key = authenticate(session, key)
        if api_key is None:
            raise HTTPException(401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
        yield Ctx(session, api_key.project_id, api_key.name or f"key:{api_key.prefix}", request.app.state.settings)


CtxDep = Annotated[Ctx, Depends(get_ctx)]


@dataclass
class Paging:
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def get_paging(
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
