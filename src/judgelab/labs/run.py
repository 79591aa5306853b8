"""The labs run as a DBOS workflow: split, baseline and noise floor, candidates, selection on the
optimisation part, report on the held-out part. Every judge and rewriter call is a step, so a
run killed mid-way resumes without paying for finished calls again.

Determinism on replay: steps are created in list order from data that is itself replayed
(the labelled items, earlier steps' outputs), never from timing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from dbos import DBOS

from judgelab.db.models import LabsRun
from judgelab.db.types import utcnow
from judgelab.evaluation.engine import evaluate
from judgelab.jobs import state
from judgelab.jsonutil import stable_hash
from judgelab.labs.candidates import (
    clusters,
    fewshot_candidate,
    parse_rewrite,
    rewrite_request,
    rules_candidate,
    trigger_candidate,
)
from judgelab.labs.dataset import SMALL, apply_answer, contradictions, load_items, question_for, split
from judgelab.labs.report import ERROR, failure_modes, scores, verdict
from judgelab.labs.service import GENERATORS, begin_run, proposal_text, unified_diff
from judgelab.metrics.definition import MetricContent
from judgelab.metrics.service import content_of

NOISE_RERUNS = 2


def _load(run_id: str) -> dict[str, Any]:
    rt = state.current()
    with rt.db.session() as session:
        begun = begin_run(session, run_id, "loading")
        if begun is None:
            return {"error": "the run's row is gone"}
        run, metric, version = begun
        content = content_of(version)
        items = load_items(session, run.project_id, metric, run.params.get("test_set_ids"))
        return {"content": content.as_dict(), "model": content.model or rt.settings.model, "items": items,
                "params": run.params, "rewriter_model": rt.settings.rewriter_model or rt.settings.model}


@DBOS.step(name="judgelab.labs_load")
async def labs_load(run_id: str) -> dict[str, Any]:
    return await asyncio.to_thread(_load, run_id)


def _update(run_id: str, fields: dict[str, Any]) -> None:
    with state.current().db.session() as session:
        run = session.get(LabsRun, run_id)
        if run is None:
            return
        for name, value in fields.items():
            setattr(run, name, value)
        if fields.get("status") in ("completed", "failed"):
            run.finished_at = utcnow()


@DBOS.step(name="judgelab.labs_update")
async def labs_update(run_id: str, fields: dict[str, Any]) -> None:
    await asyncio.to_thread(_update, run_id, fields)


def _complete(run_id: str, result: dict[str, Any], progress: dict[str, Any]) -> None:
    from judgelab.labs.schedule import auto_apply

    with state.current().db.session() as session:
        run = session.get(LabsRun, run_id)
        if run is None:
            return
        note = auto_apply(session, run, result)  # scheduled runs with auto_apply only; same transaction
        if note is not None:
            result = {**result, "auto_apply": note, "applied": note.startswith("applied")}
        run.status, run.stage, run.result, run.progress, run.finished_at = "completed", "done", result, progress, utcnow()


@DBOS.step(name="judgelab.labs_complete")
async def labs_complete(run_id: str, result: dict[str, Any], progress: dict[str, Any]) -> None:
    await asyncio.to_thread(_complete, run_id, result, progress)


def _take_answer(run_id: str) -> dict[str, Any] | None:
    with state.current().db.session() as session:
        run = session.get(LabsRun, run_id)
        if run is None or run.answer is None:
            return None
        answer, run.answer = run.answer, None
        return answer


@DBOS.step(name="judgelab.labs_take_answer")
async def labs_take_answer(run_id: str) -> dict[str, Any] | None:
    return await asyncio.to_thread(_take_answer, run_id)


@DBOS.step(name="judgelab.labs_judge")
async def labs_judge(content: dict[str, Any], call: dict[str, Any], model: str | None) -> dict[str, Any]:
    out = await evaluate(MetricContent(**content), call, state.current().judges().client_for, model)
    return {"value": ERROR if out.error else out.value, "llm_calls": out.llm_calls, "cost": out.cost_usd,
            "input_tokens": out.input_tokens, "error": out.error}


@DBOS.step(name="judgelab.labs_rewrite")
async def labs_rewrite(model: str, description: str, groups: list[dict[str, Any]]) -> dict[str, Any]:
    provider, _, name = model.partition("/")
    client = state.current().judges().client_for(provider)
    try:
        response = await client.complete(rewrite_request(name, description, groups))
    except Exception as exc:  # noqa: BLE001 - a failed rewrite leaves the other candidates
        return {"description": None, "llm_calls": 1, "cost": 0.0, "error": str(exc)[:300]}
    return {"description": parse_rewrite(response.text), "llm_calls": 1,
            "cost": response.extra.get("cost_usd") or 0.0, "error": None}


async def _wait_answer(run_id: str) -> dict[str, Any]:
    delay = 0.25
    while True:
        answer = await labs_take_answer(run_id)
        if answer is not None:
            return answer
        await DBOS.sleep_async(delay)
        delay = min(delay * 2, 30.0)


class Spend:
    def __init__(self, judge_budget: int, rewriter_budget: int) -> None:
        self.judge_budget, self.rewriter_budget = judge_budget, rewriter_budget
        self.judge = self.rewriter = 0
        self.cost = 0.0
        self.notes: list[str] = []

    def as_dict(self) -> dict[str, Any]:
        return {"judge_calls": self.judge, "judge_budget": self.judge_budget, "rewriter_calls": self.rewriter,
                "rewriter_budget": self.rewriter_budget, "cost_usd": round(self.cost, 6)}


async def judge_all(content: dict[str, Any], items: list[dict[str, Any]], model: str | None, spend: Spend,
                     cache: dict[str, Any], *, salt: str = "") -> list[Any] | None:
    """Verdicts of one prompt on items, cached per (prompt, conversation); None when the budget
    cannot pay for them all (nothing is then spent)."""
    prompt_key = stable_hash(content)
    # `salt` makes a deliberate rerun (the noise floor) a new question rather than a cache hit.
    keys = [stable_hash([prompt_key, i["fingerprint"], salt]) for i in items]
    todo = [(k, i) for k, i in zip(keys, items) if k not in cache]
    per_call = 2 if content.get("evaluation_trigger") != "always" else 1
    if spend.judge + per_call * len(todo) > spend.judge_budget:
        return None
    outcomes = await asyncio.gather(*[labs_judge(content, i["call"], model) for _k, i in todo])
    for (k, _i), out in zip(todo, outcomes):
        cache[k] = out["value"]
        spend.judge += out["llm_calls"]
        spend.cost += out["cost"]
    return [cache[k] for k in keys]


def _accuracy(items: list[dict[str, Any]], predicted: list[Any]) -> float:
    return sum(repr(i["label"]) == repr(p) for i, p in zip(items, predicted)) / max(1, len(items))


@DBOS.workflow(name="judgelab.labs_run")
async def labs_run(run_id: str) -> str:
    ctx = await labs_load(run_id)
    if "error" in ctx:
        return "gone"
    content, model, items, params = ctx["content"], ctx["model"], ctx["items"], ctx["params"]
    spend = Spend(params["max_judge_calls"], params["max_rewriter_calls"])
    while conflicts := contradictions(items):
        await labs_update(run_id, {"status": "needs_input", "stage": "contradictions", "question": question_for(conflicts)})
        items = apply_answer(items, conflicts[0], await _wait_answer(run_id))
        await labs_update(run_id, {"status": "running", "question": None})
    if len(items) < 2:
        await labs_update(run_id, {"status": "failed", "message": "fewer than 2 labelled items are left"})
        return "failed"
    optimisation, held_out = split(items, params["seed"])
    if len(items) < SMALL:
        spend.notes.append(f"only {len(items)} labels: one split of {len(optimisation)} / {len(held_out)} has little "
                           "power, so expect 'not significant'; repeated cross-validation is not implemented yet")
    counts = {"labelled": len(items), "optimisation": len(optimisation), "held_out": len(held_out)}
    cache: dict[str, Any] = {}
    base_content = dict(content)
    start_description = params.get("simplified_prompt") or content["description"]

    if params["skip_evaluation"]:
        # The votes record what the judge said: its errors need no new judge calls.
        errors = [(i, i["judged"]) for i in optimisation if repr(i["label"]) != repr(i["judged"])]
    else:
        await labs_update(run_id, {"stage": "baseline", "progress": {**counts, **spend.as_dict()}})
        base_opt = await judge_all(base_content, optimisation, model, spend, cache)
        base_held = await judge_all(base_content, held_out, model, spend, cache)
        if base_opt is None or base_held is None:
            await labs_update(run_id, {"status": "failed", "message": "the judge-call budget cannot pay for the baseline"})
            return "failed"
        errors = [(i, p) for i, p in zip(optimisation, base_opt) if repr(i["label"]) != repr(p)]
        await labs_update(run_id, {"stage": "noise floor", "progress": {**counts, **spend.as_dict()}})
        flips = []
        for n in range(NOISE_RERUNS):
            again = await judge_all(base_content, held_out, model, spend, cache, salt=f"noise-{n}")
            if again is None:
                spend.notes.append("the budget left no room to measure the noise floor: taken as 0")
                break
            flips.append(sum(repr(a) != repr(b) for a, b in zip(again, base_held)) / max(1, len(held_out)))
        noise_floor = sum(flips) / len(flips) if flips else 0.0

    await labs_update(run_id, {"stage": "candidates", "progress": {**counts, **spend.as_dict()}})
    groups = clusters(errors)
    payload = [{"kind": g["kind"], "count": g["count"], "cause": g["cause"],
                "members": [(m[0], m[1]) for m in g["members"]]} for g in groups]
    # A candidate is the content it changes: a description, and for N/A errors a trigger.
    candidates: list[tuple[str, dict[str, Any]]] = []
    if params.get("simplified_prompt"):
        candidates.append(("simplified prompt", {"description": start_description}))
    use = set(params.get("generators") or GENERATORS)
    if "rewrite" in use and groups and spend.rewriter < spend.rewriter_budget and ctx["rewriter_model"]:
        rewritten = await labs_rewrite(ctx["rewriter_model"], start_description, payload)
        spend.rewriter += 1
        spend.cost += rewritten["cost"]
        if rewritten["description"]:
            candidates.append(("critique and edit", {"description": rewritten["description"]}))
        elif rewritten["error"]:
            spend.notes.append(f"the rewriter failed: {rewritten['error']}")
    if "rules" in use and (rules := rules_candidate(start_description, groups)) is not None:
        candidates.append(("rules from reasons", {"description": rules}))
    if "few-shot" in use and (shots := fewshot_candidate(start_description, optimisation)) is not None:
        candidates.append(("few-shot examples", {"description": shots}))
    if "trigger" in use and (trigger := trigger_candidate({**content, "description": start_description}, groups,
                                                          optimisation)) is not None:
        candidates.append(("refined trigger", {"description": start_description, **trigger}))
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
        best: tuple[float, str, dict[str, Any]] = (_accuracy(optimisation, base_opt), "current", {})
        tried = []
        for name, change in candidates:
            preds = await judge_all({**content, **change}, optimisation, model, spend, cache)
            if preds is None:
                spend.notes.append(f"budget reached: candidate '{name}' was not scored")
                continue
            tried.append({"candidate": name, "optimisation_accuracy": _accuracy(optimisation, preds)})
            if _accuracy(optimisation, preds) > best[0]:
                best = (_accuracy(optimisation, preds), name, change)
        _, name, proposal = best
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
    proposed = {**content, **proposal}
    result.update({
        "improved_metric_description": proposed["description"],
        "improved_evaluation_trigger": proposed["evaluation_trigger"],
        "improved_trigger_type": proposed.get("trigger_type"),
        "improved_evaluation_trigger_prompt": proposed.get("evaluation_trigger_prompt"),
        "diff": unified_diff(proposal_text(content), proposal_text(proposed)),
        "notes": spend.notes,
        "split": counts,
        # Which labelled items were held out, so anyone can check none reached the generators.
        "held_out_items": [i["key"] for i in held_out],
    })
    await labs_complete(run_id, result, {**counts, **spend.as_dict()})
    return "completed"
