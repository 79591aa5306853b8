"""`judgelab demo`: load the shipped sample calls and a starter metric, so the README's first session
works on a fresh clone."""

from __future__ import annotations

from typing import Annotated

import typer

from judgelab.cli.common import console, friendly_errors, session_scope
from judgelab.config import get_settings


@friendly_errors
def demo(
    project: Annotated[str, typer.Option(help="Project to load into (created if needed)")] = "default",
) -> None:
    """Import 200 real airline-agent conversations (tau-bench, MIT) and add a starter metric. Safe to rerun."""
    from judgelab.demo import AIRLINE, load

    with session_scope(bulk=True) as session:
        out = load(session, get_settings(), project)
    console.print(
        f"Loaded {out['calls']} airline conversations into project {out['project']!r} ({out['created']} new, "
        f"{out['updated']} updated) from {AIRLINE.name}; starter metric {out['metric_id']} "
        f"({'created' if out['metric_created'] else 'already there'}): \"confirms before changing a booking\".",
        highlight=False,
    )
    console.print(
        f"Next: judgelab eval --metric {out['metric_id']} --project {out['project']} (with JUDGELAB_MODEL set), "
        f"then judgelab review --metric {out['metric_id']}.", highlight=False)
