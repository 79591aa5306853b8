"""Expected values: reading what reviewers typed, and the label a vote amounts to."""

from __future__ import annotations

import json
import math
from typing import Any

from judgelab.errors import InvalidInput
from judgelab.metrics.definition import BINARY_EVAL_TYPES

NA_WORDS = {"n/a", "na", "none", "null", "not applicable"}
_TRUE = {"true", "pass", "passed", "yes", "y", "1"}
_FALSE = {"false", "fail", "failed", "no", "n", "0"}


def parse_expected(raw: Any) -> Any:
    """Strings are read as JSON when they are JSON ("true", "5"), else kept as the string itself."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            return raw
    return raw


def normalize_expected(raw: Any, eval_type: str, enum_values: list[str] | None, field: str = "expected_value") -> Any:
    """The expected value in the metric's own terms; None means N/A. Raises InvalidInput when it cannot fit."""
    value = parse_expected(raw)
    if value is None or (isinstance(value, str) and value.strip().lower() in NA_WORDS):
        return None
    if eval_type in BINARY_EVAL_TYPES:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 5, 1):
            return value != 0
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise InvalidInput(field, f"expected true (pass), false (fail) or null (N/A) for a binary metric, got {value!r}")
    if eval_type == "enum":
        if isinstance(value, str) and enum_values and value in enum_values:
            return value
        allowed = ", ".join(repr(v) for v in enum_values or [])
        raise InvalidInput(field, f"expected one of {allowed} or null (N/A), got {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(field, f"expected a number or null (N/A) for a {eval_type} metric, got {value!r}")
    return value


def majority(labels: list[Any]) -> tuple[bool, Any]:
    """The one rule for several reviewers of one call (each with their latest vote): (decided, label),
    the label most of them gave; a tie is undecided, and labs asks a person."""
    counts: dict[str, list[Any]] = {}
    for label in labels:
        counts.setdefault(repr(label), []).append(label)
    ranked = sorted(counts.values(), key=len, reverse=True)
    if not ranked or (len(ranked) > 1 and len(ranked[0]) == len(ranked[1])):
        return False, None
    return True, ranked[0][0]


def effective_label(vote: str, has_expected: bool, expected: Any, result_value: Any, eval_type: str) -> tuple[bool, Any]:
    """(known, label): what the reviewer says the right verdict is.

    An explicit expected value wins; an `agree` vote confirms the judge's value; a `disagree` on a
    binary result flips it. A disagree on other eval types without an expected value says only
    "not this", so the label stays unknown.
    """
    if has_expected:
        return True, expected
    if vote == "agree" and result_value is not None:
        return True, result_value
    if vote == "disagree" and eval_type in BINARY_EVAL_TYPES and isinstance(result_value, bool):
        return True, not result_value
    return False, None
