"""An in-process scripted model: a provider like any other, for unit tests of the layers above."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from typing import Union

from judgelab.judges.types import ChatRequest, ChatResponse, ProviderError

Answer = Union[str, ProviderError]


class FakeProvider:
    """Answers from a queue, or from a rule over the request; records every request it saw."""

    name = "fake"

    def __init__(
        self,
        answers: Iterable[Answer] | None = None,
        rule: Callable[[ChatRequest], Answer] | None = None,
        latency: float = 0.0,
    ) -> None:
        self.queue: deque[Answer] = deque(answers or [])
        self.rule = rule
        self.latency = latency
        self.requests: list[ChatRequest] = []

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.queue:
            answer = self.queue.popleft()
        elif self.rule is not None:
            answer = self.rule(request)
        else:
            raise ProviderError("fake provider has no scripted answer left", retryable=False)
        if isinstance(answer, ProviderError):
            raise answer
        prompt_chars = sum(len(m.content) for m in request.messages)
        return ChatResponse(answer, input_tokens=prompt_chars // 4 + 1, output_tokens=len(answer) // 4 + 1, model=request.model)

    async def aclose(self) -> None:
        return None
