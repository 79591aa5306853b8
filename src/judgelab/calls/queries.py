"""Reading calls back: filtered, searched, paged lists with exact counts; details; export records."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session, aliased

from judgelab.db.models import Agent, CallLog, Feedback, Metric, MetricResult
from judgelab.db.search import transcript_matches
from judgelab.errors import InvalidInput, NotFound
from judgelab.projects.service import MAX_ID, get_agent


@dataclass
class CallFilters:
    agent_id: int | None = None
    search: str | None = None
    timestamp_gte: datetime | None = None
    timestamp_lte: datetime | None = None
    # By a metric: its current version's newest result on the call (pass, fail, na, error), feedback on
    # it (or on any metric without `metric_id`), a reviewer's votes, and whether people agreed.
    metric_id: int | None = None
    verdict: str | None = None
    has_feedback: bool | None = None
    reviewer: str | None = None
    feedback_vote: str | None = None  # agree | disagree
    oldest_first: bool = False
    # "most likely wrong" first: call ids in the order a ranking put them (the review queue's), the
    # rest after them, newest first.
    rank: list[int] | None = None


VERDICTS = ("pass", "fail", "na", "error")


def with_review_filters(f: CallFilters, metric: int | None, verdict: str | None, has_feedback: bool | None,
                        reviewer: str | None, feedback: str | None, sort: str | None) -> CallFilters:
    if verdict is not None and verdict not in VERDICTS:
        raise InvalidInput("verdict", f"expected one of {', '.join(VERDICTS)}, got {verdict!r}")
    if verdict is not None and metric is None:
        raise InvalidInput("metric", "a verdict filter needs the metric whose verdict it is (metric=ID)")
    if feedback is not None and feedback not in ("agree", "disagree"):
        raise InvalidInput("feedback", f"expected agree or disagree, got {feedback!r}")
    if sort not in (None, "-timestamp", "timestamp", "likely_wrong"):
        raise InvalidInput("sort", f"expected -timestamp, timestamp or likely_wrong, got {sort!r}")
    if sort == "likely_wrong" and metric is None:
        raise InvalidInput("metric", "sorting by most likely wrong needs the metric whose results are ranked (metric=ID)")
    return replace(f, metric_id=metric, verdict=verdict, has_feedback=has_feedback, reviewer=reviewer,
                   feedback_vote=feedback, oldest_first=sort == "timestamp")


def apply_filters(session: Session, project_id: int, f: CallFilters, stmt: Select[Any]) -> Select[Any]:
    stmt = stmt.where(CallLog.project_id == project_id)
    if f.agent_id is not None:
        get_agent(session, project_id, f.agent_id)  # an unknown agent is a 404, not an empty list
        stmt = stmt.where(CallLog.agent_id == f.agent_id)
    if f.timestamp_gte is not None:
        stmt = stmt.where(CallLog.timestamp >= f.timestamp_gte)
    if f.timestamp_lte is not None:
        stmt = stmt.where(CallLog.timestamp <= f.timestamp_lte)
    if f.search:
        dialect = session.get_bind().dialect.name
        stmt = stmt.where(transcript_matches(dialect, f.search))
    if f.verdict is not None:
        stmt = stmt.where(_verdict_clause(session, project_id, f))
    votes = [Feedback.call_log_id == CallLog.id, Feedback.is_current.is_(True)]
    if f.metric_id is not None:
        votes.append(Feedback.metric_id == f.metric_id)
    if f.has_feedback is not None:
        found = select(Feedback.id).where(*votes).exists()
        stmt = stmt.where(found if f.has_feedback else ~found)
    if f.reviewer is not None:
        stmt = stmt.where(select(Feedback.id).where(*votes, Feedback.reviewer == f.reviewer).exists())
    if f.feedback_vote is not None:
        stmt = stmt.where(select(Feedback.id).where(*votes, Feedback.vote == f.feedback_vote).exists())
    return stmt


def _verdict_clause(session: Session, project_id: int, f: CallFilters) -> Any:
    """The call's newest result of the metric's current version says `f.verdict`."""
    metric = session.get(Metric, f.metric_id) if f.metric_id is not None else None
    if metric is None or metric.project_id != project_id or metric.deleted_at is not None:
        raise NotFound("metric", f"no metric with id {f.metric_id} in this project")
    newer = aliased(MetricResult)
    newest = (select(func.max(newer.id)).where(
        newer.call_log_id == CallLog.id, newer.metric_id == metric.id,
        newer.metric_version_id == metric.current.id).correlate(CallLog).scalar_subquery())
    says = {"pass": (MetricResult.error.is_(None)) & (MetricResult.score == 5.0),
            "fail": (MetricResult.error.is_(None)) & (MetricResult.score == 0.0),
            "na": (MetricResult.error.is_(None)) & (MetricResult.score.is_(None)),
            "error": MetricResult.error.is_not(None)}[f.verdict or ""]
    return select(MetricResult.id).where(MetricResult.id == newest, says).correlate(CallLog).exists()


def count_calls(session: Session, project_id: int, f: CallFilters) -> int:
    return session.scalar(apply_filters(session, project_id, f, select(func.count(CallLog.id)))) or 0


# Plain columns rather than ORM objects: a page of calls is mostly transcript, and building
# identity-mapped objects for it costs more than the query.
_COLUMNS = (
    CallLog.id, CallLog.call_id, CallLog.agent_id, CallLog.project_id, CallLog.timestamp, CallLog.duration,
    CallLog.call_ended_reason, CallLog.transcript, CallLog.transcript_json, CallLog.meta, CallLog.dynamic_variables,
    CallLog.voice_recording_url, CallLog.agent_description, CallLog.created_at, CallLog.updated_at,
    Agent.name.label("agent_name"), Agent.description.label("agent_default_description"),
)


def list_call_dicts(session: Session, project_id: int, f: CallFilters, *, offset: int, limit: int) -> list[dict[str, Any]]:
    """A page of calls, newest first, as API dicts with their latest results."""
    stmt = apply_filters(session, project_id, f, select(*_COLUMNS).join(Agent, Agent.id == CallLog.agent_id))
    order: tuple[Any, ...] = ((CallLog.timestamp.asc(), CallLog.id.asc()) if f.oldest_first
                              else (CallLog.timestamp.desc(), CallLog.id.desc()))
    if f.rank:
        order = (case({cid: n for n, cid in enumerate(f.rank)}, value=CallLog.id, else_=len(f.rank)), *order)
    rows = session.execute(stmt.order_by(*order).offset(offset).limit(limit)).all()
    return _with_results(session, rows)


def get_call_dict(session: Session, project_id: int, call_id: int) -> dict[str, Any]:
    get_call(session, project_id, call_id)
    rows = session.execute(select(*_COLUMNS).join(Agent, Agent.id == CallLog.agent_id).where(CallLog.id == call_id)).all()
    return _with_results(session, rows)[0]


def get_call_for_judging(session: Session, project_id: int, call_id: int, *, with_results: bool) -> tuple[dict[str, Any], str]:
    """The call as the judge sees it, and its content hash, in one query (two with results):
    evaluation jobs load one per evaluation, so this path stays lean."""
    row = session.execute(
        select(*_COLUMNS, CallLog.content_hash).join(Agent, Agent.id == CallLog.agent_id)
        .where(CallLog.id == call_id, CallLog.project_id == project_id)
    ).first() if 1 <= call_id <= MAX_ID else None
    if row is None:
        raise NotFound("id", f"no call log with id {call_id} in this project")
    call = _with_results(session, [row])[0] if with_results else _row_to_dict(row, [])
    return call, row.content_hash


def get_calls_for_judging(session: Session, project_id: int, call_ids: list[int], *,
                          with_results: bool) -> dict[int, tuple[dict[str, Any], str]]:
    """`get_call_for_judging` for many calls in one query (two with results); calls not in the
    project are absent from the answer."""
    ids = [c for c in dict.fromkeys(call_ids) if 1 <= c <= MAX_ID]
    if not ids:
        return {}
    rows = session.execute(
        select(*_COLUMNS, CallLog.content_hash).join(Agent, Agent.id == CallLog.agent_id)
        .where(CallLog.id.in_(ids), CallLog.project_id == project_id)
    ).all()
    calls = _with_results(session, rows) if with_results else [_row_to_dict(r, []) for r in rows]
    return {row.id: (call, row.content_hash) for row, call in zip(rows, calls, strict=True)}


def _with_results(session: Session, rows: Any) -> list[dict[str, Any]]:
    results = latest_results(session, [r.id for r in rows])
    names = metric_names(session, {r.metric_id for rs in results.values() for r in rs})
    return [
        _row_to_dict(row, [result_to_dict(r, names.get(r.metric_id)) for r in results.get(row.id, [])]) for row in rows
    ]


def _row_to_dict(r: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": r.id,
        "call_id": r.call_id,
        "agent": r.agent_id,
        "agent_name": r.agent_name,
        "project": r.project_id,
        "timestamp": r.timestamp.isoformat(),
        "duration": r.duration,
        "call_ended_reason": r.call_ended_reason,
        "transcript": r.transcript,
        "transcript_json": r.transcript_json,
        "metadata": r.meta,
        "dynamic_variables": r.dynamic_variables,
        "voice_recording_url": r.voice_recording_url,
        "agent_description": r.agent_description if r.agent_description is not None else r.agent_default_description,
        "created_at": r.created_at.isoformat(),
        "updated_at": r.updated_at.isoformat(),
        "evaluation": {"metrics": results},
    }


def get_call(session: Session, project_id: int, call_id: int, field: str = "id") -> CallLog:
    call = session.get(CallLog, call_id) if 1 <= call_id <= MAX_ID else None
    if call is None or call.project_id != project_id:
        raise NotFound(field, f"no call log with id {call_id} in this project")
    return call


def check_calls(session: Session, project_id: int, call_ids: list[int], field: str = "call_logs") -> list[int]:
    """The ids, deduplicated in order, after checking every one is a call of this project (one
    query per thousand, not one per call); NotFound naming the field for the first that is not."""
    wanted = list(dict.fromkeys(call_ids))
    found: set[int] = set()
    for i in range(0, len(wanted), 1000):
        found.update(session.scalars(select(CallLog.id).where(
            CallLog.id.in_([c for c in wanted[i:i + 1000] if 1 <= c <= MAX_ID]), CallLog.project_id == project_id)).all())
    missing = next((c for c in wanted if c not in found), None)
    if missing is not None:
        get_call(session, project_id, missing, field=field)  # raises the usual NotFound
    return wanted


def latest_results(session: Session, call_ids: list[int]) -> dict[int, list[MetricResult]]:
    """The newest result of each live metric on each call: what `evaluation.metrics[]` shows."""
    if not call_ids:
        return {}
    newest = (
        select(func.max(MetricResult.id))
        .where(MetricResult.call_log_id.in_(call_ids))
        .group_by(MetricResult.call_log_id, MetricResult.metric_id)
    )
    rows = session.scalars(
        select(MetricResult)
        .join(Metric, Metric.id == MetricResult.metric_id)
        .where(MetricResult.id.in_(newest), Metric.deleted_at.is_(None))
        .order_by(MetricResult.metric_id)
    )
    out: dict[int, list[MetricResult]] = {}
    for r in rows:
        out.setdefault(r.call_log_id, []).append(r)
    return out


def result_to_dict(r: MetricResult, metric_name: str | None = None) -> dict[str, Any]:
    return {
        "id": r.id,
        "metric_id": r.metric_id,
        "name": metric_name,
        "value": r.value,
        "score": r.score,
        "explanation": r.explanation,
        "extra": r.extra,
        "error": r.error,
        "metric_version": r.metric_version.version,
        "metric_version_id": r.metric_version_id,
        "model": r.model,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "cost_usd": r.cost_usd,
        "created_at": r.created_at.isoformat(),
    }


def metric_names(session: Session, metric_ids: set[int]) -> dict[int, str]:
    if not metric_ids:
        return {}
    return dict(session.execute(select(Metric.id, Metric.name).where(Metric.id.in_(metric_ids))).all())


def export_record(c: CallLog) -> dict[str, Any]:
    """One JSONL line that `import` reads back to exactly this call."""
    return {
        "agent": c.agent.name,
        "call_id": c.call_id,
        "timestamp": c.timestamp.isoformat(),
        "duration": c.duration,
        "call_ended_reason": c.call_ended_reason,
        "transcript_json": c.transcript_json,
        "metadata": c.meta,
        "dynamic_variables": c.dynamic_variables,
        "voice_recording_url": c.voice_recording_url,
        "agent_description": c.agent_description,
    }


def iter_export(session: Session, project_id: int, f: CallFilters, batch: int = 500) -> Iterator[dict[str, Any]]:
    """Oldest first, keyset-paged so memory stays flat on large projects."""
    last = (datetime.min, 0)
    first = True
    while True:
        stmt = apply_filters(session, project_id, f, select(CallLog)).order_by(CallLog.timestamp, CallLog.id).limit(batch)
        if not first:
            stmt = stmt.where(
                (CallLog.timestamp > last[0]) | ((CallLog.timestamp == last[0]) & (CallLog.id > last[1]))
            )
        rows = list(session.scalars(stmt))
        if not rows:
            return
        for c in rows:
            yield export_record(c)
        last = (rows[-1].timestamp, rows[-1].id)
        first = False
        session.expunge_all()
