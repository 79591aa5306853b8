"""Metrics and their immutable versions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from judgelab.db.models import Metric, MetricVersion
from judgelab.db.types import utcnow
from judgelab.errors import Conflict, InvalidInput, NotFound
from judgelab.metrics.definition import MetricContent, validate
from judgelab.metrics.dependencies import check_no_cycle
from judgelab.metrics.schemas import MetricCreate, MetricPatch
from judgelab.projects.service import MAX_ID, get_agent


def content_of(v: MetricVersion) -> MetricContent:
    return MetricContent(**{name: getattr(v, name) for name in MetricContent.names()})


def _new_version(metric: Metric, number: int, content: MetricContent, note: str) -> MetricVersion:
    return MetricVersion(
        metric=metric, version=number, content_hash=content.content_hash(), change_note=note, **content.as_dict()
    )


def _check_name_free(session: Session, project_id: int, name: str, except_id: int | None = None) -> None:
    stmt = select(Metric.id).where(Metric.project_id == project_id, Metric.name == name, Metric.deleted_at.is_(None))
    existing = session.scalar(stmt)
    if existing is not None and existing != except_id:
        raise Conflict("name", f"metric {existing} is already named {name!r} in this project")


def _flush(session: Session, name: str) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # a concurrent writer took the name between our check and our write
        raise Conflict("name", f"a metric named {name!r} already exists in this project") from None


def _check_reads(session: Session, project_id: int, name: str, content: MetricContent, except_id: int | None) -> None:
    if content.type != "custom_code":
        return
    others = {
        m.name: (m.current.custom_code if m.current.type == "custom_code" else None)
        for m in session.scalars(select(Metric).where(Metric.project_id == project_id, Metric.deleted_at.is_(None)))
        if m.id != except_id
    }
    check_no_cycle(name, content.custom_code, others)


def create_metric(session: Session, project_id: int, body: MetricCreate) -> Metric:
    if body.project is not None and body.project != project_id:
        raise NotFound("project", f"no project with id {body.project} for this API key")
    if body.agent is not None:
        get_agent(session, project_id, body.agent)
    name = body.name.strip()
    if not name:
        raise InvalidInput("name", "must not be blank")
    if "\x00" in name:
        raise InvalidInput("name", "contains a NUL character (\\u0000), which cannot be stored")
    content = validate(MetricContent(**body.model_dump(include=set(MetricContent.names()))))
    _check_name_free(session, project_id, name)
    _check_reads(session, project_id, name, content, None)
    metric = Metric(project_id=project_id, agent_id=body.agent, name=name, current_version=1,
                    label_tolerance=body.label_tolerance)
    session.add(metric)
    session.add(_new_version(metric, 1, content, "created"))
    _flush(session, name)
    return metric


def get_metric(session: Session, project_id: int, metric_id: int, field: str = "id") -> Metric:
    metric = session.get(Metric, metric_id) if 1 <= metric_id <= MAX_ID else None
    if metric is None or metric.project_id != project_id or metric.deleted_at is not None:
        raise NotFound(field, f"no metric with id {metric_id} in this project")
    return metric


def list_metrics(
    session: Session, project_id: int, *, agent_id: int | None = None, offset: int = 0, limit: int = 50
) -> tuple[int, list[Metric]]:
    stmt = select(Metric).where(Metric.project_id == project_id, Metric.deleted_at.is_(None))
    if agent_id is not None:
        get_agent(session, project_id, agent_id)
        stmt = stmt.where(Metric.agent_id == agent_id)
    count = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Metric.id).offset(offset).limit(limit)).all()
    return count, list(rows)


def update_metric(session: Session, project_id: int, metric_id: int, body: MetricPatch) -> tuple[Metric, bool]:
    """Apply a PATCH; returns (metric, whether a new version was made)."""
    metric = get_metric(session, project_id, metric_id)
    sent = body.model_dump(exclude_unset=True)
    note = sent.pop("change_note", None)
    if "name" in sent:
        name = (sent.pop("name") or "").strip()
        if not name:
            raise InvalidInput("name", "must not be blank")
        if "\x00" in name:
            raise InvalidInput("name", "contains a NUL character (\\u0000), which cannot be stored")
        _check_name_free(session, project_id, name, except_id=metric.id)
        metric.name = name
    if "label_tolerance" in sent:  # how labels are compared, not what the judge sees: no new version
        metric.label_tolerance = sent.pop("label_tolerance")
    if "agent" in sent:
        agent_id = sent.pop("agent")
        if agent_id is not None:
            get_agent(session, project_id, agent_id)
        metric.agent_id = agent_id

    current = content_of(metric.current)
    merged = current.as_dict()
    for key, value in sent.items():
        if value is None and key in ("type", "eval_type", "evaluation_trigger", "description"):
            raise InvalidInput(key, "cannot be null")
        merged[key] = value
    # Moving away from enum drops its values unless the request itself sent some.
    if merged["eval_type"] != "enum" and "enum_values" not in sent:
        merged["enum_values"] = None
    if merged["evaluation_trigger"] != "custom" and "trigger_type" not in sent:
        merged["trigger_type"] = None
    content = validate(MetricContent(**merged))
    _check_reads(session, project_id, metric.name, content, metric.id)
    changed = content.content_hash() != current.content_hash()
    if changed:
        number = max(v.version for v in metric.versions) + 1
        session.add(_new_version(metric, number, content, note or "edited"))
        metric.current_version = number
    metric.updated_at = utcnow()
    _flush(session, metric.name)
    return metric, changed


def revert_metric(session: Session, project_id: int, metric_id: int, version: int) -> Metric:
    metric = get_metric(session, project_id, metric_id)
    source = next((v for v in metric.versions if v.version == version), None)
    if source is None:
        have = ", ".join(str(v.version) for v in metric.versions)
        raise NotFound("version", f"metric {metric_id} has no version {version} (it has {have})")
    number = max(v.version for v in metric.versions) + 1
    session.add(_new_version(metric, number, content_of(source), f"reverted to version {version}"))
    metric.current_version = number
    metric.updated_at = utcnow()
    session.flush()
    return metric


def delete_metric(session: Session, project_id: int, metric_id: int) -> None:
    """Soft delete: results and feedback keep pointing at its versions; the name becomes free."""
    metric = get_metric(session, project_id, metric_id)
    metric.deleted_at = utcnow()
    session.flush()


def version_to_dict(v: MetricVersion) -> dict[str, Any]:
    return {
        "id": v.id,
        "version": v.version,
        **content_of(v).as_dict(),
        "content_hash": v.content_hash,
        "change_note": v.change_note,
        "created_at": v.created_at.isoformat(),
    }


def metric_to_dict(m: Metric) -> dict[str, Any]:
    cur = m.current
    return {
        "id": m.id,
        "name": m.name,
        **content_of(cur).as_dict(),
        "agent": m.agent_id,
        "project": m.project_id,
        "label_tolerance": m.label_tolerance,
        "version": m.current_version,
        "version_id": cur.id,
        "num_versions": len(m.versions),
        "created_at": m.created_at.isoformat(),
        "updated_at": m.updated_at.isoformat(),
    }
