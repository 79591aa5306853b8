"""Evaluating metrics on calls and storing the results, with the result cache.

A result is keyed by the metric version's judged content, the model and the call's content
(`engine.cache_key`). When the newest result of a metric on a call already has the key, nothing
is done; when an older result has it (a revert, a re-sent identical call), it is copied as the new
result without an LLM call. `force` bypasses the cache. Jobs (durable, resumable) wrap
`evaluate_pairs`; this module knows nothing of them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from judgelab.calls.queries import get_call, get_call_dict
from judgelab.db import Database
from judgelab.db.models import Metric, MetricResult, MetricVersion
from judgelab.evaluation.engine import ClientFor, Outcome, cache_key, evaluate
from judgelab.evaluation.sandbox import Limits
from judgelab.jsonutil import stable_hash
from judgelab.metrics.definition import MetricContent
from judgelab.metrics.dependencies import referenced_names, stages
from judgelab.metrics.service import get_metric


@dataclass
class Report:
    total: int = 0
    done: int = 0
    errors: int = 0
    cache_hits: int = 0
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    result_ids: list[int] = field(default_factory=list)


def content_of(version: MetricVersion) -> MetricContent:
    return MetricContent(**{name: getattr(version, name) for name in MetricContent.names()})


def _model_of(version: MetricVersion, default_model: str | None) -> str | None:
    return version.model or default_model


def _cached(session: Session, call_id: int, metric_id: int, key: str) -> tuple[bool, MetricResult | None]:
    """(the newest result already has this key, a stored result with this key to copy)."""
    newest = session.scalar(
        select(MetricResult).where(MetricResult.call_log_id == call_id, MetricResult.metric_id == metric_id)
        .order_by(MetricResult.id.desc()).limit(1)
    )
    if newest is not None and newest.cache_key == key and newest.error is None:
        return True, newest
    older = session.scalar(
        select(MetricResult).where(MetricResult.cache_key == key, MetricResult.error.is_(None))
        .order_by(MetricResult.id.desc()).limit(1)
    )
    return False, older


def _store(session: Session, project_id: int, call_id: int, metric: Metric, version: MetricVersion, outcome: Outcome,
           key: str, job_id: str | None) -> MetricResult:
    row = MetricResult(
        project_id=project_id, call_log_id=call_id, metric_id=metric.id, metric_version_id=version.id,
        value=outcome.value, score=outcome.score, explanation=outcome.explanation, extra=outcome.extra,
        error=outcome.error, model=outcome.model, input_tokens=outcome.input_tokens,
        output_tokens=outcome.output_tokens, cost_usd=outcome.cost_usd, cache_key=key, job_id=job_id,
    )
    session.add(row)
    session.flush()
    return row


async def evaluate_pairs(
    db: Database,
    project_id: int,
    call_ids: list[int],
    metric_ids: list[int],
    client_for: ClientFor,
    default_model: str | None,
    *,
    force: bool = False,
    job_id: str | None = None,
    limits: Limits | None = None,
) -> Report:
    """Evaluate every metric on every call; a code metric runs after the metrics it reads."""
    report = Report(total=len(call_ids) * len(metric_ids))
    with db.session() as session:
        metrics = [get_metric(session, project_id, m, field="metrics") for m in metric_ids]
        plans = [(m, m.current, content_of(m.current)) for m in metrics]
    by_name = {p[0].name: p for p in plans}
    # Judges first; code metrics after the metrics they read (`data['name']`).
    order = stages([p[0].name for p in plans], {p[0].name: referenced_names(p[2].custom_code) for p in plans})
    for call_id in call_ids:
        with db.session() as session:
            call = get_call_dict(session, project_id, call_id)
            call_hash = get_call(session, project_id, call_id).content_hash
        values_by_name: dict[str, Any] = {r["name"]: r["value"] for r in call["evaluation"]["metrics"] if r["error"] is None}
        for stage_names in order:
            stage = [by_name[n] for n in stage_names]
            outcomes = await asyncio.gather(
                *(_one(db, project_id, call, call_hash, plan, client_for, default_model, values_by_name, force, job_id,
                       limits, report)
                  for plan in stage)
            )
            for (metric, _version, _content), value in zip(stage, outcomes):
                if value is not _MISSING:
                    values_by_name[metric.name] = value
    return report


_MISSING = object()


async def _one(
    db: Database, project_id: int, call: dict[str, Any], call_hash: str, plan: tuple[Metric, MetricVersion, MetricContent],
    client_for: ClientFor, default_model: str | None, values_by_name: dict[str, Any], force: bool,
    job_id: str | None, limits: Limits | None, report: Report,
) -> Any:
    metric, version, content = plan
    others = {name: value for name, value in values_by_name.items() if name != metric.name}
    if content.type == "custom_code":
        # Code may read other metrics' results: they are part of what it was given.
        call_hash = stable_hash([call_hash, others])
    key = cache_key(version.content_hash, _model_of(version, default_model), call_hash)
    if not force:
        with db.session() as session:
            current, copy_from = _cached(session, call["id"], metric.id, key)
            if current and copy_from is not None:
                report.cache_hits += 1
                report.done += 1
                report.result_ids.append(copy_from.id)
                return copy_from.value
            if copy_from is not None:
                outcome = Outcome(value=copy_from.value, score=copy_from.score, explanation=copy_from.explanation,
                                  extra={**copy_from.extra, "copied_from_result": copy_from.id}, model=copy_from.model)
                row = _store(session, project_id, call["id"], metric, version, outcome, key, job_id)
                report.cache_hits += 1
                report.done += 1
                report.result_ids.append(row.id)
                return row.value
    outcome = await evaluate(content, call, client_for, default_model, other_results=others, limits=limits)
    with db.session() as session:
        row = _store(session, project_id, call["id"], metric, version, outcome, key, job_id)
    report.done += 1
    report.errors += outcome.error is not None
    report.llm_calls += outcome.llm_calls
    report.input_tokens += outcome.input_tokens
    report.output_tokens += outcome.output_tokens
    report.cost_usd += outcome.cost_usd
    report.result_ids.append(row.id)
    return _MISSING if outcome.error else outcome.value
