"""`judgelab import`, `judgelab export` and `judgelab calls list`."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from judgelab.calls.files import FORMATS, export_lines, read_calls
from judgelab.calls.queries import (
    CallFilters,
    count_calls,
    iter_export,
    list_call_dicts,
)
from judgelab.calls.writer import import_payloads
from judgelab.cli.common import (
    console,
    err_console,
    find_project,
    friendly_errors,
    session_scope,
)
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
    # Lines that did not parse travel with the rest, so one report names every bad line.
    payloads = sorted([*payloads, *((e.line or 0, e) for e in errors)], key=lambda item: item[0])
    if not payloads:
        raise InvalidInput("file", f"{file} holds no calls")
    with _progress() as progress, session_scope(bulk=len(payloads) >= 1000) as session:
        task = progress.add_task("importing", total=len(payloads))
        proj, _ = get_or_create_project(session, project)
        resolve_agent(session, proj.id, agent, create=True)
        outcome = import_payloads(
            session, proj.id, payloads, settings, default_agent=agent, create_missing_agents=True,
            on_progress=lambda n: progress.update(task, completed=n),
        )
    console.print(
        f"Imported {len(payloads)} calls from {file.name} ({fmt}) into project {project!r}: "
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
                for n, line in enumerate(export_lines(iter_export(session, proj.id, f)), start=1):
                    out.write(line)
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
        rows = list_call_dicts(session, proj.id, f, offset=(page - 1) * page_size, limit=page_size)
        if as_json:
            print(json.dumps({"count": total, "results": [{"id": c["id"], "call_id": c["call_id"], "agent": c["agent_name"],
                              "timestamp": c["timestamp"], "turns": len(c["transcript_json"])} for c in rows]}))
            return
        table = Table(title=f"{total} calls in {proj.name!r}" + (f" matching {search!r}" if search else ""))
        # On a narrow terminal (80 columns) the agent and duration give way, so that the first words
        # keep room to wrap as a sentence instead of one word per line; nothing is cut.
        narrow = console.width < 110
        cols = ("id", "call id", "time (UTC)", "turns", "first words") if narrow else (
            "id", "call id", "agent", "time (UTC)", "turns", "duration", "first words")
        for col in cols:
            table.add_column(col, overflow="fold", no_wrap=col in ("id", "time (UTC)", "turns"),
                             ratio=3 if col == "first words" else None, min_width=24 if col == "first words" else None)
        for c in rows:
            first = next((t.get("content") or "" for t in c["transcript_json"] if t.get("role") in ("user", "agent")), "")
            values = {"id": str(c["id"]), "call id": c["call_id"], "agent": c["agent_name"],
                      "time (UTC)": c["timestamp"][:16].replace("T", " "), "turns": str(len(c["transcript_json"])),
                      "duration": f"{c['duration']:.0f}s" if c["duration"] is not None else "-", "first words": first[:60]}
            table.add_row(*(values[col] for col in cols))
        console.print(table)
        if total > page * page_size:
            console.print(f"page {page} of {-(-total // page_size)}; next: --page {page + 1}")
