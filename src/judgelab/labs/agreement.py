"""Agreement between a judge and human labels, with the numbers a statistician asks for.

Every figure carries n and a 95 % interval: Wilson for proportions (accuracy, TPR, TNR, the base
rate), a seeded percentile bootstrap for Cohen's kappa and MCC (their sampling distributions are
skewed near the edges, where analytic intervals misbehave). "Positive" is pass. Checked against
scikit-learn in the tests; no numpy needed here.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

Z95 = 1.959963984540054
BOOTSTRAP_ROUNDS = 2000


@dataclass(frozen=True)
class Estimate:
    value: float | None  # None: undefined for these data (say, kappa when one label is all there is)
    low: float | None
    high: float | None
    n: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def wilson(successes: int, n: int, z: float = Z95) -> Estimate:
    """The Wilson score interval: honest at small n and near 0 or 1, unlike p +- z*se."""
    if n <= 0:
        return Estimate(None, None, None, 0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n)


def cohen_kappa(expected: Sequence[Hashable], predicted: Sequence[Hashable]) -> float | None:
    n = len(expected)
    if n == 0:
        return None
    observed = sum(e == p for e, p in zip(expected, predicted)) / n
    row, col = Counter(expected), Counter(predicted)
    chance = sum(row[k] * col.get(k, 0) for k in row) / (n * n)
    if chance >= 1.0:
        return None  # both raters used one label only: agreement beyond chance is undefined
    return (observed - chance) / (1 - chance)


def mcc(expected: Sequence[Hashable], predicted: Sequence[Hashable]) -> float | None:
    """Matthews correlation, multiclass form (Gorodkin's R_K); 0 where a margin is constant,
    as scikit-learn does."""
    n = len(expected)
    if n == 0:
        return None
    labels = sorted(set(expected) | set(predicted), key=repr)
    t, p = Counter(expected), Counter(predicted)
    correct = sum(e == q for e, q in zip(expected, predicted))
    cov_ytyp = correct * n - sum(t[k] * p[k] for k in labels)
    cov_ypyp = n * n - sum(p[k] ** 2 for k in labels)
    cov_ytyt = n * n - sum(t[k] ** 2 for k in labels)
    if cov_ypyp * cov_ytyt == 0:
        return 0.0
    return cov_ytyp / math.sqrt(cov_ytyt * cov_ypyp)


def _bootstrap(expected: Sequence[Hashable], predicted: Sequence[Hashable], stat: Any, seed: int) -> tuple[float | None, float | None]:
    n = len(expected)
    if n < 2:
        return None, None
    rng = random.Random(seed)
    values = []
    for _ in range(BOOTSTRAP_ROUNDS):
        idx = [rng.randrange(n) for _ in range(n)]
        v = stat([expected[i] for i in idx], [predicted[i] for i in idx])
        if v is not None:
            values.append(v)
    if len(values) < BOOTSTRAP_ROUNDS // 2:
        return None, None
    values.sort()
    return values[int(0.025 * (len(values) - 1))], values[int(math.ceil(0.975 * (len(values) - 1)))]


@dataclass
class Agreement:
    n: int
    labels: list[Any]
    base_rate: Estimate | None  # share of pass among the human labels (binary metrics)
    accuracy: Estimate
    kappa: Estimate
    mcc: Estimate
    tpr: Estimate | None  # of the calls humans passed, the share the judge passed
    tnr: Estimate | None  # of the calls humans failed, the share the judge failed
    confusion: dict[str, int] | None  # tp fp fn tn (binary); pass = positive
    matrix: list[list[int]] = field(default_factory=list)  # rows: expected, columns: predicted

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def agreement(expected: Sequence[Hashable], predicted: Sequence[Hashable], *, seed: int = 0) -> Agreement:
    """Agreement of `predicted` (the judge) with `expected` (people). Binary labels are True/False."""
    if len(expected) != len(predicted):
        raise ValueError("expected and predicted differ in length")
    n = len(expected)
    labels = sorted(set(expected) | set(predicted), key=repr)
    correct = sum(e == p for e, p in zip(expected, predicted))
    k = cohen_kappa(expected, predicted)
    m = mcc(expected, predicted)
    k_lo, k_hi = _bootstrap(expected, predicted, cohen_kappa, seed) if k is not None else (None, None)
    m_lo, m_hi = _bootstrap(expected, predicted, mcc, seed + 1) if m is not None else (None, None)
    binary = set(labels) <= {True, False}
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for e, p in zip(expected, predicted):
        matrix[index[e]][index[p]] += 1
    base_rate = tpr = tnr = None
    confusion = None
    if binary:
        tp = sum(e is True and p is True for e, p in zip(expected, predicted))
        fn = sum(e is True and p is False for e, p in zip(expected, predicted))
        fp = sum(e is False and p is True for e, p in zip(expected, predicted))
        tn = sum(e is False and p is False for e, p in zip(expected, predicted))
        confusion = {"tp": tp, "fp": fp, "fn": fn, "tn": tn}
        base_rate = wilson(tp + fn, n)
        tpr, tnr = wilson(tp, tp + fn), wilson(tn, tn + fp)
    return Agreement(
        n=n, labels=labels, base_rate=base_rate, accuracy=wilson(correct, n),
        kappa=Estimate(k, k_lo, k_hi, n), mcc=Estimate(m, m_lo, m_hi, n),
        tpr=tpr, tnr=tnr, confusion=confusion, matrix=matrix,
    )


def corrected_pass_rate(passed: int, n: int, tpr: float, tnr: float) -> float | None:
    """Rogan-Gladen: the true pass rate behind an observed one, given the judge's TPR and TNR.
    None when the judge is no better than chance (tpr + tnr <= 1)."""
    if n <= 0 or tpr + tnr <= 1:
        return None
    observed = passed / n
    return min(1.0, max(0.0, (observed + tnr - 1) / (tpr + tnr - 1)))
