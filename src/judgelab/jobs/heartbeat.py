"""Workers that take over from dead ones.

DBOS resumes a process's pending workflows only when a process with the same executor id starts
again. A worker that never comes back (a lost machine, a scaled-down pod) would leave its job
chunks and labs runs pending for ever. So every runtime beats: it writes its executor id and the
time into `workers` every `worker_timeout_s / 4` seconds. When a worker's beat is older than
`worker_timeout_s`, exactly one survivor wins an atomic update of that row (the row's beat must
still be stale and nobody must have taken it over), and only the winner asks DBOS to recover the
dead executor's pending workflows (`DBOS._recover_pending_workflows`, the library call behind its
admin API's workflow recovery). DBOS re-enqueues them, so any worker may run them, each exactly
once; job items keep a resumed evaluation from storing or paying anything twice. The row keeps
who took over, when, and how many workflows and claimed-but-unstarted jobs moved.

A process that starts again under a taken-over id beats afresh and clears the hand-over; its own
startup recovery then finds nothing of the old run left pending.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from judgelab.db import Database
from judgelab.db.models import Job, LabsRun, Worker
from judgelab.db.types import utcnow
from judgelab.jobs.service import runnable_here
from judgelab.judges.registry import endpoints

log = logging.getLogger("judgelab.jobs")


def beat(db: Database, executor_id: str, token: str, *, first: bool = False) -> None:
    """Say this process is alive. The first beat of a start also clears an old hand-over."""
    now = utcnow()
    with db.write_session() as session:
        row = session.get(Worker, executor_id)
        if row is None:
            session.add(Worker(executor_id=executor_id, host=socket.gethostname()[:200], pid=os.getpid(), token=token,
                               started_at=now, beat_at=now))
            try:
                session.flush()
            except IntegrityError:  # another process registered the id at the same moment
                session.rollback()
            return
        if row.token != token and not first:
            log.warning("another process beats as executor %r (pid %s on %s): give every worker its own "
                        "JUDGELAB_EXECUTOR_ID", executor_id, row.pid, row.host)
        if first:
            row.host, row.pid, row.started_at = socket.gethostname()[:200], os.getpid(), now
            row.taken_over_by = row.taken_over_at = row.recovered_workflows = row.requeued_jobs = None
        row.token, row.beat_at = token, now


def silent(db: Database, executor_id: str, timeout_s: float) -> list[str]:
    """Executors whose last beat is older than the timeout and that nobody has taken over."""
    cutoff = utcnow() - timedelta(seconds=timeout_s)
    with db.session() as session:
        return list(session.scalars(select(Worker.executor_id).where(
            Worker.beat_at < cutoff, Worker.taken_over_by.is_(None), Worker.executor_id != executor_id)).all())


def claim(db: Database, dead: str, survivor: str, timeout_s: float) -> bool:
    """Atomically become the one survivor that takes over `dead`."""
    cutoff = utcnow() - timedelta(seconds=timeout_s)
    with db.write_session() as session:
        won = session.execute(update(Worker).where(
            Worker.executor_id == dead, Worker.beat_at < cutoff, Worker.taken_over_by.is_(None),
        ).values(taken_over_by=survivor, taken_over_at=utcnow()))
        return bool(won.rowcount == 1)  # type: ignore[attr-defined]


def movable(db: Database, dead: str, survivor: str) -> bool:
    """Whether the survivor may carry on the dead worker's jobs: none is reserved for another
    runner (`judgelab eval` runs its own) or was submitted for a provider endpoint the survivor is
    not configured for (another bill). DBOS recovers an executor's workflows all together, so one
    such job keeps the whole hand-over for a compatible worker, or for the dead one's restart."""
    here = endpoints()
    with db.session() as session:
        rows = session.scalars(select(Job.params).where(Job.executor_id == dead,
                                                         Job.status.in_(("starting", "running")))).all()
    return all(runnable_here(params or {}, survivor, here) for params in rows)


def requeue_claimed(db: Database, dead: str, survivor: str) -> int:
    """Jobs and labs runs the dead worker claimed but may never have handed to DBOS go back to the
    queue; those it started now say who carries them on."""
    with db.write_session() as session:
        moved = 0
        for table in (Job, LabsRun):
            moved += session.execute(update(table).where(table.status == "starting", table.executor_id == dead)
                                     .values(status="queued", executor_id=None)).rowcount  # type: ignore[attr-defined]
            session.execute(update(table).where(table.status == "running", table.executor_id == dead)
                            .values(executor_id=survivor))
        return moved


def record(db: Database, dead: str, recovered: int, requeued: int) -> None:
    with db.write_session() as session:
        session.execute(update(Worker).where(Worker.executor_id == dead)
                        .values(recovered_workflows=recovered, requeued_jobs=requeued))


def workers(db: Database, timeout_s: float) -> list[dict[str, Any]]:
    """Every worker the database has heard of, newest beat first, with whether it is alive."""
    cutoff = utcnow() - timedelta(seconds=timeout_s)
    with db.session() as session:
        rows = session.scalars(select(Worker).order_by(Worker.beat_at.desc())).all()
        return [{"executor_id": w.executor_id, "host": w.host, "pid": w.pid, "started_at": w.started_at,
                 "beat_at": w.beat_at, "alive": w.beat_at >= cutoff, "taken_over_by": w.taken_over_by,
                 "taken_over_at": w.taken_over_at, "recovered_workflows": w.recovered_workflows,
                 "requeued_jobs": w.requeued_jobs} for w in rows]


class Heartbeat:
    """The beating thread of one runtime. `recover(executor_id)` is DBOS's recovery for another
    executor, returning how many workflows it re-enqueued; `wake` tells the dispatcher that
    requeued jobs are waiting."""

    def __init__(self, db: Database, executor_id: str, timeout_s: float, recover: Callable[[str], int],
                 wake: Callable[[], None]) -> None:
        self.db, self.executor_id, self.timeout_s = db, executor_id, timeout_s
        self.recover, self.wake = recover, wake
        self.interval = max(0.2, timeout_s / 4)
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Heartbeat:
        beat(self.db, self.executor_id, self.token, first=True)
        self._thread = threading.Thread(target=self._loop, name="judgelab-heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                beat(self.db, self.executor_id, self.token)
                self.take_over()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the heartbeat
                log.exception("heartbeat failed; retrying")

    def take_over(self) -> list[str]:
        """Recover every silent worker this process wins; the ids taken over."""
        taken = []
        for dead in silent(self.db, self.executor_id, self.timeout_s):
            if self._stop.is_set() or not movable(self.db, dead, self.executor_id):
                continue
            if not claim(self.db, dead, self.executor_id, self.timeout_s):
                continue
            requeued = requeue_claimed(self.db, dead, self.executor_id)
            recovered = self.recover(dead)
            record(self.db, dead, recovered, requeued)
            # Loud only when something moved: a worker that stopped cleanly leaves nothing behind.
            log.log(logging.WARNING if recovered or requeued else logging.INFO,
                    "worker %r was silent for over %.0f s: %s took over %d pending workflows and requeued %d "
                    "claimed jobs", dead, self.timeout_s, self.executor_id, recovered, requeued)
            taken.append(dead)
            if requeued:
                self.wake()
        return taken
