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
from judgelab.labs.report import errors_of, failure_modes, scores, verdict
from judgelab.labs.service import GENERATORS, proposal_fields
from judgelab.labs.steps import (
    Spend,
    judge_all,
    labs_complete,
    labs_load,
    labs_update,
    make_candidates,
    measure_noise,
    pareto_pool,
    select,
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
    base = await judge_all(content, audit, model, spend, cache)
    new = await judge_all({**content, **proposal}, audit, model, spend, cache)
    if base is None or new is None:
        spend.notes.append("the judge budget ended before the random-audit labels were judged: the verdict rests on "
                           "the learning labels alone")
        return None, {}
    return verdict(audit, base, new, noise), {"baseline": scores(audit, base), "proposal": scores(audit, new)}


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
    if len(learn) < SMALL and not params["skip_evaluation"]:
        from judgelab.labs.crossval import cross_validated_run

        return await cross_validated_run(run_id, ctx, learn, audit, spend)
    optimisation, held_out = split(learn, params["seed"])
    counts = {"labelled": len(items), "optimisation": len(optimisation), "held_out": len(held_out), "audit": len(audit)}
    cache: dict[str, Any] = {}
    base_content = dict(content)
    start_description = params.get("simplified_prompt") or content["description"]
    noise: dict[str, Any] = {"model": model, "flip_rate": None, "measured_on": 0}

    if params["skip_evaluation"]:
        # The votes record what the judge said: its errors need no new judge calls.
        errors = errors_of(optimisation, [i["judged"] for i in optimisation])
    else:
        await labs_update(run_id, {"stage": "baseline", "progress": {**counts, **spend.as_dict()}})
        base_opt = await judge_all(base_content, optimisation, model, spend, cache)
        base_held = await judge_all(base_content, held_out, model, spend, cache)
        if base_opt is None or base_held is None:
            await labs_update(run_id, {"status": "failed", "message": "the judge-call budget cannot pay for the baseline"})
            return "failed"
        errors = errors_of(optimisation, base_opt)
        noise = await measure_noise(base_content, held_out + optimisation, base_held + base_opt, model, spend, cache,
                                    ctx.get("determinism"))

    await labs_update(run_id, {"stage": "candidates", "progress": {**counts, **spend.as_dict()}})
    use = set(GENERATORS if params.get("generators") is None else params["generators"])
    candidates = await make_candidates(ctx, content, start_description, errors, optimisation, use, spend, rewrite=True,
                                       simplified=bool(params.get("simplified_prompt")))
    if not candidates:
        await labs_update(run_id, {"status": "failed", "message": "no candidate could be made: no errors to learn from"})
        return "failed"

    result: dict[str, Any] = {"candidates": [name for name, _ in candidates], "baseline_description": content["description"]}
    if params["skip_evaluation"]:
        name, proposal = candidates[0]
        result.update({"chosen": name, "scored": False, "verdict": {"verdict": "unscored",
                       "explanation": "skip_evaluation: the proposal was not run on any call"}})
    else:
        assert base_opt is not None and base_held is not None
        await labs_update(run_id, {"stage": "selection", "progress": {**counts, **spend.as_dict()}})
        name, proposal, tried, verdicts = await select(content, candidates, optimisation, base_opt, model, spend, cache)
        if name != "current" and "rewrite" in use:
            # A second round: critique and edit the winner on the errors it still makes.
            left = errors_of(optimisation, verdicts[name])
            start = {**content, **proposal}
            second = await make_candidates(ctx, start, start["description"], left, optimisation, {"rewrite"}, spend,
                                           rewrite=True) if left else []
            if second:
                again = [(f"{n} (round 2, from {name})", {**proposal, **c}) for n, c in second]
                name2, proposal2, tried2, verdicts2 = await select(content, again, optimisation, verdicts[name], model,
                                                                   spend, cache)
                tried += tried2
                verdicts.update(verdicts2)
                if name2 != "current":
                    name, proposal = name2, proposal2
        result["pool"] = pareto_pool(optimisation, verdicts, name)
        if name == "current":
            name, proposal = candidates[0]
            spend.notes.append("no candidate beat the current prompt on the optimisation part; the first is shown anyway")
        await labs_update(run_id, {"stage": "report", "progress": {**counts, **spend.as_dict()}})
        new_held = await judge_all({**content, **proposal}, held_out, model, spend, cache)
        new_opt = await judge_all({**content, **proposal}, optimisation, model, spend, cache)
        result["selection"] = tried
        result["chosen"] = name
        if new_held is None or new_opt is None:
            result.update({"scored": False, "verdict": {"verdict": "unscored", "explanation": "budget reached before the held-out report"}})
        else:
            flip_rate = noise.get("flip_rate")
            learned = verdict(held_out, base_held, new_held, flip_rate)
            audit_verdict, audit_scores = await judge_audit(content, proposal, audit, model, spend, cache, flip_rate)
            result.update({
                "scored": True,
                "scores": {
                    "held_out": {"baseline": scores(held_out, base_held), "proposal": scores(held_out, new_held)},
                    "optimisation": {"baseline": scores(optimisation, base_opt), "proposal": scores(optimisation, new_opt)},
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
        # What the proposal was built from: applied, these enter the ledger.
        "trained_on": [i["key"] for i in optimisation],
    })
    await labs_complete(run_id, result, {**counts, **spend.as_dict()})
    return "completed"
