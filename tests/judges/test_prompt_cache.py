"""Prompt prefix caching: several metrics on one call share the request's prefix, the providers' cached
tokens are read from their usage (over the real SDKs), and priced at the cached rate."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from judgelab.judges.client import JudgeClient
from judgelab.judges.pricing import cost_usd, price_table
from judgelab.judges.providers.anthropic import AnthropicProvider
from judgelab.judges.providers.openai import OpenAIProvider
from judgelab.judges.verdict import build_request
from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.conftest import Api

LONG_CALL = {"agent_description": "Airline policy. " * 400,
             "transcript_json": [{"role": "user", "content": f"Line {n}: I want to change my flight.", "start_time": float(n)}
                                 for n in range(60)]}
ANSWER = '{"result": true, "explanation": "ok"}'


def _two_metrics(provider: Any, model: str) -> list[Any]:
    async def main() -> list[Any]:
        client = JudgeClient(provider, sleep=lambda s: asyncio.sleep(0))
        out = []
        for criterion in ("Did the agent confirm before changing the booking?", "Was the agent polite throughout?"):
            out.append(await client.complete(build_request(model=model, criterion=criterion, eval_type="binary_qualitative",
                                                           enum_values=None, call=LONG_CALL)))
        await provider.aclose()
        return out

    return asyncio.run(main())


def test_openai_reports_the_shared_prefix_as_cached_and_it_is_priced_lower() -> None:
    with FakeOpenAIServer(rule=lambda body: ANSWER, prefix_cache=True) as server:
        first, second = _two_metrics(OpenAIProvider(base_url=server.base_url, api_key="x"), "gpt-4.1-mini")
    assert first.cached_input_tokens == 0 and second.cached_input_tokens >= 1024
    assert second.cached_input_tokens < second.input_tokens  # the criterion at the end is not cached
    full = cost_usd("openai/gpt-4.1-mini", second.input_tokens, second.output_tokens, price_table())
    assert full is not None and second.extra["cost_usd"] == pytest.approx(
        full - second.cached_input_tokens * (0.40 - 0.10) / 1_000_000)


def test_anthropic_gets_a_cache_breakpoint_after_the_call_data() -> None:
    with FakeOpenAIServer(rule=lambda body: ANSWER, prefix_cache=True) as server:
        first, second = _two_metrics(AnthropicProvider(base_url=server.root_url, api_key="x"), "claude-haiku-4-5")
        blocks = server.stats.bodies[0]["messages"][-1]["content"]
    assert blocks[0]["cache_control"] == {"type": "ephemeral"} and blocks[0]["text"].startswith("<T")
    assert blocks[0]["text"].rstrip().endswith(">") and blocks[1]["text"].startswith("Criterion:\n")
    assert first.cache_write_tokens >= 1024 and first.cached_input_tokens == 0
    assert second.cached_input_tokens == first.cache_write_tokens and second.cache_write_tokens == 0
    # Input counts every token (Anthropic reports cache reads apart); reads cost a tenth, writes 1.25x.
    plain = second.input_tokens - second.cached_input_tokens
    assert second.extra["cost_usd"] == pytest.approx((plain * 1.00 + second.cached_input_tokens * 0.10
                                                      + second.output_tokens * 5.00) / 1_000_000)
    assert first.extra["cost_usd"] > second.extra["cost_usd"]


def test_the_estimate_prices_the_shared_prefix_at_the_cached_rate(api: Api) -> None:
    agent = api.agent(description="Airline policy. " * 400)
    calls = [api.call(agent, f"c{i}", "I want to change my flight. " * 100)["id"] for i in range(3)]
    metrics = [api.metric(f"m{k}", model="openai/gpt-4.1-mini")["id"] for k in range(5)]
    one = api.post("/api/v1/evaluations/estimate/", json={"metrics": metrics[:1], "call_logs": calls}).json()
    five = api.post("/api/v1/evaluations/estimate/", json={"metrics": metrics, "call_logs": calls}).json()
    assert one["cached_input_tokens"] == 0  # one request per call: nothing to reuse
    prefix = five["by_model"][0]["cached_input_tokens"] // (3 * 4)
    assert five["cached_input_tokens"] == 3 * 4 * prefix and prefix >= 1024  # 4 of the 5 requests per call
    assert five["cost_usd"] < 5 * one["cost_usd"]
