"""The criterion's one section of learned rules: parsed, merged, generalised, bounded.

A labs run never appends a second block of rules. It reads the rules section the criterion
already has (including the "Reviewers' rules" blocks older versions stacked), adds the new rules,
drops duplicates, and writes one section back. A rule is a general statement: the times, ids,
amounts and names of one call are taken out of it, because a rule like "At 00:12 the customer said
'Sure, go ahead'" teaches the judge nothing about the next call.

Proposals are checked before any judge call is spent on them (`check`): one that echoes the
rewriter's schema placeholder, drops most of the original criterion, or grows it past the length
bound is rejected with a note saying which.
"""

from __future__ import annotations

import re
from typing import Any

RULES_HEADER = "Rules learned from reviewers' feedback (they override the text above where they conflict):"
# Headers earlier versions wrote; a criterion holding any of them is read as one section.
_LEGACY_HEADERS = ("Reviewers' rules (they override the text above where they conflict):",)
EXAMPLES_HEADER = "Graded examples (for calibration; grade the conversation you are given):"
MAX_RULES = 12
MIN_BOUND = 4000  # characters: a proposal may grow a short criterion to this, a long one by half
PLACEHOLDERS = ("<the full edited criterion>", "<one sentence>", "<a general rule>", "<rule>", "<exact sentence")

_TIME = re.compile(r"\b(?:at|around|by|near)?\s*\(?\b\d{1,2}:\d{2}(?::\d{2})?\b\)?,?\s*", re.I)
_TURN = re.compile(r"\b(?:at|in|on)\s+turn\s+\d+,?\s*|\bturn\s+\d+\b", re.I)
_MONEY = re.compile(r"[$€£]\s?\d[\d,]*(?:\.\d+)?|\b\d[\d,]*(?:\.\d+)?\s?(?:dollars|usd|eur|euros)\b", re.I)
_CODE = re.compile(r"\b(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z0-9-]{5,}\b")  # booking refs, flight numbers
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
_NUMBER = re.compile(r"\b\d{3,}\b")
_TITLE_NAME = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|Miss)\.?\s+[A-Z][a-z]+\b")
_CALL_WORDS = re.compile(r"\b(?:in|on) this (?:call|conversation)\b|\bthis customer\b", re.I)
_WORDS = re.compile(r"[a-z0-9']+")


def generalise(text: str) -> str:
    """The rule without one call's details: times and turn numbers go; amounts, references, dates,
    emails and long numbers become what they are."""
    out = _TURN.sub("", _TIME.sub(" ", text))
    out = _MONEY.sub("an amount", out)
    out = _EMAIL.sub("an email address", out)
    out = _DATE.sub("a date", out)
    out = _CODE.sub("a reference", out)
    out = _NUMBER.sub("a number", out)
    out = _TITLE_NAME.sub("the customer", out)
    out = _CALL_WORDS.sub("", out)
    out = re.sub(r"\s+([,.;:])", r"\1", re.sub(r"\s+", " ", out)).strip(" ,;:-")
    return out[:1].upper() + out[1:] if out else ""


def specific(text: str) -> bool:
    """Whether a text still names one call's details."""
    return bool(_TIME.search(text) and re.search(r"\d:\d", text)) or any(
        p.search(text) for p in (_TURN, _MONEY, _CODE, _DATE, _EMAIL, _NUMBER))


_LEADS = ("do not fail a call for this:", "also fail the call when:", "the criterion does apply when:",
          "answer n/a (null) when:")


def _norm(rule: str) -> set[str]:
    text = rule.lower().strip()
    for lead in _LEADS:  # "Do not fail a call for this: X" says what "X" says
        if text.startswith(lead):
            text = text[len(lead):]
    return {w[:6] for w in _WORDS.findall(text) if len(w) > 2}


def same_rule(a: str, b: str, threshold: float = 0.8) -> bool:
    wa, wb = _norm(a), _norm(b)
    if not wa or not wb:
        return a.strip().lower() == b.strip().lower()
    return len(wa & wb) / len(wa | wb) >= threshold


def dedupe(rules: list[str], threshold: float = 0.8) -> list[str]:
    kept: list[str] = []
    for rule in rules:
        if rule and not any(same_rule(rule, k, threshold) for k in kept):
            kept.append(rule)
    return kept


def split_rules(description: str) -> tuple[str, list[str], str]:
    """(the criterion's own text, its rules, its examples section): every rules block found, legacy
    headers included, read as one list."""
    text = description.rstrip()
    examples = ""
    if EXAMPLES_HEADER in text:
        text, _, rest = text.partition(EXAMPLES_HEADER)
        examples = EXAMPLES_HEADER + rest
        text = text.rstrip()
    rules: list[str] = []
    for header in (RULES_HEADER, *_LEGACY_HEADERS):
        while header in text:
            before, _, after = text.partition(header)
            block, _sep, tail = after.partition("\n\n")
            rules += [line.strip()[2:].strip() for line in block.strip().splitlines() if line.strip().startswith("- ")]
            text = (before.rstrip() + ("\n\n" + tail.strip() if tail.strip() else "")).rstrip()
    return text, dedupe(rules), examples.strip()


def render(body: str, rules: list[str], examples: str = "") -> str:
    out = body.rstrip()
    if rules:
        out += "\n\n" + RULES_HEADER + "\n" + "\n".join(f"- {r}" for r in rules)
    if examples:
        out += "\n\n" + examples.strip()
    return out


def bound(original: str) -> int:
    return max(MIN_BOUND, int(len(original) * 1.5))


def with_rules(description: str, new: list[str], notes: list[str] | None = None) -> str:
    """The criterion with `new` rules merged into its one rules section (generalised, deduplicated);
    past the length bound, near-duplicate rules are merged and the oldest dropped, with a note."""
    body, rules, examples = split_rules(description)
    merged = dedupe(rules + [g for g in (generalise(r) for r in new) if g])
    limit = bound(body)
    if len(merged) > MAX_RULES or len(render(body, merged, examples)) > limit:
        before = len(merged)
        merged = dedupe(merged, threshold=0.5)
        while merged and (len(merged) > MAX_RULES or len(render(body, merged, examples)) > limit):
            merged.pop(0)
        if notes is not None:
            notes.append(f"the rules section was consolidated: {before} rules became {len(merged)} (near-duplicates "
                         f"merged, oldest dropped) to keep the criterion under {limit} characters")
    return render(body, merged, examples)


def merge(a: str, b: str) -> str:
    """GEPA's merge step for this program: one candidate's criterion with both candidates' rules."""
    _body_b, rules_b, _ex = split_rules(b)
    return with_rules(a, rules_b)


def check(original: str, proposed: str) -> str | None:
    """Why a proposed criterion must not be judged at all, or None when it may."""
    lowered = proposed.lower()
    if any(p in lowered for p in PLACEHOLDERS) or re.fullmatch(r"\s*<[^>]{0,80}>\s*", proposed):
        return "it echoes the answer format's placeholder instead of a criterion"
    body, _rules, _ex = split_rules(original)
    new_body, _r, _e = split_rules(proposed)
    kept = _norm(body) & _norm(new_body)
    if _norm(body) and len(kept) < 0.5 * len(_norm(body)):
        return f"it drops most of the original criterion (keeps {len(kept)} of its {len(_norm(body))} words)"
    if len(proposed) > bound(body) and len(proposed) > len(original):
        return f"it grows the criterion to {len(proposed)} characters, past the bound of {bound(body)}"
    if len(new_body) < 0.5 * len(body):
        return f"it shrinks the criterion's own text from {len(body)} to {len(new_body)} characters"
    return None


def from_reasons(groups: list[dict[str, Any]]) -> list[str]:
    """Reviewers' reasons as general rules, one per distinct point: "do not fail for" for false
    fails, extra failure conditions for false passes, scope rules for N/A errors."""
    lead = {"false fail": "Do not fail a call for this: ", "false pass": "Also fail the call when: ",
            "unexpected N/A": "The criterion does apply when: ", "should have been N/A": "Answer N/A (null) when: "}
    rules: list[str] = []
    for g in groups:
        prefix = lead.get(g["kind"])
        if prefix is None:
            continue
        seen: list[str] = []
        for item, _predicted in g["members"]:
            reason = generalise((item.get("reason") or "").strip())
            if len(_norm(reason)) >= 2 and not any(same_rule(reason, s) for s in seen):
                seen.append(reason)
        rules += [prefix + r[:1].lower() + r[1:] for r in seen[:4]]
    return dedupe(rules)
