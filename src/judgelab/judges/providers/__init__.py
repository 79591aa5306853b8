"""Providers translate ChatRequest to a vendor's API and back, and nothing else."""

from __future__ import annotations

from typing import Any, Protocol

from judgelab.judges.types import ChatRequest, ChatResponse


class Provider(Protocol):
    name: str

    async def complete(self, request: ChatRequest) -> ChatResponse: ...

    async def aclose(self) -> None: ...


def retry_after(headers: Any) -> float | None:
    """Seconds from a `retry-after` header, when it holds a number."""
    value = headers.get("retry-after") if headers else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def short_error(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
