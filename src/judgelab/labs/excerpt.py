"""The part of a transcript a reviewer (or the rewriter) needs: the turns that share words with the
criterion, the judge's explanation or the reviewer's reason, that one of them quotes or cites by
time, and tool calls, with a turn either side."""

from __future__ import annotations

import re
from typing import Any

from judgelab.calls.transcripts import render_text
from judgelab.labs.misalignment import STOPWORDS
from judgelab.labs.terms import TEMPLATE, keywords, stem

_WORD = re.compile(r"[a-z][a-z'-]{3,}")
_CLOCK = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_QUOTE = re.compile(r"[\"“'‘]([^\"”'’]{3,120})[\"”'’]")
_TURN_NO = re.compile(r"\bturn\s+(\d{1,4})\b", re.I)
_LINE = re.compile(r"^\s*(?:\[(\d{1,2}):(\d{2})\]\s*)?([A-Za-z][\w ]{0,24}):\s?(.*)$")


def _terms(text: str) -> set[str]:
    return {stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS and w not in TEMPLATE}


def turns_of(call: dict[str, Any]) -> list[dict[str, Any]]:
    """The call's turns; a plain-text transcript is read line by line ("Speaker: text", an optional
    [mm:ss] clock), a line without a speaker continuing the turn above."""
    turns = call.get("transcript_json") or []
    if turns:
        return list(turns)
    out: list[dict[str, Any]] = []
    for line in (call.get("transcript") or "").splitlines():
        m = _LINE.match(line)
        if m:
            start = int(m.group(1)) * 60 + int(m.group(2)) if m.group(1) else None
            out.append({"role": m.group(3).strip().lower(), "content": m.group(4), "start_time": start})
        elif line.strip():
            if out:
                out[-1]["content"] = (out[-1]["content"] + "\n" + line).strip()
            else:
                out.append({"role": "unknown", "content": line.strip(), "start_time": None})
    return out


def excerpt(turns: list[dict[str, Any]], criterion: str, explanation: str, *, reason: str = "", around: int = 1,
            limit: int = 9) -> list[int]:
    """Indices of the turns to show, in order; the first turns when nothing matches."""
    if not turns:
        return []
    cues = f"{explanation or ''}\n{reason or ''}"
    terms = set(keywords(criterion, [])) | _terms(cues)
    cited = {int(m) * 60 + int(s) for m, s in _CLOCK.findall(cues)}
    quotes = [q.lower().strip() for q in _QUOTE.findall(cues)]
    numbered = {int(n) - 1 for n in _TURN_NO.findall(cues)}
    scored = []
    for i, turn in enumerate(turns):
        content = str(turn.get("content") or "")
        hits = len(terms & _terms(content))
        start = turn.get("start_time")
        if isinstance(start, int | float) and any(abs(start - c) <= 3 for c in cited):
            hits += 5
        if any(q and q in content.lower() for q in quotes):
            hits += 6
        if i in numbered:
            hits += 5
        if turn.get("tool_calls") or str(turn.get("role", "")).lower() in ("tool_call", "tool_calls", "function_call"):
            hits += 2
        if hits:
            scored.append((hits, i))
    if not scored:
        return list(range(min(limit, len(turns))))
    best = sorted(i for _h, i in sorted(scored, reverse=True)[: max(1, limit // (2 * around + 1))])
    picked = sorted({j for i in best for j in range(i - around, i + around + 1) if 0 <= j < len(turns)})
    return picked[:limit]


def moments(call: dict[str, Any], criterion: str, explanation: str = "", reason: str = "", *,
            budget: int = 1500) -> str:
    """The decisive turns as text, numbered as in the whole call, gaps marked, within `budget`
    characters (the best-scoring turns are kept when the budget is short)."""
    turns = turns_of(call)
    if not turns:
        return ""
    picked = excerpt(turns, criterion, explanation, reason=reason, limit=9)
    lines: list[str] = []
    last = -1
    for i in picked:
        if i != last + 1:
            lines.append("[...]")
        lines.append(f"(turn {i + 1}) " + render_text([turns[i]], indent_continuations=True))
        last = i
    if last < len(turns) - 1:
        lines.append("[...]")
    text = "\n".join(lines)
    if len(text) > budget:
        text = text[: budget - 6].rstrip() + " [...]"
    return text
