"""Evaluation jobs over HTTP: submitted by the API, run by a DBOS runtime, judged through the
real openai SDK against the fake model server."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select

from judgelab.db import Database
from judgelab.db.models import MetricResult
from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.conftest import Api
from tests.jobs.conftest import RuntimeFactory


def wait_for(api: Api, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/api/v1/jobs/{job_id}/").json()
        if job["status"] in ("completed", "failed", "stopped", "cancelled"):
            return dict(job)
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end: {job}")


def _calls(api: Api, n: int) -> list[int]:
    agent = api.agent()
    return [api.call(agent, f"c{i}", f"please cancel my flight {i}" if i % 2 else f"change my seat to {i}A")["id"] for i in range(n)]


def test_a_job_evaluates_reports_progress_and_a_rerun_is_free(
    api: Api, db: Database, start_runtime: RuntimeFactory, fake_model: FakeOpenAIServer, settings: Any
) -> None:
    start_runtime(settings)
    calls = _calls(api, 12)
    metric = api.metric("asks to cancel", description="Does the caller ask to cancel?")
    r = api.post("/observability/v1/call-logs/evaluate_metrics/", json={"call_logs": calls, "metrics": [metric["id"]]})
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["status"] == "queued" and started["progress"]["total"] == 12 and started["estimate"]["calls"] == 12
    job = wait_for(api, started["job_id"])
    assert job["status"] == "completed", job
    assert job["progress"] == {"done": 12, "total": 12, "errors": 0, "cache_hits": 0, "percent": 100.0}
    assert job["llm_calls"] == 12 and job["input_tokens"] > 0 and job["metrics"] == [metric["id"]]
    assert fake_model.stats.answered == 12
    values = {c: api.get(f"/observability/v1/call-logs-external/{c}/").json()["evaluation"]["metrics"][0]["value"] for c in calls}
    assert [values[c] for c in calls] == [bool(i % 2) for i in range(12)]
    # The judge (openai/judge-1) has no known price: the job says the cost is unknown, not $0.
    assert job["cost_usd"] is None and job["cost_known"] is False
    # Nothing changed: the estimate says so (every evaluation is stored, no LLM request to pay)...
    est = api.post("/api/v1/evaluations/estimate/", json={"metrics": [metric["id"]], "call_logs": calls}).json()
    assert (est["cached_evaluations"], est["llm_requests"], est["input_tokens"]) == (12, 0, 0)
    assert any("12 evaluation(s) have a stored result" in n for n in est["notes"])
    api.call("support-bot", "c0", "Actually, please cancel everything.")  # one call changes
    est = api.post("/api/v1/evaluations/estimate/", json={"metrics": [metric["id"]], "call_logs": calls}).json()
    assert (est["cached_evaluations"], est["llm_requests"]) == (11, 1)
    api.call("support-bot", "c0", "change my seat to 0A")  # and changes back
    # ...and the same request again is answered from the cache, with no model call.
    again = wait_for(api, api.post("/observability/v1/call-logs/rerun_evaluation/", json={"call_logs": calls}).json()["job_id"])
    assert again["status"] == "completed" and again["progress"]["cache_hits"] == 12 and again["llm_calls"] == 0
    assert fake_model.stats.answered == 12
    # force bypasses it.
    forced = wait_for(api, api.post("/observability/v1/call-logs/rerun_evaluation/",
                                    json={"call_logs": calls[:3], "force": True}).json()["job_id"])
    assert forced["llm_calls"] == 3 and fake_model.stats.answered == 15
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(MetricResult)) == 15


def test_more_than_100_calls_need_confirmation(api: Api, start_runtime: RuntimeFactory, settings: Any) -> None:
    agent = api.agent()
    for i in range(101):
        api.call(agent, f"b{i}", f"hello number {i}")
    metric = api.metric()
    body = {"agent": agent, "metrics": [metric["id"]]}
    refused = api.post("/observability/v1/call-logs/evaluate_metrics/", json=body)
    assert refused.status_code == 409, refused.text
    assert refused.json()["estimate"]["calls"] == 101 and refused.json()["errors"][0]["field"] == "confirm"
    assert api.get("/api/v1/jobs/").json()["count"] == 0
    start_runtime(settings)
    accepted = api.post("/observability/v1/call-logs/evaluate_metrics/", json={**body, "confirm": True})
    assert accepted.status_code == 202
    job = wait_for(api, accepted.json()["job_id"])
    assert job["status"] == "completed" and job["progress"]["done"] == 101


def test_a_daily_budget_stops_a_job_and_keeps_what_it_finished(
    api: Api, start_runtime: RuntimeFactory, settings: Any
) -> None:
    calls = _calls(api, 20)
    metric = api.metric("asks to cancel", description="Does the caller ask to cancel?")
    # A price for the fake model, and a budget that a few evaluations exhaust.
    import os

    os.environ["JUDGELAB_PRICES"] = '{"openai/judge-1": [1000.0, 1000.0]}'
    try:
        r = api.patch(f"/api/v1/projects/{api.project_id}/", json={"daily_budget_usd": 0.5})
        assert r.status_code == 200 and r.json()["daily_budget_usd"] == 0.5
        start_runtime(settings.model_copy(update={"worker_chunks": 1}))
        job = wait_for(api, api.post("/observability/v1/call-logs/evaluate_metrics/",
                                     json={"call_logs": calls, "metrics": [metric["id"]]}).json()["job_id"])
    finally:
        del os.environ["JUDGELAB_PRICES"]
    assert job["status"] == "stopped" and "daily budget of $0.50" in job["message"], job
    assert 0 < job["progress"]["done"] < 20 and job["cost_usd"] >= 0.5


def test_jobs_are_private_and_bad_requests_are_clear(api: Api, other_api: Api) -> None:
    calls = _calls(api, 2)
    metric = api.metric()
    r = api.post("/observability/v1/call-logs/evaluate_metrics/", json={"call_logs": calls, "metrics": [metric["id"]]})
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    assert other_api.get(f"/api/v1/jobs/{job_id}/").status_code == 404
    assert other_api.post("/observability/v1/call-logs/evaluate_metrics/",
                          json={"call_logs": calls, "metrics": [metric["id"]]}).status_code == 404
    bad = api.post("/observability/v1/call-logs/evaluate_metrics/", json={"call_logs": calls})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "metrics"
    nothing = api.post("/observability/v1/call-logs/evaluate_metrics/", json={"metrics": [metric["id"]]})
    assert nothing.status_code == 400 and nothing.json()["errors"][0]["field"] == "call_logs"
    cancelled = api.post(f"/api/v1/jobs/{job_id}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert api.post(f"/api/v1/jobs/{job_id}/cancel/").status_code == 409
    assert api.get("/api/v1/jobs/nope/").status_code == 404
