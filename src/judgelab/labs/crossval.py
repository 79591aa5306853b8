"""Labs with few labels (fewer than 12): repeated, stratified k-fold cross-validation.

One split of 8 labels leaves 2 or 3 to test on, which can prove nothing. Instead every label is
held out once per repeat: for each fold, candidates are made from the other folds' errors only,
the best is chosen on those folds, and it is scored on the fold it never saw. Each item thus gets
an out-of-fold verdict; the verdict's interval comes from a paired bootstrap over items, with
each item's gain averaged over the repeats. Repeats continue while the judge budget allows.

What this measures is the procedure, not one prompt: the proposal shown is made by the generator
the folds chose most often, from all labels, and is not scored on them (that would be in-sample).
So the verdict is at best a `procedure estimate`, never auto-applied, unless random-audit labels
(held out from every fold) show the proposal itself better. Folds and the final step use the same
generators: the rewriter runs in the folds of a repeat only when its budget covers them and the
final step, and repeats stop when it no longer does. The gain's interval is Nadeau and Bengio's
corrected resampled t interval, which widens the naive one for training folds that overlap.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from typing import Any

from judgelab.labs.dataset import group_key
from judgelab.labs.report import correct_diffs, failure_modes, grouped_verdict, scores
from judgelab.labs.search import make_candidates, select
from judgelab.labs.service import GENERATORS, proposal_fields
from judgelab.labs.steps import Spend, judge_all, labs_complete, labs_update, measure_noise, requests_per_item

FOLDS = 3
MAX_REPEATS = 3
# Two-sided 97.5 % quantiles of Student's t for 1..30 degrees of freedom (then the normal's).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def nadeau_bengio(gains: list[float], test_share: float) -> tuple[float | None, float | None]:
    """The corrected resampled t interval for the mean of per-fold gains: the variance is inflated by
    n_test / n_train for the overlap of training sets (Nadeau & Bengio 2003)."""
    m = len(gains)
    if m < 2:
        return None, None
    mean = sum(gains) / m
    var = sum((g - mean) ** 2 for g in gains) / (m - 1)
    se = math.sqrt((1 / m + test_share / (1 - test_share)) * var)
    t = _T975[m - 2] if m - 1 <= len(_T975) else 1.96
    return mean - t * se, mean + t * se


def folds(items: list[dict[str, Any]], k: int, seed: int) -> list[list[dict[str, Any]]]:
    """k folds, stratified by label, deterministic for a seed; items on one conversation share a fold."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        if not item.get("trained"):  # ledger labels (an applied version's) train in every fold, test in none
            groups[group_key(item)].append(item)
    by_label: dict[str, list[list[dict[str, Any]]]] = defaultdict(list)
    for fp in sorted(groups):
        by_label[repr(groups[fp][0]["label"])].append(groups[fp])
    rng = random.Random(seed)
    out: list[list[dict[str, Any]]] = [[] for _ in range(k)]
    turn = 0
    for label in sorted(by_label):
        stratum = by_label[label]
        rng.shuffle(stratum)
        for group in stratum:
            out[turn % k].extend(group)
            turn += 1
    return [fold for fold in out if fold]


async def cross_validated_run(run_id: str, ctx: dict[str, Any], items: list[dict[str, Any]], audit: list[dict[str, Any]],
                              spend: Spend, cache: dict[str, Any]) -> str:
    from judgelab.labs.run import final_verdict, judge_audit

    content, model, params = ctx["content"], ctx["model"], ctx["params"]
    use = set(GENERATORS if params.get("generators") is None else params["generators"])
    start = params.get("simplified_prompt") or content["description"]
    counts = {"labelled": len(items) + len(audit), "optimisation": len(items), "held_out": len(items), "folds": FOLDS,
              "audit": len(audit)}

    def progress() -> dict[str, Any]:
        return {**counts, **spend.as_dict()}

    await labs_update(run_id, {"stage": "baseline", "progress": progress()})
    base = await judge_all(content, items, model, spend, cache)
    if base is None:
        await labs_update(run_id, {"status": "failed", "message": "the judge-call budget cannot pay for the baseline"})
        return "failed"
    base_by_key = {i["key"]: b for i, b in zip(items, base)}
    scored = [i for i in items if not i.get("trained")]  # ledger labels train in every fold, test in none
    noise = await measure_noise(content, items, base, model, spend, cache, ctx.get("determinism"))
    spend.reserved = 2 * requests_per_item(content) * len(audit)  # the audit report, kept back from the folds
    # The rewriter runs inside folds only when its budget covers every fold and the final proposal;
    # otherwise folds use the generators that need no model, so every fold is made the same way.
    rewrite_in_folds = "rewrite" in use and bool(ctx["rewriter_model"]) and spend.rewriter_budget - spend.rewriter >= FOLDS + 1
    fold_gains: list[float] = []

    repeats: list[dict[str, Any]] = []
    chosen: Counter[str] = Counter()
    for r in range(MAX_REPEATS):
        if r and rewrite_in_folds and spend.rewriter_budget - spend.rewriter < FOLDS + 1:
            spend.notes.append(f"cross-validation stopped after {r} repeat(s): the rewriter budget covers no more folds "
                               "made the way the final proposal is")
            break
        before = spend.judge
        gains_this_repeat: list[float] = []
        await labs_update(run_id, {"stage": f"cross-validation {r + 1}", "progress": progress()})
        out_of_fold: dict[str, Any] = {}
        names = []
        for test in folds(items, FOLDS, params["seed"] + r):
            test_keys = {i["key"] for i in test}
            train = [i for i in items if i["key"] not in test_keys]
            train_base = [base_by_key[i["key"]] for i in train]
            candidates = await make_candidates(ctx, content, start, train, train_base, use, spend, cache,
                                               rewrite=rewrite_in_folds)
            name, change, _tried, _verdicts = await select(content, candidates, train, train_base, model, spend, cache)
            if name == "current":  # no candidate beat the baseline on these folds: the procedure changes nothing
                preds: list[Any] | None = [base_by_key[i["key"]] for i in test]
            else:
                preds = await judge_all({**content, **change}, test, model, spend, cache)
            if preds is None:
                break
            test_base = [base_by_key[i["key"]] for i in test]
            gains_this_repeat.append(sum(correct_diffs(test, test_base, preds)) / len(test))
            out_of_fold.update({i["key"]: p for i, p in zip(test, preds)})
            names.append(name)
        if len(out_of_fold) < len(scored):
            spend.notes.append(f"the judge budget ended repeat {r + 1} of the cross-validation; it is left out")
            break
        repeats.append(out_of_fold)
        fold_gains += gains_this_repeat
        chosen.update(names)
        if spend.judge_budget - spend.judge < spend.judge - before:
            break

    await labs_update(run_id, {"stage": "proposal", "progress": progress()})
    finals = await make_candidates(ctx, content, start, items, base, use, spend, cache, rewrite=True,
                                   simplified=bool(params.get("simplified_prompt")))
    if not finals:
        await labs_update(run_id, {"status": "failed", "message": "no candidate could be made: no errors to learn from"})
        return "failed"
    favourite = next((n for n, _ in chosen.most_common() if n != "current" and any(n == f for f, _ in finals)), None)
    name, proposal = next(((n, c) for n, c in finals if n == favourite), finals[0])
    if favourite is None:
        spend.notes.append("in no fold did a candidate beat the current prompt; the first candidate is shown anyway")

    result: dict[str, Any] = {"candidates": [n for n, _ in finals], "baseline_description": content["description"],
                              "chosen": name, "fold_choices": dict(chosen)}
    validation = f"repeated {FOLDS}-fold cross-validation, {len(repeats)} repeat(s), over all {len(items)} labels"
    if repeats:
        base_scored = [base_by_key[i["key"]] for i in scored]
        new = [repeats[0][i["key"]] for i in scored]
        per_item = [sum(d) / len(repeats) for d in zip(*(correct_diffs(scored, base_scored, [rep[i["key"]] for i in scored])
                                                          for rep in repeats))]
        flip_rate = noise.get("flip_rate")
        learned = grouped_verdict(per_item, [group_key(i) for i in scored], flip_rate,
                                  labels=[i["label"] for i in scored], predicted=new)
        low, high = nadeau_bengio(fold_gains, 1 / FOLDS)
        learned["procedure_interval"] = {"low": low, "high": high, "folds_scored": len(fold_gains),
                                         "fold_gains": list(fold_gains),
                                         "method": "Nadeau-Bengio corrected resampled t, 95 %"}
        audit_verdict, audit_scores = await judge_audit(content, proposal, audit, model, spend, cache, flip_rate)
        result.update({
            "scored": True, "validation": validation,
            "scores": {"held_out": {"baseline": scores(scored, base_scored), "proposal": scores(scored, new)},
                       **({"audit": audit_scores} if audit_scores else {})},
            "failure_modes": failure_modes(scored, base_scored, new), "noise_floor": flip_rate, "learning_verdict": learned,
            "verdict": final_verdict(learned, audit_verdict, cross_validated=True, metric_id=ctx["metric_id"],
                                     audit_labelled=len(audit)),
        })
        spend.notes.append(f"only {len(items)} labels, so no single held-out split: {validation}. Each label was "
                           "scored by a prompt made without it. The figures measure this procedure; the proposal "
                           f"shown ('{name}') was then made from all labels and is not scored on them.")
    else:
        result.update({"scored": False, "validation": validation,
                       "verdict": {"verdict": "unscored", "explanation": "the judge budget ended before one full "
                                   "cross-validation repeat; raise max_judge_calls"}})
    result.update({
        **proposal_fields(content, proposal),
        # Under cross-validation every scored label was held out once per repeat.
        "notes": spend.notes, "split": counts, "held_out_items": [i["key"] for i in scored],
        "audit_items": [i["key"] for i in audit],
        "trained_on": [i["key"] for i in items],
        "determinism": noise, "seed": params["seed"], "history": ctx.get("history", []),
    })
    await labs_complete(run_id, result, progress())
    return "completed"
