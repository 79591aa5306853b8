"""Scores of a prompt on labelled items, and the plain verdict on baseline vs proposal."""

from __future__ import annotations

from typing import Any

from judgelab.labs.agreement import agreement, wilson
from judgelab.labs.candidates import error_kind
from judgelab.labs.dataset import group_key
from judgelab.labs.significance import decide, exact_test, group_votes

ERROR = "__error__"  # an evaluation that failed counts as wrong, never as a verdict


def same(label: Any, predicted: Any, tolerance: float = 0.0) -> bool:
    """Did the judge give the label's value? Numbers agree within `tolerance` (4 and 4.0 always);
    an error never counts as right."""
    if predicted == ERROR:
        return False
    if _number(label) and _number(predicted):
        return abs(label - predicted) <= tolerance + 1e-9
    return repr(label) == repr(predicted)


def right(item: dict[str, Any], predicted: Any) -> bool:
    return same(item["label"], predicted, item.get("tolerance") or 0.0)


def errors_of(items: list[dict[str, Any]], predicted: list[Any]) -> list[tuple[dict[str, Any], Any]]:
    """(item, what the judge said) where it disagrees with the label."""
    return [(i, p) for i, p in zip(items, predicted) if not right(i, p)]


def scores(items: list[dict[str, Any]], predicted: list[Any]) -> dict[str, Any]:
    correct = [right(i, p) for i, p in zip(items, predicted)]
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
        **numeric_scores(items, predicted),
    }


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def numeric_scores(items: list[dict[str, Any]], predicted: list[Any]) -> dict[str, Any]:
    """For numeric and continuous labels: the mean absolute error and quadratic-weighted kappa (a
    near miss counts as part agreement), which exact-match accuracy and kappa cannot show."""
    pairs = [(float(i["label"]), float(p)) for i, p in zip(items, predicted) if _number(i["label"]) and _number(p)]
    if not pairs:
        return {}
    mae = sum(abs(a - b) for a, b in pairs) / len(pairs)
    return {"mae": mae, "weighted_kappa": weighted_kappa([a for a, _ in pairs], [b for _, b in pairs]), "numeric_n": len(pairs)}


def weighted_kappa(expected: list[float], predicted: list[float]) -> float | None:
    """Cohen's kappa with quadratic weights, over the values seen (as scikit-learn's `weights="quadratic"`)."""
    values = sorted(set(expected) | set(predicted))
    if len(values) < 2:
        return None
    index = {v: k for k, v in enumerate(values)}
    n, size = len(expected), len(values)
    observed = [[0.0] * size for _ in values]
    for e, p in zip(expected, predicted):
        observed[index[e]][index[p]] += 1
    rows = [sum(r) for r in observed]
    cols = [sum(observed[r][c] for r in range(size)) for c in range(size)]
    weight = [[(i - j) ** 2 / (size - 1) ** 2 for j in range(size)] for i in range(size)]
    num = sum(weight[i][j] * observed[i][j] for i in range(size) for j in range(size))
    den = sum(weight[i][j] * rows[i] * cols[j] / n for i in range(size) for j in range(size))
    return None if den == 0 else 1 - num / den


def failure_modes(items: list[dict[str, Any]], base: list[Any], new: list[Any]) -> list[dict[str, Any]]:
    """Per kind of baseline error: how many the proposal fixed; plus what it broke."""
    modes: dict[str, dict[str, Any]] = {}
    broken = 0
    for item, b, n in zip(items, base, new):
        if not right(item, b):
            kind = error_kind(item["label"], None if b == ERROR else b)
            mode = modes.setdefault(kind, {"mode": kind, "baseline_errors": 0, "fixed": 0})
            mode["baseline_errors"] += 1
            mode["fixed"] += right(item, n)
        elif not right(item, n):
            broken += 1
    return [*modes.values(), {"mode": "previously right, now wrong", "baseline_errors": 0, "fixed": -broken}]


def correct_diffs(items: list[dict[str, Any]], base: list[Any], new: list[Any]) -> list[float]:
    """Per item: 1 when the proposal fixed it, -1 when it broke it, 0 otherwise."""
    return [float(int(right(i, b2)) - int(right(i, b1))) for i, b1, b2 in zip(items, base, new)]


def one_class(values: list[Any]) -> bool:
    usable = [repr(v) for v in values if v != ERROR]
    return len(set(usable)) <= 1


def verdict(items: list[dict[str, Any]], base: list[Any], new: list[Any], noise: float | None) -> dict[str, Any]:
    """The exact one-sided sign test on discordant conversations (one vote per group), and the word
    it allows. `improved` is refused when the labels, or the proposal's verdicts, are all one class:
    a judge that answers one thing everywhere cannot be shown to agree with people by them."""
    return grouped_verdict(correct_diffs(items, base, new), [group_key(i) for i in items],
                           noise, labels=[i["label"] for i in items], predicted=new)


def grouped_verdict(diffs: list[float], groups: list[str], noise: float | None, *, labels: list[Any],
                    predicted: list[Any]) -> dict[str, Any]:
    test = exact_test(group_votes(diffs, groups))
    word, why = decide(test, noise=noise)
    if word == "improved" and (one_class(labels) or one_class(predicted)):
        which = "labels" if one_class(labels) else "proposal's verdicts"
        word, why = "not significant", (f"the {which} on these items are all one class, so agreement cannot be told "
                                        "from a constant answer; label calls of the other class too")
    return {"verdict": word, **test, "noise_floor": noise, "test": "exact one-sided sign test (McNemar), one vote "
            "per conversation", "explanation": why}
