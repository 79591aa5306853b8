"""Scheduled labs: a DBOS schedule ticks every minute and starts a labs run for each metric whose
schedule is on and that has enough new feedback. Read-only by default: the proposal waits for
review. With `auto_apply`, a run applies its proposal itself, and only when the held-out verdict
is *improved*.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from dbos import DBOS
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from judgelab.db.models import Feedback, LabsRun, Metric
from judgelab.errors import InvalidInput
from judgelab.feedback.votes import LABS_MIN_FEEDBACK
from judgelab.jobs import state
from judgelab.labs.service import DEFAULT_JUDGE_CALLS, proposal_patch, record_ledger, start_run
from judgelab.metrics.service import get_metric, update_metric

SCHEDULE_NAME = "judgelab-labs-schedules"
EVERY_MINUTE = "0 * * * * *"


def set_schedule(session: Session, project_id: int, metric_id: int, *, enabled: bool, auto_apply: bool,
                 min_new_feedback: int) -> dict[str, Any]:
    metric = get_metric(session, project_id, metric_id)
    if metric.current.type != "llm_judge":
        raise InvalidInput("id", "labs schedules are for llm_judge metrics")
    metric.labs_schedule = {"enabled": enabled, "auto_apply": auto_apply, "min_new_feedback": min_new_feedback}
    return schedule_dict(metric)


def schedule_dict(metric: Metric) -> dict[str, Any]:
    return {"metric_id": metric.id, **(metric.labs_schedule or {"enabled": False, "auto_apply": False,
                                                                  "min_new_feedback": LABS_MIN_FEEDBACK}),
            "scheduled_through_feedback_id": metric.labs_scheduled_through}


def due_runs(session: Session, max_judge_calls: int = DEFAULT_JUDGE_CALLS) -> list[str]:
    """Start a run for every scheduled metric with enough new feedback and no run in progress."""
    started = []
    metrics = session.scalars(select(Metric).where(Metric.deleted_at.is_(None), Metric.labs_schedule.is_not(None))).all()
    for metric in metrics:
        schedule = metric.labs_schedule or {}
        if not schedule.get("enabled"):
            continue
        busy = session.scalar(select(func.count()).select_from(LabsRun).where(
            LabsRun.metric_id == metric.id, LabsRun.status.in_(("queued", "starting", "running", "needs_input"))))
        if busy:
            continue
        newest = session.scalar(select(func.max(Feedback.id)).where(Feedback.metric_id == metric.id,
                                                                    Feedback.is_current.is_(True))) or 0
        new = session.scalar(select(func.count()).select_from(Feedback).where(
            Feedback.metric_id == metric.id, Feedback.is_current.is_(True),
            Feedback.id > (metric.labs_scheduled_through or 0))) or 0
        if new < int(schedule.get("min_new_feedback") or LABS_MIN_FEEDBACK):
            continue
        try:
            run = start_run(session, metric.project_id, metric.id, test_set_ids=None, metric_type="llm_judge",
                            skip_evaluation=False, simplified_prompt=None, max_judge_calls=max_judge_calls, seed=None)
        except InvalidInput:
            continue  # fewer than 6 labelled items: wait for more
        run.params = {**run.params, "scheduled": True, "auto_apply": bool(schedule.get("auto_apply"))}
        metric.labs_scheduled_through = newest
        started.append(run.id)
    return started


def _tick() -> list[str]:
    with state.current().db.session() as session:
        return due_runs(session)


@DBOS.step(name="judgelab.labs_schedule_check")
async def labs_schedule_check() -> list[str]:
    return await asyncio.to_thread(_tick)


@DBOS.workflow(name="judgelab.labs_schedule_tick")
async def labs_schedule_tick(scheduled_at: datetime, context: Any) -> None:
    await labs_schedule_check()


def ensure_schedule() -> None:
    """Register the tick once per system database (every runtime calls this; the first wins)."""
    if DBOS.get_schedule(SCHEDULE_NAME) is not None:
        return
    try:
        DBOS.create_schedule(schedule_name=SCHEDULE_NAME, workflow_fn=labs_schedule_tick, schedule=EVERY_MINUTE)
    except Exception:  # noqa: BLE001 - another runtime created it between our check and now
        pass


def auto_apply(session: Session, run: LabsRun, result: dict[str, Any]) -> str | None:
    """Apply a scheduled run's proposal when allowed and proven; returns a note on what happened."""
    if not (run.params or {}).get("auto_apply"):
        return None
    verdict = (result.get("verdict") or {}).get("verdict")
    if verdict != "improved":
        return f"not applied: the held-out verdict is {verdict!r}, and auto-apply needs 'improved'"
    metric = get_metric(session, run.project_id, run.metric_id)
    if metric.current.id != run.metric_version_id:
        return "not applied: the metric changed while the run was going"
    gain = result["verdict"].get("gain") or 0.0
    metric, _changed = update_metric(session, run.project_id, run.metric_id, proposal_patch(
        result, f"auto-applied by labs run {run.id}: held-out accuracy +{gain:.2f}, verdict improved"))
    record_ledger(metric, result)
    return f"applied as version {metric.current_version}"
