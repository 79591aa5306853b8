"""Fit a call into the judge's context: a transcript too long for the model is excerpted, never
sent to fail (a failed call would count as a wrong verdict in labs and an error in a job).

The excerpt keeps the opening and closing turns, tool calls, and the turns that share the most
words with the criterion, in order, with every gap marked by how many turns it left out. The
outcome says the call was excerpted, so nobody reads the verdict as one on the whole call.
"""

from __future__ import annotations

import re
from typing import Any

from judgelab.calls.transcripts import render_text

_WORD = re.compile(r"[a-z]{4,}")
HEAD, TAIL = 3, 3


def _size(call: dict[str, Any]) -> int:
    turns = call.get("transcript_json") or []
    text = render_text(turns) if turns else (call.get("transcript") or "")
    return len(text) + len(call.get("agent_description") or "") + len(str(call.get("metadata") or "")) + len(
        str(call.get("dynamic_variables") or ""))


def fit(call: dict[str, Any], criterion: str, max_chars: int) -> tuple[dict[str, Any], str | None]:
    """(the call to judge, a note when it was excerpted)."""
    total = _size(call)
    if total <= max_chars:
        return call, None
    description = (call.get("agent_description") or "")
    if len(description) > max_chars // 4:
        description = description[: max_chars // 4] + "\n[... the rest of the agent's instructions was left out ...]"
    budget = max(500, max_chars - len(description))
    turns = call.get("transcript_json") or []
    if not turns:
        text = call.get("transcript") or ""
        half = budget // 2
        kept = text[:half] + f"\n[... {len(text) - 2 * half} characters left out ...]\n" + text[-half:]
        note = (f"the transcript ({len(text)} characters) is longer than the judge's context allows ({max_chars}); "
                "the judge saw its beginning and end")
        return {**call, "transcript": kept, "agent_description": description}, note
    terms = set(_WORD.findall(criterion.lower()))
    lengths = [len(render_text([t])) + 1 for t in turns]
    must = set(range(min(HEAD, len(turns)))) | set(range(max(0, len(turns) - TAIL), len(turns)))
    must |= {i for i, t in enumerate(turns) if t.get("tool_calls") or str(t.get("role", "")).startswith("tool")}
    hits = [len(terms & set(_WORD.findall(str(t.get("content") or "").lower()))) for t in turns]
    # The turns nearest the criterion, then their neighbours (a question's answer shares no words
    # with the criterion): nothing else, so the excerpt is the decisive part, not filler.
    ranked = sorted((i for i in range(len(turns)) if hits[i]), key=lambda i: (-hits[i], i))
    ranked += [j for i in ranked for j in (i + 1, i - 1) if 0 <= j < len(turns) and not hits[j]]
    keep: set[int] = set()
    used = 0
    for i in sorted(must) + ranked:
        if i in keep:
            continue
        if used + lengths[i] > budget:
            if i in must:
                continue
            break
        keep.add(i)
        used += lengths[i]
    out: list[dict[str, Any]] = []
    last = -1
    for i in sorted(keep):
        if i > last + 1:
            out.append({"role": "system", "content": f"[... {i - last - 1} turns left out to fit the judge's context ...]"})
        out.append(turns[i])
        last = i
    if last < len(turns) - 1:
        out.append({"role": "system", "content": f"[... {len(turns) - 1 - last} turns left out ...]"})
    note = (f"the call ({total} characters) is longer than the judge's context allows ({max_chars}): the judge saw "
            f"{len(keep)} of its {len(turns)} turns (the first and last, tool calls, and those nearest the criterion)")
    return {**call, "transcript_json": out, "agent_description": description}, note
