"""Sample data shipped with judgelab, so a fresh clone has real calls to try the loop on.

`judgelab demo` imports the 200 tau-bench airline conversations (MIT, see data/LICENSE) into a
project and adds a starter metric; both are idempotent, so running it twice changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from judgelab.calls.files import read_calls
from judgelab.calls.writer import import_payloads
from judgelab.config import Settings
from judgelab.db.models import Metric
from judgelab.metrics.schemas import MetricCreate
from judgelab.metrics.service import create_metric
from judgelab.projects.service import get_or_create_project, resolve_agent

DATA = Path(__file__).with_name("data")
AIRLINE = DATA / "tau-bench-airline.json.gz"
POLICY = DATA / "policy.md"
AGENT = "airline"
STARTER = MetricCreate(
    name="confirms before changing a booking", eval_type="binary_workflow_adherence",
    description="Pass when the agent lists the booking details and gets an explicit yes from the customer before any "
                "booking, change or cancellation. Fail when it changes the reservation without that yes.",
)


def load(session: Session, settings: Settings, project: str = "default") -> dict[str, Any]:
    """Import the sample calls into `project` (created if needed) and add the starter metric."""
    proj, _ = get_or_create_project(session, project)
    agent = resolve_agent(session, proj.id, AGENT, create=True)
    _fmt, payloads, errors = read_calls(AIRLINE, "openai")
    if errors:  # the shipped file is known good; a damaged copy must say so, not import half
        raise ValueError(f"the sample data is damaged: {errors[0].message}")
    outcome = import_payloads(session, proj.id, payloads, settings, default_agent=AGENT, create_missing_agents=True)
    metric = session.scalar(select(Metric).where(Metric.project_id == proj.id, Metric.name == STARTER.name,
                                                 Metric.deleted_at.is_(None)))
    created_metric = metric is None
    if metric is None:
        metric = create_metric(session, proj.id, STARTER.model_copy(update={"agent": agent.id}))
    session.flush()
    return {"project": proj.name, "project_id": proj.id, "agent_id": agent.id, "calls": len(payloads),
            "created": outcome.created, "updated": outcome.updated, "metric_id": metric.id,
            "metric_created": created_metric}
