"""The words a criterion turns on: used to find decisive turns (excerpts, convert-to-code).

Short decisive words ("yes", "no", "ok") count: a confirmation metric is about them. Words of
judgelab's own section headers ("reviewers'", "rule", "override") never do: they are template,
not criterion.
"""

from __future__ import annotations

import re
from collections import Counter

from judgelab.labs.misalignment import STOPWORDS
from judgelab.labs.rules import split_rules

WORD = re.compile(r"[a-z][a-z'-]*[a-z]|[a-z]")
QUOTED = re.compile(r"[\"“‘]([^\"”’]{2,60})[\"”’]|(?<![a-z])'([^']{2,60})'(?![a-z])")
DECISIVE = frozenset("yes yeah yep no nope ok okay sure".split())
TEMPLATE = frozenset(
    "rule rules learned reviewer reviewers reviewers' feedback override overrides conflict conflicts above text "
    "graded example examples calibration criterion conversation transcript only exact word when whether before "
    "after other answer apply applies".split())


def stem(word: str) -> str:
    """Crude, on purpose: "booking" and "books" should find "book" in a turn."""
    word = word.removesuffix("'s").rstrip("'")
    for suffix in ("ations", "ation", "ings", "ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            # "cancelling" -> "cancel", so it finds cancel_reservation too
            return word[:-1] if len(word) > 4 and word[-1] == word[-2] and word[-1] not in "aeiouys" else word
    return word


def content_words(text: str) -> list[str]:
    out = []
    for w in WORD.findall(text.lower()):
        w = w.removesuffix("'s").rstrip("'")
        if w in DECISIVE:
            out.append(w)
        elif len(w) >= 4 and w not in STOPWORDS and w not in TEMPLATE:
            out.append(stem(w))
    return out


def phrases(text: str) -> list[str]:
    """Quoted phrases ("go ahead", 'sure'), lower-cased."""
    return [(a or b).strip().lower() for a, b in QUOTED.findall(text) if (a or b).strip()]


def keywords(description: str, reasons: list[str], limit: int = 12) -> list[str]:
    """The criterion's quoted phrases and content words first (its rules included, its own headers
    and examples not), then words and phrases reviewers' reasons share (two reasons or more)."""
    body, rules, _examples = split_rules(description)
    text = body + "\n" + "\n".join(rules)
    ranked = list(dict.fromkeys(phrases(text) + content_words(text)))
    counts: Counter[str] = Counter()
    for r in reasons:
        counts.update(set(phrases(r)) | set(content_words(r)))
    ranked += [w for w, n in counts.most_common() if n >= 2 and w not in ranked]
    return ranked[:limit]
