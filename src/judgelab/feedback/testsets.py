"""Test sets: a call frozen as it was, with per-metric feedback and expected outcome."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from judgelab.calls.queries import get_call
from judgelab.db.models import TestSet, TestSetItem
from judgelab.errors import InvalidInput, NotFound
from judgelab.feedback.labels import normalize_expected
from judgelab.metrics.service import get_metric
from judgelab.projects.service import MAX_ID

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
METRICS_SHAPE = 'metrics must be a list of {"metric": id, "feedback": text} objects'


class TestSetMetricIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric: Id
    feedback: Annotated[str, Field(max_length=20_000)] = ""
    expected_value: Any = None


class TestSetFromCallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    __test__ = False

    call_log_id: Id
    metrics: list[TestSetMetricIn] = Field(min_length=1, description=METRICS_SHAPE)
    name: Annotated[str, Field(min_length=1, max_length=300)] | None = None

    @field_validator("metrics", mode="before")
    @classmethod
    def _objects_not_ids(cls, value: Any) -> Any:
        # The platform this API copies answers 500 to bare ids; we say what it wants instead.
        if not isinstance(value, list):
            raise ValueError(f"{METRICS_SHAPE}, got {type(value).__name__}")
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise ValueError(f"{METRICS_SHAPE}; item {i} is a bare {type(item).__name__} ({item!r})")
        return value


def create_from_call_log(session: Session, project_id: int, body: TestSetFromCallIn) -> TestSet:
    call = get_call(session, project_id, body.call_log_id, field="call_log_id")
    items = []
    seen: set[int] = set()
    for i, m in enumerate(body.metrics):
        metric = get_metric(session, project_id, m.metric, field=f"metrics[{i}].metric")
        if metric.id in seen:
            raise InvalidInput(f"metrics[{i}].metric", f"metric {metric.id} is listed twice")
        seen.add(metric.id)
        if "\x00" in m.feedback:
            raise InvalidInput(f"metrics[{i}].feedback", "contains a NUL character (\\u0000), which cannot be stored")
        has_expected = m.expected_value is not None
        expected = (
            normalize_expected(m.expected_value, metric.current.eval_type, metric.current.enum_values, f"metrics[{i}].expected_value")
            if has_expected
            else None
        )
        items.append(TestSetItem(metric_id=metric.id, feedback=m.feedback, has_expected_value=has_expected, expected_value=expected))
    ts = TestSet(
        project_id=project_id,
        name=body.name or f"call {call.id} ({call.call_id})",
        source_call_log_id=call.id,
        agent_id=call.agent_id,
        transcript=call.transcript,
        transcript_json=call.transcript_json,
        call_ended_reason=call.call_ended_reason,
        duration=call.duration,
        meta=call.meta,
        dynamic_variables=call.dynamic_variables,
        agent_description=call.agent_description if call.agent_description is not None else call.agent.description,
        content_hash=call.content_hash,
        items=items,
    )
    session.add(ts)
    session.flush()
    return ts


def get_test_set(session: Session, project_id: int, test_set_id: int) -> TestSet:
    ts = session.get(TestSet, test_set_id) if 1 <= test_set_id <= MAX_ID else None
    if ts is None or ts.project_id != project_id:
        raise NotFound("id", f"no test set with id {test_set_id} in this project")
    return ts


def list_test_sets(
    session: Session, project_id: int, *, metric_id: int | None, offset: int, limit: int
) -> tuple[int, list[TestSet]]:
    stmt = select(TestSet).where(TestSet.project_id == project_id)
    if metric_id is not None:
        get_metric(session, project_id, metric_id, field="metric")
        stmt = stmt.where(TestSet.id.in_(select(TestSetItem.test_set_id).where(TestSetItem.metric_id == metric_id)))
    count = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(TestSet.id.desc()).offset(offset).limit(limit)).all()
    return count, list(rows)


def test_set_to_dict(ts: TestSet, *, full: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": ts.id,
        "name": ts.name,
        "project": ts.project_id,
        "agent": ts.agent_id,
        "call_log_id": ts.source_call_log_id,
        "metrics": [
            {
                "metric": it.metric_id,
                "feedback": it.feedback,
                "expected_value": it.expected_value if it.has_expected_value else None,
                "has_expected_value": it.has_expected_value,
            }
            for it in ts.items
        ],
        "created_at": ts.created_at.isoformat(),
    }
    if full:
        out.update(
            transcript=ts.transcript,
            transcript_json=ts.transcript_json,
            call_ended_reason=ts.call_ended_reason,
            duration=ts.duration,
            metadata=ts.meta,
            dynamic_variables=ts.dynamic_variables,
            agent_description=ts.agent_description,
        )
    return out
