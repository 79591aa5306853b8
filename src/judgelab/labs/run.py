"""The labs run as a DBOS workflow.

Labels are of two kinds. Those people picked (mostly because the result looked wrong) are for
learning: candidates are made and selected on them, and a held-out part of them (or, under 12,
cross-validation) says whether the procedure helped *on such labels*. Random-audit labels
(`source: random_audit`, calls nobody picked) are held out from every generator and from
selection; only on them can a proposal be shown better on the calls it will judge next, so only
they can earn `improved`. Without them a good run ends `promising, unverified` (or, under 12
labels, `procedure estimate`) and says what to label next. Every verdict is an exact one-sided
sign test on discordant conversations (`significance.py`).

Every judge and rewriter call is a step (`steps.py`), so a run killed mid-way resumes without
paying for finished calls again.
"""

from __future__ import annotations

from typing import Any

from dbos import DBOS

from judgelab.labs.dataset import SMALL, apply_answer, contradictions, group_key, question_for, split
from judgelab.labs.report import failure_modes, right, scores, verdict
from judgelab.labs.search import beam, halves, make_candidates, merge_candidate, pareto_pool, select
from judgelab.labs.service import GENERATORS, proposal_fields
from judgelab.labs.steps import (
    Spend,
    judge_all,
    labs_complete,
    labs_load,
    labs_update,
    measure_noise,
    requests_per_item,
    reuse_baseline,
    wait_answer,
)

AUDIT = "random_audit"


def split_by_source(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(labels to learn from, random-audit labels). A conversation with an audit label is kept out
    of learning entirely, so no generator ever sees it."""
    audit = [i for i in items if i.get("source") == AUDIT]
    audited = {group_key(i) for i in audit}
    learn = [i for i in items if i.get("source") != AUDIT and group_key(i) not in audited]
    return learn, audit


def next_step(metric_id: int, needed: int | None, audit_labelled: int) -> dict[str, Any]:
    size = max(12, min(100, needed or 20))
    return {"action": "audit_sample", "size": size,
            "text": (f"label {size} randomly drawn calls: POST /api/v1/metrics/{metric_id}/audit_sample/ "
                     f"{{\"size\": {size}}} (or `judgelab review --metric {metric_id} --audit {size}`), then run labs "
                     "again; their labels alone can show the proposal is better on calls nobody picked"
                     + (f" ({audit_labelled} audit labels so far)" if audit_labelled else ""))}


def final_verdict(learned: dict[str, Any], audit: dict[str, Any] | None, *, cross_validated: bool,
                  metric_id: int, audit_labelled: int) -> dict[str, Any]:
    """The run's verdict: the audit's when there is audit evidence, otherwise what the learning
    labels allow (never `improved`)."""
    if audit is not None:
        out = {**audit, "evidence": f"random audit: {audit['n']} conversations nobody picked, held out from every "
               "generator"}
        if out["verdict"] != "improved" and learned["verdict"] == "improved":
            out["explanation"] += ("; on the labels picked because they looked wrong it did better, which is what "
                                   "error-driven labels make any change look like")
        if out["verdict"] == "not significant":
            out["next_step"] = next_step(metric_id, audit.get("labels_needed"), audit_labelled)
        return out
    evidence = ("cross-validation over the labels picked for review: the figures score labs' procedure, not this "
                "exact text" if cross_validated else "the held-out part of the labels picked for review (mostly the "
                "baseline's errors): not an estimate of how it does on calls nobody picked")
    out = {**learned, "evidence": evidence, "learning_verdict": learned["verdict"]}
    if learned["verdict"] == "improved":
        out["verdict"] = "procedure estimate" if cross_validated else "promising, unverified"
        out["explanation"] = (learned["explanation"] + ". No random-audit labels back it: "
                              + ("labs' method helped on these labels, not shown for this text on production calls"
                                 if cross_validated else "shown only on labels picked because they looked wrong"))
    out["next_step"] = next_step(metric_id, learned.get("labels_needed"), audit_labelled)
    return out


async def judge_audit(content: dict[str, Any], proposal: dict[str, Any], audit: list[dict[str, Any]], model: str | None,
                      spend: Spend, cache: dict[str, Any], noise: float | None) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Baseline and proposal on the audit labels: (their verdict or None, what to report)."""
    if not audit:
        return None, {}
    base = await judge_all(content, audit, model, spend, cache, final=True)
    new = await judge_all({**content, **proposal}, audit, model, spend, cache, final=True)
    if base is None or new is None:
        spend.notes.append("the judge budget ended before the random-audit labels were judged: the verdict rests on "
                           "the learning labels alone")
        return None, {}
    return verdict(audit, base, new, noise), {"baseline": scores(audit, base), "proposal": scores(audit, new)}


async def second_round(ctx: dict[str, Any], content: dict[str, Any], name: str, changes: dict[str, dict[str, Any]],
                       verdicts: dict[str, list[Any]], reflection: list[dict[str, Any]], base_refl: list[Any],
                       selection: list[dict[str, Any]], base_sel: list[Any], spend: Spend, cache: dict[str, Any],
                       tried: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """Round 2: reflect again on what each beam member still gets wrong in the reflection part, add
    one merge of the chosen candidate with the Pareto pool, and keep a winner only if it beats the
    round-1 choice on the selection part."""
    model = ctx["model"]
    members = beam(selection, base_sel, verdicts)
    again: list[tuple[str, dict[str, Any]]] = []
    # Each member is judged on the baseline's reflection errors only (where it was built to change
    # something); elsewhere its verdicts are taken to be the baseline's. Selection still judges
    # everything it proposes, so breakage there is seen where it counts.
    wrong = [k for k, (i, b) in enumerate(zip(reflection, base_refl)) if not right(i, b)]
    for member in members:
        start = {**content, **changes[member]}
        on_wrong = await judge_all(start, [reflection[k] for k in wrong], model, spend, cache)
        if on_wrong is None:
            spend.notes.append("budget reached: round 2 was not run")
            break
        preds = list(base_refl)
        for k, p in zip(wrong, on_wrong):
            preds[k] = p
        if all(right(i, p) for i, p in zip(reflection, preds)):
            continue
        made = await make_candidates(ctx, start, start["description"], reflection, preds, {"rewrite"}, spend, cache,
                                     rewrite=True, suffix=f" (round 2, from {member})")
        again += [(n, {**changes[member], **c}) for n, c in made]
    merged = merge_candidate(name, changes, pareto_pool(selection, verdicts, name))
    if merged is not None:
        again.append(merged)
    if not again:
        return name, changes[name]
    name2, change2, tried2, _verdicts2 = await select(content, again, selection, verdicts[name], model, spend, cache)
    tried += tried2
    return (name2, change2) if name2 != "current" else (name, changes[name])


@DBOS.workflow(name="judgelab.labs_run")
async def labs_run(run_id: str) -> str:
    ctx = await labs_load(run_id)
    if "error" in ctx:
        return "gone"
    content, model, items, params = ctx["content"], ctx["model"], ctx["items"], ctx["params"]
    spend = Spend(params["max_judge_calls"], params["max_rewriter_calls"])
    while conflicts := contradictions(items):
        await labs_update(run_id, {"status": "needs_input", "stage": "contradictions", "question": question_for(conflicts)})
        items = apply_answer(items, conflicts[0], await wait_answer(run_id))
        await labs_update(run_id, {"status": "running", "question": None})
    learn, audit = split_by_source(items)
    if len(learn) < 2:
        await labs_update(run_id, {"status": "failed", "message": "fewer than 2 labels to learn from are left (random-"
                                   "audit labels are only ever used to test)"})
        return "failed"
    cache: dict[str, Any] = {}
    reused = reuse_baseline(content, items, cache)
    if reused:
        spend.notes.append(f"{reused} baseline verdicts were reused from stored results of this version and model "
                           "(no judge call paid twice)")
    if len(learn) < SMALL and not params["skip_evaluation"]:
        from judgelab.labs.crossval import cross_validated_run

        return await cross_validated_run(run_id, ctx, learn, audit, spend, cache)
    optimisation, held_out = split(learn, params["seed"])
    counts: dict[str, Any] = {"labelled": len(items), "optimisation": len(optimisation), "held_out": len(held_out),
                              "audit": len(audit), "baseline_reused": reused}
    base_content = dict(content)
    start_description = params.get("simplified_prompt") or content["description"]
    noise: dict[str, Any] = {"model": model, "flip_rate": None, "measured_on": 0}
    use = set(GENERATORS if params.get("generators") is None else params["generators"])

    if params["skip_evaluation"]:
        # The votes record what the judge said: its errors need no new judge calls.
        base_opt = [i["judged"] for i in optimisation]
        base_held: list[Any] = []
    else:
        await labs_update(run_id, {"stage": "baseline", "progress": {**counts, **spend.as_dict()}})
        got_opt = await judge_all(base_content, optimisation, model, spend, cache)
        got_held = await judge_all(base_content, held_out, model, spend, cache)
        if got_opt is None or got_held is None:
            await labs_update(run_id, {"status": "failed", "message": "the judge-call budget cannot pay for the baseline"})
            return "failed"
        base_opt, base_held = got_opt, got_held
        noise = await measure_noise(base_content, held_out + optimisation, base_held + base_opt, model, spend, cache,
                                    ctx.get("determinism"))
        # The report's judge calls are kept back from the search: the proposal on the held-out part
        # and, for the audit labels, the baseline (unless stored) and the proposal.
        spend.reserved = requests_per_item(content) * (len(held_out) + 2 * len(audit) + 2)
    refl_idx, sel_idx = (halves(optimisation, base_opt, params["seed"]) if not params["skip_evaluation"]
                         else (list(range(len(optimisation))),) * 2)
    reflection, base_refl = [optimisation[k] for k in refl_idx], [base_opt[k] for k in refl_idx]
    selection, base_sel = [optimisation[k] for k in sel_idx], [base_opt[k] for k in sel_idx]
    counts.update({"reflection": len(reflection), "selection": len(selection)})
    if refl_idx == sel_idx and not params["skip_evaluation"]:
        spend.notes.append(f"only {len(optimisation)} labels to optimise on: candidates were made and selected on the "
                           "same ones (a reflection / selection split needs 8)")

    await labs_update(run_id, {"stage": "candidates", "progress": {**counts, **spend.as_dict()}})
    candidates = await make_candidates(ctx, content, start_description, reflection, base_refl, use, spend, cache,
                                       rewrite=True, simplified=bool(params.get("simplified_prompt")))
    if not candidates:
        await labs_update(run_id, {"status": "failed", "message": "no candidate could be made: no errors to learn from"})
        return "failed"

    result: dict[str, Any] = {"candidates": [name for name, _ in candidates], "baseline_description": content["description"]}
    if params["skip_evaluation"]:
        name, proposal = candidates[0]
        result.update({"chosen": name, "scored": False, "verdict": {"verdict": "unscored",
                       "explanation": "skip_evaluation: the proposal was not run on any call"}})
    else:
        await labs_update(run_id, {"stage": "selection", "progress": {**counts, **spend.as_dict()}})
        name, proposal, tried, verdicts = await select(content, candidates, selection, base_sel, model, spend, cache)
        changes = dict(candidates)
        if name != "current" and "rewrite" in use:
            await labs_update(run_id, {"stage": "round 2", "progress": {**counts, **spend.as_dict()}})
            name, proposal = await second_round(ctx, content, name, changes, verdicts, reflection, base_refl, selection,
                                                base_sel, spend, cache, tried)
        result["pool"] = pareto_pool(selection, verdicts, name)
        if name == "current":
            name, proposal = candidates[0]
            spend.notes.append("no candidate beat the current prompt on the selection part; the first is shown anyway")
        await labs_update(run_id, {"stage": "report", "progress": {**counts, **spend.as_dict()}})
        new_held = await judge_all({**content, **proposal}, held_out, model, spend, cache, final=True)
        new_opt = await judge_all({**content, **proposal}, optimisation, model, spend, cache)
        result["selection"] = tried
        result["chosen"] = name
        if new_held is None:
            result.update({"scored": False, "verdict": {"verdict": "unscored", "explanation": "budget reached before the held-out report"}})
        else:
            flip_rate = noise.get("flip_rate")
            learned = verdict(held_out, base_held, new_held, flip_rate)
            audit_verdict, audit_scores = await judge_audit(content, proposal, audit, model, spend, cache, flip_rate)
            result.update({
                "scored": True,
                "scores": {
                    "held_out": {"baseline": scores(held_out, base_held), "proposal": scores(held_out, new_held)},
                    **({"optimisation": {"baseline": scores(optimisation, base_opt),
                                         "proposal": scores(optimisation, new_opt)}} if new_opt is not None else {}),
                    **({"audit": audit_scores} if audit_scores else {}),
                },
                "failure_modes": failure_modes(held_out, base_held, new_held),
                "noise_floor": flip_rate,
                "learning_verdict": learned,
                "verdict": final_verdict(learned, audit_verdict, cross_validated=False, metric_id=ctx["metric_id"],
                                         audit_labelled=len(audit)),
            })
    result.update({
        **proposal_fields(content, proposal),
        "notes": spend.notes,
        "split": counts,
        "determinism": noise,
        "seed": params["seed"],
        "history": ctx.get("history", []),
        # Which labelled items were held out, so anyone can check none reached the generators.
        "held_out_items": [i["key"] for i in held_out],
        "audit_items": [i["key"] for i in audit],
        # What the generators saw and what candidates were scored on (GEPA's train / validation).
        "reflection_items": [i["key"] for i in reflection],
        "selection_items": [i["key"] for i in selection],
        # What the proposal was built from: applied, these enter the ledger.
        "trained_on": [i["key"] for i in optimisation],
    })
    await labs_complete(run_id, result, {**counts, **spend.as_dict()})
    return "completed"
