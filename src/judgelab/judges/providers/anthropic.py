"""Anthropic's Messages API via the official SDK. Translation only: retries live in JudgeClient.

The 2.x SDK takes no `temperature`, so none is sent. No structured-output mode is requested: the judge prompt asks for the JSON object, and
`verdict.parse_verdict` reads it out of whatever text comes back (or refuses it).
"""

from __future__ import annotations

import os
from typing import Any

import anthropic

from judgelab.judges.batch import BatchState
from judgelab.judges.providers import retry_after, short_error
from judgelab.judges.types import ChatRequest, ChatResponse, ProviderError

_RETRYABLE = {408, 409, 429}


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, *, api_key: str | None = None, base_url: str | None = None, timeout: float = 60.0) -> None:
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key or os.environ.get("ANTHROPIC_API_KEY") or "not-set",
            base_url=base_url or os.environ.get("ANTHROPIC_BASE_URL") or None,
            timeout=timeout,
            max_retries=0,
        )

    @staticmethod
    def _params(request: ChatRequest) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        turns = [m for m in request.messages if m.role != "system"]
        messages: list[dict[str, Any]] = [{"role": m.role, "content": m.content} for m in turns]
        if request.cache_prefix and turns and 0 < request.cache_prefix < len(turns[-1].content):
            # A cache breakpoint after the part several metrics share (the call's data): the next
            # metric on this call reads it from Anthropic's prompt cache at a tenth of the price.
            last = turns[-1].content
            messages[-1]["content"] = [
                {"type": "text", "text": last[:request.cache_prefix], "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": last[request.cache_prefix:]},
            ]
        kwargs: dict[str, Any] = {"model": request.model, "max_tokens": request.max_tokens, "messages": messages}
        if system:
            kwargs["system"] = system
        return kwargs

    async def complete(self, request: ChatRequest) -> ChatResponse:
        try:
            message = await self._client.messages.create(**self._params(request))
        except anthropic.APIStatusError as exc:
            raise _status_error(exc) from exc
        except (anthropic.APITimeoutError, anthropic.APIConnectionError) as exc:
            raise ProviderError(f"anthropic: {type(exc).__name__}: {short_error(exc)}", retryable=True) from exc
        except anthropic.APIError as exc:
            raise ProviderError(f"anthropic: {short_error(exc)}", retryable=True) from exc
        except ValueError as exc:  # an unreadable body
            raise ProviderError(f"anthropic: unreadable answer: {short_error(exc)}", retryable=True) from exc
        return _response(message, request.model)

    # Message Batches: one request with every message, its results as JSONL once it has ended.

    async def submit_batch(self, requests: list[tuple[str, ChatRequest]]) -> str:
        try:
            batch = await self._client.messages.batches.create(
                requests=[{"custom_id": key, "params": self._params(request)} for key, request in requests])  # type: ignore[typeddict-item]
        except anthropic.APIStatusError as exc:
            raise _status_error(exc) from exc
        except (anthropic.APITimeoutError, anthropic.APIConnectionError) as exc:
            raise ProviderError(f"anthropic: {type(exc).__name__}: {short_error(exc)}", retryable=True) from exc
        return batch.id

    async def poll_batch(self, batch_id: str) -> BatchState:
        try:
            batch = await self._client.messages.batches.retrieve(batch_id)
            if batch.processing_status != "ended":
                return BatchState(ended=False, status=batch.processing_status)
            state = BatchState(ended=True, status="ended")
            async for entry in await self._client.messages.batches.results(batch_id):
                result = entry.result
                if result.type == "succeeded":
                    state.results[entry.custom_id] = _response(result.message, result.message.model)
                elif result.type == "errored":
                    error = getattr(getattr(result.error, "error", None), "message", "") or str(result.error)[:300]
                    state.errors[entry.custom_id] = ProviderError(f"anthropic: batch request failed: {error[:300]}",
                                                                  retryable=True)
                # canceled / expired: left out, so the batcher submits them again
            return state
        except anthropic.APIStatusError as exc:
            raise _status_error(exc) from exc
        except (anthropic.APITimeoutError, anthropic.APIConnectionError) as exc:
            raise ProviderError(f"anthropic: {type(exc).__name__}: {short_error(exc)}", retryable=True) from exc

    async def aclose(self) -> None:
        await self._client.close()


def _status_error(exc: anthropic.APIStatusError) -> ProviderError:
    headers = exc.response.headers if exc.response is not None else {}
    return ProviderError(f"anthropic: HTTP {exc.status_code}: {short_error(exc)}",
                         retryable=exc.status_code in _RETRYABLE or exc.status_code >= 500, status=exc.status_code,
                         retry_after=retry_after(headers))


def _response(message: Any, model: str) -> ChatResponse:
    text = "".join(getattr(block, "text", "") for block in message.content if getattr(block, "type", "") == "text")
    usage = message.usage
    read = (getattr(usage, "cache_read_input_tokens", None) or 0) if usage else 0
    written = (getattr(usage, "cache_creation_input_tokens", None) or 0) if usage else 0
    return ChatResponse(
        text=text,
        # Anthropic counts cache reads and writes apart from input_tokens: all three are input.
        input_tokens=(usage.input_tokens + read + written) if usage else 0,
        output_tokens=usage.output_tokens if usage else 0,
        model=message.model or model,
        finish_reason=message.stop_reason,
        cached_input_tokens=read,
        cache_write_tokens=written,
    )
