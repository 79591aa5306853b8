"""Votes on metric results (`mark_metric_vote`) and the progress toward a labs run."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from judgelab.calls.queries import get_call
from judgelab.db.models import Feedback, Metric, MetricResult
from judgelab.db.types import utcnow
from judgelab.errors import InvalidInput
from judgelab.feedback.labels import effective_label, normalize_expected
from judgelab.metrics.definition import BINARY_EVAL_TYPES
from judgelab.metrics.service import get_metric

LABS_MIN_FEEDBACK = 6
# Where a label came from. Only random_audit labels were picked by nobody: they alone can show how a
# prompt does on the calls it will judge next; the others are for learning.
SOURCES = ("review_queue", "random_audit", "validation_flip", "test_set", "manual")
_MOMENT = re.compile(r"\b\d{1,2}:\d{2}\b|[\"“'‘].{4,}?[\"”'’]|\bturn\b|\bsaid\b|\basked\b", re.IGNORECASE)


class VoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    vote: str | None = Field(default=None, description="agree or disagree")
    thumbs_up: bool | None = Field(default=None, description="true means agree; accepted in place of vote")
    feedback: Annotated[str, Field(max_length=20_000)] = ""
    expected_value: Any = Field(default=None, description='JSON or a JSON string: true, 5, "existing_customer"; "N/A" for not applicable')
    reviewer: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    source: str | None = Field(default=None, description="where the call came from: review_queue, random_audit, "
                               "validation_flip, test_set or manual (default)")
    audit_sample_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = Field(
        default=None, description="the random audit sample the call was drawn in (source random_audit)")


def _vote_word(body: VoteIn) -> str:
    if body.vote is not None:
        v = body.vote.strip().lower()
        if v not in ("agree", "disagree"):
            raise InvalidInput("vote", f"expected 'agree' or 'disagree', got {body.vote!r}")
        if body.thumbs_up is not None and body.thumbs_up != (v == "agree"):
            raise InvalidInput("thumbs_up", "contradicts vote; send one of them")
        return v
    if body.thumbs_up is None:
        raise InvalidInput("vote", "required: 'agree' or 'disagree' (or thumbs_up: true/false)")
    return "agree" if body.thumbs_up else "disagree"


def feedback_warnings(vote: str, text: str, has_expected: bool, has_result: bool) -> list[str]:
    """Advice on feedback that labs will learn little from; never a reason to refuse it."""
    warnings = []
    words = len(text.split())
    if vote == "disagree":
        if not text.strip():
            warnings.append("no reason given: labs learns from reasons; say what in the call the metric got wrong")
        elif words < 8:
            warnings.append("the reason is very short: name the rule's intent and why this call meets or breaks it")
        if text.strip() and not _MOMENT.search(text):
            warnings.append("cite the moment in the transcript (e.g. 'at 02:15 the agent said ...')")
        if not has_expected:
            warnings.append("no expected_value: say what the result should have been")
    if not has_result and not has_expected:
        warnings.append("this call has no result for the metric yet, and no expected_value was given")
    return warnings


def mark_vote(session: Session, project_id: int, call_id: int, body: VoteIn, reviewer: str) -> tuple[Feedback, list[str]]:
    call = get_call(session, project_id, call_id)
    metric = get_metric(session, project_id, body.metric_id, field="metric_id")
    vote = _vote_word(body)
    version = metric.current
    # JSON null means "not given" (many clients send every field); N/A is said as "N/A" or "null".
    has_expected = body.expected_value is not None
    expected = normalize_expected(body.expected_value, version.eval_type, version.enum_values) if has_expected else None
    result = session.scalar(
        select(MetricResult)
        .where(MetricResult.call_log_id == call.id, MetricResult.metric_id == metric.id)
        .order_by(MetricResult.id.desc())
        .limit(1)
    )
    if vote == "agree" and result is None and not has_expected:
        raise InvalidInput(
            "vote", "there is no result of this metric on this call to agree with; send expected_value instead"
        )
    if "\x00" in body.feedback:
        raise InvalidInput("feedback", "contains a NUL character (\\u0000), which cannot be stored")
    reviewer = (body.reviewer or reviewer).strip() or reviewer
    source, audit_id = _source(session, project_id, metric.id, call.id, body)
    if vote == "agree" and not has_expected and result is not None and result.error is None and result.value is None:
        # Agreeing with an N/A result says "N/A is right": that is a label, recorded as one.
        has_expected, expected = True, None

    now = utcnow()
    session.execute(
        update(Feedback)
        .where(
            Feedback.call_log_id == call.id,
            Feedback.metric_id == metric.id,
            Feedback.reviewer == reviewer,
            Feedback.is_current.is_(True),
        )
        .values(is_current=False, superseded_at=now)
    )
    fb = Feedback(
        project_id=project_id,
        call_log_id=call.id,
        metric_id=metric.id,
        metric_result_id=result.id if result else None,
        metric_version_id=result.metric_version_id if result else version.id,
        reviewer=reviewer,
        vote=vote,
        feedback=body.feedback,
        has_expected_value=has_expected,
        expected_value=expected,
        result_value=result.value if result and result.error is None else None,
        is_current=True,
        source=source,
        audit_sample_id=audit_id,
        created_at=now,
    )
    session.add(fb)
    session.flush()
    return fb, feedback_warnings(vote, body.feedback, has_expected, result is not None)


def _source(session: Session, project_id: int, metric_id: int, call_id: int, body: VoteIn) -> tuple[str, int | None]:
    """The vote's source, checked: a random_audit label must be on a call its audit sample drew."""
    source = (body.source or ("random_audit" if body.audit_sample_id else "manual")).strip()
    if source not in SOURCES:
        raise InvalidInput("source", f"expected one of {', '.join(SOURCES)}, got {source!r}")
    if source != "random_audit":
        if body.audit_sample_id is not None:
            raise InvalidInput("audit_sample_id", "only a random_audit vote belongs to an audit sample")
        return source, None
    from judgelab.db.models import AuditSample

    samples = session.scalars(select(AuditSample).where(AuditSample.project_id == project_id,
                                                        AuditSample.metric_id == metric_id)
                              .order_by(AuditSample.id.desc())).all()
    for sample in samples:
        if (body.audit_sample_id is None or sample.id == body.audit_sample_id) and call_id in sample.call_ids:
            return source, sample.id
    raise InvalidInput("source", "random_audit is for calls drawn by an audit sample of this metric "
                                 "(POST /api/v1/metrics/{id}/audit_sample/); this call was not")


def feedback_to_dict(fb: Feedback, eval_type: str) -> dict[str, Any]:
    known, label = effective_label(fb.vote, fb.has_expected_value, fb.expected_value, fb.result_value, eval_type)
    return {
        "id": fb.id,
        "call_log": fb.call_log_id,
        "metric_id": fb.metric_id,
        "metric_result": fb.metric_result_id,
        "metric_version_id": fb.metric_version_id,
        "reviewer": fb.reviewer,
        "vote": fb.vote,
        "thumbs_up": fb.vote == "agree",
        "feedback": fb.feedback,
        "expected_value": fb.expected_value if fb.has_expected_value else None,
        "has_expected_value": fb.has_expected_value,
        "result_value": fb.result_value,
        "label_known": known,
        "label": label,
        "source": fb.source,
        "audit_sample_id": fb.audit_sample_id,
        "is_current": fb.is_current,
        "created_at": fb.created_at.isoformat(),
        "superseded_at": fb.superseded_at.isoformat() if fb.superseded_at else None,
    }


def feedback_progress(session: Session, metric: Metric) -> dict[str, Any]:
    eval_type = metric.current.eval_type
    rows = session.scalars(
        select(Feedback).where(Feedback.metric_id == metric.id, Feedback.is_current.is_(True))
    ).all()
    agree = sum(1 for f in rows if f.vote == "agree")
    counts = {"pass": 0, "fail": 0, "na": 0, "unknown": 0}
    values: dict[str, int] = {}
    for f in rows:
        known, label = effective_label(f.vote, f.has_expected_value, f.expected_value, f.result_value, eval_type)
        if not known:
            counts["unknown"] += 1
        elif label is None:
            counts["na"] += 1
        elif eval_type in BINARY_EVAL_TYPES:
            counts["pass" if label else "fail"] += 1
        else:
            values[str(label)] = values.get(str(label), 0) + 1
    expected = {**counts, "values": values}
    total = len(rows)
    # What labs can use: votes with a known label and test-set items with an expected value (a
    # disagree on a non-binary result without an expected value says only "not this").
    from judgelab.db.models import TestSet, TestSetItem

    test_items = session.scalar(select(func.count()).select_from(TestSetItem).join(TestSet, TestSet.id == TestSetItem.test_set_id)
                                .where(TestSetItem.metric_id == metric.id, TestSetItem.has_expected_value)) or 0
    usable = total - counts["unknown"] + test_items
    sources: dict[str, int] = {}
    for f in rows:
        sources[f.source] = sources.get(f.source, 0) + 1
    return {
        "total": total,
        "agree": agree,
        "disagree": total - agree,
        "expected": expected,
        "reviewers": len({f.reviewer for f in rows}),
        "calls": len({f.call_log_id for f in rows}),
        "usable_labels": usable,
        "sources": sources,
        "random_audit_labels": sources.get("random_audit", 0),
        "required_for_labs": LABS_MIN_FEEDBACK,
        "remaining_for_labs": max(0, LABS_MIN_FEEDBACK - usable),
        "ready_for_labs": usable >= LABS_MIN_FEEDBACK,
    }


def list_feedback(
    session: Session, project_id: int, metric_id: int, *, include_history: bool, offset: int, limit: int
) -> tuple[Metric, int, list[Feedback]]:
    metric = get_metric(session, project_id, metric_id)
    stmt = select(Feedback).where(Feedback.metric_id == metric.id)
    if not include_history:
        stmt = stmt.where(Feedback.is_current.is_(True))
    count = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Feedback.id.desc()).offset(offset).limit(limit)).all()
    return metric, count, list(rows)
