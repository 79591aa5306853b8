"""Starting and stopping this process's job runtime: DBOS, its queues, and the dispatcher.

The dispatcher moves `queued` job rows (written by the API or the CLI, which need no DBOS) onto
the DBOS job queue. Claiming is an atomic row update, so with many workers each job is enqueued
by exactly one; the enqueue uses the job id as the workflow id, so repeating it is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSConfig, SetWorkflowID
from sqlalchemy import event

from judgelab.config import Settings
from judgelab.db import Database
from judgelab.jobs import state
from judgelab.jobs.heartbeat import Heartbeat
from judgelab.jobs.service import claim_queued, starting_for
from judgelab.jobs.workflows import EVAL_QUEUE, JOB_QUEUE, evaluation_job
from judgelab.judges.registry import Judges
from judgelab.labs import service as labs_service
from judgelab.labs.run import labs_run
from judgelab.labs.schedule import ensure_schedule
from judgelab.labs.to_code import to_code_run
from judgelab.labs.validation import validation_run

log = logging.getLogger("judgelab.jobs")
_LABS_WORKFLOWS = {"labs": labs_run, "validation": validation_run, "to_code": to_code_run}


def _sqlite_engine(url: str) -> sa.Engine:
    # DBOS's own SQLite engine keeps the rollback journal, which costs an fsync per step
    # checkpoint; WAL with synchronous=NORMAL stays durable across a killed process.
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000", "foreign_keys=ON"):
            dbapi_conn.execute(f"PRAGMA {pragma}")

    return engine


@contextmanager
def _uvloop() -> Iterator[None]:
    """DBOS runs every async step on an event loop of its own, made while this is in force: uvloop's
    (already installed with uvicorn), which spends less CPU per request than asyncio's. The policy
    is restored at once, so nothing else in the process changes loop."""
    try:
        import uvloop
    except ImportError:  # not on this platform: asyncio's loop it is
        yield
        return
    before = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        yield
    finally:
        asyncio.set_event_loop_policy(before)


class Runtime:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        executor_id: str | None = None,
        judges: Callable[[], Judges] | None = None,
        system_url: str | None = None,
        system_schema: str | None = None,
        dispatch_interval: float = 0.25,
    ) -> None:
        self.db = db
        self.settings = settings
        self.executor_id = executor_id or settings.executor_id
        self.make_judges = judges or (lambda: Judges(settings))
        self.system_url = system_url or settings.resolved_jobs_database_url
        self.system_schema = system_schema or settings.jobs_schema
        self.dispatch_interval = dispatch_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._engine: sa.Engine | None = None
        self._heartbeat: Heartbeat | None = None

    def start(self) -> Runtime:
        config: DBOSConfig = {
            "name": "judgelab",
            "executor_id": self.executor_id,
            "log_level": "WARNING",
            "dbos_system_schema": self.system_schema,
        }
        if self.system_url.startswith("sqlite"):
            self._engine = _sqlite_engine(self.system_url)
            config["system_database_engine"] = self._engine
        else:
            config["system_database_url"] = self.system_url.replace("postgresql+psycopg://", "postgresql://")
        state.install(state.State(self.db, self.settings, self.executor_id, self.make_judges))
        # DBOS's console handler holds the stderr of the moment it was imported; a CLI run under
        # a harness that swaps streams would log into a closed one.
        for handler in logging.getLogger("dbos").handlers:
            if type(handler) is logging.StreamHandler:
                handler.stream = sys.stderr  # not setStream: it flushes the old, maybe closed, stream
        with _uvloop():
            DBOS(config=config)
            DBOS.launch()
        # Short polling intervals: a job's first results (and each next chunk) wait for a poll.
        DBOS.register_queue(JOB_QUEUE, worker_concurrency=4, polling_interval_sec=0.05)
        DBOS.register_queue(EVAL_QUEUE, worker_concurrency=self.settings.worker_chunks, polling_interval_sec=0.05)
        ensure_schedule()
        with self.db.session() as session:
            pending = starting_for(session, self.executor_id)
            pending_runs = labs_service.starting_for(session, self.executor_id)
        for job_id in pending:
            self._enqueue(job_id)
        for run_id, kind in pending_runs:
            self._enqueue(run_id, _LABS_WORKFLOWS.get(kind, labs_run))
        self._heartbeat = Heartbeat(self.db, self.executor_id, self.settings.worker_timeout_s, _recover,
                                    self.wake).start()
        self._thread = threading.Thread(target=self._dispatch_loop, name="judgelab-dispatcher", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        """A job was just queued: look now rather than at the next tick."""
        self._wake.set()

    def _enqueue(self, job_id: str, workflow: Any = evaluation_job) -> None:
        queue = DBOS.retrieve_queue(JOB_QUEUE)
        assert queue is not None
        with SetWorkflowID(job_id):
            queue.enqueue(workflow, job_id)

    def _dispatch_loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self.db.session() as session:
                    claimed = claim_queued(session, self.executor_id)
                    runs = labs_service.claim_queued(session, self.executor_id)
                for job_id in claimed:
                    self._enqueue(job_id)
                for run_id, kind in runs:
                    self._enqueue(run_id, _LABS_WORKFLOWS.get(kind, labs_run))
            except Exception:  # noqa: BLE001 - a database hiccup must not end dispatching
                log.exception("dispatching queued jobs failed; retrying")
            self._wake.wait(self.dispatch_interval)
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._heartbeat is not None:
            self._heartbeat.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._close_judges()
        DBOS.destroy(workflow_completion_timeout_sec=0)
        state.install(None)
        if self._engine is not None:
            self._engine.dispose()

    def _close_judges(self) -> None:
        """Close the model clients on the loop they were opened on (DBOS's), before it stops."""
        current = state.installed()
        judges = current.opened_judges() if current is not None else None
        if judges is None:
            return
        try:
            from dbos import _dbos as dbos_module  # the loop is not public API; failing here only leaks sockets

            dbos_module._dbos_global_instance._background_event_loop.submit_coroutine(judges.aclose())  # type: ignore[union-attr]
        except Exception:
            log.debug("could not close the model clients", exc_info=True)


def _recover(executor_id: str) -> int:
    """DBOS's recovery of another executor's pending workflows (what its admin API's
    /dbos-workflow-recovery runs): they are re-enqueued, for whichever worker dequeues them first."""
    return len(DBOS._recover_pending_workflows([executor_id]))


def start_runtime(db: Database, settings: Settings, **kwargs: Any) -> Runtime:
    return Runtime(db, settings, **kwargs).start()
