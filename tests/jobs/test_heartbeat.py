"""Heartbeats and hand-overs, on both databases, without processes: exactly one survivor takes a
silent worker over, jobs it claimed but never started go back to the queue, a job reserved for
another runner keeps the hand-over back, and a restarted worker clears it."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import update

from judgelab.db import Database
from judgelab.db.models import Job, Worker
from judgelab.db.types import utcnow
from judgelab.jobs.heartbeat import Heartbeat, beat, workers
from tests.conftest import Api


def _heart(db: Database, executor_id: str, recovered: list[str]) -> Heartbeat:
    def recover(dead: str) -> int:
        recovered.append(dead)
        return 3

    return Heartbeat(db, executor_id, 60.0, recover, lambda: None)


def _silence(db: Database, executor_id: str, seconds: float = 120) -> None:
    with db.session() as s:
        s.execute(update(Worker).where(Worker.executor_id == executor_id)
                  .values(beat_at=utcnow() - timedelta(seconds=seconds)))


def _job(db: Database, project_id: int, status: str, executor_id: str, **params: object) -> str:
    job_id = str(uuid.uuid4())
    with db.session() as s:
        s.add(Job(id=job_id, project_id=project_id, kind="evaluation", status=status, params=params, total=1,
                  executor_id=executor_id))
    return job_id


def test_exactly_one_survivor_takes_a_silent_worker_over(api: Api, db: Database) -> None:
    recovered: list[str] = []
    beat(db, "dead", "t-dead", first=True)
    survivors = [_heart(db, name, recovered) for name in ("s1", "s2")]
    for heart in survivors:
        beat(db, heart.executor_id, heart.token, first=True)
    assert [h.take_over() for h in survivors] == [[], []]  # everyone beat just now: nobody is dead
    claimed = _job(db, api.project_id, "starting", "dead")
    running = _job(db, api.project_id, "running", "dead")
    _silence(db, "dead")
    assert [h.take_over() for h in survivors] == [["dead"], []]
    assert recovered == ["dead"]  # DBOS's recovery asked once, by the winner
    with db.session() as s:
        row = s.get(Worker, "dead")
        assert row is not None and (row.taken_over_by, row.recovered_workflows, row.requeued_jobs) == ("s1", 3, 1)
        assert (s.get(Job, claimed).status, s.get(Job, claimed).executor_id) == ("queued", None)  # type: ignore[union-attr]
        assert s.get(Job, running).executor_id == "s1"  # type: ignore[union-attr]
    listed = {w["executor_id"]: w for w in workers(db, 60.0)}
    assert listed["dead"]["alive"] is False and listed["s2"]["alive"] is True
    # The dead worker comes back under its id: it beats afresh and the hand-over is cleared.
    beat(db, "dead", "t-dead-again", first=True)
    with db.session() as s:
        row = s.get(Worker, "dead")
        assert row is not None and row.taken_over_by is None and row.token == "t-dead-again"


def test_a_job_reserved_for_its_own_runner_keeps_the_hand_over_back(api: Api, db: Database) -> None:
    recovered: list[str] = []
    beat(db, "judgelab-cli", "t", first=True)
    _job(db, api.project_id, "running", "judgelab-cli", runner="judgelab-cli")
    _silence(db, "judgelab-cli")
    heart = _heart(db, "serve", recovered)
    assert heart.take_over() == [] and recovered == []
    with db.session() as s:
        assert s.get(Worker, "judgelab-cli").taken_over_by is None  # type: ignore[union-attr]


def test_a_job_for_another_provider_endpoint_keeps_the_hand_over_back(api: Api, db: Database, monkeypatch: object) -> None:
    recovered: list[str] = []
    beat(db, "elsewhere", "t", first=True)
    _job(db, api.project_id, "running", "elsewhere", endpoints={"openai": "http://another-endpoint/v1"})
    _silence(db, "elsewhere")
    assert _heart(db, "here", recovered).take_over() == [] and recovered == []
