"""Talking to models: one async interface for every provider, and one wrapper that owns retries,
concurrency and rate limits, caching, and token and cost accounting."""

from judgelab.judges.types import ChatMessage, ChatRequest, ChatResponse, ProviderError

__all__ = ["ChatMessage", "ChatRequest", "ChatResponse", "ProviderError"]
