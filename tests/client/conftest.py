"""A live judgelab server on a real socket (uvicorn in a thread), with a job runtime and the fake model."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn

from judgelab.api.app import create_app
from judgelab.config import Settings
from judgelab.db import Database
from tests.conftest import make_key
from tests.jobs.conftest import RuntimeFactory, fake_model, settings, start_runtime, system_db  # noqa: F401


@dataclass
class Live:
    url: str
    key: str
    project_id: int
    db: Database
    settings: Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_server(db: Database, settings: Settings, start_runtime: RuntimeFactory) -> Iterator[Live]:  # noqa: F811
    start_runtime(settings)
    app = create_app(settings, db)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    key, project_id = make_key(db, "live")
    try:
        yield Live(f"http://127.0.0.1:{port}", key, project_id, db, settings)
    finally:
        server.should_exit = True
        thread.join(10)
