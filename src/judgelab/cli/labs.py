"""`judgelab misaligned`: the metrics that disagree with people, worst first, with a diagnosis."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from judgelab.cli.common import console, find_project, friendly_errors, session_scope
from judgelab.client import Client
from judgelab.config import Settings, get_settings
from judgelab.db import Database, open_database
from judgelab.db.models import LabsRun
from judgelab.labs.misalignment import misalignment

URL_HELP = "Use this judgelab server instead of the local database (default: JUDGELAB_URL; key from JUDGELAB_API_KEY)"


def _interval(est: dict[str, Any] | None, percent: bool = True) -> str:
    if not est or est.get("value") is None:
        return "-"
    scale, unit = (100, "%") if percent else (1, "")
    low = "?" if est["low"] is None else f"{scale * est['low']:.{0 if percent else 2}f}"
    high = "?" if est["high"] is None else f"{scale * est['high']:.{0 if percent else 2}f}"
    return f"{scale * est['value']:.{0 if percent else 2}f}{unit} [{low}, {high}] n={est['n']}"


@friendly_errors
def misaligned(
    project: Annotated[str | None, typer.Option(help="Project name (optional when there is only one)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
    url: Annotated[str | None, typer.Option(help=URL_HELP)] = None,
) -> None:
    """Metrics worst first: disagreement with a 95 % interval, error kinds, kappa, and what to do."""
    url = url or os.environ.get("JUDGELAB_URL")
    if url:
        with Client(url) as client:
            reports = client.misalignment()["results"]
    else:
        with session_scope() as session:
            proj = find_project(session, project)
            reports = [r.as_dict() for r in misalignment(session, proj.id)]
    if as_json:
        print(json.dumps(reports, default=str))
        return
    if console.width < 120:
        # A narrow terminal gets one block per metric: nine columns cannot fit 80 without cutting.
        for r in reports:
            agreement = r["agreement"]
            kappa = "-" if agreement is None else _interval(agreement["kappa"], percent=False) + (
                f" ({100 * agreement['base_rate']['value']:.0f}% pass)" if agreement.get("base_rate") else "")
            console.print(f"[bold]{r['metric_id']} {r['name']}[/bold] (v{r['version']}): {r['feedback']} feedback items; "
                          f"disagreement {_interval(r['disagreement'])}; {r['false_fails']} false fails, "
                          f"{r['false_passes']} false passes, {r['unexpected_na']} unexpected N/A; kappa {kappa}; "
                          f"diagnosis: {r['diagnosis']['kind'].replace('_', ' ')}", highlight=False, soft_wrap=False)
        for r in reports:
            d = r["diagnosis"]
            if d["kind"] == "systemic":
                console.print(f"[bold]{r['name']}[/bold]: {d['summary']}. {d['suggested_edit']}", soft_wrap=False)
        return
    table = Table(show_header=True, header_style="bold")
    for col in ("metric", "v", "feedback", "disagreement [95% CI]", "false fails", "false passes", "unexpected N/A",
                "kappa [95% CI] (base rate)", "diagnosis"):
        table.add_column(col)
    for r in reports:
        agreement = r["agreement"]
        kappa = "-" if agreement is None else (
            f"{_interval(agreement['kappa'], percent=False)}"
            + (f" ({100 * agreement['base_rate']['value']:.0f}% pass)" if agreement.get("base_rate") else ""))
        table.add_row(f"{r['metric_id']} {r['name']}", str(r["version"]), str(r["feedback"]),
                      _interval(r["disagreement"]), str(r["false_fails"]), str(r["false_passes"]),
                      str(r["unexpected_na"]), kappa, r["diagnosis"]["kind"].replace("_", " "))
    console.print(table)
    for r in reports:
        d = r["diagnosis"]
        if d["kind"] == "systemic":
            console.print(f"[bold]{r['name']}[/bold]: {d['summary']}. {d['suggested_edit']}")


@friendly_errors
def validate(
    metric: Annotated[int, typer.Option("--metric", "-m", help="Metric id")],
    description_file: Annotated[typer.FileText | None, typer.Option(
        help="Validate this proposal before applying it (default: the current version)")] = None,
    sample: Annotated[int, typer.Option(min=0, max=500, help="Recent production calls outside the labelled set")] = 20,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Confirm when more than 100 calls would be judged")] = False,
    project: Annotated[str | None, typer.Option(help="Project name (optional when there is only one)")] = None,
    url: Annotated[str | None, typer.Option(help=URL_HELP)] = None,
) -> None:
    """Rerun a metric (or a proposal) on its labelled calls and recent calls; print what flipped."""
    from judgelab.labs.validation import start_validation

    description = description_file.read() if description_file else None

    def remote(client: Client) -> Callable[[], dict[str, Any]]:
        started = client.validate_metric(metric, description=description, sample=sample, confirm=yes, max_judge_calls=5000)
        return lambda: client.get_validation(started["validation_id"])

    out = _start_and_follow(project, "validating...", lambda session, project_id, settings: start_validation(
        session, project_id, metric, description=description, sample=sample, confirm=yes, max_judge_calls=5000,
        default_model=settings.model), remote, url, metric)
    s = out["summary"]
    console.print(f"{out['checked']} calls checked ({out['validated']}): {s['fixed']} fixed, {s['regressed']} regressed, "
                  f"{s['changed']} changed (unlabelled), {s['error']} errors, {out['unchanged']} unchanged")
    table = Table(show_header=True, header_style="bold")
    for col in ("#", "kind", "call", "before", "after", "label"):
        table.add_column(col)
    for f in out["flips"]:
        table.add_row(str(f["index"]), f["kind"], f"{f['call_log_id']} {f['call_id']}", json.dumps(f["before"]),
                      json.dumps(f["after"]), "-" if f["label"] is None and f["kind"] == "changed" else json.dumps(f["label"]))
    console.print(table)
    console.print(f"mark a changed flip: POST /api/v1/validations/{out['progress_id']}/flips/N/mark/ {{\"right\": true|false}}")


def _start_and_follow(project: str | None, what: str, start: Callable[[Session, int, Settings], LabsRun],
                      remote: Callable[[Client], Callable[[], dict[str, Any]]], url: str | None,
                      metric: int | None = None) -> dict[str, Any]:
    """Start a labs run and wait for its end: on a server (`url`, whose workers run it) through the
    client, or queued with `start` and run in this process. A failed run is printed and exits 1."""
    url = url or os.environ.get("JUDGELAB_URL")
    if url:
        with Client(url) as client:
            read = remote(client)
            with console.status(what):
                while (out := read())["status"] not in ("completed", "failed"):
                    time.sleep(0.5)
    else:
        settings = get_settings()
        db = open_database(settings)
        try:
            with db.session() as session:
                run_id = start(session, find_project(session, project, metric).id, settings).id
            out = _run_here(db, settings, run_id, what)
        finally:
            db.dispose()
    if out["status"] != "completed":
        console.print(f"[red]failed[/red]: {out['message']}")
        raise typer.Exit(1)
    return out


def _run_here(db: Database, settings: Settings, run_id: str, what: str) -> dict[str, Any]:
    """Run a queued labs run in this process and wait for its end."""
    import socket

    from judgelab.jobs.runtime import Runtime
    from judgelab.labs.service import run_dict

    runtime = Runtime(db, settings, executor_id=f"cli-{socket.gethostname()}").start()
    try:
        with console.status(what):
            while True:
                with db.session() as session:
                    run = session.get(LabsRun, run_id)
                    assert run is not None
                    out = run_dict(run)
                if out["status"] in ("completed", "failed"):
                    return out
                time.sleep(0.25)
    finally:
        runtime.stop()


@friendly_errors
def to_code(
    metric: Annotated[int, typer.Option("--metric", "-m", help="Metric id (an llm_judge metric with labelled calls)")],
    output: Annotated[str | None, typer.Option("--output", "-o", help="Write the code to this file")] = None,
    project: Annotated[str | None, typer.Option(help="Project name (optional when there is only one)")] = None,
    url: Annotated[str | None, typer.Option(help=URL_HELP)] = None,
) -> None:
    """Convert a judge metric to Python that sends only the relevant turns; compare both on labelled calls."""
    from judgelab.labs.to_code import start_conversion

    def remote(client: Client) -> Callable[[], dict[str, Any]]:
        started = client.to_custom_code(metric, max_judge_calls=5000)
        return lambda: client.get_conversion(started["conversion_id"])

    out = _start_and_follow(project, "measuring the judge and the code on the labelled calls...",
                            lambda session, project_id, _settings: start_conversion(session, project_id, metric, 5000),
                            remote, url, metric)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(out["custom_code"])
    else:
        console.print(out["custom_code"], markup=False, highlight=False)
    j, c, t = out["agreement"]["judge"], out["agreement"]["code"], out["input_tokens_per_call"]
    console.print(f"judge: {j['num_correct']}/{j['num_total']} right; code: {c['num_correct']}/{c['num_total']} right; "
                  f"input tokens per call {t['judge']} -> {t['code']} (saved {t['saved']})")
    console.print("create it: POST /test_framework/v1/metrics/ with this body: " + json.dumps(out["metric_body"])[:200] + "...")
