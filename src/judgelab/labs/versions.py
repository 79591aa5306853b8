"""Agreement of each metric version with people's labels, measured on that version's own results.

Labels describe calls, not versions: a label left on version 1's result also says what version 2
should answer on that call. So each version is scored on its newest results on labelled calls,
against the current labels. Versions, and the models that judged them, are scored separately and
never pooled; a version with no results on labelled calls has no figure (rerun it to get one).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from judgelab.db.models import Feedback, Metric, MetricResult
from judgelab.feedback.labels import effective_label, majority
from judgelab.labs.agreement import agreement
from judgelab.metrics.definition import BINARY_EVAL_TYPES


def labels_by_call(session: Session, metric: Metric) -> dict[int, Any]:
    """Call id -> the label people gave it: each reviewer's latest vote, the majority across reviewers
    (a tie leaves the call unlabelled), as labs reads labels."""
    eval_type = metric.current.eval_type
    found: dict[int, list[Any]] = {}
    rows = session.scalars(select(Feedback).where(Feedback.metric_id == metric.id, Feedback.is_current.is_(True))
                           .order_by(Feedback.id)).all()
    for f in rows:
        known, label = effective_label(f.vote, f.has_expected_value, f.expected_value, f.result_value, eval_type)
        if known:
            found.setdefault(f.call_log_id, []).append(label)
    out: dict[int, Any] = {}
    for call, labels in found.items():
        decided, label = majority(labels)
        if decided:
            out[call] = label
    return out


def agreement_by_version(session: Session, metric: Metric) -> list[dict[str, Any]]:
    labels = labels_by_call(session, metric)
    binary = metric.current.eval_type in BINARY_EVAL_TYPES
    out = []
    for version in sorted(metric.versions, key=lambda v: v.version):
        # Labels this version was built from (the labs ledger) are in-sample for it: its figure
        # leaves them out, and says how many it left out.
        trained_ids = [int(k.split(":", 1)[1]) for k in (version.trained_on or []) if k.startswith("feedback:")]
        in_sample = set(session.scalars(select(Feedback.call_log_id).where(Feedback.id.in_(trained_ids))).all()) \
            if trained_ids else set()
        newest = (select(func.max(MetricResult.id))
                  .where(MetricResult.metric_version_id == version.id, MetricResult.error.is_(None),
                         MetricResult.call_log_id.in_(list(labels) or [-1]))
                  .group_by(MetricResult.call_log_id, MetricResult.model))
        rows = session.execute(select(MetricResult.call_log_id, MetricResult.value, MetricResult.model)
                               .where(MetricResult.id.in_(newest))).all()
        by_model: dict[str | None, list[tuple[Any, Any]]] = {}
        left_out = 0
        for call, value, model in rows:
            if call in in_sample:
                left_out += 1
                continue
            by_model.setdefault(model, []).append((labels[call], value))
        for model in sorted(by_model, key=lambda m: m or "") or [None]:
            found = by_model.get(model, [])
            pairs = [(e, p) for e, p in found if e is not None and p is not None]
            if binary:
                pairs = [(e, p) for e, p in pairs if isinstance(e, bool) and isinstance(p, bool)]
            stats = agreement([e for e, _ in pairs], [p for _, p in pairs]).as_dict() if pairs else None
            out.append({"version": version.version, "model": model, "results_on_labelled": len(found),
                        "compared": len(pairs), "agreement": stats, "in_sample_left_out": left_out,
                        "out_of_sample": True})
    return out
