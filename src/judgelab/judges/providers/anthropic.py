"""Anthropic's Messages API via the official SDK. Translation only: retries live in JudgeClient.

The 2.x SDK takes no `temperature`, so none is sent. No structured-output mode is requested: the judge prompt asks for the JSON object, and
`verdict.parse_verdict` reads it out of whatever text comes back (or refuses it).
"""

from __future__ import annotations

import os
from typing import Any

import anthropic

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

    async def complete(self, request: ChatRequest) -> ChatResponse:
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
        try:
            message = await self._client.messages.create(**kwargs)
        except anthropic.APIStatusError as exc:
            headers = exc.response.headers if exc.response is not None else {}
            raise ProviderError(
                f"anthropic: HTTP {exc.status_code}: {short_error(exc)}",
                retryable=exc.status_code in _RETRYABLE or exc.status_code >= 500,
                status=exc.status_code,
                retry_after=retry_after(headers),
            ) from exc
        except (anthropic.APITimeoutError, anthropic.APIConnectionError) as exc:
            raise ProviderError(f"anthropic: {type(exc).__name__}: {short_error(exc)}", retryable=True) from exc
        except anthropic.APIError as exc:
            raise ProviderError(f"anthropic: {short_error(exc)}", retryable=True) from exc
        except ValueError as exc:  # an unreadable body
            raise ProviderError(f"anthropic: unreadable answer: {short_error(exc)}", retryable=True) from exc
        text = "".join(getattr(block, "text", "") for block in message.content if getattr(block, "type", "") == "text")
        usage = message.usage
        read = (getattr(usage, "cache_read_input_tokens", None) or 0) if usage else 0
        written = (getattr(usage, "cache_creation_input_tokens", None) or 0) if usage else 0
        return ChatResponse(
            text=text,
            # Anthropic counts cache reads and writes apart from input_tokens: all three are input.
            input_tokens=(usage.input_tokens + read + written) if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
            model=message.model or request.model,
            finish_reason=message.stop_reason,
            cached_input_tokens=read,
            cache_write_tokens=written,
        )

    async def aclose(self) -> None:
        await self._client.close()
