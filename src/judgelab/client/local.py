"""A `Client` that needs no server: the API app runs in this process, on this machine's database.

The CLI uses it when no `--url` is given, so a command has one code path whether it talks to a
remote server or to the local database. The app authenticates every request as the chosen
project (the CLI already has the database, so a key would prove nothing), and calls it over ASGI
on a private event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx2

from judgelab.client.api import JSON, AsyncClient, Client
from judgelab.config import Settings
from judgelab.db import Database

INTERNAL_URL = "http://judgelab.local"


class LocalClient(Client):
    def __init__(self, db: Database, settings: Settings, project_id: int, reviewer: str) -> None:
        from judgelab.api.app import create_app
        from judgelab.api.deps import Ctx, get_ctx

        app = create_app(settings, db)

        async def as_project() -> AsyncIterator[Ctx]:
            session = db.sessionmaker()
            try:
                yield Ctx(session, project_id, reviewer, settings, db)
            finally:
                session.close()

        app.dependency_overrides[get_ctx] = as_project
        self._async = AsyncClient(INTERNAL_URL, "local", transport=httpx2.ASGITransport(app=app))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="judgelab-local-client", daemon=True)
        self._thread.start()

    def _send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None) -> JSON:
        future = asyncio.run_coroutine_threadsafe(self._async._send(method, path, params=params, json=json), self._loop)
        return future.result()

    def close(self) -> None:
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._async.aclose(), self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
