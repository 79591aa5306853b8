"""Ingesting calls: validate one payload (observe) or many (bulk import), then insert or update.

Re-sending a `call_id` an agent already has updates that call in place; fields left out keep
their stored values. A bulk request is all-or-nothing: any bad line rejects the whole request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from judgelab.calls import platforms
from judgelab.calls import transcripts as tx
from judgelab.config import Settings
from judgelab.db.models import CallLog
from judgelab.errors import FieldError, from_pydantic
from judgelab.jsonutil import check_json_value, stable_hash

MAX_ID = 2**31 - 1


class CallIn(BaseModel):
    """One call as sent to `POST /observability/v1/observe/` or as one line of a JSONL import."""

    # Unknown fields are kept in metadata rather than rejected (clients of other platforms send extras).
    model_config = ConfigDict(extra="allow")

    agent: int | str | None = Field(default=None, description="agent id, or its exact name")
    agent_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    call_id: Annotated[str, Field(min_length=1, max_length=200)] | int | None = Field(
        default=None, description="your own id for the call; unique per agent; re-sending it updates the call"
    )
    transcript_json: list[Any] | str | None = None
    transcript: str | None = Field(default=None, description="plain-text transcript, when there is no transcript_json")
    transcript_type: str | None = Field(default=None, description="native (default), openai, text, vapi, retell or elevenlabs")
    call_ended_reason: Annotated[str, Field(max_length=200)] | None = None
    voice_recording_url: Annotated[str, Field(max_length=2000)] | None = None
    metadata: dict[str, Any] | None = None
    dynamic_variables: dict[str, Any] | None = None
    timestamp: datetime | None = None
    duration: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    agent_description: str | None = None


@dataclass
class PreparedCall:
    line: int | None
    agent_ref: int | str | None
    call_id: str | None
    values: dict[str, Any]  # column attribute -> value, only for the fields the sender gave
    has_transcript: bool
    errors: list[FieldError] = field(default_factory=list)


def prepare_call(payload: Any, settings: Settings, line: int | None = None) -> PreparedCall:
    """Validate one payload without touching the database; errors are collected, not raised."""
    if not isinstance(payload, dict):
        return PreparedCall(line, None, None, {}, False, [FieldError("", "expected a JSON object for the call", line)])
    try:
        data = CallIn.model_validate(payload)
    except ValidationError as exc:
        return PreparedCall(line, None, None, {}, False, from_pydantic(exc.errors(), line))

    errors: list[FieldError] = []
    values: dict[str, Any] = {}
    sent = data.model_fields_set

    ttype = tx.canonical_transcript_type(data.transcript_type)
    if ttype is None:
        errors.append(FieldError("transcript_type", f"expected one of {', '.join(tx.TRANSCRIPT_TYPES)}, got {data.transcript_type!r}"))
    raw_json: Any = data.transcript_json
    if isinstance(raw_json, str):
        if ttype == "text":
            raw_json = None
        else:
            try:
                raw_json = json.loads(raw_json)
            except json.JSONDecodeError as exc:
                errors.append(FieldError("transcript_json", f"is a string but not valid JSON ({exc.msg})"))
                raw_json = None
    text_source = data.transcript if data.transcript is not None else (
        data.transcript_json if isinstance(data.transcript_json, str) and ttype == "text" else None
    )

    if ttype in platforms.TURNS and raw_json is None and data.transcript is not None:
        errors.append(FieldError("transcript_json", f"transcript_type {ttype!r} needs the platform's message list in "
                                 "transcript_json"))
    if ttype == "text" and text_source is None and data.transcript_json is not None:
        errors.append(FieldError("transcript", "transcript_type 'text' needs the transcript as plain text in `transcript`"))
    turns: list[dict[str, Any]] | None = None
    system_prompt: str | None = None
    if ttype is not None and not errors:
        if ttype == "openai" and raw_json is not None:
            turns, system_prompt, errs = tx.openai_turns(raw_json)
            errors += errs
        elif ttype in platforms.TURNS and raw_json is not None:
            turns, errs = platforms.TURNS[ttype](raw_json)
            errors += errs
        elif ttype in ("native", "openai") and raw_json is not None:
            turns, errs = tx.native_turns(raw_json)
            errors += errs
        elif text_source is not None:
            turns, errs = tx.text_turns(text_source)
            errors += errs
    if turns is not None and not errors:
        if len(turns) > settings.max_transcript_turns:
            errors.append(FieldError("transcript_json", f"has {len(turns)} turns; the limit is {settings.max_transcript_turns}"))
        text = tx.render_text(turns)
        if len(text) > settings.max_transcript_chars:
            errors.append(
                FieldError("transcript_json", f"is {len(text)} characters as text; the limit is {settings.max_transcript_chars}")
            )
        if err := check_json_value("transcript_json", turns, settings.max_transcript_chars * 4, finite=False):
            errors.append(err)
        values["transcript_json"] = turns
        values["transcript"] = text
        if "duration" not in sent:
            ends = [t.get("end_time") or t.get("start_time") for t in turns]
            known = [e for e in ends if isinstance(e, float)]
            if known:
                values["duration"] = max(known)

    description = data.agent_description if data.agent_description is not None else system_prompt
    if description is not None:
        if len(description) > settings.max_transcript_chars:
            errors.append(FieldError("agent_description", f"is {len(description)} characters; the limit is {settings.max_transcript_chars}"))
        if "\x00" in description:
            errors.append(FieldError("agent_description", "contains a NUL character (\\u0000), which cannot be stored"))
        values["agent_description"] = description

    metadata = dict(data.metadata or {})
    extras = data.model_extra or {}
    for key, value in extras.items():
        # Explicit metadata wins a name clash; the extra field is still kept, one level down.
        if key in metadata:
            metadata.setdefault("extra_fields", {})[key] = value
        else:
            metadata[key] = value
    if "metadata" in sent or extras:
        values["meta"] = metadata
    if "dynamic_variables" in sent:
        values["dynamic_variables"] = data.dynamic_variables or {}
    for name in ("meta", "dynamic_variables"):
        if name in values and (err := check_json_value("metadata" if name == "meta" else name, values[name], settings.max_json_field_bytes)):
            errors.append(err)
    for name in ("call_ended_reason", "voice_recording_url", "timestamp", "duration"):
        if name in sent:
            values[name] = getattr(data, name)
    for name in ("call_ended_reason", "voice_recording_url"):
        if isinstance(values.get(name), str) and "\x00" in values[name]:
            errors.append(FieldError(name, "contains a NUL character (\\u0000), which cannot be stored"))

    call_id = str(data.call_id) if data.call_id is not None else None
    if call_id is not None and "\x00" in call_id:
        errors.append(FieldError("call_id", "contains a NUL character (\\u0000), which cannot be stored"))
    agent_ref: int | str | None = data.agent_id if data.agent_id is not None else data.agent
    for e in errors:
        e.line = line
    return PreparedCall(line, agent_ref, call_id, values, turns is not None, errors)


_HASHED = ("transcript_json", "agent_description", "dynamic_variables", "meta", "call_ended_reason", "duration")


def content_hash(values: dict[str, Any]) -> str:
    """What a judge sees of the call itself; the evaluation cache keys on it."""
    return stable_hash([values.get(name) for name in _HASHED])


def call_content_hash(c: CallLog) -> str:
    return content_hash({name: getattr(c, name) for name in _HASHED})
