"""Providers translate ChatRequest to a vendor's API and back, and nothing else."""

from __future__ import annotations

from typing import Protocol

from judgelab.judges.types import ChatRequest, ChatResponse


class Provider(Protocol):
    name: str

    async def complete(self, request: ChatRequest) -> ChatResponse: ...

    async def aclose(self) -> None: ...
