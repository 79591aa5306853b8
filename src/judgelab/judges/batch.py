"""Half price for bulk work: complete() calls gathered into the providers' batch APIs.

`Batcher` looks like a provider to `JudgeClient`, so the engine runs unchanged: every request a
metric makes (trigger, verdict, re-ask, nested judge) waits in a batch instead of a live call.
Requests made within `window` seconds of each other go in one batch; identical requests share one
entry. A batch that ends answers its requests, a failed request raises the provider's error (the
client's retries then put it in a later batch), and one the batch did not reach (it expired) is
submitted again, at most `resubmits` times.

Durability: every batch is recorded in a `BatchStore` (the jobs layer keeps it in the database)
with the keys of the requests it holds, the moment the provider has accepted it. A process that
restarts and asks the same questions finds them there and polls the same batch instead of paying
for it twice. The one gap is the milliseconds between the provider's answer and that record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from judgelab.judges.types import ChatRequest, ChatResponse, ProviderError

log = logging.getLogger("judgelab.judges")


@dataclass
class BatchState:
    """A batch as the provider reports it. `results` and `errors` are filled once it has ended;
    a request in neither was not processed (the batch expired or was cancelled)."""

    ended: bool
    status: str = ""
    results: dict[str, ChatResponse] = field(default_factory=dict)
    errors: dict[str, ProviderError] = field(default_factory=dict)


class BatchProvider(Protocol):
    name: str

    async def submit_batch(self, requests: list[tuple[str, ChatRequest]]) -> str: ...

    async def poll_batch(self, batch_id: str) -> BatchState: ...

    async def aclose(self) -> None: ...


class BatchStore(Protocol):
    """Where submitted batches are remembered across restarts."""

    def find(self, keys: list[str]) -> dict[str, str]: ...  # request key -> the newest batch holding it

    def save(self, provider: str, batch_id: str, keys: list[str]) -> None: ...

    def ended(self, batch_id: str, status: str) -> None: ...


class MemoryStore:
    def __init__(self) -> None:
        self.batches: dict[str, tuple[str, list[str], str | None]] = {}

    def find(self, keys: list[str]) -> dict[str, str]:
        wanted, found = set(keys), {}
        for batch_id, (_provider, held, _status) in self.batches.items():  # in submission order: newest wins
            found.update({k: batch_id for k in held if k in wanted})
        return found

    def save(self, provider: str, batch_id: str, keys: list[str]) -> None:
        self.batches[batch_id] = (provider, keys, None)

    def ended(self, batch_id: str, status: str) -> None:
        provider, keys, _ = self.batches[batch_id]
        self.batches[batch_id] = (provider, keys, status)


def batch_key(request: ChatRequest, provider: str) -> str:
    """A request's id inside a batch: its cache key (hex, within Anthropic's 64-character limit)."""
    return request.cache_key(provider)[:64]


class Batcher:
    """A provider whose complete() goes through `provider`'s batch API."""

    def __init__(self, provider: BatchProvider, store: BatchStore, *, window: float = 1.0, poll_interval: float = 30.0,
                 max_requests: int = 10_000, resubmits: int = 3,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.provider, self.store = provider, store
        self.name = provider.name
        self.window, self.poll_interval = window, poll_interval
        self.max_requests, self.resubmits = max_requests, resubmits
        self._sleep = sleep
        self._waiting: dict[str, tuple[ChatRequest, asyncio.Future[ChatResponse]]] = {}
        self._answers: dict[str, asyncio.Future[ChatResponse]] = {}
        self._tries: dict[str, int] = {}
        self._seen: set[str] = set()  # requests whose batch this process has seen end
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.submitted: list[str] = []  # batch ids this process submitted
        self.resumed: list[str] = []  # batch ids found in the store and polled again

    async def complete(self, request: ChatRequest) -> ChatResponse:
        key = batch_key(request, self.name)
        shared = self._answers.get(key)
        if shared is not None and not shared.done():
            return await asyncio.shield(shared)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ChatResponse] = loop.create_future()
        self._answers[key] = future
        self._waiting[key] = (request, future)
        if len(self._waiting) >= self.max_requests:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.window, self._flush)
        try:
            return await asyncio.shield(future)
        finally:
            if future.done() and self._answers.get(key) is future:
                del self._answers[key]

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        group, self._waiting = self._waiting, {}
        if group:
            self._spawn(self._send(group))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, group: dict[str, tuple[ChatRequest, asyncio.Future[ChatResponse]]], *,
                    look_up: bool = True) -> None:
        """Follow the stored batches that already hold some of these requests; submit the rest."""
        fresh = list(group)
        try:
            # Only requests this process has not yet seen answered: a retry of a failed request must
            # go in a new batch, not back to the batch it failed in.
            unseen = [k for k in fresh if k not in self._seen]
            known = await asyncio.to_thread(self.store.find, unseen) if look_up and unseen else {}
            by_batch: dict[str, list[str]] = {}
            for key, batch_id in known.items():
                by_batch.setdefault(batch_id, []).append(key)
            for batch_id, keys in by_batch.items():
                self.resumed.append(batch_id)
                self._spawn(self._follow(batch_id, {k: group[k] for k in keys}))
            fresh = [key for key in group if key not in known]
            if fresh:
                batch_id = await self.provider.submit_batch([(k, group[k][0]) for k in fresh])
                await asyncio.to_thread(self.store.save, self.name, batch_id, fresh)
                self.submitted.append(batch_id)
                self._spawn(self._follow(batch_id, {k: group[k] for k in fresh}))
        except Exception as exc:  # noqa: BLE001 - handed to every request not yet in a batch
            error = exc if isinstance(exc, ProviderError) else ProviderError(
                f"{self.name}: batch submission failed: {type(exc).__name__}: {exc}", retryable=True)
            for key in fresh:
                if not (future := group[key][1]).done():
                    future.set_exception(error)

    async def _follow(self, batch_id: str, group: dict[str, tuple[ChatRequest, asyncio.Future[ChatResponse]]]) -> None:
        state = BatchState(ended=False)
        failures = 0
        while True:
            try:
                state = await self.provider.poll_batch(batch_id)
                failures = 0
            except ProviderError as exc:
                failures += 1
                if not exc.retryable or failures > 20:
                    for _request, future in group.values():
                        if not future.done():
                            future.set_exception(exc)
                    return
            if state.ended:
                break
            await self._sleep(self.poll_interval)
        await asyncio.to_thread(self.store.ended, batch_id, state.status)
        self._seen.update(group)
        missing: dict[str, tuple[ChatRequest, asyncio.Future[ChatResponse]]] = {}
        for key, (request, future) in group.items():
            if future.done():
                continue
            if key in state.results:
                response = state.results[key]
                response.extra["batch"] = batch_id
                future.set_result(response)
            elif key in state.errors:
                future.set_exception(state.errors[key])
            else:
                self._tries[key] = self._tries.get(key, 0) + 1
                if self._tries[key] > self.resubmits:
                    future.set_exception(ProviderError(
                        f"{self.name}: batch {batch_id} ended ({state.status}) without this request, "
                        f"{self.resubmits} times resubmitted", retryable=False))
                else:
                    missing[key] = (request, future)
        if missing:
            log.info("batch %s ended (%s) with %d requests unprocessed: submitting them again", batch_id, state.status,
                     len(missing))
            self._spawn(self._send(missing, look_up=False))

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.provider.aclose()
