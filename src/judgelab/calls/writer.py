"""Writing validated calls: insert or update by (agent, call_id), all-or-nothing per request.

`import_payloads` validates and writes in chunks, so memory stays flat on large files, and keeps
validating after the first bad line so the error report names every one; the caller's
transaction makes the whole request land or not at all. (Overlapping validation and writing in
two threads was measured slower: the GIL hand-offs cost more than the overlap gained.)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from judgelab.calls.ingest import (
    PreparedCall,
    call_content_hash,
    content_hash,
    prepare_call,
)
from judgelab.config import Settings
from judgelab.db.models import Agent, CallLog
from judgelab.db.types import utcnow
from judgelab.errors import FieldError, InvalidInput
from judgelab.projects.service import resolve_agent

# Core insert on the table (column names as keys), not the ORM's bulk path.
_CALL_TABLE = cast(Table, CallLog.__table__)


@dataclass
class UpsertOutcome:
    ids: list[int] = field(default_factory=list)  # in input order
    created: int = 0
    updated: int = 0


class CallWriter:
    """Writes chunks of prepared calls into one session; once any line is bad it only collects errors."""

    def __init__(
        self,
        session: Session,
        project_id: int,
        *,
        default_agent: int | str | None = None,
        create_missing_agents: bool = False,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self.session = session
        self.project_id = project_id
        self.default_agent = default_agent
        self.create_missing_agents = create_missing_agents
        self.on_progress = on_progress
        self.errors: list[FieldError] = []
        self.outcome = UpsertOutcome()
        self._agents: dict[int | str, Agent | list[FieldError]] = {}  # an agent, or why the ref failed
        self._seen: dict[tuple[int, str], int | None] = {}
        self._done = 0

    def write(self, prepared: list[PreparedCall]) -> None:
        errors = [e for p in prepared for e in p.errors]
        agent_ids = [self._agent_id(p, errors) for p in prepared]
        for p, agent_id in zip(prepared, agent_ids):
            if agent_id is None or p.call_id is None:
                continue
            key = (agent_id, p.call_id)
            if key in self._seen:
                errors.append(FieldError(
                    "call_id", f"{p.call_id!r} appears twice for this agent in one request (first at line {self._seen[key]})", p.line
                ))
            else:
                self._seen[key] = p.line
        if errors or self.errors:
            self.errors += errors
            return
        keys = [(a, p.call_id) for p, a in zip(prepared, agent_ids) if a is not None and p.call_id is not None]
        existing = _ids_of(self.session, keys)
        for p, agent_id in zip(prepared, agent_ids):
            if not p.has_transcript and (p.call_id is None or (agent_id, p.call_id) not in existing):
                errors.append(FieldError("transcript_json", "required for a new call (a list of turns, or `transcript` as text)", p.line))
        if errors:
            self.errors += errors
            return
        self._insert_and_update(prepared, agent_ids, existing)

    def _agent_id(self, p: PreparedCall, errors: list[FieldError]) -> int | None:
        ref = p.agent_ref if p.agent_ref is not None else self.default_agent
        if ref is None:
            errors.append(FieldError("agent", "required: the agent's id or name", p.line))
            return None
        if ref not in self._agents:
            try:
                self._agents[ref] = resolve_agent(self.session, self.project_id, ref, create=self.create_missing_agents)
            except InvalidInput as exc:
                self._agents[ref] = exc.errors
        agent = self._agents[ref]
        if isinstance(agent, list):
            errors += [FieldError(e.field, e.message, p.line) for e in agent]
            return None
        return agent.id

    def _insert_and_update(self, prepared: list[PreparedCall], agent_ids: list[int | None], existing: dict[tuple[int, str], int]) -> None:
        now = utcnow()
        ids: list[int | None] = [None] * len(prepared)
        new_rows: list[dict[str, Any]] = []
        new_positions: list[int] = []
        to_update: dict[int, list[int]] = {}
        for i, (p, agent_id) in enumerate(zip(prepared, agent_ids)):
            assert agent_id is not None
            if p.call_id is not None and (agent_id, p.call_id) in existing:
                to_update.setdefault(existing[(agent_id, p.call_id)], []).append(i)
            else:
                new_rows.append(_new_row(self.project_id, agent_id, p, now))
                new_positions.append(i)
        if new_rows:
            # Plain executemany: RETURNING would make SQLite insert row by row. Ids are read back.
            self.session.execute(insert(_CALL_TABLE), [_columns(row) for row in new_rows])
            created = _ids_of(self.session, [(row["agent_id"], row["call_id"]) for row in new_rows])
            for pos, row in zip(new_positions, new_rows):
                ids[pos] = created[(row["agent_id"], row["call_id"])]
        if to_update:
            for call in self.session.scalars(select(CallLog).where(CallLog.id.in_(list(to_update)))):
                for i in to_update[call.id]:
                    for name, value in prepared[i].values.items():
                        setattr(call, name, value)
                    ids[i] = call.id
                call.content_hash = call_content_hash(call)
            self.session.flush()
        self.outcome.ids += [i for i in ids if i is not None]
        self.outcome.created += len(new_rows)
        self.outcome.updated += len(prepared) - len(new_rows)
        self._done += len(prepared)
        if self.on_progress:
            self.on_progress(self._done)

    def finish(self) -> UpsertOutcome:
        if self.errors:
            raise InvalidInput(errors=sorted(self.errors, key=lambda e: e.line or 0))
        return self.outcome


def upsert_calls(session: Session, project_id: int, prepared: list[PreparedCall], **options: Any) -> UpsertOutcome:
    """Write prepared calls; raises InvalidInput naming every bad line (the caller rolls back)."""
    if not prepared:
        raise InvalidInput("body", "no calls to import")
    writer = CallWriter(session, project_id, **options)
    for start in range(0, len(prepared), 2000):
        writer.write(prepared[start : start + 2000])
    return writer.finish()


def import_payloads(
    session: Session,
    project_id: int,
    payloads: Iterable[tuple[int, Any]],
    settings: Settings,
    *,
    chunk: int = 1000,
    **options: Any,
) -> UpsertOutcome:
    """Validate and write (line number, payload) pairs, chunk by chunk; all-or-nothing.

    A payload may be a FieldError (a line that did not even parse): it is reported with the rest.
    """
    writer = CallWriter(session, project_id, **options)
    batch: list[PreparedCall] = []
    total = 0
    for number, payload in payloads:
        if isinstance(payload, FieldError):
            batch.append(PreparedCall(number, None, None, {}, False, [payload]))
        else:
            batch.append(prepare_call(payload, settings, line=number))
        total += 1
        if len(batch) == chunk:
            writer.write(batch)
            batch = []
    if batch:
        writer.write(batch)
    if total == 0 and not writer.errors:
        raise InvalidInput("body", "no calls: send one JSON object per line")
    return writer.finish()


def _new_row(project_id: int, agent_id: int, p: PreparedCall, now: datetime) -> dict[str, Any]:
    v = p.values
    row: dict[str, Any] = {
        "project_id": project_id,
        "agent_id": agent_id,
        "call_id": p.call_id or uuid.uuid4().hex,
        "timestamp": v.get("timestamp") or now,
        "transcript": v.get("transcript", ""),
        "transcript_json": v.get("transcript_json", []),
        "call_ended_reason": v.get("call_ended_reason"),
        "duration": v.get("duration"),
        "meta": v.get("meta", {}),
        "dynamic_variables": v.get("dynamic_variables", {}),
        "voice_recording_url": v.get("voice_recording_url"),
        "agent_description": v.get("agent_description"),
        "created_at": now,
        "updated_at": now,
    }
    row["content_hash"] = content_hash(row)
    return row


def _columns(row: dict[str, Any]) -> dict[str, Any]:
    """Attribute names to column names (the ORM's `meta` is the `metadata` column)."""
    out = dict(row)
    out["metadata"] = out.pop("meta")
    return out


def _ids_of(session: Session, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], int]:
    by_agent: dict[int, list[str]] = {}
    for agent_id, call_id in keys:
        by_agent.setdefault(agent_id, []).append(call_id)
    found: dict[tuple[int, str], int] = {}
    for agent_id, call_ids in by_agent.items():
        for start in range(0, len(call_ids), 500):
            chunk = call_ids[start : start + 500]
            rows = session.execute(
                select(CallLog.id, CallLog.call_id).where(CallLog.agent_id == agent_id, CallLog.call_id.in_(chunk))
            )
            for call_pk, call_id in rows:
                found[(agent_id, call_id)] = call_pk
    return found
