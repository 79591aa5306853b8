"""OpenAI and every OpenAI-compatible server (vLLM, Ollama, llama.cpp server), via the official SDK."""

from __future__ import annotations

import os
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from judgelab.jsonutil import dumps, loads
from judgelab.judges.batch import BatchState
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

    @staticmethod
    def _body(request: ChatRequest) -> dict[str, Any]:
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
        return kwargs

    async def complete(self, request: ChatRequest) -> ChatResponse:
        kwargs = self._body(request)
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
        return _response(completion, request.model)

    # The Batch API: a JSONL file of requests, one batch, its output and error files (half price).

    async def submit_batch(self, requests: list[tuple[str, ChatRequest]]) -> str:
        lines = "".join(dumps({"custom_id": key, "method": "POST", "url": "/v1/chat/completions",
                               "body": self._body(request)}) + "\n" for key, request in requests)
        try:
            upload = await self._client.files.create(file=("judgelab-batch.jsonl", lines.encode()), purpose="batch")
            batch = await self._client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                                      completion_window="24h")
        except openai.APIStatusError as exc:
            raise _status_error(exc) from exc
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise ProviderError(f"openai: {type(exc).__name__}: {short_error(exc)}", retryable=True) from exc
        return batch.id

    async def poll_batch(self, batch_id: str) -> BatchState:
        try:
            batch = await self._client.batches.retrieve(batch_id)
            if batch.status not in ("completed", "expired", "cancelled", "failed"):
                return BatchState(ended=False, status=batch.status)
            state = BatchState(ended=True, status=batch.status)
            if batch.status == "failed":
                reason = "; ".join(e.message or "" for e in (batch.errors.data or [])) if batch.errors else ""
                raise ProviderError(f"openai: batch {batch_id} failed validation: {reason[:300]}", retryable=False)
            for file_id in (batch.output_file_id, batch.error_file_id):
                if file_id:
                    content = await self._client.files.content(file_id)
                    for line in content.text.splitlines():
                        if line.strip():
                            _read_line(loads(line), state)
            return state
        except openai.APIStatusError as exc:
            raise _status_error(exc) from exc
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise ProviderError(f"openai: {type(exc).__name__}: {short_error(exc)}", retryable=True) from exc

    async def aclose(self) -> None:
        await self._client.close()


def _status_error(exc: openai.APIStatusError) -> ProviderError:
    return ProviderError(f"openai: HTTP {exc.status_code}: {short_error(exc)}",
                         retryable=exc.status_code == 429 or exc.status_code >= 500, status=exc.status_code,
                         retry_after=retry_after(exc.response.headers if exc.response is not None else {}))


def _read_line(line: dict[str, Any], state: BatchState) -> None:
    """One line of a batch's output or error file into the state; an expired request is left out
    (the batcher submits it again)."""
    key = str(line.get("custom_id"))
    response = line.get("response") or {}
    if line.get("error"):
        if (line["error"].get("code") or "") in ("batch_expired", "batch_cancelled"):
            return
        state.errors[key] = ProviderError(f"openai: batch request failed: {str(line['error'].get('message'))[:300]}",
                                          retryable=True)
        return
    status = int(response.get("status_code") or 0)
    if status != 200:
        message = str(((response.get("body") or {}).get("error") or {}).get("message") or "")[:300]
        state.errors[key] = ProviderError(f"openai: HTTP {status} in batch: {message}",
                                          retryable=status == 429 or status >= 500, status=status)
        return
    try:
        completion = ChatCompletion.model_validate(response.get("body") or {})
        state.results[key] = _response(completion, completion.model)
    except (ValueError, ProviderError) as exc:
        state.errors[key] = ProviderError(f"openai: unreadable batch answer: {short_error(exc)}", retryable=True)


def _response(completion: ChatCompletion, model: str) -> ChatResponse:
    if not completion.choices:
        raise ProviderError("openai: the answer had no choices", retryable=True)
    choice = completion.choices[0]
    usage = completion.usage
    details = getattr(usage, "prompt_tokens_details", None) if usage else None
    return ChatResponse(
        text=choice.message.content or "",
        input_tokens=usage.prompt_tokens if usage else 0,
        output_tokens=usage.completion_tokens if usage else 0,
        model=completion.model or model,
        finish_reason=choice.finish_reason,
        # OpenAI caches shared prompt prefixes by itself and says how much it read from the cache.
        cached_input_tokens=(getattr(details, "cached_tokens", None) or 0) if details else 0,
    )
