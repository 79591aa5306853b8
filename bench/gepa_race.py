"""GEPA, run fairly against labs: `gepa.optimize` with an adapter that judges through judgelab's own
`evaluate()`, so both optimise the same program.

The same program: the metric's content (criterion, eval type, trigger) and each call as production
judges it (transcript, agent description with the airline policy, metadata), with the same judge
model. The same data: GEPA's trainset is the labs run's reflection part and its valset the
selection part (`labs.search.halves` on the same split and seed), each item scored 1 when the verdict
equals the reviewer's label (N/A labels included). Its reflective feedback is what labs' rewriter
gets: the judge's explanation, the reviewer's reason and expected value. Its reflection LM is the
rewriter model, called through the same judgelab client. Its budget is GEPA-light's as DSPy
computes it (`auto="light"`: 6 candidates), so "GEPA-light" means what DSPy users run.

`gepa` is a bench-only dependency (`pip install gepa`); nothing in judgelab imports it.
"""

from __future__ import annotations

import asyncio
import math
import os
from typing import Any

from judgelab.calls.transcripts import render_text
from judgelab.config import Settings
from judgelab.evaluation.engine import evaluate
from judgelab.judges.registry import Judges
from judgelab.judges.types import ChatMessage, ChatRequest
from judgelab.labs.candidates import label_text
from judgelab.labs.report import ERROR, right
from judgelab.metrics.definition import MetricContent


def available() -> str | None:
    try:
        import gepa  # noqa: F401
    except ImportError:
        return "the gepa package is not installed here (pip install gepa)"
    return None


def light_budget(valset_size: int, num_preds: int = 1, num_candidates: int = 6, minibatch: int = 35,
                 full_eval_steps: int = 5) -> int:
    """DSPy's `GEPA.auto_budget` for auto="light" (the metric calls a DSPy user's GEPA-light run may make)."""
    trials = int(max(2 * (num_preds * 2) * math.log2(num_candidates), 1.5 * num_candidates))
    total = valset_size + num_candidates * 5 + trials * minibatch
    total += ((trials + 1) // full_eval_steps + 1 + (1 if full_eval_steps > trials else 0)) * valset_size
    return total


class _Quiet:
    """GEPA logs every iteration; the bench prints its own table."""

    def log(self, message: str) -> None:
        pass


class Counter:
    def __init__(self) -> None:
        self.judge = 0
        self.reflection = 0


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def make_adapter(content: dict[str, Any], settings: Settings, model: str, counter: Counter) -> Any:
    from gepa.core.adapter import EvaluationBatch

    class JudgelabAdapter:
        """GEPA's adapter protocol over judgelab's judge path; one component, `criterion`."""

        propose_new_texts = None  # GEPA's own reflective proposer

        def evaluate(self, batch: list[dict[str, Any]], candidate: dict[str, str], capture_traces: bool = False) -> Any:
            metric = MetricContent(**{**content, "description": candidate["criterion"]})

            async def judge_all() -> list[Any]:
                judges = Judges(settings)
                try:
                    return await asyncio.gather(*[evaluate(metric, i["call"], judges.client_for, model,
                                                           other_results=i.get("others")) for i in batch])
                finally:
                    await judges.aclose()

            outcomes = _run(judge_all())
            counter.judge += sum(o.llm_calls for o in outcomes)
            values = [ERROR if o.error else o.value for o in outcomes]
            scores = [1.0 if right(i, v) else 0.0 for i, v in zip(batch, values)]
            traces = [{"item": i, "value": v, "explanation": o.explanation or o.error or ""}
                      for i, v, o in zip(batch, values, outcomes)] if capture_traces else None
            return EvaluationBatch(outputs=values, scores=scores, trajectories=traces)

        def make_reflective_dataset(self, candidate: dict[str, str], eval_batch: Any,
                                    components_to_update: list[str]) -> dict[str, list[dict[str, Any]]]:
            records = []
            for trace, score in zip(eval_batch.trajectories or [], eval_batch.scores):
                item = trace["item"]
                text = render_text(item["call"].get("transcript_json") or []) or item["call"].get("transcript") or ""
                feedback = ("Correct." if score else f"Wrong: the reviewer expected {label_text(item['label'])}. "
                            f"Their reason: {item.get('reason') or '(none given)'}")
                records.append({"Inputs": {"transcript": text[:4000]},
                                "Generated Outputs": f"{label_text(trace['value'])}: {trace['explanation']}",
                                "Feedback": feedback})
            return {name: records for name in components_to_update}

    return JudgelabAdapter()


def reflection_lm(settings: Settings, model: str, counter: Counter) -> Any:
    provider, _, name = model.partition("/")

    def lm(prompt: str) -> str:
        async def ask() -> str:
            judges = Judges(settings)
            try:
                response = await judges.client_for(provider).complete(ChatRequest(
                    model=name, messages=(ChatMessage("user", prompt),), max_tokens=2000, temperature=1.0))
            finally:
                await judges.aclose()
            return response.text

        counter.reflection += 1
        return _run(ask())

    return lm


def optimise(content: dict[str, Any], reflection: list[dict[str, Any]], selection: list[dict[str, Any]],
             settings: Settings, model: str, rewriter_model: str, seed: int = 0) -> dict[str, Any]:
    """GEPA-light on labs' reflection (train) and selection (validation) parts; the criterion it found
    and what it spent."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    import gepa

    counter = Counter()
    budget = light_budget(len(selection))
    result = gepa.optimize(
        seed_candidate={"criterion": content["description"]}, trainset=reflection, valset=selection,
        adapter=make_adapter(content, settings, model, counter), reflection_lm=reflection_lm(settings, rewriter_model, counter),
        max_metric_calls=budget, reflection_minibatch_size=3, use_merge=True, seed=seed, display_progress_bar=False,
        raise_on_exception=False, logger=_Quiet())
    best = result.best_candidate["criterion"] if isinstance(result.best_candidate, dict) else str(result.best_candidate)
    return {"criterion": best, "judge_calls": counter.judge, "reflection_calls": counter.reflection,
            "metric_calls": result.total_metric_calls, "budget": budget, "candidates": len(result.candidates),
            "changed": best.strip() != content["description"].strip()}
