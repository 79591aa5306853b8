"""One JudgeClient per provider per process, built from settings on first use.

The per-provider concurrency and rate limits only mean something if every evaluation in a process
shares the same client, so jobs, the CLI and the API get their clients here. Clients are bound
to the event loop that first used them (the SDKs' connection pools are), so a registry belongs
to one loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from judgelab.config import Settings
from judgelab.judges.batch import Batcher, BatchStore
from judgelab.judges.client import JudgeClient
from judgelab.judges.providers import Provider

ProviderFactory = Callable[[], Provider]


def _openai() -> Provider:
    from judgelab.judges.providers.openai import OpenAIProvider

    return OpenAIProvider()


def _anthropic() -> Provider:
    from judgelab.judges.providers.anthropic import AnthropicProvider

    return AnthropicProvider()


def _local() -> Provider:
    from judgelab.judges.providers.local import LocalProvider

    return LocalProvider.from_environment()


FACTORIES: dict[str, ProviderFactory] = {"openai": _openai, "anthropic": _anthropic, "local": _local}


class Judges:
    """`client_for(provider)` for the evaluation engine; KeyError for an unknown provider."""

    def __init__(self, settings: Settings, factories: dict[str, ProviderFactory] | None = None) -> None:
        self.settings = settings
        self.factories = {**FACTORIES, **(factories or {})}
        self._clients: dict[str, JudgeClient] = {}
        self._batch_clients: dict[tuple[str, str], JudgeClient] = {}

    def client_for(self, provider: str) -> JudgeClient:
        client = self._clients.get(provider)
        if client is None:
            factory = self.factories[provider]
            client = JudgeClient(
                factory(),
                max_concurrency=self.settings.judge_concurrency,
                requests_per_second=self.settings.judge_requests_per_second,
            )
            self._clients[provider] = client
        return client

    def batch_client_for(self, provider: str, scope: str, store: BatchStore) -> JudgeClient:
        """A client whose requests go through the provider's batch API, one per (provider, scope:
        a job), remembering its batches in `store`. A provider without a batch API (a local
        model) answers live, through its usual client."""
        key = (provider, scope)
        client = self._batch_clients.get(key)
        if client is not None:
            return client
        inner = self.factories[provider]()
        if not callable(getattr(inner, "submit_batch", None)):
            return self.client_for(provider)
        batcher = Batcher(inner, store, window=self.settings.batch_window_seconds,  # type: ignore[arg-type]
                          poll_interval=self.settings.batch_poll_seconds)
        # No live connection is held per request, so the concurrency limit is not the provider's.
        client = JudgeClient(batcher, max_concurrency=1_000_000, pace=False)
        if len(self._batch_clients) >= 32:  # a long-lived worker: let finished jobs' clients go
            old = self._batch_clients.pop(next(iter(self._batch_clients)))
            asyncio.get_running_loop().create_task(old.aclose())
        self._batch_clients[key] = client
        return client

    async def aclose(self) -> None:
        for client in [*self._clients.values(), *self._batch_clients.values()]:
            await client.aclose()
        self._clients.clear()
        self._batch_clients.clear()


def endpoints() -> dict[str, str]:
    """Where this process's providers send requests, by provider: the base URL, never the key. A job
    records these when it is submitted and runs only in a process configured the same way, so a
    server on another endpoint (another bill) never picks up work meant for this one."""
    import os

    return {"openai": os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1",
            "anthropic": os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com",
            "local": os.environ.get("JUDGELAB_LOCAL_MODEL_PATH") or "local"}
