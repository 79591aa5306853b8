"""What evaluating and storing results share: results and their reports, metric versions (cached
per process), the database thread pool, and the stages metrics run in.

A result is keyed by the metric version's judged content, the model and the call's content
(`engine.result_key`). When the newest result of a metric on a call already has the key, nothing
is done; when an older result has it (a revert, a re-sent identical call), it is copied as the new
result without an LLM call. `force` bypasses the cache. The one path that evaluates and stores is
`evaluation/group.py` (jobs, `evaluate_one`, `evaluate_pairs`); a job's items make a replayed step
store nothing twice.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from judgelab.db import Database
from judgelab.db.models import Metric, MetricResult, MetricVersion
from judgelab.errors import NotFound
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


# Database work of evaluations, off the event loop. asyncio's default pool (CPUs + 4 threads) is
# shared with DBOS's checkpoints and was the queue hundreds of in-flight evaluations waited in.
_DB_THREADS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="judgelab-db")


def plan_stages(session: Session, project_id: int, metric_ids: list[int]) -> list[list[tuple[int, int]]]:
    """(metric id, current version id) in stages: judges first, then code metrics after the
    metrics they read (`data['name']`)."""
    metrics = [get_metric(session, project_id, m, field="metrics") for m in dict.fromkeys(metric_ids)]
    by_name = {m.name: m for m in metrics}
    reads = {m.name: referenced_names(m.current.custom_code if m.current.type == "custom_code" else None)
             for m in metrics}
    order = stages(list(by_name), reads)
    return [[(by_name[n].id, by_name[n].current.id) for n in stage] for stage in order]
