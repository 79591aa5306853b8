"""Fixtures: every database-backed test runs on SQLite, and on PostgreSQL when one is reachable.

PostgreSQL is found at JUDGELAB_TEST_POSTGRES_URL (default: the CI server at 127.0.0.1:5432,
database `test`, user `postgres`). Each test session migrates its own schema once and empties
the tables between tests, so test runs never see each other's rows.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from judgelab.api.app import create_app
from judgelab.config import Settings
from judgelab.db import Database, make_engine, migrate
from judgelab.db.models import Base
from judgelab.demo import AIRLINE  # noqa: F401 - the airline conversations ship with judgelab (MIT)

PG_URL = os.environ.get("JUDGELAB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_reachable() -> str | None:
    try:
        engine = make_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not here"
        return f"PostgreSQL not reachable at {PG_URL}: {str(exc).splitlines()[0]}"


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _pg_schema() -> Iterator[tuple[str, dict[str, Any]]]:
    reason = _postgres_reachable()
    if reason:
        if os.environ.get("JUDGELAB_REQUIRE_POSTGRES"):
            pytest.fail(reason)
        pytest.skip(reason)
    schema = f"jltest_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    connect_args = {"options": f"-csearch_path={schema}"}
    engine = make_engine(PG_URL, connect_args=connect_args)
    migrate(engine)
    engine.dispose()
    yield schema, connect_args
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if backend == "sqlite":
        template = request.getfixturevalue("_sqlite_template")
        path = tmp_path / "judgelab.db"
        shutil.copy(template, path)
        database = Database(make_engine(f"sqlite:///{path}"))
    else:
        _schema, connect_args = request.getfixturevalue("_pg_schema")
        database = Database(make_engine(PG_URL, connect_args=connect_args))
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with database.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def app_client(db: Database, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db)) as client:
        yield client


class Api:
    """A TestClient bound to one project's key, with helpers for the objects most tests need."""

    def __init__(self, client: TestClient, key: str, project_id: int) -> None:
        self.client = client
        self.key = key
        self.project_id = project_id
        self.headers = {"Authorization": f"Bearer {key}"}

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.client.post(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def put(self, url: str, **kw: Any) -> Any:
        return self.client.put(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def patch(self, url: str, **kw: Any) -> Any:
        return self.client.patch(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def delete(self, url: str, **kw: Any) -> Any:
        return self.client.delete(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def agent(self, name: str = "support-bot", description: str = "You are a helpful airline agent.") -> int:
        r = self.post("/api/v1/agents/", json={"name": name, "description": description})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def call(self, agent: int | str, call_id: str = "c1", text_: str = "Hello, I need to change my flight.", **extra: Any) -> dict[str, Any]:
        body = {
            "agent": agent,
            "call_id": call_id,
            "transcript_json": [
                {"role": "agent", "content": "Thanks for calling, how can I help?", "start_time": 0.0, "end_time": 2.5},
                {"role": "user", "content": text_, "start_time": 3.0, "end_time": 6.0},
            ],
            **extra,
        }
        r = self.post("/observability/v1/observe/", json=body)
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    def metric(self, name: str = "verified identity", **extra: Any) -> dict[str, Any]:
        body = {"name": name, "description": "Did the agent verify the caller's identity before sharing details?", **extra}
        r = self.post("/test_framework/v1/metrics/", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())


def make_key(db: Database, project: str, *, admin: bool = False) -> tuple[str, int]:
    from judgelab.projects.service import create_api_key, get_or_create_project

    with db.session() as session:
        proj, _ = get_or_create_project(session, project)
        return create_api_key(session, proj, name=f"{project} tests", admin=admin).key, proj.id


@pytest.fixture
def api(app_client: TestClient, db: Database) -> Api:
    key, project_id = make_key(db, "acme")
    return Api(app_client, key, project_id)


@pytest.fixture
def admin_api(app_client: TestClient, db: Database) -> Api:
    key, project_id = make_key(db, "acme", admin=True)
    return Api(app_client, key, project_id)


@pytest.fixture
def other_api(app_client: TestClient, db: Database) -> Api:
    key, project_id = make_key(db, "globex")
    return Api(app_client, key, project_id)


def add_result(db: Database, call_id: int, metric_id: int, value: Any, explanation: str = "judge said so") -> int:
    """Store a metric result as the evaluation engine will (the engine itself is another issue)."""
    from judgelab.db.models import Metric, MetricResult

    with db.session() as session:
        metric = session.get(Metric, metric_id)
        assert metric is not None
        score = None if value is None else (5.0 if value is True else 0.0 if value is False else None)
        r = MetricResult(
            project_id=metric.project_id, call_log_id=call_id, metric_id=metric_id,
            metric_version_id=metric.current.id, value=value, score=score, explanation=explanation,
            extra={}, model="fake/judge",
        )
        session.add(r)
        session.flush()
        return r.id
