"""`judgelab metrics create | list | show | edit | versions | revert`."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table

from judgelab.cli.common import console, find_project, friendly_errors, session_scope
from judgelab.errors import InvalidInput, from_pydantic
from judgelab.metrics.schemas import MetricCreate, MetricPatch
from judgelab.metrics.service import (
    create_metric,
    get_metric,
    list_metrics,
    metric_to_dict,
    revert_metric,
    update_metric,
    version_to_dict,
)

app = typer.Typer(help="Metrics and their versions.", no_args_is_help=True)

ProjectOpt = Annotated[str | None, typer.Option(help="Project name (optional when there is only one)")]


def _text(value: str | None, file: Path | None, name: str) -> str | None:
    if value is not None and file is not None:
        raise InvalidInput(name, f"give --{name} or --{name}-file, not both")
    return file.read_text(encoding="utf-8") if file is not None else value


def _model(cls: type[Any], data: dict[str, Any]) -> Any:
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(errors=from_pydantic(exc.errors())) from None


def _show(m: dict[str, Any]) -> None:
    console.print(f"[bold]metric {m['id']}[/bold] {m['name']!r}  version {m['version']} of {m['num_versions']}", highlight=False)
    for key in ("type", "eval_type", "enum_values", "evaluation_trigger", "trigger_type", "model", "agent"):
        if m.get(key) is not None:
            console.print(f"  {key}: {m[key]}", highlight=False)
    for key in ("description", "custom_code", "evaluation_trigger_prompt", "evaluation_trigger_custom_code"):
        if m.get(key):
            console.print(f"  {key}:", highlight=False)
            console.print("    " + m[key].replace("\n", "\n    "), highlight=False, markup=False)


@app.command("create")
@friendly_errors
def create(
    name: Annotated[str, typer.Option(help="Metric name (unique in the project)")],
    project: ProjectOpt = None,
    description: Annotated[str | None, typer.Option(help="The judge prompt")] = None,
    description_file: Annotated[Path | None, typer.Option(exists=True, help="Read the judge prompt from a file")] = None,
    type: Annotated[str, typer.Option("--type", help="llm_judge or custom_code")] = "llm_judge",
    eval_type: Annotated[str, typer.Option(help="binary_qualitative, binary_workflow_adherence, enum, numeric, continuous_qualitative")] = "binary_qualitative",
    enum_value: Annotated[list[str] | None, typer.Option(help="An allowed value for enum metrics (repeat)")] = None,
    code_file: Annotated[Path | None, typer.Option(exists=True, help="Python source for custom_code metrics")] = None,
    trigger: Annotated[str, typer.Option(help="always, automatic or custom")] = "always",
    trigger_type: Annotated[str | None, typer.Option(help="llm_judge or custom_code (custom trigger)")] = None,
    trigger_prompt: Annotated[str | None, typer.Option(help="Trigger prompt (custom llm_judge trigger)")] = None,
    trigger_code_file: Annotated[Path | None, typer.Option(exists=True, help="Trigger code (custom code trigger)")] = None,
    model: Annotated[str | None, typer.Option(help="provider/model overriding JUDGELAB_MODEL")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create a metric (its version 1)."""
    body = _model(MetricCreate, {
        "name": name, "description": _text(description, description_file, "description") or "", "type": type,
        "eval_type": eval_type, "enum_values": enum_value or None,
        "custom_code": code_file.read_text(encoding="utf-8") if code_file else None,
        "evaluation_trigger": trigger, "trigger_type": trigger_type, "evaluation_trigger_prompt": trigger_prompt,
        "evaluation_trigger_custom_code": trigger_code_file.read_text(encoding="utf-8") if trigger_code_file else None,
        "model": model,
    })
    with session_scope() as session:
        proj = find_project(session, project)
        out = metric_to_dict(create_metric(session, proj.id, body))
    print(json.dumps(out, indent=2)) if as_json else _show(out)


@app.command("list")
@friendly_errors
def list_(project: ProjectOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List metrics with their current version."""
    with session_scope() as session:
        proj = find_project(session, project)
        count, rows = list_metrics(session, proj.id, limit=10_000)
        items = [metric_to_dict(m) for m in rows]
    if as_json:
        print(json.dumps({"count": count, "results": items}))
        return
    table = Table(title=f"{count} metrics in {proj.name!r}")
    for col in ("id", "name", "type", "eval type", "trigger", "version"):
        table.add_column(col)
    for m in items:
        table.add_row(str(m["id"]), m["name"], m["type"], m["eval_type"], m["evaluation_trigger"], str(m["version"]))
    console.print(table)


@app.command("show")
@friendly_errors
def show(metric_id: int, project: ProjectOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show a metric at its current version."""
    with session_scope() as session:
        proj = find_project(session, project, metric_id)
        out = metric_to_dict(get_metric(session, proj.id, metric_id))
    print(json.dumps(out, indent=2)) if as_json else _show(out)


@app.command("edit")
@friendly_errors
def edit(
    metric_id: int,
    project: ProjectOpt = None,
    name: Annotated[str | None, typer.Option()] = None,
    description: Annotated[str | None, typer.Option(help="New judge prompt")] = None,
    description_file: Annotated[Path | None, typer.Option(exists=True)] = None,
    eval_type: Annotated[str | None, typer.Option()] = None,
    enum_value: Annotated[list[str] | None, typer.Option(help="Replace the allowed values (repeat)")] = None,
    code_file: Annotated[Path | None, typer.Option(exists=True)] = None,
    trigger: Annotated[str | None, typer.Option()] = None,
    trigger_type: Annotated[str | None, typer.Option()] = None,
    trigger_prompt: Annotated[str | None, typer.Option()] = None,
    trigger_code_file: Annotated[Path | None, typer.Option(exists=True)] = None,
    model: Annotated[str | None, typer.Option()] = None,
    note: Annotated[str | None, typer.Option(help="Why: kept in the version history")] = None,
) -> None:
    """Edit a metric; a change to what it judges makes a new version."""
    data: dict[str, Any] = {
        "name": name, "description": _text(description, description_file, "description"), "eval_type": eval_type,
        "enum_values": enum_value or None, "custom_code": code_file.read_text(encoding="utf-8") if code_file else None,
        "evaluation_trigger": trigger, "trigger_type": trigger_type, "evaluation_trigger_prompt": trigger_prompt,
        "evaluation_trigger_custom_code": trigger_code_file.read_text(encoding="utf-8") if trigger_code_file else None,
        "model": model, "change_note": note,
    }
    body = _model(MetricPatch, {k: v for k, v in data.items() if v is not None})
    with session_scope() as session:
        proj = find_project(session, project, metric_id)
        before = metric_to_dict(get_metric(session, proj.id, metric_id))
        metric, changed = update_metric(session, proj.id, metric_id, body)
        after = metric_to_dict(metric)
    if not changed:
        console.print(f"metric {metric_id}: nothing judged changed; still version {after['version']}")
        return
    console.print(f"metric {metric_id}: version {before['version']} -> {after['version']}")
    diff = difflib.unified_diff(
        before["description"].splitlines(), after["description"].splitlines(),
        f"description v{before['version']}", f"description v{after['version']}", lineterm="",
    )
    for line in diff:
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else None
        console.print(line, style=style, markup=False, highlight=False)


@app.command("versions")
@friendly_errors
def versions(metric_id: int, project: ProjectOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The version history of a metric."""
    with session_scope() as session:
        proj = find_project(session, project, metric_id)
        metric = get_metric(session, proj.id, metric_id)
        rows = [version_to_dict(v) for v in metric.versions]
        current = metric.current_version
    if as_json:
        print(json.dumps({"current_version": current, "results": rows}))
        return
    table = Table(title=f"metric {metric_id}: {len(rows)} versions")
    for col in ("version", "created (UTC)", "note", "eval type", "trigger", "description"):
        table.add_column(col, overflow="fold")
    for v in rows:
        mark = " (current)" if v["version"] == current else ""
        table.add_row(f"{v['version']}{mark}", v["created_at"][:19], v["change_note"], v["eval_type"],
                      v["evaluation_trigger"], (v["description"] or "")[:80])
    console.print(table)


@app.command("revert")
@friendly_errors
def revert(
    metric_id: int,
    version: Annotated[int, typer.Option(help="The version whose content to restore (as a new version)")],
    project: ProjectOpt = None,
) -> None:
    """Restore an older version's content as a new version."""
    with session_scope() as session:
        proj = find_project(session, project, metric_id)
        metric = revert_metric(session, proj.id, metric_id, version)
        current = metric.current_version
    console.print(f"metric {metric_id}: version {current} now has the content of version {version}")
