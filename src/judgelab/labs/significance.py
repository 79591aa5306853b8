"""The exact test behind every labs verdict, and what the verdict may claim.

Baseline and proposal are judged on the same labelled items, so only discordant items carry
evidence: *fixed* (the proposal is right where the baseline was wrong) and *broken* (the
reverse). Under "no effect" each discordant conversation is a fair coin, so the one-sided exact
sign (McNemar) test is P(X >= fixed) for X ~ Binomial(fixed + broken, 1/2). Items of one
conversation (or of near-duplicates, which share a group) count once: their differences are summed
and the group votes by the sign. A percentile bootstrap at labs' sizes (4-8 held-out items) said
`improved` for 3 fixed / 0 broken of 4, whose exact p is 0.125; this test cannot.

The gain is reported as Δaccuracy = discordance rate x (2 x share fixed - 1), with a Wilson
interval on the share fixed (the discordance rate held at its observed value).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from judgelab.labs.agreement import wilson

ALPHA = 0.05  # one-sided; the test is exact, so the false-"improved" rate is at most this at every size


def upper_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2), exactly."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n


def group_votes(diffs: Sequence[float], groups: Sequence[str]) -> list[int]:
    """One vote per group (conversation): +1 if its items gained in total, -1 if they lost, 0 if even."""
    totals: dict[str, float] = {}
    for d, g in zip(diffs, groups):
        totals[g] = totals.get(g, 0.0) + d
    return [(t > 1e-9) - (t < -1e-9) for t in (totals[g] for g in sorted(totals))]


def labels_needed(fixed: int, broken: int, n: int) -> int | None:
    """About how many labelled conversations in all (this many or more) would make a gain of the
    observed size significant, at the observed discordance rate; None when there is no gain."""
    discordant = fixed + broken
    if fixed <= broken or n == 0 or discordant == 0:
        return None
    share, rate = fixed / discordant, discordant / n
    if share <= 0.5:
        return None
    rough = math.ceil((1.645 / (2 * share - 1)) ** 2)  # the normal approximation, to bound the search
    if rough > 400:
        return max(n, math.ceil(rough / rate))
    for d in range(discordant, 401):
        if upper_tail(math.ceil(share * d - 1e-9), d) <= ALPHA:
            return max(n, math.ceil(d / rate))
    return max(n, math.ceil(rough / rate))


def exact_test(votes: Sequence[int]) -> dict[str, Any]:
    """Fixed, broken, the one-sided p for each direction, and the gain with its interval."""
    n = len(votes)
    fixed, broken = sum(v > 0 for v in votes), sum(v < 0 for v in votes)
    discordant = fixed + broken
    p_better = upper_tail(fixed, discordant) if discordant else 1.0
    p_worse = upper_tail(broken, discordant) if discordant else 1.0
    share = wilson(fixed, discordant)
    rate = discordant / n if n else 0.0
    gain = (fixed - broken) / n if n else None
    low = None if share.low is None else rate * (2 * share.low - 1)
    high = None if share.high is None else rate * (2 * share.high - 1)
    return {"n": n, "fixed": fixed, "broken": broken, "unchanged": n - discordant, "p": p_better, "p_worse": p_worse,
            "gain": gain, "low": low if discordant else 0.0, "high": high if discordant else 0.0,
            "labels_needed": labels_needed(fixed, broken, n)}


def decide(test: dict[str, Any], *, noise: float | None) -> tuple[str, str]:
    """(word, why) from an exact test: improved, regressed or not significant."""
    n = test["n"]
    if n == 0:
        return "not significant", "no labelled items to measure on"
    if test["p"] <= ALPHA and test["gain"] > (noise or 0.0):
        why = (f"{test['fixed']} fixed, {test['broken']} broken of {n} conversations: exact one-sided p = "
               f"{test['p']:.3g} <= {ALPHA}")
        if noise is None:
            why += "; the judge's own run-to-run noise was not measured (it is not counted as 0)"
        return "improved", why
    if test["p_worse"] <= ALPHA:
        return "regressed", (f"{test['broken']} broken, {test['fixed']} fixed of {n}: exact one-sided p = "
                             f"{test['p_worse']:.3g} that the proposal is worse")
    why = f"{test['fixed']} fixed, {test['broken']} broken of {n}: exact one-sided p = {test['p']:.3g} > {ALPHA}"
    if test["p"] <= ALPHA:
        why = f"the gain {test['gain']:.2f} does not exceed the measured noise of {noise:.2f}"
    elif test["labels_needed"] and test["labels_needed"] > n:
        why += f"; about {test['labels_needed']} labelled conversations would make a gain this size significant"
    return "not significant", why
