"""Agreement statistics against scikit-learn and hand-worked cases."""

from __future__ import annotations

import math
import random

import pytest
from sklearn.metrics import cohen_kappa_score, matthews_corrcoef

from judgelab.labs.agreement import agreement, cohen_kappa, corrected_pass_rate, mcc, wilson


def test_wilson_matches_the_textbook() -> None:
    # 8 of 10: the Wilson interval is (0.4902, 0.9433) (Newcombe 1998, method 3).
    est = wilson(8, 10)
    assert est.value == 0.8 and est.n == 10
    assert est.low == pytest.approx(0.4902, abs=1e-4) and est.high == pytest.approx(0.9433, abs=1e-4)
    zero = wilson(0, 20)
    assert zero.low == 0.0 and zero.high == pytest.approx(0.1611, abs=1e-4)
    assert wilson(0, 0).value is None


def test_hand_worked_binary_case() -> None:
    # 20 calls: people passed 10; the judge passed 8 of those and 3 of the 10 people failed.
    expected = [True] * 10 + [False] * 10
    predicted = [True] * 8 + [False] * 2 + [True] * 3 + [False] * 7
    a = agreement(expected, predicted)
    assert a.confusion == {"tp": 8, "fp": 3, "fn": 2, "tn": 7}
    assert a.accuracy.value == 0.75 and a.base_rate is not None and a.base_rate.value == 0.5
    # p_o = 0.75, p_e = (10*11 + 10*9) / 400 = 0.5, so kappa = 0.5.
    assert a.kappa.value == pytest.approx(0.5)
    assert a.mcc.value == pytest.approx((8 * 7 - 3 * 2) / math.sqrt(11 * 10 * 10 * 9))
    assert a.tpr is not None and a.tpr.value == 0.8 and a.tnr is not None and a.tnr.value == 0.7
    assert a.kappa.low is not None and a.kappa.low < 0.5 < a.kappa.high  # type: ignore[operator]
    assert a.matrix == [[7, 3], [2, 8]]  # labels sorted: False, True


@pytest.mark.parametrize("seed", range(25))
def test_kappa_and_mcc_match_scikit_learn(seed: int) -> None:
    rng = random.Random(seed)
    labels = [True, False] if seed % 2 else ["new", "existing", "other"]
    n = rng.randint(2, 200)
    expected = [rng.choice(labels) for _ in range(n)]
    predicted = [e if rng.random() < 0.7 else rng.choice(labels) for e in expected]
    k = cohen_kappa(expected, predicted)
    ref = cohen_kappa_score([str(e) for e in expected], [str(p) for p in predicted])
    if math.isnan(ref):
        assert k is None
    else:
        assert k == pytest.approx(ref, abs=1e-12)
    assert mcc(expected, predicted) == pytest.approx(matthews_corrcoef([str(e) for e in expected], [str(p) for p in predicted]), abs=1e-12)


def test_degenerate_cases_are_undefined_not_crashes() -> None:
    a = agreement([True, True, True], [True, True, True])
    assert a.kappa.value is None and a.mcc.value == 0.0 and a.accuracy.value == 1.0
    assert a.tnr is not None and a.tnr.value is None and a.tnr.n == 0
    empty = agreement([], [])
    assert empty.n == 0 and empty.accuracy.value is None and empty.kappa.value is None


def test_rogan_gladen() -> None:
    # A judge with TPR 0.9, TNR 0.8 that passes 62 % of calls: the true pass rate is 60 %.
    assert corrected_pass_rate(62, 100, 0.9, 0.8) == pytest.approx(0.6)
    assert corrected_pass_rate(50, 100, 0.5, 0.5) is None
