"""The provider-neutral request and response every provider translates from and to."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from judgelab.jsonutil import stable_hash


@dataclass(frozen=True)
class ChatMessage:
    role: str  # system | user | assistant
    content: str


@dataclass(frozen=True)
class ChatRequest:
    model: str  # the provider's own model name, without the `provider/` prefix
    messages: tuple[ChatMessage, ...]
    temperature: float = 0.0
    max_tokens: int = 800
    # A JSON schema the answer must follow; providers with a structured-output mode use it.
    json_schema: dict[str, Any] | None = None
    # How many leading characters of the last user message several requests share (a call's data,
    # judged by several metrics): Anthropic gets a cache breakpoint there; OpenAI caches prefixes itself.
    cache_prefix: int = 0

    def cache_key(self, provider: str) -> str:
        """Everything that can change the answer, hashed: the same key means the same question."""
        return stable_hash({"provider": provider, **asdict(self)})


@dataclass
class ChatResponse:
    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    model: str = ""
    finish_reason: str | None = None
    cached: bool = False  # answered from judgelab's own response cache (no provider call)
    # Of input_tokens, how many the provider read from its prompt cache (billed at the cached rate),
    # and how many it wrote to it (Anthropic bills writes at 1.25x).
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class ProviderError(Exception):
    """A failed model call. `retryable` failures (429, 5xx, timeouts, dropped connections) are retried
    by the client wrapper; others (bad request, auth) are not."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
