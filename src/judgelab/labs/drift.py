"""Agreement over time and label balance: is the judge drifting away from people, and what are the
labels made of?

Weeks are those of the calls (when the conversations happened), so a week's figure says how the
judge did on that week's traffic. Each (week, version, model) is scored on its own results against
the current labels (the same rule as everywhere: each reviewer's latest vote, the majority across
reviewers); versions and models are never pooled, and every figure carries its n and interval.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from judgelab.db.models import CallLog, Feedback, Metric, MetricResult
from judgelab.labs.agreement import agreement
from judgelab.labs.versions import labels_by_call
from judgelab.metrics.definition import BINARY_EVAL_TYPES


def _week(ts: datetime) -> str:
    monday = (ts - timedelta(days=ts.weekday())).date()
    return monday.isoformat()


def agreement_over_time(session: Session, metric: Metric) -> list[dict[str, Any]]:
    """Per (week of the call, version, model): kappa and accuracy with intervals, and n."""
    labels = labels_by_call(session, metric)
    if not labels:
        return []
    versions = {v.id: v.version for v in metric.versions}
    newest = (select(func.max(MetricResult.id)).where(
        MetricResult.metric_id == metric.id, MetricResult.error.is_(None), MetricResult.call_log_id.in_(list(labels)))
        .group_by(MetricResult.call_log_id, MetricResult.metric_version_id, MetricResult.model))
    rows = session.execute(select(MetricResult.call_log_id, MetricResult.value, MetricResult.model,
                                  MetricResult.metric_version_id, CallLog.timestamp)
                           .join(CallLog, CallLog.id == MetricResult.call_log_id)
                           .where(MetricResult.id.in_(newest))).all()
    binary = metric.current.eval_type in BINARY_EVAL_TYPES
    buckets: dict[tuple[str, int, str | None], list[tuple[Any, Any]]] = defaultdict(list)
    for call, value, model, version_id, ts in rows:
        label = labels[call]
        if label is None or value is None or (binary and not (isinstance(label, bool) and isinstance(value, bool))):
            continue
        buckets[(_week(ts), versions.get(version_id, 0), model)].append((label, value))
    out = []
    for (week, version, model), pairs in sorted(buckets.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")):
        stats = agreement([e for e, _ in pairs], [p for _, p in pairs]).as_dict()
        out.append({"week": week, "version": version, "model": model, "n": len(pairs), "kappa": stats["kappa"],
                    "accuracy": stats["accuracy"], "base_rate": stats.get("base_rate")})
    return out


def label_balance(session: Session, metric: Metric) -> dict[str, Any]:
    """How the labels split: by value (pass / fail / N/A / others) and by where they came from."""
    labels = labels_by_call(session, metric)
    by_value: Counter[str] = Counter()
    for label in labels.values():
        by_value["pass" if label is True else "fail" if label is False else "N/A" if label is None else str(label)] += 1
    sources = Counter(dict(session.execute(
        select(Feedback.source, func.count(func.distinct(Feedback.call_log_id))).where(
            Feedback.metric_id == metric.id, Feedback.is_current.is_(True)).group_by(Feedback.source)).all()))
    return {"total": len(labels), "by_value": dict(by_value.most_common()), "by_source": dict(sources)}
