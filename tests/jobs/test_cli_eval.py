"""`judgelab eval`: estimate, dry run, confirmation above 100 calls, and a job run to the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from judgelab.cli import app
from judgelab.config import get_settings
from judgelab.db import Database
from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.client.conftest import Live, live_server  # noqa: F401
from tests.conftest import PG_URL, Api

runner = CliRunner()


@pytest.fixture
def cli_env(db: Database, backend: str, system_db: tuple[str, str], fake_model: FakeOpenAIServer,
            request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if backend == "sqlite":
        url = db.engine.url.render_as_string(hide_password=False)
    else:
        schema, _ = request.getfixturevalue("_pg_schema")
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    monkeypatch.setenv("JUDGELAB_DATABASE_URL", url)
    monkeypatch.setenv("JUDGELAB_JOBS_DATABASE_URL", system_db[0])
    monkeypatch.setenv("JUDGELAB_JOBS_SCHEMA", system_db[1])
    monkeypatch.setenv("JUDGELAB_MODEL", "openai/judge-1")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_model.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_eval_estimates_confirms_and_runs(api: Api, cli_env: None, fake_model: FakeOpenAIServer) -> None:
    agent = api.agent()
    for i in range(101):
        api.call(agent, f"e{i}", f"please cancel reservation {i}" if i % 3 else f"new seat {i}")
    metric = api.metric("asks to cancel")
    dry = runner.invoke(app, ["eval", "--metric", str(metric["id"]), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "101 calls x 1 metrics = 101 evaluations" in dry.output and "openai/judge-1" in dry.output
    assert fake_model.stats.requests == 0
    # Above 100 calls, with no terminal to ask on, it refuses until told --yes.
    refused = runner.invoke(app, ["eval", "--metric", str(metric["id"])])
    assert refused.exit_code == 2 and "--yes" in refused.output
    assert api.get("/api/v1/jobs/").json()["count"] == 0
    ran = runner.invoke(app, ["eval", "--metric", str(metric["id"]), "--agent", "support-bot", "--yes"])
    assert ran.exit_code == 0, ran.output
    assert "completed: 101/101 evaluations, 0 errors, 0 from the cache, 101 LLM calls" in ran.output
    jobs = api.get("/api/v1/jobs/").json()
    assert jobs["count"] == 1 and jobs["results"][0]["created_by"] == "cli"
    # Unchanged: the second run is served from the cache.
    again = runner.invoke(app, ["eval", "--metric", str(metric["id"]), "--yes"])
    assert "101 from the cache, 0 LLM calls" in again.output and fake_model.stats.answered == 101


def test_eval_without_a_model_says_how_to_configure_one(api: Api, cli_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUDGELAB_MODEL")
    get_settings.cache_clear()
    agent = api.agent()
    call = api.call(agent)
    metric = api.metric()
    out = runner.invoke(app, ["eval", "--metric", str(metric["id"]), "--call", str(call["id"])])
    assert out.exit_code == 2 and "JUDGELAB_MODEL" in out.output


def test_eval_against_a_server(live_server: Live, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """--url: the same estimate, confirmation and progress, through the API; the server's workers run it."""
    from judgelab.client import Client

    with Client(live_server.url, live_server.key) as jl:
        agent = jl.create_agent("remote-bot")["id"]
        for i in range(3):
            jl.observe({"agent": agent, "call_id": f"r{i}", "transcript": f"User: please cancel {i}"})
        metric = jl.create_metric({"name": "asks to cancel", "description": "Does the caller ask to cancel?"})["id"]
    monkeypatch.setenv("JUDGELAB_API_KEY", live_server.key)
    dry = runner.invoke(app, ["eval", "--metric", str(metric), "--agent", "remote-bot", "--url", live_server.url, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "3 calls x 1 metrics = 3 evaluations" in dry.output
    ran = runner.invoke(app, ["eval", "--metric", str(metric), "--agent", "remote-bot", "--url", live_server.url])
    assert ran.exit_code == 0, ran.output
    assert "completed: 3/3 evaluations, 0 errors, 0 from the cache, 3 LLM calls" in ran.output
    missing = runner.invoke(app, ["eval", "--metric", "999999", "--url", live_server.url])
    assert missing.exit_code == 2 and "999999" in missing.output
    unknown = runner.invoke(app, ["eval", "--metric", str(metric), "--agent", "nobody", "--url", live_server.url])
    assert unknown.exit_code == 2 and "nobody" in unknown.output
