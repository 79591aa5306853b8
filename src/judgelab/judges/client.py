"""The one wrapper around every provider: retries, concurrency and rate limits, cache, usage.

Providers only translate; everything a production judge call needs around that lives here, once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Protocol

from judgelab.judges.pricing import BATCH_DISCOUNT, cost_usd, price_table
from judgelab.judges.providers import Provider
from judgelab.judges.types import ChatRequest, ChatResponse, ProviderError


@dataclass
class Usage:
    requests: int = 0  # complete() calls answered, from the provider or the cache
    provider_calls: int = 0  # calls that reached the provider, retries included
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0  # of input_tokens, read from the provider's prompt cache
    output_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0


class ResponseCache(Protocol):
    def get(self, key: str) -> ChatResponse | None: ...

    def put(self, key: str, response: ChatResponse) -> None: ...


class MemoryCache:
    def __init__(self) -> None:
        self._items: dict[str, ChatResponse] = {}

    def get(self, key: str) -> ChatResponse | None:
        return self._items.get(key)

    def put(self, key: str, response: ChatResponse) -> None:
        self._items[key] = response


class RateLimiter:
    """A token bucket: at most `rate` calls per second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = float(burst if burst is not None else max(1, int(rate)))
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self.clock()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


class Slots:
    """A concurrency limit that backs off when the provider says it is overloaded.

    The share of recent requests answered 429 is a moving average (weight 0.02 per request, about
    the last fifty). While it is above 20 %, each 429 takes one slot away (down to `floor`);
    otherwise each success gives a tenth of one back, up to the configured maximum. So random
    refusals (a provider's 5-10 % of 429s that our concurrency does not cause) leave the limit
    where it is, while a server whose real limit is below ours (every other request refused)
    pulls it down to about that limit, and requests stop starving each other in retry loops.
    Waiters are served first come, first served, and a release wakes only those it makes room for
    (hundreds may wait in a large job).
    """

    OVERLOADED = 0.2  # share of recent requests refused above which the limit shrinks

    def __init__(self, maximum: int, floor: int = 1) -> None:
        self.maximum = maximum
        self.floor = min(floor, maximum)
        self.limit = float(maximum)
        self.refused = 0.0  # moving share of requests answered 429
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if not self._waiters and self.in_flight < int(self.limit):
            self.in_flight += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.in_flight -= 1  # handed a slot just as it was cancelled: give it back
                self._wake()
            else:
                self._waiters.remove(waiter)
            raise

    def release(self, *, overloaded: bool = False) -> None:
        self.in_flight -= 1
        self.refused = 0.98 * self.refused + (0.02 if overloaded else 0.0)
        if overloaded and self.refused > self.OVERLOADED:
            self.limit = max(float(self.floor), self.limit - 1.0)
        elif not overloaded and self.refused <= self.OVERLOADED:
            self.limit = min(float(self.maximum), self.limit + 0.1)
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < int(self.limit):
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)


class Pacer:
    """Spreads request starts at about the rate the concurrency limit allows (C / latency).

    Without it, C requests sent together come back together, and C answers parsed in one burst
    delay each other and the next C sends: the waves persist and every request pays the burst.
    Starts are spaced at 0.9 x latency / C (a little faster than the limit, so the slots, not the
    pacer, bound the rate); latency is a moving average of answered requests, each sample capped
    at twice the average so one slow request does not stall the rest."""

    def __init__(self) -> None:
        self.latency: float | None = None
        self._next = 0.0

    async def wait(self, concurrency: int) -> None:
        if self.latency is None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        at = max(now, self._next)
        self._next = at + 0.9 * self.latency / max(1, concurrency)
        if at > now:
            await asyncio.sleep(at - now)

    def observe(self, seconds: float) -> None:
        if self.latency is None:
            self.latency = seconds
        else:
            self.latency = 0.9 * self.latency + 0.1 * min(seconds, 2 * self.latency)


class JudgeClient:
    """Wraps one provider. `model` names in requests are the provider's own; prices are looked up
    as `provider/model`."""

    def __init__(
        self,
        provider: Provider,
        *,
        max_concurrency: int = 8,
        requests_per_second: float | None = None,
        # A retry waits outside its slot and the slots, not the delay, bound the load on the
        # provider: the first retry may come soon, and six attempts ride out a few seconds' outage.
        max_attempts: int = 6,
        base_delay: float = 0.1,
        max_delay: float = 30.0,
        cache: ResponseCache | None = None,
        prices: dict[str, tuple[float, ...]] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        pace: bool = True,
    ) -> None:
        self.provider = provider
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.cache = cache
        self.prices = prices if prices is not None else price_table()
        self.usage = Usage()
        self._sleep = sleep
        self.slots = Slots(max_concurrency)
        # Off for a batch provider: its "latency" is the batch's hours, and nothing is in flight.
        self.pacer: Pacer | None = Pacer() if pace else None
        self._limiter = RateLimiter(requests_per_second) if requests_per_second else None

    async def complete(self, request: ChatRequest) -> ChatResponse:
        # The key is a hash of the whole request: computed only when there is a cache to ask.
        key = request.cache_key(self.provider.name) if self.cache is not None else ""
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            self.usage.requests += 1
            self.usage.cache_hits += 1
            return replace(hit, cached=True)
        response = await self._with_retries(request)
        self.usage.requests += 1
        self.usage.input_tokens += response.input_tokens
        self.usage.cached_input_tokens += response.cached_input_tokens
        self.usage.output_tokens += response.output_tokens
        cost = cost_usd(f"{self.provider.name}/{request.model}", response.input_tokens, response.output_tokens, self.prices,
                        response.cached_input_tokens, response.cache_write_tokens)
        if cost is not None and response.extra.get("batch"):
            cost *= BATCH_DISCOUNT  # answered through the provider's batch API
        if cost is None:
            self.usage.unpriced_calls += 1
        else:
            self.usage.cost_usd += cost
        response.extra["cost_usd"] = cost
        if self.cache is not None:
            self.cache.put(key, response)
        return response

    async def _with_retries(self, request: ChatRequest) -> ChatResponse:
        for attempt in range(1, self.max_attempts + 1):
            await self.slots.acquire()
            overloaded = False
            try:
                if self._limiter is not None:
                    await self._limiter.acquire()
                if self.pacer is not None:
                    await self.pacer.wait(int(self.slots.limit))
                self.usage.provider_calls += 1
                started = time.monotonic()
                try:
                    response = await self.provider.complete(request)
                    if self.pacer is not None:
                        self.pacer.observe(time.monotonic() - started)
                    return response
                except ProviderError as exc:
                    overloaded = exc.status == 429
                    if not exc.retryable or attempt == self.max_attempts:
                        self.usage.failures += 1
                        raise
                    delay = self._delay(attempt, exc.retry_after)
            finally:
                self.slots.release(overloaded=overloaded)
            # Wait outside the slot, so a backing-off call does not hold concurrency from others.
            self.usage.retries += 1
            await self._sleep(delay)
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # Never earlier than asked; a little later at random, so callers refused together do
            # not come back together and collide again.
            return min(retry_after * random.uniform(1.0, 1.5), self.max_delay)
        # Exponential backoff with full jitter, so many clients that failed together do not retry together.
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))

    async def aclose(self) -> None:
        await self.provider.aclose()
