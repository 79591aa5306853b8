"""`judgelab worker`: an extra process that runs evaluation jobs from the shared database."""

from __future__ import annotations

import signal
import socket
import threading
from typing import Annotated

import typer

from judgelab.cli.common import console
from judgelab.config import get_settings
from judgelab.db import open_database


def worker(
    executor_id: Annotated[str | None, typer.Option(
        help="A stable id for this worker: restarted with the same id, it resumes the jobs it held "
             "(default: worker-HOSTNAME; give each worker on a host its own)")] = None,
) -> None:
    """Run jobs (evaluations) queued by the server, the CLI or agents, beside `judgelab serve`."""
    from judgelab.jobs.runtime import Runtime

    settings = get_settings()
    db = open_database(settings)
    runtime = Runtime(db, settings, executor_id=executor_id or f"worker-{socket.gethostname()}").start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    console.print(f"judgelab worker {runtime.executor_id} running jobs (database: {db.dialect}); Ctrl-C to stop")
    stop.wait()
    console.print("stopping: unfinished jobs resume when a worker with this id starts again, or on another worker "
                  f"once this one has been silent for {settings.worker_timeout_s:.0f} s")
    runtime.stop()
    db.dispose()


def workers() -> None:
    """The job workers this database has heard from: alive or not, and who took over from dead ones."""
    from rich.table import Table

    from judgelab.jobs.heartbeat import workers as heard

    settings = get_settings()
    db = open_database(settings)
    try:
        rows = heard(db, settings.worker_timeout_s)
    finally:
        db.dispose()
    table = Table(title=f"Workers (dead after {settings.worker_timeout_s:.0f} s without a heartbeat)")
    for col in ("executor id", "host", "pid", "last beat (UTC)", "alive", "taken over by", "workflows moved"):
        table.add_column(col)
    for w in rows:
        table.add_row(w["executor_id"], w["host"], str(w["pid"]), w["beat_at"].strftime("%Y-%m-%d %H:%M:%S"),
                      "yes" if w["alive"] else "no", w["taken_over_by"] or "",
                      "" if w["recovered_workflows"] is None else str(w["recovered_workflows"]))
    console.print(table if rows else "no worker has run on this database yet")
