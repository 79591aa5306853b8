from __future__ import annotations

import asyncio

import pytest

from judgelab.judges.client import JudgeClient, MemoryCache, RateLimiter
from judgelab.judges.providers.fake import FakeProvider
from judgelab.judges.types import ChatMessage, ChatRequest, ProviderError


def _req(text: str = "hi", model: str = "gpt-4.1-mini") -> ChatRequest:
    return ChatRequest(model=model, messages=(ChatMessage("user", text),))


class Clock:
    def __init__(self) -> None:
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_retries_retryable_errors_honouring_retry_after() -> None:
    fake = FakeProvider([ProviderError("busy", retryable=True, status=429, retry_after=2.5),
                         ProviderError("boom", retryable=True, status=500), "answer"])
    fake.name = "openai"
    clock = Clock()
    client = JudgeClient(fake, sleep=clock.sleep, base_delay=1.0)
    resp = asyncio.run(client.complete(_req()))
    assert resp.text == "answer"
    assert 2.5 <= clock.slept[0] <= 3.75 and 0 <= clock.slept[1] <= 2.0
    u = client.usage
    assert (u.requests, u.provider_calls, u.retries, u.failures) == (1, 3, 2, 0)
    assert u.input_tokens > 0 and u.cost_usd > 0 and resp.extra["cost_usd"] == pytest.approx(u.cost_usd)


def test_gives_up_after_max_attempts_and_never_retries_bad_requests() -> None:
    fake = FakeProvider([ProviderError("x", retryable=True)] * 3)
    client = JudgeClient(fake, sleep=Clock().sleep, max_attempts=3)
    with pytest.raises(ProviderError):
        asyncio.run(client.complete(_req()))
    assert client.usage.provider_calls == 3 and client.usage.failures == 1
    fake = FakeProvider([ProviderError("bad request", retryable=False, status=400), "never"])
    client = JudgeClient(fake, sleep=Clock().sleep)
    with pytest.raises(ProviderError, match="bad request"):
        asyncio.run(client.complete(_req()))
    assert client.usage.provider_calls == 1


def test_cache_answers_repeats_without_a_call() -> None:
    fake = FakeProvider(rule=lambda r: f"echo {r.messages[0].content}")
    client = JudgeClient(fake, cache=MemoryCache())

    async def run() -> list[str]:
        a = await client.complete(_req("one"))
        b = await client.complete(_req("one"))
        c = await client.complete(_req("two"))
        assert not a.cached and b.cached and not c.cached
        return [a.text, b.text, c.text]

    assert asyncio.run(run()) == ["echo one", "echo one", "echo two"]
    assert len(fake.requests) == 2 and client.usage.cache_hits == 1 and client.usage.requests == 3


def test_concurrency_limit_is_respected() -> None:
    in_flight = 0
    peak = 0

    class Slow(FakeProvider):
        async def complete(self, request: ChatRequest):  # type: ignore[no-untyped-def]
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            return await super().complete(request)

    client = JudgeClient(Slow(rule=lambda r: "x"), max_concurrency=3)

    async def run() -> None:
        await asyncio.gather(*(client.complete(_req(str(i))) for i in range(20)))

    asyncio.run(run())
    assert peak == 3


def test_unpriced_models_are_counted_not_guessed() -> None:
    fake = FakeProvider(["a"])
    fake.name = "openai"
    client = JudgeClient(fake, prices={})
    resp = asyncio.run(client.complete(_req(model="some-new-model")))
    assert client.usage.unpriced_calls == 1 and client.usage.cost_usd == 0 and resp.extra["cost_usd"] is None


def test_rate_limiter_spaces_calls() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=10, burst=1, clock=lambda: now[0])

    async def run() -> None:
        await limiter.acquire()
        task = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0.01)
        assert not task.done()  # no token yet: the fake clock has not moved
        now[0] += 0.1
        await asyncio.wait_for(task, 1)

    asyncio.run(run())


def test_the_concurrency_limit_shrinks_on_429s_and_recovers_on_successes() -> None:
    from judgelab.judges.client import Slots

    async def go() -> list[float]:
        slots = Slots(8)
        seen = []
        for _ in range(5):
            await slots.acquire()
            slots.release(overloaded=True)
        seen.append(slots.limit)
        for _ in range(100):
            await slots.acquire()
            slots.release()
        seen.append(slots.limit)
        for _ in range(50):
            await slots.acquire()
            slots.release(overloaded=True)
        seen.append(slots.limit)
        return seen

    # A few refusals are not overload (random 429s happen): the limit holds. Successes keep it at
    # the maximum; a stream of refusals pulls it down to the floor.
    assert asyncio.run(go()) == [8.0, 8.0, 1.0]


def test_random_429s_do_not_shrink_the_limit_but_a_lower_server_limit_does() -> None:
    from judgelab.judges.client import Slots

    async def go(pattern: list[bool], rounds: int) -> float:
        slots = Slots(32)
        for _ in range(rounds):
            for refused in pattern:
                await slots.acquire()
                slots.release(overloaded=refused)
        return slots.limit

    # One request in ten refused at random (a shared quota, not our concurrency): the limit holds.
    assert asyncio.run(go([True] + [False] * 9, 100)) == 32.0
    # Every other request refused (the server's real limit is below ours): it shrinks to the floor.
    assert asyncio.run(go([True, False], 100)) == 1.0


def test_the_pacer_spreads_request_starts_at_about_c_over_latency() -> None:
    from judgelab.judges.client import Pacer

    async def go() -> tuple[list[float], list[float]]:
        loop = asyncio.get_running_loop()
        pacer = Pacer()
        first = []
        for _ in range(3):  # no latency seen yet: nothing to pace by
            await pacer.wait(32)
            first.append(loop.time())
        pacer.observe(0.32)
        pacer.observe(5.0)  # one slow answer moves the average by at most twice itself
        assert pacer.latency is not None and abs(pacer.latency - (0.9 * 0.32 + 0.1 * 0.64)) < 1e-9
        paced = []
        for _ in range(5):
            await pacer.wait(32)
            paced.append(loop.time())
        return first, paced

    first, paced = asyncio.run(go())
    assert first[-1] - first[0] < 0.005
    gap = 0.9 * (0.9 * 0.32 + 0.1 * 0.64) / 32  # 9.9 ms
    assert all(b - a >= gap - 0.002 for a, b in zip(paced, paced[1:], strict=False))
    assert paced[-1] - paced[0] < 4 * gap + 0.05
