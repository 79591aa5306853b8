"""What an evaluation would cost, before anything is spent: calls, evaluations, tokens, money.

Tokens are approximated as characters / 4 (no provider tokenizer is a dependency); the prompt is
measured from the stored transcripts, agent descriptions and metadata with SQL sums, so an
estimate over 100 000 calls reads no transcript into Python.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from judgelab.calls.queries import CallFilters, apply_filters, check_calls
from judgelab.db.models import Agent, CallLog, MetricResult
from judgelab.evaluation.sandbox import current as current_sandbox
from judgelab.judges.pricing import BATCH_DISCOUNT, BATCH_PROVIDERS, cost_usd, price_table
from judgelab.metrics.service import get_metric

CONFIRM_ABOVE = 100  # calls; more need an explicit confirmation
CHARS_PER_TOKEN = 4
OUTPUT_TOKENS_PER_VERDICT = 150
SYSTEM_PROMPT_CHARS = 900  # the judge's fixed instructions (verdict.build_request)
CACHE_MIN_TOKENS = 1024  # the shortest prefix OpenAI and Anthropic cache
NESTED_CALL = re.compile(r"\b(judge|evaluate_llm_judge_metric)\s*\(")


@dataclass
class ModelCost:
    model: str | None
    metrics: list[int]
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None  # None: no price known for this model
    cached_input_tokens: int = 0  # of input_tokens, expected to be read from the provider's prompt cache
    batch_cost_usd: float | None = None  # through the provider's batch API ("batch": true); None: no batch API


@dataclass
class Estimate:
    calls: int
    metrics: int
    evaluations: int
    llm_requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    by_model: list[ModelCost]
    requires_confirmation: bool
    # The same work through the providers' batch APIs (`"batch": true`): half price, answers within
    # 24 hours. None when a model in it has no price or its provider no batch API.
    batch_cost_usd: float | None = None
    cached_evaluations: int = 0  # evaluations a stored result answers at no cost
    cached_input_tokens: int = 0  # input tokens expected at the provider's cached rate (prompt caching)
    confirm_above_calls: int = CONFIRM_ABOVE
    tokenizer: str = "approximate: 4 characters per token"
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate(
    session: Session,
    project_id: int,
    metric_ids: list[int],
    default_model: str | None,
    *,
    call_ids: list[int] | None = None,
    filters: CallFilters | None = None,
    force: bool = False,
) -> Estimate:
    metrics = [get_metric(session, project_id, m, field="metrics") for m in dict.fromkeys(metric_ids)]
    # Per call: its content hash (to find cached results) and the characters a judge would read.
    stmt: Any = select(
        CallLog.id, CallLog.content_hash, func.coalesce(func.length(CallLog.transcript), 0),
        func.coalesce(func.length(func.coalesce(CallLog.agent_description, Agent.description)), 0),
    ).join(Agent, Agent.id == CallLog.agent_id)
    if call_ids is not None:
        ids = check_calls(session, project_id, call_ids)
        stmt = stmt.where(CallLog.project_id == project_id, CallLog.id.in_(ids))
    else:
        stmt = apply_filters(session, project_id, filters or CallFilters(), stmt)
    rows = list(session.execute(stmt.order_by(None)).all())
    n_calls = len(rows)
    prices = price_table()
    notes: list[str] = []
    by_model: dict[str | None, ModelCost] = {}
    cached_total = 0
    asked: dict[tuple[str | None, int], int] = {}  # judge requests already counted per (model, call)
    for metric in metrics:
        version = metric.current
        model = version.model or default_model
        per_call_fixed = SYSTEM_PROMPT_CHARS + len(version.description or "")
        asks = 1 if version.type == "llm_judge" else 0
        if version.evaluation_trigger == "automatic" or (version.evaluation_trigger == "custom"
                                                         and version.trigger_type == "llm_judge"):
            asks += 1  # the trigger question is asked first, on the same conversation
        code = (version.custom_code or "") if version.type == "custom_code" else ""
        if version.evaluation_trigger == "custom" and version.trigger_type == "custom_code":
            code += "\n" + (version.evaluation_trigger_custom_code or "")
        nested = 0
        if NESTED_CALL.search(code):
            # Code may ask the judge up to the declared maximum per evaluation: priced at that bound.
            nested = current_sandbox().limits.nested_calls
            notes.append(f"metric {metric.id} runs code that asks the judge: counted at the maximum of {nested} "
                         "nested requests per evaluation (JUDGELAB_SANDBOX_MAX_JUDGE_CALLS)")
        if asks + nested == 0:
            continue
        # A stored result of this very version, model and call is reused at no cost (unless forced);
        # code metrics also depend on other metrics' results, so only judge metrics are matched here.
        hits = set() if force or version.type != "llm_judge" else _cached(session, project_id, version.content_hash,
                                                                           version.model or default_model, rows)
        cached_total += len(hits)
        todo = [r for r in rows if r[0] not in hits]
        whole = sum(r[2] + r[3] for r in todo) + len(todo) * per_call_fixed
        requests = len(todo) * (asks + nested)
        chars = whole * (asks + nested)
        entry = by_model.setdefault(model, ModelCost(model, [], 0, 0, 0, 0.0))
        entry.metrics.append(metric.id)
        entry.requests += requests
        entry.input_tokens += chars // CHARS_PER_TOKEN
        entry.output_tokens += requests * OUTPUT_TOKENS_PER_VERDICT
        # Prompt caching: the judge request starts with what every metric on a call shares (the fixed
        # instructions and the call's data). After the first request on a call, that prefix is read
        # from the provider's cache, when it is long enough to be cached (1 024 tokens).
        for r in todo:
            prefix = (SYSTEM_PROMPT_CHARS + r[2] + r[3]) // CHARS_PER_TOKEN
            seen = asked.setdefault((model, r[0]), 0)
            if prefix >= CACHE_MIN_TOKENS:
                entry.cached_input_tokens += prefix * max(0, asks + nested - (0 if seen else 1))
            asked[(model, r[0])] = seen + asks + nested
    if cached_total:
        notes.append(f"{cached_total} evaluation(s) have a stored result of the same version, model and call: reused "
                     "at no cost (force re-evaluates them)")
    total_cost: float | None = 0.0
    batch_cost: float | None = 0.0
    for entry in by_model.values():
        if entry.model is None:
            entry.cost_usd = None
            notes.append("no judge model configured (JUDGELAB_MODEL or the metric's model): cost unknown")
        else:
            entry.cost_usd = cost_usd(entry.model, entry.input_tokens, entry.output_tokens, prices,
                                      entry.cached_input_tokens)
            if entry.cost_usd is None:
                notes.append(f"no price known for {entry.model}: set JUDGELAB_PRICES to count it")
            elif entry.model.split("/", 1)[0] in BATCH_PROVIDERS:
                entry.batch_cost_usd = entry.cost_usd * BATCH_DISCOUNT
        total_cost = None if total_cost is None or entry.cost_usd is None else total_cost + entry.cost_usd
        batch_cost = None if batch_cost is None or entry.batch_cost_usd is None else batch_cost + entry.batch_cost_usd
    return Estimate(
        calls=n_calls,
        metrics=len(metrics),
        evaluations=n_calls * len(metrics),
        llm_requests=sum(e.requests for e in by_model.values()),
        input_tokens=sum(e.input_tokens for e in by_model.values()),
        output_tokens=sum(e.output_tokens for e in by_model.values()),
        cost_usd=total_cost,
        batch_cost_usd=batch_cost if by_model else None,
        by_model=list(by_model.values()),
        requires_confirmation=n_calls > CONFIRM_ABOVE,
        cached_evaluations=cached_total,
        cached_input_tokens=sum(e.cached_input_tokens for e in by_model.values()),
        notes=notes,
    )


def _cached(session: Session, project_id: int, version_hash: str, model: str | None, rows: list[Any]) -> set[int]:
    """Ids of the calls whose result for this version and model is already stored (by cache key)."""
    from judgelab.evaluation.engine import cache_key

    keys = {cache_key(version_hash, model, r[1]): r[0] for r in rows}
    found: set[int] = set()
    names = list(keys)
    for start in range(0, len(names), 500):
        chunk = names[start:start + 500]
        found |= {keys[k] for k in session.scalars(select(MetricResult.cache_key).where(
            MetricResult.project_id == project_id, MetricResult.cache_key.in_(chunk), MetricResult.error.is_(None)))
            if k is not None}
    return found
