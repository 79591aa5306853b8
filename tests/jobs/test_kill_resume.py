"""A worker killed with SIGKILL mid-job resumes when restarted: no finished LLM call is made
again and no result is stored twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from judgelab.db import Database
from judgelab.db.models import JobItem, MetricResult
from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.conftest import Api
from tests.jobs.test_jobs import wait_for

N = 40


def kill_when(worker: subprocess.Popen[str], ready: Callable[[], bool], timeout: float = 60) -> None:
    """SIGKILL the worker as soon as `ready()` holds (it must still be running by then)."""
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert worker.poll() is None, "the worker exited by itself"
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.02)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()


def _worker(db: Database, system_db: tuple[str, str], fake: FakeOpenAIServer, cwd: Path, executor_id: str = "w1",
            **extra: str) -> subprocess.Popen[bytes]:
    url = db.engine.url.render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
    if db.dialect == "postgresql":
        with db.engine.connect() as conn:
            schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
        url += f"?options=-csearch_path%3D{schema}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUDGELAB_", "OPENAI_"))}
    env.update({
        "JUDGELAB_DATABASE_URL": url,
        "JUDGELAB_JOBS_DATABASE_URL": system_db[0],
        "JUDGELAB_JOBS_SCHEMA": system_db[1],
        "JUDGELAB_MODEL": "openai/judge-1",
        "JUDGELAB_JUDGE_CONCURRENCY": "2",
        "JUDGELAB_JOB_CHUNK_SIZE": "5",
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "test",
        **extra,
    })
    return subprocess.Popen([sys.executable, "-m", "judgelab", "worker", "--executor-id", executor_id], env=env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _done(db: Database, job_id: str) -> set[int]:
    with db.session() as s:
        return set(s.scalars(select(JobItem.call_log_id).where(JobItem.job_id == job_id)).all())


def test_a_killed_worker_resumes_without_paying_twice(
    api: Api, db: Database, system_db: tuple[str, str], fake_model: FakeOpenAIServer, tmp_path: Path, monkeypatch: Any
) -> None:
    # The submitting process is configured like the worker: a job runs only where its endpoint is.
    monkeypatch.setenv("OPENAI_BASE_URL", fake_model.base_url)
    fake_model.latency = 0.2
    agent = api.agent()
    calls = {api.call(agent, f"k{i}", f"please cancel booking marker-{i}-end")["id"]: f"marker-{i}-end" for i in range(N)}
    metric = api.metric("asks to cancel")
    started = api.post("/observability/v1/call-logs/evaluate_metrics/", json={"call_logs": list(calls), "metrics": [metric["id"]]})
    job_id = started.json()["job_id"]
    kill_when(_worker(db, system_db, fake_model, tmp_path), lambda: len(_done(db, job_id)) >= 8)
    done_before = _done(db, job_id)
    seen_before = len(fake_model.stats.bodies)
    assert 8 <= len(done_before) < N, "the kill must land mid-job"
    assert api.get(f"/api/v1/jobs/{job_id}/").json()["status"] == "running"

    worker = _worker(db, system_db, fake_model, tmp_path)
    try:
        job = wait_for(api, job_id, timeout=90)
    finally:
        worker.terminate()
        worker.wait(20)
    assert job["status"] == "completed" and job["progress"]["done"] == N and job["progress"]["errors"] == 0, job
    with db.session() as s:
        stored = s.execute(select(MetricResult.call_log_id, func.count()).where(MetricResult.job_id == job_id)
                           .group_by(MetricResult.call_log_id)).all()
    assert len(stored) == N and all(count == 1 for _call, count in stored), "a result was lost or stored twice"
    # No call finished before the kill was sent to the model again after it.
    asked_again = [calls[c] for c in done_before
                   if any(calls[c] in b["messages"][-1]["content"] for b in fake_model.stats.bodies[seen_before:])]
    assert asked_again == []
    # Paid twice at most: the requests in flight at the kill (the concurrency, 2) and those answered
    # in the last GROUP_SECONDS, waiting for their group's write (at most another 2 here).
    assert N <= fake_model.stats.answered <= N + 4
