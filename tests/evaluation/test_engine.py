from __future__ import annotations

import asyncio
import json

from judgelab.evaluation.engine import NO_MODEL, Outcome, cache_key, evaluate
from judgelab.judges.client import JudgeClient
from judgelab.judges.providers.fake import FakeProvider
from judgelab.judges.types import ChatRequest, ProviderError
from judgelab.metrics.definition import MetricContent

CALL = {"transcript_json": [{"role": "agent", "content": "Shall I cancel it?", "start_time": 3.0},
                            {"role": "user", "content": "Yes.", "start_time": 5.0}]}


def verdict(result: object, why: str = "because") -> str:
    return json.dumps({"result": result, "explanation": why})


def run(content: MetricContent, answers: list, default_model: str | None = "fake/judge") -> tuple[Outcome, FakeProvider]:
    fake = FakeProvider(answers)
    client = JudgeClient(fake, sleep=lambda s: asyncio.sleep(0))
    return asyncio.run(evaluate(content, CALL, {"fake": client}.__getitem__, default_model)), fake


def test_binary_pass_and_fail_carry_the_spec_score() -> None:
    out, fake = run(MetricContent(description="Confirmed before cancelling?"), [verdict(True, "yes at 00:05")])
    assert (out.value, out.score, out.explanation, out.error) == (True, 5.0, "yes at 00:05", None)
    assert out.llm_calls == 1 and out.model == "fake/judge" and fake.requests[0].model == "judge"
    out, _ = run(MetricContent(description="x"), [verdict(False)])
    assert (out.value, out.score) == (False, 0.0)


def test_an_invalid_verdict_is_asked_again_once() -> None:
    out, fake = run(MetricContent(description="x"), ["I think it passes", verdict(True)])
    assert out.value is True and out.llm_calls == 2
    retry: ChatRequest = fake.requests[1]
    assert retry.messages[-2].content == "I think it passes" and "could not be used" in retry.messages[-1].content


def test_two_invalid_verdicts_are_an_error_not_a_verdict() -> None:
    out, _ = run(MetricContent(description="x"), ["nope", '{"result": "maybe", "explanation": ""}'])
    assert out.error and "twice" in out.error
    assert out.value is None and out.score is None and out.extra["raw_answer"].startswith('{"result": "maybe"')


def test_enum_and_numeric() -> None:
    out, _ = run(MetricContent(description="kind", eval_type="enum", enum_values=["new", "existing"]), [verdict("existing")])
    assert out.value == "existing" and out.score is None
    out, _ = run(MetricContent(description="rate 1-5", eval_type="numeric"), [verdict(4)])
    assert out.value == 4


def test_triggers() -> None:
    automatic = MetricContent(description="Refund policy followed?", evaluation_trigger="automatic")
    out, fake = run(automatic, [verdict(False, "no refund discussed")])
    assert out.value is None and out.score is None and out.extra["trigger_failed"] is True and len(fake.requests) == 1
    out, fake = run(automatic, [verdict(True, "refund asked"), verdict(False, "policy broken")])
    assert out.value is False and out.extra["trigger_explanation"] == "refund asked" and len(fake.requests) == 2
    custom = MetricContent(description="x", evaluation_trigger="custom", trigger_type="llm_judge",
                           evaluation_trigger_prompt="the caller asks to cancel")
    out, fake = run(custom, [verdict(True), verdict(True)])
    assert out.value is True and "the caller asks to cancel" in fake.requests[0].messages[1].content
    code_trigger = MetricContent(description="x", evaluation_trigger="custom", trigger_type="custom_code",
                                 evaluation_trigger_custom_code="_result = 'Yes' in data['transcript']\n_explanation = 'said yes'")
    out, fake = run(code_trigger, [verdict(True)])
    assert out.value is True and out.extra["trigger_explanation"] == "said yes" and len(fake.requests) == 1
    never = MetricContent(description="x", evaluation_trigger="custom", trigger_type="custom_code",
                          evaluation_trigger_custom_code="_result = False\n_explanation = 'no'")
    out, fake = run(never, [])
    assert out.extra["trigger_failed"] is True and out.value is None and not fake.requests
    broken = MetricContent(description="x", evaluation_trigger="custom", trigger_type="custom_code",
                           evaluation_trigger_custom_code="_result = 'yes'\n_explanation = ''")
    out, _ = run(broken, [])
    assert out.error and "True or False" in out.error


def test_configuration_and_provider_failures_are_explicit_errors() -> None:
    out, _ = run(MetricContent(description="x"), [], default_model=None)
    assert out.error == NO_MODEL
    out, _ = run(MetricContent(description="x", model="nowhere/model"), [])
    assert out.error and "unknown provider 'nowhere'" in out.error
    out, _ = run(MetricContent(description="x"), [ProviderError("HTTP 401", retryable=False, status=401)])
    assert out.error and "HTTP 401" in out.error and out.value is None
    out, _ = run(MetricContent(type="custom_code", custom_code="_result = True"), [])
    assert out.error and "_explanation" in out.error


def test_custom_code_metrics_with_a_nested_judge_and_other_results() -> None:
    code = (
        "turns = [t for t in data['transcript_json'] if t['role'] == 'user']\n"
        "r = judge('Is this a clear yes? ' + turns[-1]['content'])\n"
        "_result = r['result'] and data['politeness'] >= 3\n"
        "_explanation = 'nested: ' + r['explanation']\n"
        "_extra = {'turns_sent': len(turns)}\n"
    )
    content = MetricContent(type="custom_code", custom_code=code, eval_type="binary_workflow_adherence")
    fake = FakeProvider([verdict(True, "a clear yes")])
    client = JudgeClient(fake)
    out = asyncio.run(evaluate(content, CALL, {"fake": client}.__getitem__, "fake/judge", other_results={"politeness": 4}))
    assert out.error is None, out.error
    assert (out.value, out.score, out.explanation) == (True, 5.0, "nested: a clear yes")
    assert out.extra["turns_sent"] == 1 and out.llm_calls == 1
    assert "Is this a clear yes? Yes." in fake.requests[0].messages[1].content
    # Without a model, code metrics still run; only their nested judge calls fail, explicitly.
    out = asyncio.run(evaluate(content, CALL, {}.__getitem__, None, other_results={"politeness": 4}))
    assert out.error and "no judge model configured" in out.error


def test_cache_key_changes_with_each_input() -> None:
    base = cache_key("v1", "openai/gpt-4.1-mini", "c1")
    assert base == cache_key("v1", "openai/gpt-4.1-mini", "c1")
    assert len({base, cache_key("v2", "openai/gpt-4.1-mini", "c1"), cache_key("v1", "openai/gpt-4.1", "c1"),
                cache_key("v1", "openai/gpt-4.1-mini", "c2")}) == 4


def test_a_nested_judge_can_be_sent_an_excerpt_instead_of_the_call() -> None:
    code = ("r = judge('Did the caller confirm?', transcript='user: yes, go ahead', context='Booking rules only')\n"
            "_result = r['result']\n_explanation = r['explanation']\n")
    fake = FakeProvider([verdict(True, "said go ahead")])
    client = JudgeClient(fake, sleep=lambda s: asyncio.sleep(0))
    long_call = {"transcript_json": [{"role": "user", "content": "filler " * 500}], "agent_description": "A" * 3000}
    out = asyncio.run(evaluate(MetricContent(type="custom_code", custom_code=code, description=""), long_call,
                               {"fake": client}.__getitem__, "fake/judge"))
    assert out.error is None and out.value is True
    sent = fake.requests[0].messages[1].content
    assert "user: yes, go ahead" in sent and "Booking rules only" in sent
    assert "filler" not in sent and "AAAA" not in sent
