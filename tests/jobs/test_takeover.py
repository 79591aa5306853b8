"""A worker SIGKILLed mid-job and never restarted: another worker notices its silent heartbeat,
takes over its pending workflows with DBOS's recovery for another executor, and the job (or labs
run) completes there, with nothing lost and nothing stored twice."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from judgelab.db import Database
from judgelab.db.models import Job, MetricResult, Worker
from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.conftest import Api
from tests.jobs.test_jobs import wait_for
from tests.jobs.test_kill_resume import _done, _worker, kill_when

N = 40
TIMEOUT = {"JUDGELAB_WORKER_TIMEOUT_S": "2"}


def _beating(db: Database, executor_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.session() as s:
            if s.get(Worker, executor_id) is not None:
                return
        time.sleep(0.05)
    raise AssertionError(f"{executor_id} never beat")


def _stop(*workers: subprocess.Popen[bytes]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(20)


def test_a_dead_workers_job_completes_on_the_survivor(
    api: Api, db: Database, system_db: tuple[str, str], fake_model: FakeOpenAIServer, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_model.base_url)
    fake_model.latency = 0.2
    agent = api.agent()
    calls = [api.call(agent, f"k{i}", f"please cancel booking marker-{i}-end")["id"] for i in range(N)]
    metric = api.metric("asks to cancel")
    doomed = _worker(db, system_db, fake_model, tmp_path, "doomed", **TIMEOUT)
    survivor: subprocess.Popen[bytes] | None = None
    try:
        _beating(db, "doomed")
        job_id = api.post("/observability/v1/call-logs/evaluate_metrics/",
                          json={"call_logs": calls, "metrics": [metric["id"]]}).json()["job_id"]
        # The doomed worker claims the job and starts it: the parent workflow and its chunks are its.
        deadline = time.monotonic() + 60
        while len(_done(db, job_id)) < 6:
            assert time.monotonic() < deadline, "the doomed worker made no progress"
            time.sleep(0.02)
        with db.session() as s:
            assert s.get(Job, job_id).executor_id == "doomed"  # type: ignore[union-attr]
        survivor = _worker(db, system_db, fake_model, tmp_path, "survivor", **TIMEOUT)
        _beating(db, "survivor")
        kill_when(doomed, lambda: True)  # SIGKILL, and it never comes back
        done_at_kill = len(_done(db, job_id))
        assert done_at_kill < N, "the kill must land mid-job"
        job = wait_for(api, job_id, timeout=90)
    finally:
        _stop(doomed, *([survivor] if survivor else []))
    assert job["status"] == "completed" and job["progress"]["done"] == N and job["progress"]["errors"] == 0, job
    with db.session() as s:
        stored = s.execute(select(MetricResult.call_log_id, func.count()).where(MetricResult.job_id == job_id)
                           .group_by(MetricResult.call_log_id)).all()
        dead = s.get(Worker, "doomed")
        assert dead is not None
        handover = (dead.taken_over_by, dead.recovered_workflows)
        assert s.get(Job, job_id).executor_id == "survivor"  # type: ignore[union-attr]
    assert len(stored) == N and all(count == 1 for _call, count in stored), "a result was lost or stored twice"
    # The survivor took over the parent workflow and at least the chunk the doomed worker was running.
    assert handover[0] == "survivor" and handover[1] is not None and handover[1] >= 2, handover
    # Paid twice at most: the requests in flight at the kill (the concurrency, 2) and those answered
    # in the last GROUP_SECONDS, waiting for their group's write (at most another 2 here).
    assert N <= fake_model.stats.answered <= N + 4


def test_a_dead_workers_labs_run_completes_on_the_survivor(
    api: Api, db: Database, system_db: tuple[str, str], fake_model: FakeOpenAIServer, tmp_path: Path
) -> None:
    from judgelab.db.models import LabsRun
    from tests.labs.test_kill_runs import _poll_run
    from tests.labs.test_labs_run import PARAPHRASE_RULE, STRICT, labelled, model

    fake_model.rule = model
    metric, _calls = labelled(api, db)
    fake_model.latency = 0.3
    workers = {name: _worker(db, system_db, fake_model, tmp_path, name, **TIMEOUT) for name in ("w-a", "w-b")}
    try:
        for name in workers:
            _beating(db, name)
        started = api.post(f"/api/v1/metrics/{metric}/validate/", json={"description": STRICT + PARAPHRASE_RULE, "sample": 0})
        assert started.status_code == 202, started.text
        run_id = started.json()["validation_id"]
        deadline = time.monotonic() + 60
        owner = None
        while owner is None or fake_model.stats.answered < 4:
            assert time.monotonic() < deadline, "no worker made progress"
            with db.session() as s:
                owner = s.get(LabsRun, run_id).executor_id  # type: ignore[union-attr]
            time.sleep(0.02)
        survivor = next(n for n in workers if n != owner)
        kill_when(workers[owner], lambda: True)  # the run's owner dies mid-run, for good
        paid_before = fake_model.stats.requests
        run = _poll_run(api, started.json()["progress_url"])
    finally:
        _stop(*workers.values())
    assert run["status"] == "completed", run
    assert run["summary"]["fixed"] == 6 and run["summary"]["regressed"] == 0
    repaid = fake_model.stats.requests - run["progress"]["judge_calls"]
    assert paid_before >= 4 and 0 <= repaid <= 4, (paid_before, run["progress"]["judge_calls"], fake_model.stats.requests)
    with db.session() as s:
        dead = s.get(Worker, owner)
        assert dead is not None and dead.taken_over_by == survivor and (dead.recovered_workflows or 0) >= 1
