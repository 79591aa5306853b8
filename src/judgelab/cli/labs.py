"""`judgelab misaligned`: the metrics that disagree with people, worst first, with a diagnosis."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from judgelab.cli.common import console, find_project, friendly_errors, session_scope
from judgelab.labs.misalignment import misalignment


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
) -> None:
    """Metrics worst first: disagreement with a 95 % interval, error kinds, kappa, and what to do."""
    with session_scope() as session:
        proj = find_project(session, project)
        reports = [r.as_dict() for r in misalignment(session, proj.id)]
    if as_json:
        print(json.dumps(reports, default=str))
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
