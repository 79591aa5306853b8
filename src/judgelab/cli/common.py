"""Shared CLI plumbing: opening the database, resolving --project, printing errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

import httpx2
import typer
from rich.console import Console
from sqlalchemy import select
from sqlalchemy.orm import Session

from judgelab.client import ApiError
from judgelab.config import get_settings
from judgelab.db import Database, open_database
from judgelab.db.models import Project
from judgelab.errors import JudgelabError

console = Console(soft_wrap=True)  # messages stay on one line, so scripts can grep them
err_console = Console(stderr=True, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


def database() -> Database:
    return open_database(get_settings())


@contextmanager
def session_scope(*, bulk: bool = False) -> Iterator[Session]:
    """A committed-or-rolled-back session; `bulk` refreshes planner statistics after the commit."""
    db = database()
    try:
        with db.session() as session:
            yield session
        if bulk:
            db.refresh_statistics()
    finally:
        db.dispose()


def find_project(session: Session, name: str | None, metric: int | list[int] | None = None) -> Project:
    """The project named, else the only one, else the one the given metric id(s) belong to."""
    if not name and metric:
        from judgelab.db.models import Metric

        ids = metric if isinstance(metric, list) else [metric]
        owners = set(session.scalars(select(Metric.project_id).where(Metric.id.in_(ids))).all())
        if len(owners) == 1:
            found = session.get(Project, owners.pop())
            if found is not None:
                return found
    if name:
        project = session.scalar(select(Project).where(Project.name == name))
        if project is None:
            names = ", ".join(session.scalars(select(Project.name).order_by(Project.name)).all()) or "none yet"
            raise JudgelabError("project", f"no project named {name!r} (projects: {names})")
        return project
    projects = session.scalars(select(Project).order_by(Project.id)).all()
    if len(projects) == 1:
        return projects[0]
    if not projects:
        raise JudgelabError("project", "no projects yet: create one with `judgelab keys create --project NAME`")
    raise JudgelabError("project", "several projects exist; pass --project (" + ", ".join(p.name for p in projects) + ")")


def friendly_errors(fn: F) -> F:
    """Print domain errors as 'error: field: message' and exit 2 instead of a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except JudgelabError as exc:
            for e in exc.errors[:50]:
                err_console.print(f"[red]error:[/red] {e}", highlight=False, markup=True)
            if len(exc.errors) > 50:
                err_console.print(f"... and {len(exc.errors) - 50} more errors")
            raise typer.Exit(2) from None
        except ApiError as exc:  # a remote server (--url) said no
            err_console.print(f"[red]error:[/red] {exc.detail}", highlight=False)
            raise typer.Exit(2) from None
        except httpx2.TransportError as exc:
            err_console.print(f"[red]error:[/red] cannot reach the server: {exc}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]
