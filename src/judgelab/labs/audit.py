"""Random audit samples: calls drawn at random, so their labels say how a prompt does on the calls
nobody picked.

People label mostly what looks wrong (the review queue is built for that), so a held-out set carved
from those labels is mostly the baseline's errors: any change looks like a fix there. An audit
sample is drawn at random (seeded and recorded) from the metric's recent results on calls nobody
labelled, stratified by the current verdict so a rare verdict is not missed by chance, and
reviewed blind by default (the judge's verdict is shown only after the vote). Its labels are
never shown to a generator; labs' `improved` rests on them.
"""

from __future__ import annotations

import random
import secrets
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from judgelab.calls.queries import get_call
from judgelab.db.models import AuditSample, Feedback, Metric, MetricResult
from judgelab.errors import InvalidInput, NotFound
from judgelab.metrics.service import get_metric

RECENT = 5000  # the newest results a sample is drawn from


def _stratum(value: Any, error: str | None) -> str:
    if error is not None:
        return "error"
    return "na" if value is None else ("pass" if value is True else "fail" if value is False else "value")


def draw_sample(session: Session, project_id: int, metric_id: int, size: int, *, seed: int | None,
                blind: bool, created_by: str) -> AuditSample:
    metric = get_metric(session, project_id, metric_id)
    labelled = set(session.scalars(select(Feedback.call_log_id).where(Feedback.metric_id == metric.id,
                                                                      Feedback.is_current.is_(True))).all())
    newest = (select(func.max(MetricResult.id)).where(MetricResult.metric_id == metric.id,
                                                      MetricResult.metric_version_id == metric.current.id)
              .group_by(MetricResult.call_log_id))
    rows = session.execute(select(MetricResult.call_log_id, MetricResult.value, MetricResult.error)
                           .where(MetricResult.id.in_(newest)).order_by(MetricResult.id.desc()).limit(RECENT)).all()
    pool: dict[str, list[int]] = {}
    for call_id, value, error in sorted(rows):
        if call_id not in labelled and error is None:
            pool.setdefault(_stratum(value, error), []).append(call_id)
    population = sum(len(v) for v in pool.values())
    if population == 0:
        raise InvalidInput("size", "no unlabelled results of the metric's current version to draw from: evaluate "
                                   "some calls with it first")
    size = min(size, population)
    seed = secrets.randbelow(2**31 - 1) if seed is None else seed
    rng = random.Random(seed)
    # Proportional allocation (largest remainder), at least one from every stratum when size allows.
    names = sorted(pool)
    exact = {n: size * len(pool[n]) / population for n in names}
    take = {n: int(exact[n]) for n in names}
    for n in sorted(names, key=lambda n: exact[n] - take[n], reverse=True)[: size - sum(take.values())]:
        take[n] += 1
    for n in names:
        if take[n] == 0 and size >= len(names):
            donor = max(names, key=lambda m: take[m])
            if take[donor] > 1:
                take[donor] -= 1
                take[n] = 1
    drawn: list[int] = []
    for n in names:
        drawn += rng.sample(pool[n], take[n])
    rng.shuffle(drawn)  # review order says nothing about the verdict
    sample = AuditSample(project_id=project_id, metric_id=metric.id, metric_version_id=metric.current.id, seed=seed,
                         size=len(drawn), population=population, strata={n: {"population": len(pool[n]), "drawn": take[n]}
                                                                           for n in names},
                         call_ids=drawn, blind=blind, created_by=created_by)
    session.add(sample)
    session.flush()
    return sample


def get_sample(session: Session, project_id: int, sample_id: int) -> AuditSample:
    sample = session.get(AuditSample, sample_id) if 1 <= sample_id <= 2**31 - 1 else None
    if sample is None or sample.project_id != project_id:
        raise NotFound("id", f"no audit sample with id {sample_id} in this project")
    return sample


def sample_dict(session: Session, sample: AuditSample, metric: Metric) -> dict[str, Any]:
    voted = set(session.scalars(select(Feedback.call_log_id).where(
        Feedback.metric_id == metric.id, Feedback.is_current.is_(True), Feedback.audit_sample_id == sample.id)).all())
    calls = []
    for call_id in sample.call_ids:
        call = get_call(session, sample.project_id, call_id)
        entry: dict[str, Any] = {"call_log_id": call.id, "call_id": call.call_id, "labelled": call.id in voted}
        if not sample.blind or call.id in voted:  # blind: the verdict only after the vote
            entry["verdict"] = session.scalar(select(MetricResult.value).where(
                MetricResult.call_log_id == call.id, MetricResult.metric_id == metric.id)
                .order_by(MetricResult.id.desc()).limit(1))
        calls.append(entry)
    return {"id": sample.id, "metric_id": metric.id, "metric_version": next(
                (v.version for v in metric.versions if v.id == sample.metric_version_id), None),
            "seed": sample.seed, "size": sample.size, "population": sample.population, "strata": sample.strata,
            "blind": sample.blind, "labelled": len(voted), "remaining": sample.size - len(voted), "calls": calls,
            "how_to_label": "vote on each call with mark_metric_vote and \"source\": \"random_audit\", "
                            f"\"audit_sample_id\": {sample.id}",
            "created_by": sample.created_by, "created_at": sample.created_at.isoformat() if sample.created_at else None}
