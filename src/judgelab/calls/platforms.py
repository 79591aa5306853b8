"""Calls as voice platforms send them: Vapi, Retell and ElevenLabs transcripts mapped to judgelab's
turns, their end-of-call webhook events mapped to `observe` payloads, and their signatures checked.

Field names follow each platform's public docs (Vapi's end-of-call-report and server
authentication, Retell's webhook events and `x-retell-signature`, ElevenLabs' post-call webhooks
and `ElevenLabs-Signature`). Everything a platform sends that judgelab has no field for goes into
`metadata` under the platform's own name, so nothing is lost.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime, timezone
from typing import Any

from judgelab.calls.transcripts import describe_tool_call
from judgelab.errors import FieldError

PLATFORMS = ("vapi", "retell", "elevenlabs")
_VAPI_ROLES = {"bot": "agent", "assistant": "agent", "user": "user", "system": "system", "tool_calls": "tool_call",
               "tool_call_result": "tool_result", "function_call": "tool_call", "function_result": "tool_result"}
_RETELL_ROLES = {"agent": "agent", "user": "user", "tool_call_invocation": "tool_call", "tool_call_result": "tool_result",
                 "transfer_target": "agent", "node_transition": "system", "dtmf": "user"}


def _seconds(value: Any, scale: float = 1.0) -> float | None:
    return float(value) / scale if isinstance(value, int | float) and not isinstance(value, bool) else None


def _entries(raw: Any, field: str, roles: dict[str, str], platform: str) -> tuple[list[tuple[dict[str, Any], str]], list[FieldError]]:
    """(message, judgelab role) for each message of a platform's list, and a FieldError for each that
    is not an object or has a role the platform does not document."""
    if not isinstance(raw, list):
        return [], [FieldError(field, f"expected a list of messages, got {type(raw).__name__}")]
    out, errors = [], []
    for n, m in enumerate(raw):
        if not isinstance(m, dict):
            errors.append(FieldError(f"{field}[{n}]", "expected an object"))
        elif (role := roles.get(str(m.get("role", "")).lower())) is None:
            errors.append(FieldError(f"{field}[{n}].role", f"unknown {platform} role {m.get('role')!r}"))
        else:
            out.append((m, role))
    return out, errors


def vapi_turns(raw: Any, field: str = "transcript_json") -> tuple[list[dict[str, Any]], list[FieldError]]:
    """Vapi's `artifact.messages`: role bot / user / system / tool_calls / tool_call_result, `message`,
    `secondsFromStart`, `duration` (ms). The system message is the agent's prompt, not a turn."""
    entries, errors = _entries(raw, field, _VAPI_ROLES, "Vapi")
    turns = []
    for m, role in entries:
        if role == "system":
            continue
        start = _seconds(m.get("secondsFromStart"))
        duration = _seconds(m.get("duration"), 1000.0)
        turn: dict[str, Any] = {"role": role, "content": str(m.get("message") or m.get("result") or ""),
                                "start_time": start, "end_time": start + duration if start is not None and duration else None}
        if role == "tool_call":
            calls = m.get("toolCalls") or m.get("tool_calls") or []
            turn["tool_calls"] = calls
            turn["content"] = turn["content"] or "; ".join(describe_tool_call(c) for c in calls if isinstance(c, dict))
        if role == "tool_result":
            turn["name"] = m.get("name")
            turn["tool_call_id"] = m.get("toolCallId")
        turns.append(turn)
    return turns, errors


def retell_turns(raw: Any, field: str = "transcript_json") -> tuple[list[dict[str, Any]], list[FieldError]]:
    """Retell's `transcript_with_tool_calls` (or `transcript_object`): role agent / user /
    tool_call_invocation / tool_call_result, `content`, word timings in `words`."""
    entries, errors = _entries(raw, field, _RETELL_ROLES, "Retell")
    turns = []
    for m, role in entries:
        words = [w for w in m.get("words") or [] if isinstance(w, dict)]
        turn: dict[str, Any] = {"role": role, "content": str(m.get("content") or ""),
                                "start_time": _seconds(words[0].get("start")) if words else None,
                                "end_time": _seconds(words[-1].get("end")) if words else None}
        if role == "tool_call":
            turn["tool_calls"] = [{"id": m.get("tool_call_id"), "type": "function",
                                   "function": {"name": m.get("name"), "arguments": m.get("arguments") or ""}}]
            turn["content"] = turn["content"] or describe_tool_call(turn["tool_calls"][0])
        if role == "tool_result":
            turn["tool_call_id"] = m.get("tool_call_id")
        turns.append(turn)
    return turns, errors


def elevenlabs_turns(raw: Any, field: str = "transcript_json") -> tuple[list[dict[str, Any]], list[FieldError]]:
    """ElevenLabs' `data.transcript`: role agent / user, `message`, `time_in_call_secs`, and the
    turn's `tool_calls` / `tool_results`, which become turns of their own."""
    entries, errors = _entries(raw, field, {"agent": "agent", "user": "user"}, "ElevenLabs")
    turns: list[dict[str, Any]] = []
    for m, role in entries:
        start = _seconds(m.get("time_in_call_secs"))
        for c in m.get("tool_calls") or []:
            if isinstance(c, dict):
                call = {"id": c.get("request_id"), "type": "function",
                        "function": {"name": c.get("tool_name"), "arguments": c.get("params_as_json") or ""}}
                turns.append({"role": "tool_call", "start_time": start, "end_time": None,
                              "content": describe_tool_call(call), "tool_calls": [call]})
        if m.get("message"):
            turns.append({"role": role, "content": str(m["message"]), "start_time": start, "end_time": None})
        for r in m.get("tool_results") or []:
            if isinstance(r, dict):
                turns.append({"role": "tool_result", "start_time": start, "end_time": None, "name": r.get("tool_name"),
                              "tool_call_id": r.get("request_id"), "content": str(r.get("result_value") or "")})
    return turns, errors


TURNS = {"vapi": vapi_turns, "retell": retell_turns, "elevenlabs": elevenlabs_turns}


class EventError(ValueError):
    """A malformed event: `field` names what is missing or wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _iso(value: Any, scale: float = 1.0) -> str | None:
    seconds = _seconds(value, scale)
    if seconds is not None:
        return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat()
    return value if isinstance(value, str) and value else None


def _require(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, dict) or obj.get(key) in (None, ""):
        raise EventError(f"{where}.{key}" if where else key, f"the event has no {where + '.' if where else ''}{key}")
    return obj[key]


def event_to_call(platform: str, body: Any) -> dict[str, Any] | None:
    """The observe payload of an end-of-call event, or None for an event judgelab does not store
    (a Vapi status update, Retell's call_started)."""
    if not isinstance(body, dict):
        raise EventError("body", "expected a JSON object")
    return {"vapi": _vapi, "retell": _retell, "elevenlabs": _elevenlabs}[platform](body)


def _vapi(body: dict[str, Any]) -> dict[str, Any] | None:
    message = _require(body, "message", "")
    if not isinstance(message, dict):
        raise EventError("message", "expected an object")
    if message.get("type") != "end-of-call-report":
        return None
    call = _require(message, "call", "message")
    artifact = message.get("artifact") or {}
    messages = artifact.get("messages") if isinstance(artifact, dict) else None
    if messages is None:
        raise EventError("message.artifact.messages", "the end-of-call-report has no artifact.messages")
    system = next((m.get("message") for m in messages if isinstance(m, dict) and m.get("role") == "system"), None)
    assistant = message.get("assistant") or call.get("assistant") or {}
    overrides = call.get("assistantOverrides") or {}
    return {
        "call_id": str(_require(call, "id", "message.call")),
        "agent": str(call.get("assistantId") or assistant.get("name") or "vapi"),
        "transcript_type": "vapi", "transcript_json": messages,
        **({"agent_description": system} if system else {}),
        "call_ended_reason": message.get("endedReason") or call.get("endedReason"),
        "voice_recording_url": artifact.get("recordingUrl") or message.get("recordingUrl"),
        "timestamp": message.get("startedAt") or call.get("startedAt") or call.get("createdAt"),
        "dynamic_variables": overrides.get("variableValues") or {},
        "metadata": {"source_platform": "vapi", "vapi": {k: message.get(k) for k in (
            "cost", "durationSeconds", "analysis", "summary", "endedAt") if message.get(k) is not None}},
    }


def _retell(body: dict[str, Any]) -> dict[str, Any] | None:
    event = _require(body, "event", "")
    if event not in ("call_ended", "call_analyzed"):
        return None
    call = _require(body, "call", "")
    items = call.get("transcript_with_tool_calls") or call.get("transcript_object")
    if items is None:
        raise EventError("call.transcript_object", "the event has neither call.transcript_with_tool_calls nor "
                         "call.transcript_object")
    start, end = _seconds(call.get("start_timestamp")), _seconds(call.get("end_timestamp"))
    meta = {"source_platform": "retell", "retell": {k: call.get(k) for k in (
        "call_analysis", "call_type", "from_number", "to_number", "call_cost") if call.get(k) is not None}}
    meta.update(call.get("metadata") or {})
    return {
        "call_id": str(_require(call, "call_id", "call")), "agent": str(call.get("agent_id") or "retell"),
        "transcript_type": "retell", "transcript_json": items,
        "call_ended_reason": call.get("disconnection_reason"), "voice_recording_url": call.get("recording_url"),
        "timestamp": _iso(start, 1000.0), **({"duration": (end - start) / 1000.0} if start and end else {}),
        "dynamic_variables": call.get("retell_llm_dynamic_variables") or {}, "metadata": meta,
    }


def _elevenlabs(body: dict[str, Any]) -> dict[str, Any] | None:
    if body.get("type") != "post_call_transcription":
        return None
    data = _require(body, "data", "")
    transcript = data.get("transcript")
    if transcript is None:
        raise EventError("data.transcript", "the event has no data.transcript")
    meta = data.get("metadata") or {}
    initiation = data.get("conversation_initiation_client_data") or {}
    return {
        "call_id": str(_require(data, "conversation_id", "data")), "agent": str(data.get("agent_id") or "elevenlabs"),
        "transcript_type": "elevenlabs", "transcript_json": transcript,
        "call_ended_reason": meta.get("termination_reason"),
        "timestamp": _iso(meta.get("start_time_unix_secs")),
        **({"duration": float(meta["call_duration_secs"])} if _seconds(meta.get("call_duration_secs")) else {}),
        "dynamic_variables": initiation.get("dynamic_variables") or {},
        "metadata": {"source_platform": "elevenlabs", "elevenlabs": {k: data.get(k) for k in ("analysis", "status")
                                                                     if data.get(k) is not None}},
    }


TOLERANCE = 30 * 60  # seconds a signed timestamp may be old (ElevenLabs documents 30 minutes)


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(platform: str, secret: str, headers: dict[str, str], body: bytes, now: float | None = None) -> str | None:
    """None when the request carries a valid signature for `secret`, else why not."""
    now = time.time() if now is None else now
    if platform == "vapi":
        # A server-URL secret token (X-Vapi-Secret, or X-Vapi-Signature in the credential form), or
        # an HMAC credential: x-signature = hex HMAC-SHA256 of "{x-timestamp}.{body}".
        token = headers.get("x-vapi-secret") or headers.get("x-vapi-signature")
        if token:
            return None if _equal(token, secret) else "the Vapi secret does not match"
        signature, stamp = headers.get("x-signature"), headers.get("x-timestamp")
        if not signature or not stamp:
            return "no X-Vapi-Secret, X-Vapi-Signature or x-signature header"
        return _check(_hmac(secret, stamp.encode() + b"." + body), signature.removeprefix("sha256="), stamp, now, 1.0)
    if platform == "retell":
        # x-retell-signature: v=<ms>,d=<hex HMAC-SHA256 of body + timestamp, keyed by the API key>.
        parts = dict(p.split("=", 1) for p in headers.get("x-retell-signature", "").split(",") if "=" in p)
        if "v" not in parts or "d" not in parts:
            return "no x-retell-signature header of the form v=<timestamp>,d=<digest>"
        return _check(_hmac(secret, body + parts["v"].encode()), parts["d"], parts["v"], now, 1000.0)
    if platform == "elevenlabs":
        # ElevenLabs-Signature: t=<s>,v0=<hex HMAC-SHA256 of "{t}.{body}">.
        parts = dict(p.split("=", 1) for p in headers.get("elevenlabs-signature", "").split(",") if "=" in p)
        if "t" not in parts or "v0" not in parts:
            return "no ElevenLabs-Signature header of the form t=<timestamp>,v0=<digest>"
        return _check(_hmac(secret, parts["t"].encode() + b"." + body), parts["v0"], parts["t"], now, 1.0)
    return f"unknown platform {platform!r}"


def _check(expected: str, given: str, stamp: str, now: float, scale: float) -> str | None:
    try:
        age = abs(now - float(stamp) / scale)
    except ValueError:
        return "the signature's timestamp is not a number"
    if age > TOLERANCE:
        return f"the signature is {int(age)} s old (more than {TOLERANCE} s): a replay is refused"
    return None if _equal(expected, given) else "the signature does not match the body"


def dumps(body: Any) -> bytes:
    """A body as a platform would send it (tests and fixtures sign these exact bytes)."""
    return json.dumps(body, separators=(",", ":")).encode()
