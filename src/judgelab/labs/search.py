"""The optimiser's search: candidates made from the reflection part, scored on the selection part
by successive halving, a beam of two, and one merge step fed by the Pareto pool.

Why two parts: a candidate scored on the very items its rule was written from wins by quoting
them (a verbatim rule, a few-shot example of the item itself). As GEPA separates its training
minibatches from its validation (Pareto) set, labs makes candidates from the reflection part only
and scores them on the selection part only; the held-out part and random-audit labels are judged
once, for the report.

Why halving: most candidates lose, and they can be seen to lose cheaply. Every candidate is
judged on the baseline's errors in the selection part first; one that fixes none is dropped, and
only the better half (at least the beam) goes on to the items the baseline already got right,
where it is dropped as soon as it has broken as many as it fixed.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

from judgelab.labs import rules as rulebook
from judgelab.labs.candidates import (
    apply_hypothesis,
    clusters,
    fewshot_candidate,
    reflective_dataset,
    rules_candidate,
    trigger_candidate,
)
from judgelab.labs.dataset import group_key
from judgelab.labs.report import errors_of, right
from judgelab.labs.steps import Spend, explanations, judge_all, labs_rewrite

BEAM = 2
MIN_FOR_SELECTION_SPLIT = 8


def accuracy(items: list[dict[str, Any]], predicted: list[Any]) -> float:
    return sum(right(i, p) for i, p in zip(items, predicted)) / max(1, len(items))


def halves(items: list[dict[str, Any]], base: list[Any], seed: int) -> tuple[list[int], list[int]]:
    """Indices of (reflection, selection): conversation groups dealt alternately within strata of
    (label, baseline right or wrong), so both parts hold errors and every label. Below
    MIN_FOR_SELECTION_SPLIT items both are everything (too few to split; the run says so)."""
    if len(items) < MIN_FOR_SELECTION_SPLIT:
        every = list(range(len(items)))
        return every, every
    groups: dict[str, list[int]] = defaultdict(list)
    for k, item in enumerate(items):
        groups[group_key(item)].append(k)
    strata: dict[tuple[str, bool], list[list[int]]] = defaultdict(list)
    for g in sorted(groups):
        first = groups[g][0]
        strata[(repr(items[first]["label"]), right(items[first], base[first]))].append(groups[g])
    rng = random.Random(seed * 7919 + 1)
    reflection: list[int] = []
    selection: list[int] = []
    turn = 0
    for key in sorted(strata):
        stratum = strata[key]
        rng.shuffle(stratum)
        for group in stratum:
            (reflection if turn % 2 == 0 else selection).extend(group)
            turn += 1
    return sorted(reflection), sorted(selection)


async def make_candidates(ctx: dict[str, Any], content: dict[str, Any], start: str, items: list[dict[str, Any]],
                          judged: list[Any], use: set[str], spend: Spend, cache: dict[str, Any], *, rewrite: bool,
                          simplified: bool = False, suffix: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Candidates from `items` (the reflection part) and the verdicts `judged` of `content` on them,
    never anything else. A candidate is the content it changes: a description and, for N/A errors,
    a trigger."""
    errors = errors_of(items, judged)
    corrects = [(i, p) for i, p in zip(items, judged) if right(i, p)]
    groups = clusters(errors)
    candidates: list[tuple[str, dict[str, Any]]] = []
    if simplified:
        candidates.append(("simplified prompt", {"description": start}))
    if rewrite and "rewrite" in use and groups and spend.rewriter < spend.rewriter_budget and ctx["rewriter_model"]:
        dataset = reflective_dataset(start, errors, corrects, explanations(content, items, cache))
        answer = await labs_rewrite(ctx["rewriter_model"], start, dataset)
        spend.rewriter += 1
        spend.cost += answer["cost"]
        if answer.get("note"):
            spend.notes.append(answer["note"])
        if answer["error"]:
            spend.notes.append(f"the rewriter failed: {answer['error']}")
        for n, hypothesis in enumerate(answer["hypotheses"], 1):
            description = apply_hypothesis(start, hypothesis, spend.notes)
            if (problem := rulebook.check(start, description)) is not None:
                spend.notes.append(f"hypothesis {n}{suffix} was rejected before judging: {problem}")
            elif description.strip() != start.strip() and all(c["description"] != description for _n, c in candidates):
                candidates.append((f"hypothesis {n}{suffix}", {"description": description}))
    if "rules" in use and (text := rules_candidate(start, groups, spend.notes)) is not None:
        if (problem := rulebook.check(start, text)) is None:
            candidates.append((f"rules from reasons{suffix}", {"description": text}))
        else:
            spend.notes.append(f"the rules from reasons were rejected: {problem}")
    if "few-shot" in use and (shots := fewshot_candidate(start, errors, items)) is not None:
        candidates.append((f"few-shot examples{suffix}", {"description": shots}))
    if "trigger" in use and (trigger := trigger_candidate(
            {**content, "description": start}, groups, items, replace_code=bool(ctx["params"].get("replace_code_trigger")),
            notes=spend.notes)) is not None:
        candidates.append((f"refined trigger{suffix}", {"description": start, **trigger}))
    return candidates


async def select(content: dict[str, Any], candidates: list[tuple[str, dict[str, Any]]], items: list[dict[str, Any]],
                 base: list[Any], model: str | None, spend: Spend, cache: dict[str, Any], *, keep: int = BEAM
                 ) -> tuple[str, dict[str, Any], list[dict[str, Any]], dict[str, list[Any]]]:
    """The candidate most accurate on `items` ("current" and no change when none beats `base`),
    what was tried, and each fully scored candidate's verdicts (successive halving, see above)."""
    wrong = [k for k, (i, b) in enumerate(zip(items, base)) if not right(i, b)]
    were_right = [k for k in range(len(items)) if k not in set(wrong)]
    tried: list[dict[str, Any]] = []
    verdicts: dict[str, list[Any]] = {}
    rung: list[tuple[int, str, dict[str, Any], list[Any]]] = []
    for name, change in candidates:
        on_errors = await judge_all({**content, **change}, [items[k] for k in wrong], model, spend, cache)
        if on_errors is None:
            spend.notes.append(f"budget reached: candidate '{name}' was not scored")
            tried.append({"candidate": name, "dropped": "budget"})
            continue
        preds = list(base)
        for k, p in zip(wrong, on_errors):
            preds[k] = p
        fixed = sum(right(items[k], preds[k]) for k in wrong)
        if wrong and not fixed:
            tried.append({"candidate": name, "fixed": 0, "dropped": "fixed none of the errors"})
            continue
        rung.append((fixed, name, change, preds))
    # Halving: only the better half (never fewer than the beam) is judged on the rest.
    rung.sort(key=lambda r: -r[0])
    cut = max(keep, (len(rung) + 1) // 2)
    for fixed, name, _change, _p in rung[cut:]:
        tried.append({"candidate": name, "fixed": fixed, "dropped": "halved: fixed fewer errors than the better half"})
    best: tuple[float, str, dict[str, Any]] = (accuracy(items, base), "current", {})
    for fixed, name, change, preds in rung[:cut]:
        broken, complete = 0, True
        for start in range(0, len(were_right), 4):
            chunk = were_right[start:start + 4]
            out = await judge_all({**content, **change}, [items[k] for k in chunk], model, spend, cache)
            if out is None:
                spend.notes.append(f"budget reached: candidate '{name}' was not fully scored")
                complete = False
                break
            for k, p in zip(chunk, out):
                preds[k] = p
                broken += not right(items[k], p)
            if wrong and broken >= fixed:
                complete = False
                break
        if not complete:
            tried.append({"candidate": name, "fixed": fixed, "broke": broken, "dropped": "broke as many as it fixed"
                          if wrong and broken >= fixed else "budget"})
            continue
        verdicts[name] = preds
        tried.append({"candidate": name, "selection_accuracy": accuracy(items, preds), "fixed": fixed, "broke": broken})
        if accuracy(items, preds) > best[0]:
            best = (accuracy(items, preds), name, change)
    return best[1], best[2], tried, verdicts


def pareto_pool(items: list[dict[str, Any]], verdicts: dict[str, list[Any]], chosen: str) -> list[str]:
    """The other candidates worth keeping: each is right on some item the chosen one gets wrong."""
    mine = verdicts.get(chosen)
    if mine is None:
        return sorted(verdicts)
    return [name for name, preds in verdicts.items() if name != chosen and any(
        right(i, p) and not right(i, m) for i, p, m in zip(items, preds, mine))]


def beam(items: list[dict[str, Any]], base: list[Any], verdicts: dict[str, list[Any]], width: int = BEAM) -> list[str]:
    """The best `width` scored candidates that beat the baseline, best first."""
    floor = accuracy(items, base)
    ranked = sorted((n for n in verdicts if accuracy(items, verdicts[n]) > floor),
                    key=lambda n: -accuracy(items, verdicts[n]))
    return ranked[:width]


TRIGGER_FIELDS = ("evaluation_trigger", "trigger_type", "evaluation_trigger_prompt", "evaluation_trigger_custom_code")


def merge_candidate(chosen: str, changes: dict[str, dict[str, Any]], pool: list[str]) -> tuple[str, dict[str, Any]] | None:
    """GEPA's merge for this program, component by component: the chosen candidate's criterion with
    the rules of the first pool member that is right where it is wrong, and that member's trigger
    when only it changed the trigger. None when merging adds nothing."""
    mine = changes.get(chosen)
    if mine is None:
        return None
    for other in pool:
        theirs = changes.get(other)
        if theirs is None:
            continue
        merged = {**mine, "description": rulebook.merge(mine["description"], theirs["description"])}
        if not any(f in mine for f in TRIGGER_FIELDS) and any(f in theirs for f in TRIGGER_FIELDS):
            merged.update({f: theirs[f] for f in TRIGGER_FIELDS if f in theirs})
        if merged != mine and rulebook.check(mine["description"], merged["description"]) is None:
            return f"merge of {chosen} and {other}", merged
    return None
