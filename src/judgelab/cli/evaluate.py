"""`judgelab eval`: the estimate first, a confirmation above 100 calls, then a job with a progress bar."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from judgelab.calls.queries import CallFilters
from judgelab.cli.common import console, err_console, find_project, friendly_errors
from judgelab.config import get_settings
from judgelab.db import open_database
from judgelab.db.models import Job
from judgelab.errors import InvalidInput
from judgelab.evaluation.estimate import CONFIRM_ABOVE, estimate
from judgelab.jobs.service import FINAL, job_dict
from judgelab.jobs.submit import resolve_calls, submit_evaluation
from judgelab.projects.service import resolve_agent


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


# A fixed id per host: if `judgelab eval` is killed, the next one here resumes its work.
CLI_EXECUTOR = f"cli-{socket.gethostname()}"


def _money(value: float | None) -> str:
    return "unknown (no price for this model)" if value is None else f"${value:,.4f}"


def print_estimate(est: dict[str, Any]) -> None:
    """The estimate as the API answers it (`Estimate.as_dict()`), for local and remote runs alike."""
    table = Table(title="Estimate", show_header=True, header_style="bold")
    for col in ("model", "metrics", "LLM requests", "input tokens", "output tokens", "cost"):
        table.add_column(col)
    for m in est["by_model"]:
        table.add_row(m["model"] or "(none configured)", ", ".join(map(str, m["metrics"])), f"{m['requests']:,}",
                      f"{m['input_tokens']:,}", f"{m['output_tokens']:,}", _money(m["cost_usd"]))
    console.print(table)
    console.print(f"{est['calls']:,} calls x {est['metrics']} metrics = {est['evaluations']:,} evaluations; "
                  f"{est.get('cached_evaluations', 0):,} already stored (free); {est['llm_requests']:,} LLM requests; "
                  f"total {_money(est['cost_usd'])} ({est['tokenizer']})")
    if est.get("batch_cost_usd") is not None:
        console.print(f"with --batch (the providers' batch APIs, answers within 24 hours): "
                      f"{_money(est['batch_cost_usd'])}")
    for note in est["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}")


def _confirm(calls: int, cost: float | None, yes: bool) -> None:
    if calls > CONFIRM_ABOVE and not yes:
        if not sys.stdin.isatty():
            raise InvalidInput("yes", f"{calls} calls is more than {CONFIRM_ABOVE}: read the estimate, then pass --yes to confirm")
        price = "an unknown cost (no price for this model)" if cost is None else f"about {_money(cost)}"
        if not typer.confirm(f"Evaluate {calls:,} calls for {price}?"):
            raise typer.Exit(1)


@friendly_errors
def evaluate(
    metric: Annotated[list[int], typer.Option("--metric", "-m", help="Metric id (repeat for several)")],
    project: Annotated[str | None, typer.Option(help="Project name (optional when there is only one)")] = None,
    agent: Annotated[str | None, typer.Option(help="Only this agent's calls (name or id)")] = None,
    since: Annotated[datetime | None, typer.Option(help="Calls at or after (ISO 8601, UTC unless it says)")] = None,
    until: Annotated[datetime | None, typer.Option(help="Calls at or before (ISO 8601)")] = None,
    call: Annotated[list[int] | None, typer.Option("--call", help="A call id (repeat); instead of the filters")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help=f"Do not ask before evaluating more than {CONFIRM_ABOVE} calls")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the estimate and stop")] = False,
    force: Annotated[bool, typer.Option(help="Evaluate again even where a stored result matches (no cache)")] = False,
    batch: Annotated[bool, typer.Option("--batch", help="Through the providers' batch APIs: half price, answered "
                                        "within 24 hours")] = False,
    wait: Annotated[bool, typer.Option(help="Run the job here and follow it; --no-wait only queues it for a server or worker")] = True,
    url: Annotated[str | None, typer.Option(help="Evaluate on this judgelab server instead (default: JUDGELAB_URL; "
                                            "key from JUDGELAB_API_KEY); its workers run the job")] = None,
) -> None:
    """Evaluate metrics on calls: estimate, confirm, run as a durable job, show progress."""
    if call and (agent or since or until):
        raise InvalidInput("call", "give --call or the filters (--agent, --since, --until), not both")
    url = url or os.environ.get("JUDGELAB_URL")
    if url:
        _remote(url, metric, agent, _utc(since), _utc(until), call, yes, dry_run, force, wait, batch)
        return
    settings = get_settings()
    db = open_database(settings)
    try:
        with db.session() as session:
            proj = find_project(session, project, metric)
            filters = None if call else CallFilters(
                agent_id=resolve_agent(session, proj.id, agent).id if agent else None,
                timestamp_gte=_utc(since), timestamp_lte=_utc(until))
            calls = resolve_calls(session, proj.id, call, filters)
            est = estimate(session, proj.id, metric, settings.model, call_ids=call or None, filters=filters, force=force)
            print_estimate(est.as_dict())
            if dry_run:
                return
            if not calls:
                raise InvalidInput("call", "no calls match: nothing to evaluate")
            _confirm(len(calls), est.batch_cost_usd if batch and est.batch_cost_usd is not None else est.cost_usd, yes)
            # Waiting, this command runs its own job, with this shell's endpoint and key: a server on
            # the same database (perhaps configured for another endpoint) does not claim it.
            job = submit_evaluation(session, proj.id, metric, call_ids=call or None, filters=filters, confirm=True,
                                    force=force, default_model=settings.model, created_by="cli",
                                    runner=CLI_EXECUTOR if wait else None, batch=batch).job
            job_id = job.id
        console.print(f"job [bold]{job_id}[/bold] queued ({job.total:,} evaluations)")
        if not wait:
            console.print("a `judgelab serve` or `judgelab worker` on this database will run it; "
                          f"follow it at /api/v1/jobs/{job_id}/")
            return
        _run_and_follow(db, settings, job_id, priced=est.cost_usd is not None)
    finally:
        db.dispose()


def _run_and_follow(db: Any, settings: Any, job_id: str, *, priced: bool = True) -> None:
    from judgelab.jobs.runtime import Runtime

    def read() -> dict[str, Any]:
        with db.session() as session:
            job = session.get(Job, job_id)
            assert job is not None
            return job_dict(session, job)

    # A fixed id per host: if this command is killed, the next `judgelab eval` here resumes its work.
    runtime = Runtime(db, settings, executor_id=CLI_EXECUTOR).start()
    try:
        _follow(read, job_id, priced)
    finally:
        runtime.stop()


def _remote(url: str, metric: list[int], agent: str | None, since: datetime | None, until: datetime | None,
            call: list[int] | None, yes: bool, dry_run: bool, force: bool, wait: bool, batch: bool = False) -> None:
    from judgelab.client import Client

    with Client(url) as client:
        filters: dict[str, Any] = {}
        if agent:
            found = [a for a in client.list_agents()["results"] if str(a["id"]) == agent or a["name"] == agent]
            if not found:
                raise InvalidInput("agent", f"no agent named or numbered {agent!r} on {url}")
            filters["agent"] = found[0]["id"]
        filters.update({k: v for k, v in {"timestamp__gte": since, "timestamp__lte": until}.items() if v is not None})
        est = client.estimate_evaluation(metric, call or None, **filters)
        print_estimate(est)
        if dry_run:
            return
        if not est["calls"]:
            raise InvalidInput("call", "no calls match: nothing to evaluate")
        _confirm(est["calls"], est["batch_cost_usd"] if batch and est.get("batch_cost_usd") is not None
                 else est["cost_usd"], yes)
        job = client.evaluate(metric, call or None, confirm=True, force=force, batch=batch, **filters)
        console.print(f"job [bold]{job['job_id']}[/bold] queued on {url} ({job['progress']['total']:,} evaluations)")
        if wait:
            _follow(lambda: client.get_job(job["job_id"]), job["job_id"], est["cost_usd"] is not None)


def _follow(read: Callable[[], dict[str, Any]], job_id: str, priced: bool = True) -> None:
    def spent(info: dict[str, Any]) -> str:
        # No price known: the cost is unknown, not $0 (which would read as free).
        cost = info["cost_usd"]
        return "cost unknown" if cost is None or (not priced and info["llm_calls"]) else f"${cost:.4f}"

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[info]}"), console=console) as bar:
        task = bar.add_task("evaluating", total=None, info="")
        while True:
            info = read()
            p = info["progress"]
            bar.update(task, total=p["total"], completed=p["done"], info=(
                f"errors {p['errors']}  cache hits {p['cache_hits']}  LLM calls {info['llm_calls']}  {spent(info)}"))
            if info["status"] in FINAL:
                break
            time.sleep(0.25)
    style = "green" if info["status"] == "completed" else "red"
    console.print(f"[{style}]{info['status']}[/{style}]: {p['done']:,}/{p['total']:,} evaluations, {p['errors']} errors, "
                  f"{p['cache_hits']} from the cache, {info['llm_calls']} LLM calls, "
                  f"{info['input_tokens']:,} + {info['output_tokens']:,} tokens, {spent(info)}")
    if info["message"]:
        console.print(info["message"])
    if info["status"] != "completed":
        err_console.print(f"job {job_id} ended {info['status']}")
        raise typer.Exit(1)
