"""The labs run as a DBOS workflow: split, baseline and noise floor, candidates, selection on the
optimisation part, report on the held-out part (with few labels: repeated cross-validation).
Every judge and rewriter call is a step (`steps.py`), so a run killed mid-way resumes without
paying for finished calls again.
"""

from __future__ import annotations

from typing import Any

from dbos import DBOS

from judgelab.labs.dataset import SMALL, apply_answer, contradictions, question_for, split
from judgelab.labs.report import errors_of, failure_modes, scores, verdict
from judgelab.labs.service import GENERATORS, proposal_fields
from judgelab.labs.steps import (
    NOISE_RERUNS,
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
    if len(items) < 2:
        await labs_update(run_id, {"status": "failed", "message": "fewer than 2 labelled items are left"})
        return "failed"
    if len(items) < SMALL and not params["skip_evaluation"]:
        from judgelab.labs.crossval import cross_validated_run

        return await cross_validated_run(run_id, ctx, items, spend)
    optimisation, held_out = split(items, params["seed"])
    counts = {"labelled": len(items), "optimisation": len(optimisation), "held_out": len(held_out)}
    cache: dict[str, Any] = {}
    base_content = dict(content)
    start_description = params.get("simplified_prompt") or content["description"]

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
        await labs_update(run_id, {"stage": "noise floor", "progress": {**counts, **spend.as_dict()}})
        noise_floor = await measure_noise(base_content, held_out, base_held, model, spend, cache, NOISE_RERUNS)

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
            result.update({
                "scored": True,
                "scores": {
                    "held_out": {"baseline": scores(held_out, base_held), "proposal": scores(held_out, new_held)},
                    "optimisation": {"baseline": scores(optimisation, base_opt), "proposal": scores(optimisation, new_opt)},
                },
                "failure_modes": failure_modes(held_out, base_held, new_held),
                "noise_floor": noise_floor,
                "verdict": verdict(held_out, base_held, new_held, noise_floor, seed=params["seed"]),
            })
    result.update({
        **proposal_fields(content, proposal),
        "notes": spend.notes,
        "split": counts,
        # Which labelled items were held out, so anyone can check none reached the generators.
        "held_out_items": [i["key"] for i in held_out],
    })
    await labs_complete(run_id, result, {**counts, **spend.as_dict()})
    return "completed"
