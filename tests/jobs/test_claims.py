"""A job runs only where it was meant to: reserved for `judgelab eval`'s own runner, and only in a process
whose providers point at the endpoint the job was submitted for (never decided by the key)."""

from __future__ import annotations

from typing import Any

from judgelab.db import Database
from judgelab.jobs.service import claim_queued, create_evaluation_job, runnable_here
from tests.conftest import Api


def test_runnable_here() -> None:
    assert runnable_here({}, "serve", {"openai": "http://b/v1"})
    assert not runnable_here({"runner": "cli-host"}, "serve", {})
    assert runnable_here({"runner": "cli-host"}, "cli-host", {})
    assert not runnable_here({"endpoints": {"openai": "http://a/v1"}}, "serve", {"openai": "http://b/v1"})
    assert runnable_here({"endpoints": {"openai": "http://a/v1"}}, "serve", {"openai": "http://a/v1"})


def test_a_server_on_another_endpoint_does_not_claim_a_job(api: Api, db: Database, monkeypatch: Any) -> None:
    agent = api.agent()
    call = api.call(agent, "c1", "hello")["id"]
    metric = api.metric("m")["id"]
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8111/v1")  # the shell that submits
    with db.session() as s:
        mine = create_evaluation_job(s, api.project_id, [call], [metric], force=False, default_model="openai/x").id
        reserved = create_evaluation_job(s, api.project_id, [call], [metric], force=False, default_model="openai/x",
                                         runner="cli-laptop").id
    with db.session() as s:
        assert claim_queued(s, "serve-1", here={"openai": "http://127.0.0.1:9999/v1"}) == []  # another endpoint
        assert claim_queued(s, "serve-1", here={"openai": "http://127.0.0.1:8111/v1"}) == [mine]
        assert claim_queued(s, "cli-laptop", here={"openai": "http://127.0.0.1:8111/v1"}) == [reserved]
    job = api.get(f"/api/v1/jobs/{reserved}/").json()
    assert job["executor_id"] == "cli-laptop"
