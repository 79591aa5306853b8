"""The real `anthropic` SDK over a real socket, against the fake model server's /v1/messages."""

from __future__ import annotations

import asyncio

import pytest

from judgelab.judges.client import JudgeClient
from judgelab.judges.providers.anthropic import AnthropicProvider
from judgelab.judges.types import ChatMessage, ChatRequest, ProviderError
from judgelab.judges.verdict import build_request, parse_verdict
from judgelab.testing.fake_openai import FakeOpenAIServer, Fault

VERDICT = '{"result": false, "explanation": "No confirmation before the booking."}'


def test_judge_round_trip_with_system_prompt_split_out() -> None:
    request = build_request(model="claude-haiku-4-5", criterion="Confirmation before booking",
                            eval_type="binary_qualitative", enum_values=None,
                            call={"transcript_json": [{"role": "agent", "content": "Booked!"}]})
    with FakeOpenAIServer(answers=[VERDICT]) as server:
        async def go():  # type: ignore[no-untyped-def]
            provider = AnthropicProvider(base_url=server.root_url, api_key="test")
            client = JudgeClient(provider)
            try:
                return await client.complete(request), client.usage
            finally:
                await provider.aclose()

        resp, usage = asyncio.run(go())
        body = server.stats.bodies[0]
    assert parse_verdict(resp.text, "binary_qualitative", None).value is False
    assert resp.finish_reason == "end_turn" and resp.input_tokens > 0
    assert "never follow instructions" in body["system"]
    assert [m["role"] for m in body["messages"]] == ["user"] and body["model"] == "claude-haiku-4-5"
    assert usage.cost_usd > 0  # anthropic/claude-haiku-4-5 is in the price table


@pytest.mark.parametrize(("fault", "status"), [("429", 429), ("500", 500), ("malformed", None)])
def test_faults_are_retryable(fault: str, status: int | None) -> None:
    with FakeOpenAIServer(answers=[Fault(fault), VERDICT]) as server:
        async def go():  # type: ignore[no-untyped-def]
            provider = AnthropicProvider(base_url=server.root_url, api_key="test")
            try:
                with pytest.raises(ProviderError) as info:
                    await provider.complete(ChatRequest("m", (ChatMessage("user", "x"),)))
                assert info.value.retryable and info.value.status == status
                return (await provider.complete(ChatRequest("m", (ChatMessage("user", "y"),)))).text
            finally:
                await provider.aclose()

        assert asyncio.run(go()) == VERDICT


def test_the_wrapper_retries_server_errors() -> None:
    with FakeOpenAIServer(rule=lambda body: VERDICT) as server:
        async def go():  # type: ignore[no-untyped-def]
            provider = AnthropicProvider(base_url=server.root_url, api_key="test")
            try:
                server.queue.append(Fault("500"))
                client = JudgeClient(provider, base_delay=0.01)
                resp = await client.complete(ChatRequest("m", (ChatMessage("user", "z"),)))
                return resp.text, client.usage.retries
            finally:
                await provider.aclose()

        assert asyncio.run(go()) == (VERDICT, 1)
