"""Results nobody has reviewed that are likely wrong: what to show a reviewer first.

Signals, each cheap and explainable: the explanation argues against the verdict; the judge
hedged; the same conversation (after normalising case and spacing) got different verdicts.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from judgelab.db.models import CallLog, Feedback, Metric, MetricResult
from judgelab.labs.dataset import text_fingerprint

SCAN_LIMIT = 5000  # newest results looked at per metric
_NEGATIVE = re.compile(
    r"\b(did not|didn't|does not|doesn't|never|failed to|fails to|without (?:asking|confirming|verifying)|"
    r"not (?:confirm|verify|ask)|violat\w*|no (?:confirmation|verification))\b", re.I)
_POSITIVE = re.compile(
    r"\b(correctly|properly|successfully|appropriately|did confirm|clearly confirmed|followed the|complied)\b", re.I)
_HEDGE = re.compile(
    r"\b(unclear|not sure|uncertain|ambiguous|cannot (?:determine|tell)|can't (?:determine|tell)|hard to say|"
    r"possibly|perhaps|it seems|appears to|might|may have)\b", re.I)


def signals_for(value: Any, explanation: str) -> list[str]:
    out = []
    if value is True and _NEGATIVE.search(explanation or ""):
        out.append("the explanation describes a failure, but the verdict is pass")
    if value is False and _POSITIVE.search(explanation or "") and not _NEGATIVE.search(explanation or ""):
        out.append("the explanation describes a pass, but the verdict is fail")
    if _HEDGE.search(explanation or ""):
        out.append("the judge hedged (low confidence)")
    return out


def review_queue(session: Session, metric: Metric, *, limit: int = 50) -> list[dict[str, Any]]:
    newest = (
        select(func.max(MetricResult.id)).where(MetricResult.metric_id == metric.id)
        .group_by(MetricResult.call_log_id)
    )
    rows = session.execute(
        select(MetricResult.id, MetricResult.call_log_id, MetricResult.value, MetricResult.explanation,
               MetricResult.error, CallLog.transcript, CallLog.call_id)
        .join(CallLog, CallLog.id == MetricResult.call_log_id)
        .where(MetricResult.id.in_(newest)).order_by(MetricResult.id.desc()).limit(SCAN_LIMIT)
    ).all()
    reviewed = set(session.scalars(
        select(Feedback.call_log_id).where(Feedback.metric_id == metric.id, Feedback.is_current.is_(True))).all())
    by_text: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        if r.error is None:
            by_text[text_fingerprint(r.transcript)].add(repr(r.value))
    queue = []
    for r in rows:
        if r.call_log_id in reviewed or r.error is not None:
            continue
        found = signals_for(r.value, r.explanation)
        if len(by_text[text_fingerprint(r.transcript)]) > 1:
            found.append("the same conversation got a different verdict on another call")
        if found:
            queue.append({"call_log_id": r.call_log_id, "call_id": r.call_id, "result_id": r.id, "value": r.value,
                          "explanation": r.explanation, "signals": found})
    queue.sort(key=lambda item: (-len(item["signals"]), -item["result_id"]))
    return queue[:limit]


def likely_wrong_rank(session: Session, project_id: int, metric_id: int, limit: int = 500) -> list[int]:
    """Call ids, most likely wrong first, as the review queue ranks this metric's unreviewed results."""
    from judgelab.metrics.service import get_metric

    metric = get_metric(session, project_id, metric_id, field="metric")
    return [item["call_log_id"] for item in review_queue(session, metric, limit=limit)]
