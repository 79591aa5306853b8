"""The real `openai` SDK over a real socket, against the fake model server."""

from __future__ import annotations

import asyncio
import time

import pytest

from judgelab.judges.client import JudgeClient
from judgelab.judges.providers.openai import OpenAIProvider
from judgelab.judges.types import ChatMessage, ChatRequest, ProviderError
from judgelab.judges.verdict import build_request, parse_verdict
from judgelab.testing.fake_openai import FakeOpenAIServer, Fault

VERDICT = '{"result": true, "explanation": "The agent confirmed at 00:05."}'


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_judge_request_round_trip_with_structured_output() -> None:
    call = {"transcript_json": [{"role": "agent", "content": "Shall I book it?", "start_time": 5.0},
                                {"role": "user", "content": "Yes please."}]}
    request = build_request(model="gpt-4.1-mini", criterion="Confirmation before booking", eval_type="binary_workflow_adherence",
                            enum_values=None, call=call)
    with FakeOpenAIServer(answers=[VERDICT]) as server:
        async def go():  # type: ignore[no-untyped-def]
            provider = OpenAIProvider(base_url=server.base_url, api_key="test")
            try:
                return await provider.complete(request)
            finally:
                await provider.aclose()

        resp = _run(go())
        body = server.stats.bodies[0]
    assert parse_verdict(resp.text, "binary_workflow_adherence", None).value is True
    assert resp.input_tokens > 0 and resp.output_tokens > 0 and resp.finish_reason == "stop"
    assert body["model"] == "gpt-4.1-mini" and body["temperature"] == 0.0
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["result", "explanation"]
    assert "[00:05] Agent: Shall I book it?" in body["messages"][1]["content"]


@pytest.mark.parametrize(("fault", "status"), [("429", 429), ("500", 500), ("malformed", None)])
def test_faults_are_retryable_errors_and_the_wrapper_recovers(fault: str, status: int | None) -> None:
    with FakeOpenAIServer(answers=[Fault(fault)]) as server:
        async def go():  # type: ignore[no-untyped-def]
            provider = OpenAIProvider(base_url=server.base_url, api_key="test")
            try:
                with pytest.raises(ProviderError) as info:
                    await provider.complete(ChatRequest("m", (ChatMessage("user", "x"),)))
                assert info.value.retryable and info.value.status == status
                if fault == "429":
                    assert info.value.retry_after == pytest.approx(0.05)
                client = JudgeClient(provider, base_delay=0.01)
                server.queue.extend([Fault(fault), VERDICT])
                resp = await client.complete(ChatRequest("m", (ChatMessage("user", "y"),)))
                assert resp.text == VERDICT and client.usage.retries == 1
            finally:
                await provider.aclose()

        _run(go())


def test_timeouts_are_retryable() -> None:
    with FakeOpenAIServer(answers=[Fault("timeout")], timeout_seconds=5) as server:
        async def go():  # type: ignore[no-untyped-def]
            provider = OpenAIProvider(base_url=server.base_url, api_key="test", timeout=0.3)
            try:
                started = time.monotonic()
                with pytest.raises(ProviderError) as info:
                    await provider.complete(ChatRequest("m", (ChatMessage("user", "x"),)))
                assert info.value.retryable and time.monotonic() - started < 3
            finally:
                await provider.aclose()

        _run(go())


def test_truncated_answer_comes_back_marked() -> None:
    with FakeOpenAIServer(answers=[Fault("truncated")]) as server:
        async def go():  # type: ignore[no-untyped-def]
            provider = OpenAIProvider(base_url=server.base_url, api_key="test")
            try:
                return await provider.complete(ChatRequest("m", (ChatMessage("user", "x"),)))
            finally:
                await provider.aclose()

        resp = _run(go())
    assert resp.finish_reason == "length"


def test_concurrency_limit_429s_are_absorbed_by_the_wrapper() -> None:
    with FakeOpenAIServer(rule=lambda body: VERDICT, latency=0.05, max_concurrency=4, retry_after=0.02) as server:
        async def go():  # type: ignore[no-untyped-def]
            provider = OpenAIProvider(base_url=server.base_url, api_key="test")
            client = JudgeClient(provider, max_concurrency=8, max_attempts=10)
            try:
                results = await asyncio.gather(
                    *(client.complete(ChatRequest("m", (ChatMessage("user", str(i)),))) for i in range(24))
                )
            finally:
                await provider.aclose()
            return results, client.usage

        results, usage = _run(go())
    assert len(results) == 24 and all(r.text == VERDICT for r in results)
    assert server.stats.rejected_busy > 0 and usage.retries == server.stats.rejected_busy
    assert server.stats.max_in_flight <= 4 and usage.failures == 0
