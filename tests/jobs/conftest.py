"""A job runtime (DBOS) per test, on the test's own database, judging through the fake model server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from judgelab.config import Settings
from judgelab.db import Database, make_engine
from judgelab.jobs.runtime import Runtime
from judgelab.judges.providers.openai import OpenAIProvider
from judgelab.judges.registry import Judges
from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.conftest import PG_URL


def cancel_rule(body: dict[str, Any]) -> str:
    """Passes a call when the customer asks to cancel."""
    return json.dumps({"result": "please cancel" in body["messages"][-1]["content"], "explanation": "read the transcript"})


@pytest.fixture
def fake_model() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(rule=cancel_rule, latency=0.01) as server:
        yield server


@pytest.fixture
def system_db(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """Where DBOS keeps its state: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'judgelab-jobs.db'}", "dbos"
        return
    schema, _ = request.getfixturevalue("_pg_schema")
    dbos_schema = f"{schema}_dbos_{uuid.uuid4().hex[:6]}"
    yield PG_URL, dbos_schema
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {dbos_schema} CASCADE"))
    admin.dispose()


RuntimeFactory = Callable[..., Runtime]


@pytest.fixture
def start_runtime(db: Database, system_db: tuple[str, str], fake_model: FakeOpenAIServer) -> Iterator[RuntimeFactory]:
    started: list[Runtime] = []

    def start(settings: Settings, executor_id: str = "test") -> Runtime:
        def judges() -> Judges:
            return Judges(settings, {"openai": lambda: OpenAIProvider(base_url=fake_model.base_url)})

        runtime = Runtime(db, settings, executor_id=executor_id, judges=judges, system_url=system_db[0],
                          system_schema=system_db[1], dispatch_interval=0.05)
        started.append(runtime.start())
        return runtime

    yield start
    for runtime in started:
        runtime.stop()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", model="openai/judge-1", job_chunk_size=5)
