"""Evaluating metrics on calls and storing the results, with the result cache.

A result is keyed by the metric version's judged content, the model and the call's content
(`engine.result_key`). When the newest result of a metric on a call already has the key, nothing
is done; when an older result has it (a revert, a re-sent identical call), it is copied as the new
result without an LLM call. `force` bypasses the cache. Jobs (durable, resumable) wrap
`evaluate_one`, whose job items make a replayed step store nothing twice.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from judgelab.calls.queries import get_call_for_judging
from judgelab.db import Database
from judgelab.db.models import JobItem, Metric, MetricResult, MetricVersion
from judgelab.db.types import utcnow
from judgelab.errors import NotFound
from judgelab.evaluation.engine import ClientFor, Outcome, evaluate, result_key
from judgelab.evaluation.sandbox import Limits
from judgelab.metrics.definition import MetricContent
from judgelab.metrics.dependencies import referenced_names, stages
from judgelab.metrics.service import content_of, get_metric


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


# Core statements, not ORM entities: a job runs these once per evaluation, and the ORM's unit of
# work cost more CPU than the rest of the evaluation's database work together.
_RESULT_COLUMNS = (MetricResult.id, MetricResult.value, MetricResult.score, MetricResult.explanation,
                   MetricResult.extra, MetricResult.error, MetricResult.model, MetricResult.cache_key)


def _cached(session: Session, project_id: int, call_id: int, metric_id: int, key: str) -> tuple[bool, Any]:
    """(the newest result already has this key, a stored result with this key to copy)."""
    newest = session.execute(
        select(*_RESULT_COLUMNS).where(MetricResult.call_log_id == call_id, MetricResult.metric_id == metric_id)
        .order_by(MetricResult.id.desc()).limit(1)
    ).first()
    if newest is not None and newest.cache_key == key and newest.error is None:
        return True, newest
    older = session.execute(
        select(*_RESULT_COLUMNS)
        .where(MetricResult.cache_key == key, MetricResult.project_id == project_id, MetricResult.error.is_(None))
        .order_by(MetricResult.id.desc()).limit(1)
    ).first()
    return False, older


def _store(session: Session, project_id: int, call_id: int, metric_id: int, version_id: int, outcome: Outcome,
           key: str, job_id: str | None) -> int:
    return int(session.execute(
        insert(MetricResult).values(
            project_id=project_id, call_log_id=call_id, metric_id=metric_id, metric_version_id=version_id,
            value=outcome.value, score=outcome.score, explanation=outcome.explanation, extra=outcome.extra,
            error=outcome.error, model=outcome.model, input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens, cost_usd=outcome.cost_usd, cache_key=key, job_id=job_id,
            created_at=utcnow(),
        ).returning(MetricResult.id)
    ).scalar_one())


@dataclass
class Item:
    """What happened to one (call, metric) evaluation."""

    outcome: str  # evaluated | error | cached
    result_id: int | None
    value: Any = None
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def add_to(self, report: Report) -> None:
        report.done += 1
        report.errors += self.outcome == "error"
        report.cache_hits += self.outcome == "cached"
        report.llm_calls += self.llm_calls
        report.input_tokens += self.input_tokens
        report.output_tokens += self.output_tokens
        report.cost_usd += self.cost_usd
        if self.result_id is not None:
            report.result_ids.append(self.result_id)


@dataclass
class _Prepared:
    call: dict[str, Any]
    metric_id: int
    version: _Version
    others: dict[str, Any]
    key: str


def _record_item(session: Session, job_id: str, call_id: int, metric_id: int, item: Item, error: str | None = None) -> None:
    session.execute(insert(JobItem).values(
        job_id=job_id, call_log_id=call_id, metric_id=metric_id, outcome=item.outcome, result_id=item.result_id,
        llm_calls=item.llm_calls, input_tokens=item.input_tokens, output_tokens=item.output_tokens,
        cost_usd=item.cost_usd, error=error, created_at=utcnow()))


def _finished_item(session: Session, job_id: str, call_id: int, metric_id: int) -> Item | None:
    row = session.execute(select(JobItem.outcome, JobItem.result_id).where(
        JobItem.job_id == job_id, JobItem.call_log_id == call_id, JobItem.metric_id == metric_id)).first()
    return None if row is None else Item(row.outcome, row.result_id, None)


@dataclass(frozen=True)
class _Version:
    """What evaluating needs of a metric version. Versions never change once written, so this is
    cached per process (jobs look one up per evaluation)."""

    metric_id: int
    project_id: int
    version_id: int
    content: MetricContent
    content_hash: str
    model: str | None


def _version(db: Database, session: Session, project_id: int, metric_id: int,
             version_id: int | None) -> tuple[Metric | None, _Version]:
    versions: dict[int, _Version] = db.memo.setdefault("metric_versions", {})
    cached = versions.get(version_id) if version_id is not None else None
    if cached is not None and cached.project_id == project_id and cached.metric_id == metric_id:
        return None, cached
    metric = get_metric(session, project_id, metric_id, field="metrics")
    version = metric.current if version_id is None else session.get(MetricVersion, version_id)
    if version is None or version.metric_id != metric.id:
        raise NotFound("metrics", f"metric {metric_id} has no version {version_id}")
    found = _Version(metric.id, project_id, version.id, content_of(version), version.content_hash, version.model)
    if len(versions) > 10_000:
        versions.clear()
    versions[version.id] = found
    return metric, found


def _prepare(
    db: Database, project_id: int, call_id: int, metric_id: int, version_id: int | None, default_model: str | None,
    force: bool, job_id: str | None,
) -> Item | _Prepared:
    """Everything before the model: a finished job item, a cache hit, or what to evaluate."""
    with db.session() as session:
        if job_id is not None and (done := _finished_item(session, job_id, call_id, metric_id)) is not None:
            return done  # a replayed step: the work is already stored
        _metric, version = _version(db, session, project_id, metric_id, version_id)
        content = version.content
        # Only code reads other metrics' results; a judge sees the conversation alone.
        reads_results = "custom_code" in (content.type, content.trigger_type)
        call, call_hash = get_call_for_judging(session, project_id, call_id, with_results=reads_results)
        others = {r["name"]: r["value"] for r in call["evaluation"]["metrics"]
                  if r["error"] is None and r["metric_id"] != metric_id}
        key = result_key(version.content_hash, content.type, version.model or default_model, call_hash, others)
        if not force:
            current, copy_from = _cached(session, project_id, call_id, metric_id, key)
            item: Item | None = None
            if current and copy_from is not None:
                item = Item("cached", copy_from.id, copy_from.value)
            elif copy_from is not None:
                outcome = Outcome(value=copy_from.value, score=copy_from.score, explanation=copy_from.explanation,
                                  extra={**copy_from.extra, "copied_from_result": copy_from.id}, model=copy_from.model)
                row_id = _store(session, project_id, call_id, metric_id, version.version_id, outcome, key, job_id)
                item = Item("cached", row_id, copy_from.value)
            if item is not None:
                if job_id is not None:
                    _record_item(session, job_id, call_id, metric_id, item)
                return item
        return _Prepared(call, metric_id, version, others, key)


def _finish(db: Database, project_id: int, prepared: _Prepared, outcome: Outcome, job_id: str | None) -> Item:
    call_id, metric_id = prepared.call["id"], prepared.metric_id
    try:
        with db.write_session() as session:
            row_id = _store(session, project_id, call_id, metric_id, prepared.version.version_id, outcome, prepared.key,
                            job_id)
            item = Item("error" if outcome.error else "evaluated", row_id, outcome.value, outcome.llm_calls,
                        outcome.input_tokens, outcome.output_tokens, outcome.cost_usd)
            if job_id is not None:
                _record_item(session, job_id, call_id, metric_id, item)
            return item
    except IntegrityError:
        # Another runner of the same step stored it first (a recovered workflow racing its
        # predecessor): keep theirs, store nothing twice.
        if job_id is None:
            raise
        with db.session() as session:
            done = _finished_item(session, job_id, call_id, metric_id)
            if done is None:
                raise
            return done


# Database work of evaluations, off the event loop. asyncio's default pool (CPUs + 4 threads) is
# shared with DBOS's checkpoints and was the queue hundreds of in-flight evaluations waited in.
_DB_THREADS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="judgelab-db")


async def evaluate_one(
    db: Database,
    project_id: int,
    call_id: int,
    metric_id: int,
    client_for: ClientFor,
    default_model: str | None,
    *,
    version_id: int | None = None,
    force: bool = False,
    job_id: str | None = None,
    limits: Limits | None = None,
) -> Item:
    """Evaluate one metric version (the current one unless given) on one call and store the result.

    Idempotent within a job: a second run of the same (job, call, metric) returns what the first
    stored. Database work runs in a thread so the event loop keeps other evaluations moving.
    """
    loop = asyncio.get_running_loop()
    prepared = await loop.run_in_executor(_DB_THREADS, _prepare, db, project_id, call_id, metric_id, version_id,
                                          default_model, force, job_id)
    if isinstance(prepared, Item):
        return prepared
    outcome = await evaluate(prepared.version.content, prepared.call, client_for, default_model,
                             other_results=prepared.others, limits=limits)
    return await loop.run_in_executor(_DB_THREADS, _finish, db, project_id, prepared, outcome, job_id)


def plan_stages(session: Session, project_id: int, metric_ids: list[int]) -> list[list[tuple[int, int]]]:
    """(metric id, current version id) in stages: judges first, then code metrics after the
    metrics they read (`data['name']`)."""
    metrics = [get_metric(session, project_id, m, field="metrics") for m in dict.fromkeys(metric_ids)]
    by_name = {m.name: m for m in metrics}
    reads = {m.name: referenced_names(m.current.custom_code if m.current.type == "custom_code" else None)
             for m in metrics}
    order = stages(list(by_name), reads)
    return [[(by_name[n].id, by_name[n].current.id) for n in stage] for stage in order]


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
    """Evaluate every metric on every call, one call at a time (so identical calls share a
    verdict); a code metric runs after the metrics it reads."""
    report = Report(total=len(call_ids) * len(dict.fromkeys(metric_ids)))
    with db.session() as session:
        order = plan_stages(session, project_id, metric_ids)
    for call_id in call_ids:
        for stage in order:
            items = await asyncio.gather(
                *(evaluate_one(db, project_id, call_id, m, client_for, default_model, version_id=v, force=force,
                               job_id=job_id, limits=limits) for m, v in stage)
            )
            for item in items:
                item.add_to(report)
    return report
