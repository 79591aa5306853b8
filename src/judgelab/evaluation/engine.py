"""Evaluate one metric version on one call.

Pure with respect to storage: it takes the judged content and the call as the API shows it and
returns an outcome; jobs decide where outcomes go. Every failure is an explicit error outcome
with its reason, never a pass or a fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from judgelab.calls.transcripts import render_text
from judgelab.evaluation.fit import fit
from judgelab.evaluation.sandbox import Limits, NestedJudge, current, run_custom_code
from judgelab.jsonutil import stable_hash
from judgelab.judges.client import JudgeClient
from judgelab.judges.types import ChatMessage, ChatRequest, ChatResponse, ProviderError
from judgelab.judges.verdict import Verdict, VerdictError, bind_variables, build_request, parse_verdict
from judgelab.metrics.definition import BINARY_EVAL_TYPES, MetricContent

# Bump when the judge request or the verdict rules change: cached results then stop matching.
JUDGE_PROTOCOL = "judge-v3"  # v3: call data first, the criterion last (prompt caching)
NO_MODEL = (
    "no judge model configured: set JUDGELAB_MODEL to provider/model (for example openai/gpt-4.1-mini) "
    "or give the metric a `model`"
)
APPLIES = (
    "Decide only whether the criterion below applies to this conversation at all, not whether the "
    "conversation passes it. result true = it applies; false = it does not apply; null = cannot tell."
)


@dataclass
class Outcome:
    value: Any = None
    score: float | None = None
    explanation: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    model: str | None = None
    input_tokens: int = 0
    cached_input_tokens: int = 0  # of input_tokens, read from the provider's prompt cache
    output_tokens: int = 0
    cost_usd: float = 0.0
    llm_calls: int = 0

    def add_usage(self, response: ChatResponse) -> None:
        self.llm_calls += 0 if response.cached else 1
        self.input_tokens += response.input_tokens
        self.cached_input_tokens += 0 if response.cached else response.cached_input_tokens
        self.output_tokens += response.output_tokens
        self.cost_usd += response.extra.get("cost_usd") or 0.0


def cache_key(version_hash: str, model: str | None, call_hash: str) -> str:
    """Same metric content, same model and parameters, same call: the same result may be reused."""
    return stable_hash([JUDGE_PROTOCOL, version_hash, model, call_hash])


def result_key(version_hash: str, metric_type: str, model: str | None, call_hash: str,
               others: dict[str, Any] | None) -> str:
    """The cache key of a metric's result on a call. Code may read other metrics' results: they are
    part of what it was given, so they are part of its key (a judge sees the conversation alone)."""
    if metric_type == "custom_code":
        call_hash = stable_hash([call_hash, others or {}])
    return cache_key(version_hash, model, call_hash)


ClientFor = Callable[[str], JudgeClient]  # provider name -> its client
_MAX_CHARS: list[int] = []


def max_chars() -> int:
    """The most characters of call a judge request carries (JUDGELAB_JUDGE_MAX_INPUT_CHARS), read once."""
    if not _MAX_CHARS:
        from judgelab.config import Settings

        _MAX_CHARS.append(Settings().judge_max_input_chars)
    return _MAX_CHARS[0]



def sandbox_data(call: dict[str, Any], other_results: dict[str, Any] | None) -> dict[str, Any]:
    """The spec's `data` for custom_code: the call's fields, then other metrics' results by name."""
    data = {
        "transcript": call.get("transcript") or render_text(call.get("transcript_json") or []),
        "transcript_json": call.get("transcript_json") or [],
        "agent_description": call.get("agent_description") or "",
        "dynamic_variables": call.get("dynamic_variables") or {},
        "metadata": call.get("metadata") or {},
        "call_end_reason": call.get("call_ended_reason"),
        "voice_recording": call.get("voice_recording_url"),
        # The seed platform's other documented keys.
        "call_duration": call.get("duration"),
        "call_log_id": call.get("id"),
        "call_id": call.get("call_id"),
        "timestamp": call.get("timestamp"),
    }
    for name, value in (other_results or {}).items():
        data.setdefault(name, value)
    return data


async def evaluate(
    content: MetricContent,
    call: dict[str, Any],
    client_for: ClientFor,
    default_model: str | None,
    *,
    other_results: dict[str, Any] | None = None,
    limits: Limits | None = None,
) -> Outcome:
    model = content.model or default_model
    out = Outcome(model=model)
    client: JudgeClient | None = None
    model_name = ""
    if model:
        provider, _, model_name = model.partition("/")
        try:
            client = client_for(provider)
        except KeyError:
            out.error = f"unknown provider {provider!r} in model {model!r}"
            return out
    needs_model = content.type == "llm_judge" or content.evaluation_trigger == "automatic" or (
        content.evaluation_trigger == "custom" and content.trigger_type == "llm_judge"
    )
    if needs_model and client is None:
        out.error = NO_MODEL
        return out

    # Nested judge calls are paid for in the open: at most this many LLM requests per evaluation,
    # re-asks included, counted in the outcome's llm_calls and cost like the metric's own.
    nested_budget = (limits or current().limits).nested_calls
    nested_used = [0]

    async def nested(prompt: str, eval_type: str, enum_values: list[str] | None, transcript: str | None = None,
                     context: str | None = None) -> dict[str, Any]:
        if client is None:
            raise RuntimeError(NO_MODEL)
        left = nested_budget - nested_used[0]
        if left < 1:
            raise RuntimeError(f"at most {nested_budget} nested judge requests per evaluation (JUDGELAB_SANDBOX_MAX_JUDGE_CALLS)")
        if transcript is None:
            seen = call
        else:
            prompt, bound = bind_variables(prompt, call)  # {{metadata.x}} reads the whole call, not the excerpt
            seen = {"transcript": transcript, "transcript_json": [], "agent_description": context or "", "metadata": {},
                    "dynamic_variables": {}, "prompt_variables": bound}
        before = out.llm_calls
        try:
            verdict = await _judge(client, model_name, prompt, eval_type, enum_values, seen, out, attempts=min(2, left))
        finally:
            nested_used[0] += max(1, out.llm_calls - before)
        if verdict is None:
            raise RuntimeError(out.error or "no verdict")
        return {"result": verdict.value, "explanation": verdict.explanation}

    data = sandbox_data(call, other_results) if "custom_code" in (content.type, content.trigger_type) else {}
    trigger = await _trigger(content, call, client, model_name, out, data, nested, limits)
    if trigger is False:
        out.extra["trigger_failed"] = True
        out.explanation = out.explanation or "the metric's trigger did not fire, so it does not apply (N/A)"
        return out
    if out.error:
        return out
    if content.type == "custom_code":
        ran = await run_custom_code(content.custom_code or "", data, nested_judge=nested, limits=limits)
        out.extra.update(ran.extra)
        if ran.output:
            out.extra["output"] = ran.output[-2000:]
        if ran.error:
            out.error = out.error or ran.error
            return out
        out.value, out.explanation = ran.result, ran.explanation
        out.score = Verdict(ran.result, "").score if content.eval_type in BINARY_EVAL_TYPES else None
        return out
    assert client is not None
    verdict = await _judge(client, model_name, content.description, content.eval_type, content.enum_values, call, out)
    if out.cached_input_tokens:
        out.extra["cached_input_tokens"] = out.cached_input_tokens  # billed at the provider's cached rate
    if verdict is not None:
        out.value, out.score, out.explanation = verdict.value, verdict.score, verdict.explanation
        if out.extra.get("excerpted"):
            out.explanation += f" (Judged on an excerpt: {out.extra['excerpted']}.)"
    return out


async def _trigger(
    content: MetricContent, call: dict[str, Any], client: JudgeClient | None, model: str, out: Outcome,
    data: dict[str, Any], nested: NestedJudge, limits: Limits | None,
) -> bool | None:
    """True / False when a trigger decided; None when the metric always runs (or on error)."""
    if content.evaluation_trigger == "always":
        return None
    if content.evaluation_trigger == "custom" and content.trigger_type == "custom_code":
        ran = await run_custom_code(content.evaluation_trigger_custom_code or "", data, nested_judge=nested, limits=limits)
        if ran.error:
            out.error = f"the trigger code failed: {ran.error}"
            return None
        if not isinstance(ran.result, bool):
            out.error = f"the trigger code must set _result to True or False, got {ran.result!r}"
            return None
        out.extra["trigger_explanation"] = ran.explanation
        return ran.result
    assert client is not None
    if content.evaluation_trigger == "automatic":
        criterion = f"{APPLIES}\n\nCriterion:\n{content.description}"
    else:
        criterion = f"{APPLIES}\n\nThe criterion applies when:\n{content.evaluation_trigger_prompt}"
    verdict = await _judge(client, model, criterion, "binary_qualitative", None, call, out)
    if verdict is None:
        return None
    out.extra["trigger_explanation"] = verdict.explanation
    return verdict.value is not False


async def _judge(
    client: JudgeClient, model: str, criterion: str, eval_type: str, enum_values: list[str] | None,
    call: dict[str, Any], out: Outcome, *, attempts: int = 2,
) -> Verdict | None:
    """One judge question; an unusable answer is asked again once, saying what was wrong. A call too
    long for the judge's context is asked about on an excerpt (`fit.py`), noted in the outcome."""
    call, note = fit(call, criterion, max_chars())
    if note is not None:
        out.extra["excerpted"] = note
    request = build_request(model=model, criterion=criterion, eval_type=eval_type, enum_values=enum_values, call=call)
    for attempt in range(1, attempts + 1):
        try:
            response = await client.complete(request)
        except ProviderError as exc:
            out.error = f"the model call failed: {exc}"
            return None
        out.add_usage(response)
        try:
            return parse_verdict(response.text, eval_type, enum_values)
        except VerdictError as exc:
            if attempt == attempts:
                out.error = f"the model gave no valid verdict twice; last problem: {exc}"
                out.extra["raw_answer"] = response.text[:2000]
                return None
            request = ChatRequest(
                model=request.model,
                messages=(
                    *request.messages,
                    ChatMessage("assistant", response.text[:4000]),
                    ChatMessage("user", f"That answer could not be used ({exc}). Reply with only the JSON object."),
                ),
                temperature=request.temperature,
                max_tokens=request.max_tokens,
                json_schema=request.json_schema,
            )
    return None
