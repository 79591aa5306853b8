"""Reading calls back: filtered, searched, paged lists with exact counts; details; export records."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from judgelab.db.models import Agent, CallLog, Metric, MetricResult
from judgelab.db.search import transcript_matches
from judgelab.errors import NotFound
from judgelab.projects.service import MAX_ID, get_agent


@dataclass
class CallFilters:
    agent_id: int | None = None
    search: str | None = None
    timestamp_gte: datetime | None = None
    timestamp_lte: datetime | None = None


def _filtered(session: Session, project_id: int, f: CallFilters, what: Any) -> Select[Any]:
    stmt = select(what).where(CallLog.project_id == project_id)
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
    return stmt


def count_calls(session: Session, project_id: int, f: CallFilters) -> int:
    return session.scalar(_filtered(session, project_id, f, func.count(CallLog.id))) or 0


def list_calls(session: Session, project_id: int, f: CallFilters, *, offset: int, limit: int) -> list[CallLog]:
    stmt = (
        _filtered(session, project_id, f, CallLog)
        .order_by(CallLog.timestamp.desc(), CallLog.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def get_call(session: Session, project_id: int, call_id: int, field: str = "id") -> CallLog:
    call = session.get(CallLog, call_id) if 1 <= call_id <= MAX_ID else None
    if call is None or call.project_id != project_id:
        raise NotFound(field, f"no call log with id {call_id} in this project")
    return call


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


def calls_to_dicts(session: Session, calls: list[CallLog]) -> list[dict[str, Any]]:
    results = latest_results(session, [c.id for c in calls])
    names = metric_names(session, {r.metric_id for rs in results.values() for r in rs})
    return [
        call_to_dict(c, [result_to_dict(r, names.get(r.metric_id)) for r in results.get(c.id, [])]) for c in calls
    ]


def call_to_dict(c: CallLog, results: list[dict[str, Any]]) -> dict[str, Any]:
    agent: Agent = c.agent
    return {
        "id": c.id,
        "call_id": c.call_id,
        "agent": c.agent_id,
        "agent_name": agent.name,
        "project": c.project_id,
        "timestamp": c.timestamp.isoformat(),
        "duration": c.duration,
        "call_ended_reason": c.call_ended_reason,
        "transcript": c.transcript,
        "transcript_json": c.transcript_json,
        "metadata": c.meta,
        "dynamic_variables": c.dynamic_variables,
        "voice_recording_url": c.voice_recording_url,
        "agent_description": c.agent_description if c.agent_description is not None else agent.description,
        "created_at": c.created_at.isoformat(),
        "updated_at": c.updated_at.isoformat(),
        "evaluation": {"metrics": results},
    }


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
        stmt = _filtered(session, project_id, f, CallLog).order_by(CallLog.timestamp, CallLog.id).limit(batch)
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
