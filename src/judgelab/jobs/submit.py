"""Submitting an evaluation: resolve the calls, estimate, guard the cost, queue the job.

One path for the API, the CLI and agents' tools, so the cost guard cannot be skipped by any door.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from judgelab.calls.queries import CallFilters, apply_filters, check_calls
from judgelab.db.models import CallLog, Job, MetricResult
from judgelab.errors import Conflict, InvalidInput
from judgelab.evaluation.engine import NO_MODEL
from judgelab.evaluation.estimate import CONFIRM_ABOVE, Estimate, estimate
from judgelab.jobs.service import create_evaluation_job
from judgelab.projects.service import check_model

MAX_CALLS_PER_JOB = 100_000


@dataclass
class Submitted:
    job: Job
    estimate: Estimate


def resolve_calls(session: Session, project_id: int, call_ids: list[int] | None, filters: CallFilters | None) -> list[int]:
    if call_ids is not None:
        return check_calls(session, project_id, call_ids)
    stmt = apply_filters(session, project_id, filters or CallFilters(), select(CallLog.id)).order_by(CallLog.id)
    ids = list(session.scalars(stmt.limit(MAX_CALLS_PER_JOB + 1)).all())
    if len(ids) > MAX_CALLS_PER_JOB:
        raise InvalidInput("call_logs", f"the filters match more than {MAX_CALLS_PER_JOB} calls; narrow them "
                                        "(agent, timestamp__gte / timestamp__lte, search) and submit several jobs")
    return ids


def metrics_on_calls(session: Session, call_ids: list[int]) -> list[int]:
    """The metrics that already have results on these calls (what a rerun re-evaluates by default)."""
    found: set[int] = set()
    for i in range(0, len(call_ids), 1000):
        found.update(session.scalars(
            select(MetricResult.metric_id).where(MetricResult.call_log_id.in_(call_ids[i:i + 1000])).distinct()
        ).all())
    return sorted(found)


def submit_evaluation(
    session: Session,
    project_id: int,
    metric_ids: list[int],
    *,
    call_ids: list[int] | None,
    filters: CallFilters | None,
    confirm: bool,
    force: bool,
    default_model: str | None,
    created_by: str = "",
    kind: str = "evaluation",
    runner: str | None = None,
    batch: bool = False,
) -> Submitted:
    calls = resolve_calls(session, project_id, call_ids, filters)
    if not calls:
        raise InvalidInput("call_logs", "no calls to evaluate: the list or the filters matched none")
    if not metric_ids:
        raise InvalidInput("metrics", "no metrics to evaluate: name them, or evaluate calls that have results")
    guess = estimate(session, project_id, metric_ids, default_model, call_ids=calls if call_ids is not None else None,
                     filters=filters if call_ids is None else None, force=force)
    if any(entry.model is None for entry in guess.by_model):
        raise InvalidInput("metrics", NO_MODEL, extra={"estimate": guess.as_dict()})
    for entry in guess.by_model:  # the project's allow-list holds for the server's default model too
        check_model(session, project_id, entry.model, admin=True, field="metrics")
    if len(calls) > CONFIRM_ABOVE and not confirm:
        raise Conflict(
            "confirm",
            f"this evaluation covers {len(calls)} calls (more than {CONFIRM_ABOVE}); read the estimate and send "
            "the same request with \"confirm\": true to start it",
            extra={"estimate": guess.as_dict()},
        )
    job = create_evaluation_job(session, project_id, calls, metric_ids, force=force, default_model=default_model, runner=runner,
                                created_by=created_by, kind=kind, batch=batch)
    return Submitted(job, guess)
