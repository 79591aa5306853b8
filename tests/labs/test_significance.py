"""The exact test behind labs verdicts: hand-computed binomial values, the cases the bootstrap got
wrong, and a null simulation that measures the false-"improved" rate at every held-out size."""

from __future__ import annotations

import random

import pytest

from judgelab.labs.dataset import split
from judgelab.labs.report import grouped_verdict, same, verdict
from judgelab.labs.significance import ALPHA, decide, exact_test, group_votes, labels_needed, upper_tail


def test_binomial_tails_by_hand() -> None:
    assert upper_tail(3, 3) == 1 / 8
    assert upper_tail(4, 4) == 1 / 16
    assert upper_tail(5, 5) == 1 / 32
    assert upper_tail(8, 10) == (45 + 10 + 1) / 1024  # C(10,8) + C(10,9) + C(10,10)
    assert upper_tail(0, 7) == 1.0 and upper_tail(8, 7) == 0.0
    assert upper_tail(2, 4) == (6 + 4 + 1) / 16


def test_three_fixed_none_broken_of_four_is_not_significant() -> None:
    test = exact_test([1, 1, 1, 0])
    assert (test["fixed"], test["broken"], test["p"]) == (3, 0, 0.125)
    assert decide(test, noise=0.0)[0] == "not significant"
    assert test["labels_needed"] == 7  # 5 of 5 discordant at this discordance rate (3 of 4) -> 7 conversations
    five = exact_test([1] * 5)
    assert five["p"] == 1 / 32 and decide(five, noise=None)[0] == "improved"
    assert "not measured" in decide(five, noise=None)[1]
    assert decide(exact_test([-1] * 5), noise=0.0)[0] == "regressed"


def test_labels_needed_by_hand() -> None:
    # 4 fixed, 1 broken of 10: share 0.8. d = 6 -> P(X >= 5) = 7/64; d = 7 -> P(X >= 6) = 8/128; d = 8 ->
    # P(X >= 7) = 9/256 = 0.035. At a discordance of 0.5, 8 discordant conversations take 16 in all.
    assert labels_needed(4, 1, 10) == 16
    assert labels_needed(1, 1, 10) is None and labels_needed(0, 0, 10) is None


def test_one_vote_per_conversation() -> None:
    # Three items of one conversation fixed, one other broken: one vote each way, not 3 to 1.
    votes = group_votes([1, 1, 1, -1], ["a", "a", "a", "b"])
    assert sorted(votes) == [-1, 1]
    assert group_votes([1, -1, 0], ["a", "a", "b"]) == [0, 0]


def test_improved_is_refused_on_one_class() -> None:
    items = [{"label": False, "fingerprint": str(i)} for i in range(8)]
    base = [True] * 8
    new = [False] * 8  # a judge that fails everything fixes every false pass...
    v = verdict(items, base, new, noise=0.0)
    assert v["p"] == 1 / 256 and v["verdict"] == "not significant" and "one class" in v["explanation"]
    mixed = [{"label": i % 2 == 0, "fingerprint": str(i)} for i in range(8)]
    out = grouped_verdict([1.0] * 8, [str(i) for i in range(8)], 0.0, labels=[i["label"] for i in mixed],
                          predicted=[False] * 8)
    assert out["verdict"] == "not significant" and "proposal's verdicts" in out["explanation"]


@pytest.mark.parametrize("n", [4, 5, 6, 8, 10, 12, 16, 20, 24, 30, 40])
def test_null_simulation_false_improved_rate_is_at_most_five_percent(n: int) -> None:
    """No effect: each held-out conversation is discordant with probability 0.4, fixed or broken by a
    fair coin (the noise floor is 0). The share of runs that say improved must stay <= 5 %."""
    rng = random.Random(n)
    runs, improved = 4000, 0
    for _ in range(runs):
        votes = [(1 if rng.random() < 0.5 else -1) if rng.random() < 0.4 else 0 for _ in range(n)]
        improved += decide(exact_test(votes), noise=0.0)[0] == "improved"
    rate = improved / runs
    assert rate <= ALPHA, f"false improved rate {rate:.3f} at n = {n}"


def test_the_old_bootstrap_would_fail_the_null_simulation() -> None:
    """The same simulation under the percentile bootstrap the verdict used to rest on: it says improved
    more often than its nominal 2.5 % at small n, which is why it was replaced (this guards the
    simulation itself: it can tell a lenient test from an exact one)."""
    rng = random.Random(1)

    def bootstrap_improved(diffs: list[int]) -> bool:
        n = len(diffs)
        boots = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(400))
        return sum(diffs) / n > 0 and boots[int(0.025 * 399)] > 0

    runs = 3000
    rate = sum(bootstrap_improved([(1 if rng.random() < 0.5 else -1) if rng.random() < 0.4 else 0 for _ in range(6)])
               for _ in range(runs)) / runs
    assert rate > 0.025, rate


def test_singletons_can_be_held_out_and_numbers_agree_within_tolerance() -> None:
    items = [{"key": str(i), "label": i, "fingerprint": str(i), "group": str(i)} for i in range(13)]
    _opt, held = split(items, seed=0)
    assert len(held) == 4  # a third of 13, although every label is seen once
    lone = [{"key": "f", "label": False, "fingerprint": "f", "group": "f"}] + [
        {"key": str(i), "label": True, "fingerprint": str(i), "group": str(i)} for i in range(11)]
    held_labels = [{False: 0, True: 0}] * 0
    for seed in range(30):
        _o, h = split(lone, seed)
        held_labels.append({label: sum(i["label"] is label for i in h) for label in (False, True)})
    assert any(h[False] == 1 for h in held_labels) and all(h[False] + h[True] == 4 for h in held_labels)
    assert same(4, 4.0) and same(0.70, 0.74, 0.05) and not same(0.70, 0.80, 0.05) and not same(3, 4)
    assert not same(True, 1)  # a verdict is not a number


def test_near_duplicates_stay_on_one_side() -> None:
    from judgelab.labs.dataset import group_of

    items = []
    for task in range(6):
        for trial in range(4):
            call = {"transcript": f"task {task} trial {trial}", "metadata": {"task_id": task, "trial": trial}}
            items.append({"key": f"{task}-{trial}", "label": task % 2 == 0, "fingerprint": str(trial + 10 * task),
                          "group": group_of(call)})
    for seed in range(10):
        opt, held = split(items, seed)
        assert {i["group"] for i in opt}.isdisjoint({i["group"] for i in held})
        assert len(held) == 8  # two whole tasks of six


def test_numeric_labels_get_mae_and_weighted_kappa() -> None:
    from sklearn.metrics import cohen_kappa_score

    from judgelab.labs.report import scores, weighted_kappa

    expected = [1, 2, 3, 4, 5, 3, 2, 4]
    predicted = [1, 3, 3, 5, 5, 2, 2, 4]
    reference = cohen_kappa_score([str(v) for v in expected], [str(v) for v in predicted], weights="quadratic",
                                  labels=[str(v) for v in range(1, 6)])
    assert weighted_kappa([float(v) for v in expected], [float(v) for v in predicted]) == pytest.approx(reference)
    out = scores([{"label": e, "fingerprint": str(k)} for k, e in enumerate(expected)], predicted)
    assert out["mae"] == pytest.approx(3 / 8) and out["numeric_n"] == 8


def test_near_identical_transcripts_join_one_group() -> None:
    from judgelab.labs.dataset import join_near_duplicates

    text = "the agent asked for the booking code and the customer read it out slowly twice " * 6
    items = [{"call": {"transcript": text}, "group": "a"}, {"call": {"transcript": text + " thanks"}, "group": "b"},
             {"call": {"transcript": "a completely different call about baggage fees and a refund"}, "group": "c"}]
    join_near_duplicates(items)
    assert [i["group"] for i in items] == ["a", "a", "c"]
