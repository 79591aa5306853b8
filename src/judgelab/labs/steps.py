"""The labs run's steps: loading, progress updates, judge and rewriter calls, each a DBOS step, and
the judge-call budget. Shared by the single-split run and cross-validation.

Determinism on replay: steps are created in list order from data that is itself replayed
(the labelled items, earlier steps' outputs), never from timing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from dbos import DBOS

from judgelab.db.models import LabsRun
from judgelab.db.types import utcnow
from judgelab.evaluation.engine import evaluate
from judgelab.jobs import state
from judgelab.jsonutil import stable_hash
from judgelab.labs.candidates import parse_hypotheses, rewrite_request
from judgelab.labs.dataset import load_items
from judgelab.labs.report import ERROR
from judgelab.labs.service import begin_run
from judgelab.metrics.definition import MetricContent
from judgelab.metrics.service import content_of

NOISE_PROBE = 4  # repeated requests that measure a model's run-to-run noise, once per model


def _load(run_id: str) -> dict[str, Any]:
    rt = state.current()
    with rt.db.session() as session:
        begun = begin_run(session, run_id, "loading", executor_id=DBOS.executor_id)
        if begun is None:
            return {"error": "the run's row is gone"}
        run, metric, version = begun
        content = content_of(version)
        model = content.model or rt.settings.model
        items = load_items(session, run.project_id, metric, run.params.get("test_set_ids"), version=version, model=model)
        return {"content": content.as_dict(), "model": model, "items": items, "params": run.params, "metric_id": metric.id,
                "rewriter_model": rt.settings.rewriter_model or rt.settings.model,
                "determinism": known_determinism(session, model),
                "history": run_history(session, metric.id, run.metric_version_id, run.id)}


def known_determinism(session: Any, model: str | None) -> dict[str, Any] | None:
    """The newest measurement of this model's run-to-run noise by an earlier labs run, if any."""
    rows = session.scalars(sa.select(LabsRun.result).where(LabsRun.status == "completed")
                           .order_by(LabsRun.created_at.desc()).limit(200)).all()
    for result in rows:
        found = (result or {}).get("determinism")
        if found and found.get("model") == model and found.get("flip_rate") is not None:
            return {k: v for k, v in found.items() if k != "reused"}
    return None


def run_history(session: Any, metric_id: int, version_id: int, run_id: str) -> list[dict[str, Any]]:
    """Earlier labs runs that tested this metric version, and what they said: a reader should
    know how many tries a verdict came after."""
    rows = session.execute(sa.select(LabsRun.id, LabsRun.result, LabsRun.params, LabsRun.created_at).where(
        LabsRun.metric_id == metric_id, LabsRun.metric_version_id == version_id, LabsRun.status == "completed",
        LabsRun.id != run_id).order_by(LabsRun.created_at)).all()
    return [{"progress_id": r.id, "verdict": ((r.result or {}).get("verdict") or {}).get("verdict"),
             "seed": (r.params or {}).get("seed"), "created_at": r.created_at.isoformat() if r.created_at else None}
            for r in rows if (r.params or {}).get("kind", "labs") == "labs"]


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
async def labs_judge(content: dict[str, Any], call: dict[str, Any], model: str | None,
                     others: dict[str, Any] | None = None) -> dict[str, Any]:
    # The production path: the same evaluate(), with the other metrics' results a trigger or code
    # reads (`data["Booking made"]`), so labs judges a call exactly as an evaluation job would.
    out = await evaluate(MetricContent(**content), call, state.current().judges().client_for, model,
                         other_results=others)
    return {"value": ERROR if out.error else out.value, "llm_calls": out.llm_calls, "cost": out.cost_usd,
            "input_tokens": out.input_tokens, "error": out.error, "explanation": out.explanation[:600],
            "note": out.extra.get("excerpted")}


@DBOS.step(name="judgelab.labs_rewrite")
async def labs_rewrite(model: str, description: str, dataset: dict[str, Any]) -> dict[str, Any]:
    provider, _, name = model.partition("/")
    client = state.current().judges().client_for(provider)
    try:
        response = await client.complete(rewrite_request(name, description, dataset))
    except Exception as exc:  # noqa: BLE001 - a failed rewrite leaves the other candidates
        return {"hypotheses": [], "llm_calls": 1, "cost": 0.0, "error": str(exc)[:300], "note": None}
    hypotheses, note = parse_hypotheses(response.text, response.finish_reason)
    return {"hypotheses": hypotheses, "llm_calls": 1, "cost": response.extra.get("cost_usd") or 0.0, "error": None,
            "note": note}


async def wait_answer(run_id: str) -> dict[str, Any]:
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
        # Judge calls kept back for the report (held-out and audit labels): candidates may not spend
        # them, so a run that searched hard still says how its proposal does.
        self.reserved = 0
        self.notes: list[str] = []

    def as_dict(self) -> dict[str, Any]:
        return {"judge_calls": self.judge, "judge_budget": self.judge_budget, "rewriter_calls": self.rewriter,
                "rewriter_budget": self.rewriter_budget, "cost_usd": round(self.cost, 6)}


def requests_per_item(content: dict[str, Any]) -> int:
    """Judge requests one item costs at most: the verdict, and the trigger question unless `always`."""
    return 1 if content.get("evaluation_trigger", "always") == "always" else 2


async def judge_all(content: dict[str, Any], items: list[dict[str, Any]], model: str | None, spend: Spend,
                     cache: dict[str, Any], *, salt: str = "", final: bool = False) -> list[Any] | None:
    """Verdicts of one prompt on items, cached per (prompt, conversation); None when the budget
    cannot pay for them all (nothing is then spent)."""
    # `salt` makes a deliberate rerun (the noise floor) a new question rather than a cache hit.
    keys = [_key(content, i, salt) for i in items]
    todo = [(k, i) for k, i in zip(keys, items) if k not in cache]
    if spend.judge + requests_per_item(content) * len(todo) > spend.judge_budget - (0 if final else spend.reserved):
        return None
    outcomes = await asyncio.gather(*[labs_judge(content, i["call"], model, i.get("others")) for _k, i in todo])
    for (k, _i), out in zip(todo, outcomes):
        cache[k] = out["value"]
        cache["why:" + k] = out.get("explanation") or ""
        spend.judge += out["llm_calls"]
        spend.cost += out["cost"]
        if out.get("note") and out["note"] not in spend.notes:
            spend.notes.append(out["note"])
    return [cache[k] for k in keys]


def _key(content: dict[str, Any], item: dict[str, Any], salt: str = "") -> str:
    return stable_hash([stable_hash(content), item["fingerprint"], salt])


def explanations(content: dict[str, Any], items: list[dict[str, Any]], cache: dict[str, Any]) -> dict[str, str]:
    """The judge's explanation of each item's verdict under `content`, by item key (those judged)."""
    return {i["key"]: cache.get("why:" + _key(content, i), "") for i in items}


def reuse_baseline(content: dict[str, Any], items: list[dict[str, Any]], cache: dict[str, Any]) -> int:
    """Seed the cache with the stored results of this very version and model (`item["stored"]`,
    found by the evaluation cache key when the items were loaded): the baseline is not paid twice."""
    reused = 0
    for item in items:
        stored = item.get("stored")
        if stored is not None and _key(content, item) not in cache:
            cache[_key(content, item)] = stored["value"]
            cache["why:" + _key(content, item)] = stored.get("explanation") or ""
            reused += 1
    return reused


async def measure_noise(content: dict[str, Any], items: list[dict[str, Any]], base: list[Any], model: str | None,
                        spend: Spend, cache: dict[str, Any], known: dict[str, Any] | None) -> dict[str, Any]:
    """How often the unchanged prompt's verdicts flip when asked again, measured once per model.

    At temperature 0 most providers repeat themselves, so buying reruns of the whole held-out part
    each run measured ~0 at the price of two more passes. Instead a few repeated requests measure
    the model's determinism once; later runs on the same model reuse that figure (`known`). Where
    it could not be measured the result says so, and unmeasured never counts as 0."""
    if known is not None and known.get("model") == model and known.get("flip_rate") is not None:
        return {**known, "reused": True}
    probe = list(zip(items, base))[:NOISE_PROBE]
    if not probe:
        return {"model": model, "flip_rate": None, "measured_on": 0, "note": "no items to measure on"}
    again = await judge_all(content, [i for i, _ in probe], model, spend, cache, salt="noise-0")
    if again is None:
        spend.notes.append("the budget left no room to measure the judge's run-to-run noise: it is reported as "
                           "unmeasured, not as 0")
        return {"model": model, "flip_rate": None, "measured_on": 0}
    flips = sum(repr(a) != repr(b) for a, (_i, b) in zip(again, probe))
    return {"model": model, "flip_rate": flips / len(probe), "measured_on": len(probe), "reused": False}
