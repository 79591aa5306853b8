"""OpenAI and every OpenAI-compatible server (vLLM, Ollama, llama.cpp server), via the official SDK."""

from __future__ import annotations

import os
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from judgelab.judges.providers import retry_after, short_error
from judgelab.judges.types import ChatRequest, ChatResponse, ProviderError


class OpenAIProvider:
    name = "openai"

    def __init__(self, *, api_key: str | None = None, base_url: str | None = None, timeout: float = 60.0) -> None:
        # Retries belong to the client wrapper (one policy for every provider), so the SDK makes none.
        self._client = openai.AsyncOpenAI(
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "not-needed-for-local-servers",
            base_url=base_url or os.environ.get("OPENAI_BASE_URL") or None,
            timeout=timeout,
            max_retries=0,
        )

    async def complete(self, request: ChatRequest) -> ChatResponse:
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.json_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "verdict", "schema": request.json_schema, "strict": True},
            }
        try:
            # The SDK's generic `post` (public, for endpoints it has no method for) sends the same
            # request and parses the same ChatCompletion, without `create`'s walk over every
            # optional parameter's type, which cost more CPU per call than all of judgelab's own work.
            completion = await self._client.post("/chat/completions", cast_to=ChatCompletion, body=kwargs)
        except openai.APIStatusError as exc:
            raise ProviderError(
                f"openai: HTTP {exc.status_code}: {short_error(exc)}",
                retryable=exc.status_code == 429 or exc.status_code >= 500,
                status=exc.status_code,
                retry_after=retry_after(exc.response.headers if exc.response is not None else {}),
            ) from exc
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise ProviderError(f"openai: {type(exc).__name__}: {short_error(exc)}", retryable=True) from exc
        except openai.APIError as exc:  # e.g. a body the SDK could not validate
            raise ProviderError(f"openai: {short_error(exc)}", retryable=True) from exc
        except ValueError as exc:  # a body that is not JSON at all (the SDK lets json's error through)
            raise ProviderError(f"openai: unreadable answer: {short_error(exc)}", retryable=True) from exc
        if not completion.choices:
            raise ProviderError("openai: the answer had no choices", retryable=True)
        choice = completion.choices[0]
        usage = completion.usage
        details = getattr(usage, "prompt_tokens_details", None) if usage else None
        return ChatResponse(
            text=choice.message.content or "",
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            model=completion.model or request.model,
            finish_reason=choice.finish_reason,
            # OpenAI caches shared prompt prefixes by itself and says how much it read from the cache.
            cached_input_tokens=(getattr(details, "cached_tokens", None) or 0) if details else 0,
        )

    async def aclose(self) -> None:
        await self._client.close()
