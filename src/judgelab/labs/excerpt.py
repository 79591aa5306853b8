"""The part of a transcript a reviewer needs to judge a verdict: turns that share words with the
criterion or the judge's explanation, or that the explanation cites by time, with a turn either side."""

from __future__ import annotations

import re
from typing import Any

from judgelab.labs.misalignment import STOPWORDS
from judgelab.labs.to_code import EXTRA_STOPWORDS, keywords, stem

_WORD = re.compile(r"[a-z][a-z'-]{3,}")
_CLOCK = re.compile(r"\b(\d{1,2}):(\d{2})\b")


def _terms(text: str) -> set[str]:
    return {stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS and w not in EXTRA_STOPWORDS}


def excerpt(turns: list[dict[str, Any]], criterion: str, explanation: str, *, around: int = 1, limit: int = 9) -> list[int]:
    """Indices of the turns to show, in order; the first turns when nothing matches."""
    if not turns:
        return []
    terms = set(keywords(criterion, [])) | _terms(explanation or "")
    cited = {int(m) * 60 + int(s) for m, s in _CLOCK.findall(explanation or "")}
    scored = []
    for i, turn in enumerate(turns):
        hits = len(terms & _terms(str(turn.get("content") or "")))
        start = turn.get("start_time")
        if isinstance(start, int | float) and any(abs(start - c) <= 3 for c in cited):
            hits += 5
        if hits:
            scored.append((hits, i))
    if not scored:
        return list(range(min(limit, len(turns))))
    best = sorted(i for _h, i in sorted(scored, reverse=True)[: max(1, limit // (2 * around + 1))])
    picked = sorted({j for i in best for j in range(i - around, i + around + 1) if 0 <= j < len(turns)})
    return picked[:limit]
