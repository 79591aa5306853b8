"""Scores of a prompt on labelled items, and the plain verdict on baseline vs proposal."""

from __future__ import annotations

import math
import random
from typing import Any

from judgelab.labs.agreement import agreement, wilson
from judgelab.labs.candidates import error_kind

ERROR = "__error__"  # an evaluation that failed counts as wrong, never as a verdict


def same(label: Any, predicted: Any) -> bool:
    """Did the judge give the label's value? An error never counts as right."""
    return predicted != ERROR and repr(label) == repr(predicted)


def errors_of(items: list[dict[str, Any]], predicted: list[Any]) -> list[tuple[dict[str, Any], Any]]:
    """(item, what the judge said) where it disagrees with the label."""
    return [(i, p) for i, p in zip(items, predicted) if not same(i["label"], p)]


def scores(items: list[dict[str, Any]], predicted: list[Any]) -> dict[str, Any]:
    correct = [same(i["label"], p) for i, p in zip(items, predicted)]
    usable = [(i["label"], p) for i, p in zip(items, predicted) if p != ERROR]
    stats = agreement([repr(e) for e, _ in usable], [repr(p) for _, p in usable]) if usable else None
    return {
        "num_correct": sum(correct),
        "num_total": len(items),
        "errors": sum(p == ERROR for p in predicted),
        "accuracy": None if stats is None else {**stats.accuracy.as_dict(),
                                                "value": sum(correct) / len(items) if items else None},
        "kappa": None if stats is None else stats.kappa.as_dict(),
        "mcc": None if stats is None else stats.mcc.as_dict(),
        # The share of passes among the labels: what a kappa or accuracy must be read against.
        "base_rate": (wilson(sum(i["label"] is True for i in items), len(items)).as_dict()
                      if items and all(isinstance(i["label"], bool) for i in items) else None),
    }


def failure_modes(items: list[dict[str, Any]], base: list[Any], new: list[Any]) -> list[dict[str, Any]]:
    """Per kind of baseline error: how many the proposal fixed; plus what it broke."""
    modes: dict[str, dict[str, Any]] = {}
    broken = 0
    for item, b, n in zip(items, base, new):
        if not same(item["label"], b):
            kind = error_kind(item["label"], None if b == ERROR else b)
            mode = modes.setdefault(kind, {"mode": kind, "baseline_errors": 0, "fixed": 0})
            mode["baseline_errors"] += 1
            mode["fixed"] += same(item["label"], n)
        elif not same(item["label"], n):
            broken += 1
    return [*modes.values(), {"mode": "previously right, now wrong", "baseline_errors": 0, "fixed": -broken}]


def correct_diffs(items: list[dict[str, Any]], base: list[Any], new: list[Any]) -> list[float]:
    """Per item: 1 when the proposal fixed it, -1 when it broke it, 0 otherwise."""
    return [float(int(same(i["label"], b2)) - int(same(i["label"], b1))) for i, b1, b2 in zip(items, base, new)]


def verdict(items: list[dict[str, Any]], base: list[Any], new: list[Any], noise_floor: float, seed: int = 0) -> dict[str, Any]:
    """Improved only when the held-out gain beats the noise floor and its 95 % interval (paired
    bootstrap over items) excludes zero; regressed when the interval lies below zero."""
    return paired_verdict(correct_diffs(items, base, new), noise_floor, seed)


def paired_verdict(diffs: list[float], noise_floor: float, seed: int = 0) -> dict[str, Any]:
    """The verdict from per-item differences in correctness (averaged over repeats, when cross-validated)."""
    n = len(diffs)
    if n == 0:
        return {"verdict": "not significant", "gain": None, "low": None, "high": None,
                "explanation": "no held-out items to measure on"}
    gain = sum(diffs) / n
    rng = random.Random(seed)
    boots = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(2000))
    low, high = boots[int(0.025 * 1999)], boots[int(math.ceil(0.975 * 1999))]
    sd = math.sqrt(sum((d - gain) ** 2 for d in diffs) / max(1, n - 1))
    needed = math.ceil((1.96 * sd / gain) ** 2) if gain > 0 and sd > 0 else None
    if gain > noise_floor and low > 0:
        word, why = "improved", "the held-out gain beats the noise floor and its interval excludes zero"
    elif high < 0:
        word, why = "regressed", "the proposal is worse on the held-out calls"
    else:
        word = "not significant"
        why = (f"the held-out gain's interval includes zero (n = {n})"
               + (f"; about {needed} held-out labels would make a gain this size significant" if needed and needed > n else "")
               if not (gain > 0 and low > 0) else f"the gain does not exceed the noise floor ({noise_floor:.2f})")
    return {"verdict": word, "gain": gain, "low": low, "high": high, "n": n, "noise_floor": noise_floor,
            "labels_needed": needed, "explanation": why}
