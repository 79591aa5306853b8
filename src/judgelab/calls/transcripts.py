"""Transcript formats: native turns, OpenAI message lists and plain text, all to one canonical form.

A canonical turn is a dict with `role`, `content`, `start_time`, `end_time` (seconds or None), plus
whatever else the source carried (tool call ids, arguments...), kept so nothing is lost.
"""

from __future__ import annotations

import json
import re
from typing import Any

from judgelab.errors import FieldError

# native, OpenAI messages, plain text, and voice platforms' own message shapes (`platforms.py`).
TRANSCRIPT_TYPES = ("native", "openai", "text", "vapi", "retell", "elevenlabs")
# Accepted spellings from other platforms, mapped to ours.
_TYPE_ALIASES = {"cekura": "native", "json": "native", "plain": "text", "messages": "openai", "eleven_labs": "elevenlabs",
                 "11labs": "elevenlabs", "retell_ai": "retell", "retellai": "retell"}

_AGENT_ROLES = {"agent", "assistant", "bot", "ai", "main agent", "main_agent"}
_USER_ROLES = {"user", "customer", "caller", "human", "testing agent", "testing_agent"}
_TOOL_CALL_ROLES = {"tool_call", "tool_calls", "function_call"}
_TOOL_RESULT_ROLES = {"tool", "tool_result", "function", "function_result"}


def canonical_transcript_type(value: str | None) -> str | None:
    """The canonical name of a transcript type, or None when it is not one we read."""
    if value is None:
        return "native"
    v = value.strip().lower()
    v = _TYPE_ALIASES.get(v, v)
    return v if v in TRANSCRIPT_TYPES else None


_LABELS = {
    **{r: "Agent" for r in _AGENT_ROLES},
    **{r: "User" for r in _USER_ROLES},
    **{r: "Tool call" for r in _TOOL_CALL_ROLES},
    **{r: "Tool result" for r in _TOOL_RESULT_ROLES},
}


def speaker_label(role: str) -> str:
    label = _LABELS.get(role)
    if label is not None:
        return label
    r = role.strip().lower()
    return _LABELS.get(r) or role.strip().capitalize() or "Unknown"


def format_clock(seconds: float) -> str:
    total = int(seconds)
    if total < 3600:
        return "%02d:%02d" % divmod(total, 60)
    h, rem = divmod(total, 3600)
    return "%d:%02d:%02d" % (h, *divmod(rem, 60))


def render_text(turns: list[dict[str, Any]], *, indent_continuations: bool = False) -> str:
    """The plain-text transcript: one line per turn, with a clock when the turn has a start time.
    With `indent_continuations` (what judges see), the lines of a multi-line turn after its first
    are indented by four spaces, so turn content cannot forge a line that starts a turn."""
    lines = []
    labels = _LABELS
    for turn in turns:
        content = turn.get("content")
        if not content and turn.get("tool_calls"):
            content = "; ".join(describe_tool_call(c) for c in turn["tool_calls"] if isinstance(c, dict))
        text = "" if content is None else content if content.__class__ is str else str(content)
        if indent_continuations and "\n" in text:
            text = "\n    ".join(text.splitlines())
        role = turn.get("role", "")
        label = labels.get(role) or speaker_label(str(role))
        start = turn.get("start_time")
        if start.__class__ is float or start.__class__ is int:
            total = int(start)
            if total < 3600:
                lines.append("[%02d:%02d] %s: %s" % (total // 60, total % 60, label, text))
            else:
                lines.append(f"[{format_clock(start)}] {label}: {text}")
        else:
            lines.append(f"{label}: {text}")
    return "\n".join(lines)


def describe_tool_call(call: dict[str, Any]) -> str:
    """A tool call as `name(arguments)`, in the OpenAI shape or flat."""
    function = call.get("function")
    fn: dict[str, Any] = function if isinstance(function, dict) else call
    name = fn.get("name", "?")
    args = fn.get("arguments", "")
    if not isinstance(args, str):
        args = json.dumps(args, ensure_ascii=False, sort_keys=True)
    return f"{name}({args})"


def native_turns(raw: Any, field: str = "transcript_json") -> tuple[list[dict[str, Any]], list[FieldError]]:
    """Check a native transcript: a list of objects with a string role and string (or null) content."""
    if not isinstance(raw, list):
        return [], [FieldError(field, f"expected a list of turns {{role, content, start_time, end_time}}, got {_kind(raw)}")]
    turns: list[dict[str, Any]] = []
    errors: list[FieldError] = []
    for i, item in enumerate(raw):
        # Fast path for the common, well-formed turn; anything unusual takes the checked path below.
        if item.__class__ is dict:
            role, content = item.get("role"), item.get("content")
            st, et = item.get("start_time"), item.get("end_time")
            if (
                role.__class__ is str
                and role.strip()
                and (content is None or content.__class__ is str)
                and (st is None or ((st.__class__ is float or st.__class__ is int) and 0 <= st < 1e9))
                and (et is None or ((et.__class__ is float or et.__class__ is int) and 0 <= et < 1e9))
            ):
                # The payload was parsed for this request alone, so normalising in place is safe.
                if st.__class__ is int:
                    item["start_time"] = float(st)
                elif st is None:
                    item["start_time"] = None
                if et.__class__ is int:
                    item["end_time"] = float(et)
                elif et is None:
                    item["end_time"] = None
                if content is None:
                    item["content"] = None
                turns.append(item)
                continue
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            errors.append(FieldError(where, f"expected an object with role and content, got {_kind(item)}"))
            continue
        role = item.get("role")
        if not isinstance(role, str) or not role.strip():
            errors.append(FieldError(f"{where}.role", "expected a non-empty string such as 'agent' or 'user'"))
            continue
        content = item.get("content")
        if content is not None and not isinstance(content, str):
            if isinstance(content, (list, dict)):
                content = json.dumps(content, ensure_ascii=False)
            elif isinstance(content, (int, float)) and not isinstance(content, bool):
                content = str(content)
            else:
                errors.append(FieldError(f"{where}.content", f"expected a string or null, got {_kind(content)}"))
                continue
        turn = dict(item)
        turn["role"] = role
        turn["content"] = content
        for key in ("start_time", "end_time"):
            value = item.get(key)
            if value is None:
                turn[key] = None
            elif value.__class__ is float or value.__class__ is int:
                if 0 <= value < 1e9:  # also false for NaN
                    turn[key] = float(value)
                else:
                    errors.append(FieldError(f"{where}.{key}", "expected seconds from the start of the call (0 or more)"))
            else:
                errors.append(FieldError(f"{where}.{key}", f"expected a number of seconds or null, got {_kind(value)}"))
        turns.append(turn)
    return turns, errors


def openai_turns(messages: Any, field: str = "transcript_json") -> tuple[list[dict[str, Any]], str | None, list[FieldError]]:
    """OpenAI chat messages to canonical turns; the system message becomes the agent description.

    Tool calls become `tool_call` turns and tool messages `tool_result` turns, so a judge sees what
    the agent looked up and what it changed.
    """
    if not isinstance(messages, list):
        return [], None, [FieldError(field, f"expected a list of OpenAI chat messages, got {_kind(messages)}")]
    turns: list[dict[str, Any]] = []
    system_parts: list[str] = []
    errors: list[FieldError] = []
    tool_names: dict[str, str] = {}
    for i, msg in enumerate(messages):
        where = f"{field}[{i}]"
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            errors.append(FieldError(where, "expected a message object with a string role"))
            continue
        role = msg["role"]
        content = _message_text(msg.get("content"))
        if role in ("system", "developer"):
            if content:
                system_parts.append(content)
        elif role == "assistant":
            if content:
                turns.append({"role": "agent", "content": content, "start_time": None, "end_time": None})
            for call in msg.get("tool_calls") or []:
                if not isinstance(call, dict):
                    errors.append(FieldError(f"{where}.tool_calls", "expected objects with id and function"))
                    continue
                function = call.get("function")
                fn: dict[str, Any] = function if isinstance(function, dict) else {}
                name = str(fn.get("name", ""))
                raw_args = fn.get("arguments", "")
                try:
                    arguments = json.loads(raw_args) if isinstance(raw_args, str) and raw_args else raw_args
                except json.JSONDecodeError:
                    arguments = raw_args
                call_id = call.get("id")
                if isinstance(call_id, str):
                    tool_names[call_id] = name
                turns.append(
                    {
                        "role": "tool_call",
                        "content": describe_tool_call(call),
                        "start_time": None,
                        "end_time": None,
                        "tool_name": name,
                        "tool_call_id": call_id,
                        "arguments": arguments,
                    }
                )
        elif role in ("tool", "function"):
            call_id = msg.get("tool_call_id")
            turns.append(
                {
                    "role": "tool_result",
                    "content": content,
                    "start_time": None,
                    "end_time": None,
                    "tool_name": msg.get("name") or tool_names.get(str(call_id), None),
                    "tool_call_id": call_id,
                }
            )
        elif role == "user":
            turns.append({"role": "user", "content": content, "start_time": None, "end_time": None})
        else:
            errors.append(FieldError(f"{where}.role", f"unknown OpenAI role {role!r}"))
    return turns, ("\n\n".join(system_parts) or None), errors


def _message_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


_SPEAKERS = r"agent|assistant|bot|ai|user|customer|caller|human|system|tool"
_TEXT_LINE = re.compile(
    rf"^\s*(?:\[(?P<clock>\d{{1,2}}:\d{{2}}(?::\d{{2}})?(?:\.\d+)?)\]\s*)?(?P<speaker>{_SPEAKERS})\s*:\s?(?P<text>.*)$",
    re.IGNORECASE,
)
_ROLE_OF_SPEAKER = {
    "agent": "agent", "assistant": "agent", "bot": "agent", "ai": "agent",
    "user": "user", "customer": "user", "caller": "user", "human": "user",
    "system": "system", "tool": "tool_result",
}


def looks_like_text_transcript(text: str) -> bool:
    lines = [ln for ln in text.splitlines() if ln.strip()][:20]
    return bool(lines) and sum(bool(_TEXT_LINE.match(ln)) for ln in lines) >= max(1, len(lines) // 2)


def text_turns(text: str, field: str = "transcript") -> tuple[list[dict[str, Any]], list[FieldError]]:
    """`Agent:` / `User:` lines, optionally led by a clock (`[01:23]`); other lines continue the turn."""
    turns: list[dict[str, Any]] = []
    for line in text.splitlines():
        m = _TEXT_LINE.match(line)
        if m:
            clock = m.group("clock")
            turns.append(
                {
                    "role": _ROLE_OF_SPEAKER[m.group("speaker").lower()],
                    "content": m.group("text").strip(),
                    "start_time": parse_clock(clock) if clock else None,
                    "end_time": None,
                }
            )
        elif line.strip():
            if not turns:
                return [], [FieldError(field, "expected lines starting with 'Agent:' or 'User:' (optionally '[mm:ss]' first)")]
            turns[-1]["content"] = (turns[-1]["content"] + "\n" + line.strip()).strip()
    if not turns:
        return [], [FieldError(field, "no 'Agent:' or 'User:' lines found")]
    return turns, []


def parse_clock(clock: str) -> float:
    seconds = 0.0
    for part in clock.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
