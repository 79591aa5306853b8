"""Evaluation jobs through the providers' batch APIs (`"batch": true`), over the real openai SDK
against the fake server's batch endpoints: half price, results stored as usual, an expired batch
resubmitted for what it missed, and a worker killed while its batch is in progress polling the same
batch when it comes back instead of paying twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from judgelab.db import Database
from judgelab.db.models import MetricResult, ProviderBatch
from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.conftest import Api
from tests.jobs.conftest import RuntimeFactory
from tests.jobs.test_jobs import wait_for
from tests.jobs.test_kill_resume import _worker, kill_when

PRICED = "openai/gpt-4.1-mini"
BATCH_ENV = {"JUDGELAB_BATCH_POLL_SECONDS": "0.1", "JUDGELAB_BATCH_WINDOW_SECONDS": "0.05"}


def _setup(api: Api, n: int) -> tuple[list[int], int]:
    agent = api.agent()
    calls = [api.call(agent, f"b{i}", f"please cancel booking {i}" if i % 2 else f"change my seat to {i}A")["id"]
             for i in range(n)]
    return calls, api.metric("asks to cancel", model=PRICED)["id"]


def _per_call(db: Database, job_id: str) -> dict[int, int]:
    with db.session() as s:
        return dict(s.execute(select(MetricResult.call_log_id, func.count()).where(MetricResult.job_id == job_id)
                              .group_by(MetricResult.call_log_id)).all())  # type: ignore[arg-type]


def test_a_batch_job_costs_half_and_stores_results_as_usual(
    api: Api, db: Database, start_runtime: RuntimeFactory, fake_model: FakeOpenAIServer, settings: Any
) -> None:
    start_runtime(settings.model_copy(update={"batch_poll_seconds": 0.05, "batch_window_seconds": 0.05}))
    calls, metric = _setup(api, 6)
    estimate = api.post("/api/v1/evaluations/estimate/", json={"metrics": [metric], "call_logs": calls}).json()
    assert estimate["cost_usd"] > 0 and estimate["batch_cost_usd"] == pytest.approx(estimate["cost_usd"] / 2)
    batched = wait_for(api, api.post("/observability/v1/call-logs/evaluate_metrics/",
                                     json={"call_logs": calls, "metrics": [metric], "batch": True}).json()["job_id"])
    assert batched["status"] == "completed" and batched["progress"]["done"] == 6 and batched["progress"]["errors"] == 0
    assert batched["batch"] is True and [b["status"] for b in batched["batches"]] == ["completed"]
    assert batched["batches"][0]["requests"] == 6
    assert fake_model.batches.stats.batches == 1 and fake_model.stats.requests == 0  # nothing went live
    # The verdicts are the model's, stored like any other result.
    results = api.get(f"/observability/v1/call-logs/{calls[1]}/").json()["evaluation"]["metrics"]
    assert [r["value"] for r in results] == [True]
    live = wait_for(api, api.post("/observability/v1/call-logs/evaluate_metrics/",
                                  json={"call_logs": calls, "metrics": [metric], "force": True}).json()["job_id"])
    assert live["batch"] is False and live["batches"] is None and fake_model.stats.requests == 6
    assert live["input_tokens"] == batched["input_tokens"] > 0
    assert batched["cost_usd"] == pytest.approx(live["cost_usd"] / 2, abs=1e-6)  # job costs are rounded to 1e-6


def test_an_expired_batch_is_resubmitted_for_the_requests_it_missed(
    api: Api, db: Database, start_runtime: RuntimeFactory, fake_model: FakeOpenAIServer, settings: Any
) -> None:
    fake_model.batches.expire_batches = 1  # the first batch ends with half its requests unprocessed
    start_runtime(settings.model_copy(update={"batch_poll_seconds": 0.05, "batch_window_seconds": 0.05}))
    calls, metric = _setup(api, 8)
    job = wait_for(api, api.post("/observability/v1/call-logs/evaluate_metrics/",
                                 json={"call_logs": calls, "metrics": [metric], "batch": True}).json()["job_id"])
    assert job["status"] == "completed" and job["progress"]["done"] == 8 and job["progress"]["errors"] == 0, job
    assert [(b["status"], b["requests"]) for b in job["batches"]] == [("expired", 8), ("completed", 4)]
    assert fake_model.batches.stats.answered == 8 and fake_model.batches.stats.expired == 4
    assert sorted(_per_call(db, job["id"]).values()) == [1] * 8


def test_a_worker_killed_while_its_batch_runs_polls_the_same_batch_on_restart(
    api: Api, db: Database, system_db: tuple[str, str], fake_model: FakeOpenAIServer, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_model.base_url)
    fake_model.batches.delay = 3.0  # long enough to kill the worker while the batch is in progress
    calls, metric = _setup(api, 10)
    job_id = api.post("/observability/v1/call-logs/evaluate_metrics/",
                      json={"call_logs": calls, "metrics": [metric], "batch": True}).json()["job_id"]

    def submitted() -> bool:
        with db.session() as s:
            return bool(s.scalar(select(func.count()).select_from(ProviderBatch).where(ProviderBatch.job_id == job_id)))

    kill_when(_worker(db, system_db, fake_model, tmp_path, **BATCH_ENV), submitted)
    assert fake_model.batches.stats.batches == 1 and fake_model.batches.stats.answered == 0
    worker = _worker(db, system_db, fake_model, tmp_path, **BATCH_ENV)
    try:
        job = wait_for(api, job_id, timeout=90)
    finally:
        worker.terminate()
        worker.wait(20)
    assert job["status"] == "completed" and job["progress"]["done"] == 10 and job["progress"]["errors"] == 0, job
    # One batch, answered once: the restarted worker found it in the database and polled it.
    assert fake_model.batches.stats.batches == 1 and fake_model.batches.stats.answered == 10
    assert fake_model.stats.requests == 0
    assert sorted(_per_call(db, job_id).values()) == [1] * 10
