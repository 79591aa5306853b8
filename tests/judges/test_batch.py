"""Requests through the providers' batch APIs, over the real SDKs, against the fake model server's
batch endpoints: one batch for many requests, half price, failed requests retried, an expired
batch resubmitted for what it missed, and a restart that polls the same batch instead of paying
again."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from judgelab.judges.batch import Batcher, MemoryStore
from judgelab.judges.client import JudgeClient
from judgelab.judges.providers.anthropic import AnthropicProvider
from judgelab.judges.providers.openai import OpenAIProvider
from judgelab.judges.types import ChatMessage, ChatRequest, ProviderError
from judgelab.testing.fake_openai import FakeOpenAIServer

N = 12


def _answer(body: dict[str, Any]) -> str:
    text = json.dumps(body.get("messages"))
    return json.dumps({"result": "yes-please" in text, "explanation": "read it"})


def _requests(model: str) -> list[ChatRequest]:
    return [ChatRequest(model=model, messages=(ChatMessage("user", f"call {i}: {'yes-please' if i % 2 else 'no'}"),))
            for i in range(N)]


def _provider(kind: str, server: FakeOpenAIServer) -> Any:
    if kind == "openai":
        return OpenAIProvider(base_url=server.base_url, api_key="test")
    return AnthropicProvider(base_url=server.root_url, api_key="test")


MODELS = {"openai": "gpt-4.1-mini", "anthropic": "claude-haiku-4-5"}


async def _ask(client: JudgeClient, requests: list[ChatRequest]) -> list[Any]:
    return await asyncio.gather(*(client.complete(r) for r in requests), return_exceptions=True)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_many_requests_become_one_batch_at_half_price(kind: str) -> None:
    with FakeOpenAIServer(rule=_answer, batch_delay=0.2) as server:
        store = MemoryStore()

        async def run() -> tuple[list[Any], list[Any]]:
            batched = JudgeClient(Batcher(_provider(kind, server), store, window=0.05, poll_interval=0.05),
                                  max_concurrency=10_000)
            live = JudgeClient(_provider(kind, server))
            answers = await _ask(batched, _requests(MODELS[kind]))
            live_answers = await _ask(live, _requests(MODELS[kind])[:1])
            await batched.aclose()
            await live.aclose()
            return answers, live_answers

        answers, (live_answer,) = asyncio.run(run())
    assert server.batches.stats.batches == 1 and server.batches.stats.requests == N
    assert [json.loads(a.text)["result"] for a in answers] == [bool(i % 2) for i in range(N)]
    assert all(a.extra["batch"].startswith("batch_" if kind == "openai" else "msgbatch_") for a in answers)
    assert server.stats.requests == 1  # only the live request reached the live endpoint
    # The same request, the same tokens, half the price.
    assert answers[0].input_tokens == live_answer.input_tokens > 0
    assert answers[0].extra["cost_usd"] == pytest.approx(live_answer.extra["cost_usd"] / 2)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_failed_requests_are_retried_and_an_expired_batch_is_resubmitted_for_what_it_missed(kind: str) -> None:
    with FakeOpenAIServer(rule=_answer, batch_delay=0.05, batch_error_rate=0.25, expire_batches=1, seed=3) as server:
        async def run() -> list[Any]:
            client = JudgeClient(Batcher(_provider(kind, server), MemoryStore(), window=0.05, poll_interval=0.05),
                                 max_concurrency=10_000, base_delay=0.01)
            try:
                return await _ask(client, _requests(MODELS[kind]))
            finally:
                await client.aclose()

        answers = asyncio.run(run())
    stats = server.batches.stats
    assert all(not isinstance(a, BaseException) for a in answers), answers
    assert [json.loads(a.text)["result"] for a in answers] == [bool(i % 2) for i in range(N)]
    assert stats.expired == N // 2  # the first batch expired half done...
    assert stats.errored > 0  # ...and some requests failed inside batches
    assert stats.batches >= 2
    # Nothing answered was asked again: every request was answered exactly once.
    assert stats.answered == N


def test_a_restart_polls_the_stored_batch_instead_of_paying_twice() -> None:
    with FakeOpenAIServer(rule=_answer, batch_delay=0.5) as server:
        store = MemoryStore()

        async def first() -> None:
            batcher = Batcher(_provider("openai", server), store, window=0.05, poll_interval=0.05)
            client = JudgeClient(batcher, max_concurrency=10_000)
            tasks = [asyncio.ensure_future(client.complete(r)) for r in _requests("gpt-4.1-mini")]
            while not batcher.submitted:  # submitted, not yet ended: the process "dies" here
                await asyncio.sleep(0.01)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.aclose()

        async def second() -> tuple[list[Any], Batcher]:
            batcher = Batcher(_provider("openai", server), store, window=0.05, poll_interval=0.05)
            client = JudgeClient(batcher, max_concurrency=10_000)
            try:
                return await _ask(client, _requests("gpt-4.1-mini")), batcher
            finally:
                await client.aclose()

        asyncio.run(first())
        answers, batcher = asyncio.run(second())
    assert server.batches.stats.batches == 1  # the second process submitted nothing
    assert batcher.submitted == [] and len(batcher.resumed) == 1
    assert [json.loads(a.text)["result"] for a in answers] == [bool(i % 2) for i in range(N)]


def test_a_batch_that_fails_validation_fails_its_requests_without_retrying() -> None:
    class Refusing:
        name = "openai"

        async def submit_batch(self, requests: list[tuple[str, ChatRequest]]) -> str:
            raise ProviderError("openai: HTTP 400: bad file", retryable=False, status=400)

        async def poll_batch(self, batch_id: str) -> Any:
            raise AssertionError("never submitted")

        async def aclose(self) -> None:
            pass

    async def run() -> list[Any]:
        client = JudgeClient(Batcher(Refusing(), MemoryStore(), window=0.01), max_concurrency=100)  # type: ignore[arg-type]
        return await _ask(client, _requests("gpt-4.1-mini")[:3])

    answers = asyncio.run(run())
    assert [str(a) for a in answers] == ["openai: HTTP 400: bad file"] * 3
