"""The FastAPI application: one app, thin routers over the services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from judgelab import __version__, web
from judgelab.api import calls, errors, evaluations, jobs, keys, labs, metrics, projects, testsets, webhooks
from judgelab.api.deps import KeyCache
from judgelab.api.middleware import BodyLimit, JsonGuard, SecurityHeaders, TrailingSlash
from judgelab.api.responses import FastJSON
from judgelab.config import Settings, get_settings
from judgelab.db import Database, open_database
from judgelab.mcp.transports import McpEndpoint

DEFAULT_BODY_LIMIT = 20_000_000


def create_app(settings: Settings | None = None, db: Database | None = None, *, run_jobs: bool = False) -> FastAPI:
    """Build the app. With no `db`, the database is opened (and migrated) when the app starts;
    with `run_jobs`, this process also runs the job workers (DBOS) while it serves."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = app.state.db is None
        if owned:
            app.state.db = open_database(settings)
        if run_jobs:
            from judgelab.jobs.runtime import Runtime

            # DBOS refuses to set up queues from inside a running event loop: start it beside it.
            app.state.runtime = await asyncio.to_thread(Runtime(app.state.db, settings).start)
        try:
            async with app.state.mcp.running():
                yield
        finally:
            if app.state.runtime is not None:
                await asyncio.to_thread(app.state.runtime.stop)
                app.state.runtime = None
            if owned:
                app.state.db.dispose()

    app = FastAPI(
        title="judgelab",
        version=__version__,
        description="Metric lab for LLM-as-judge metrics on voice and chat agent calls.",
        lifespan=lifespan,
        redirect_slashes=False,
        default_response_class=FastJSON,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.key_cache = KeyCache()
    from judgelab.web.auth import LoginLimiter

    app.state.login_limiter = LoginLimiter()
    app.state.runtime = None  # the job runtime, when this process runs one (`judgelab serve`)
    app.state.mcp = McpEndpoint(app)
    for path in ("/mcp", "/mcp/"):
        app.add_route(path, app.state.mcp, include_in_schema=False)
    errors.install(app)
    errors.document(app)
    for module in (calls, metrics, testsets, projects, keys, evaluations, jobs, labs, webhooks):
        app.include_router(module.router)
    web.install(app)

    @app.get("/healthz", tags=["meta"], summary="Liveness and database check (no key needed)")
    def healthz() -> dict[str, Any]:
        database: Database = app.state.db
        with database.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return {"status": "ok", "version": __version__, "database": database.dialect}

    app.add_middleware(JsonGuard)
    app.add_middleware(BodyLimit, default_limit=DEFAULT_BODY_LIMIT, import_limit=settings.max_import_bytes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(TrailingSlash)
    return app
