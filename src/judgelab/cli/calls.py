"""`judgelab import`, `judgelab export` and `judgelab calls list`."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from judgelab.calls.files import FORMATS, read_calls
from judgelab.calls.ingest import prepare_call, upsert_calls
from judgelab.calls.queries import CallFilters, count_calls, iter_export, list_calls
from judgelab.cli.common import console, err_console, find_project, friendly_errors, session_scope
from judgelab.config import get_settings
from judgelab.errors import InvalidInput
from judgelab.projects.service import get_or_create_project, resolve_agent

app = typer.Typer(help="Call logs.", no_args_is_help=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=False,
    )


@friendly_errors
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The file to import")],
    project: Annotated[str, typer.Option(help="Project name (created if needed)")],
    agent: Annotated[str, typer.Option(help="Agent name for calls that name none (created if needed)")],
    format: Annotated[str, typer.Option("--format", help=f"One of {', '.join(FORMATS)}")] = "auto",
) -> None:
    """Import calls: native JSONL, OpenAI message lists (e.g. tau-bench), or Agent:/User: text. All or nothing."""
    settings = get_settings()
    fmt, payloads, errors = read_calls(file, format)
    with _progress() as progress:
        task = progress.add_task("checking", total=len(payloads))
        prepared = []
        for i, (number, payload) in enumerate(payloads, start=1):
            prepared.append(prepare_call(payload, settings, line=number))
            if i % 500 == 0 or i == len(payloads):
                progress.update(task, completed=i)
        errors += [e for p in prepared for e in p.errors]
        if errors:
            raise InvalidInput(errors=sorted(errors, key=lambda e: e.line or 0))
        if not prepared:
            raise InvalidInput("file", f"{file} holds no calls")
        with session_scope() as session:
            proj, _ = get_or_create_project(session, project)
            resolve_agent(session, proj.id, agent, create=True)
            write = progress.add_task("importing", total=len(prepared))
            outcome = upsert_calls(
                session, proj.id, prepared, default_agent=agent, create_missing_agents=True,
                on_progress=lambda n: progress.update(write, completed=n),
            )
            progress.update(write, completed=len(prepared))
    console.print(
        f"Imported {len(prepared)} calls from {file.name} ({fmt}) into project {project!r}: "
        f"{outcome.created} new, {outcome.updated} updated.",
        highlight=False,
    )


@friendly_errors
def export(
    project: Annotated[str | None, typer.Option(help="Project name (optional when there is only one)")] = None,
    agent: Annotated[str | None, typer.Option(help="Only this agent's calls (name or id)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write; stdout when left out")] = None,
) -> None:
    """Export calls as JSONL that `judgelab import` reads back unchanged."""
    with session_scope() as session:
        proj = find_project(session, project)
        f = CallFilters(agent_id=resolve_agent(session, proj.id, agent).id if agent else None)
        total = count_calls(session, proj.id, f)
        out = output.open("w", encoding="utf-8") if output else sys.stdout
        try:
            with _progress() as progress:
                task = progress.add_task("exporting", total=total)
                for n, record in enumerate(iter_export(session, proj.id, f), start=1):
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                    if n % 200 == 0 or n == total:
                        progress.update(task, completed=n)
        finally:
            if output:
                out.close()
    if output:
        console.print(f"Wrote {total} calls to {output}")


@app.command("list")
@friendly_errors
def list_(
    project: Annotated[str | None, typer.Option(help="Project name (optional when there is only one)")] = None,
    agent: Annotated[str | None, typer.Option(help="Agent name or id")] = None,
    search: Annotated[str | None, typer.Option(help="Words that must all appear in the transcript")] = None,
    since: Annotated[datetime | None, typer.Option(help="Calls at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, typer.Option(help="Calls at or before (ISO 8601)")] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=200)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """List calls, newest first, with the same filters as the API."""
    with session_scope() as session:
        proj = find_project(session, project)
        f = CallFilters(
            agent_id=resolve_agent(session, proj.id, agent).id if agent else None,
            search=search, timestamp_gte=since, timestamp_lte=until,
        )
        total = count_calls(session, proj.id, f)
        rows = list_calls(session, proj.id, f, offset=(page - 1) * page_size, limit=page_size)
        if as_json:
            print(json.dumps({"count": total, "results": [{"id": c.id, "call_id": c.call_id, "agent": c.agent.name,
                              "timestamp": c.timestamp.isoformat(), "turns": len(c.transcript_json)} for c in rows]}))
            return
        table = Table(title=f"{total} calls in {proj.name!r}" + (f" matching {search!r}" if search else ""))
        for col in ("id", "call id", "agent", "time (UTC)", "turns", "duration", "first words"):
            table.add_column(col, overflow="fold", no_wrap=col != "first words")
        for c in rows:
            first = next((t.get("content") or "" for t in c.transcript_json if t.get("role") in ("user", "agent")), "")
            table.add_row(
                str(c.id), c.call_id, c.agent.name, c.timestamp.strftime("%Y-%m-%d %H:%M"), str(len(c.transcript_json)),
                f"{c.duration:.0f}s" if c.duration is not None else "-", first[:40],
            )
        console.print(table)
        if total > page * page_size:
            console.print(f"page {page} of {-(-total // page_size)}; next: --page {page + 1}")
