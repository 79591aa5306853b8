"""Prices per million tokens, used for cost accounting and estimates.

List prices change; override or extend them with JUDGELAB_PRICES (JSON:
{"provider/model": [input_usd_per_mtok, output_usd_per_mtok, cached_input_usd_per_mtok?]}). A model with no price is
counted at 0 and reported as unpriced, never silently guessed.
"""

from __future__ import annotations

import json
import os

# USD per 1M tokens (input, output, cached input): public list prices for common judge models.
DEFAULT_PRICES: dict[str, tuple[float, ...]] = {
    "openai/gpt-4.1": (2.00, 8.00, 0.50),
    "openai/gpt-4.1-mini": (0.40, 1.60, 0.10),
    "openai/gpt-4.1-nano": (0.10, 0.40, 0.025),
    "openai/gpt-4o": (2.50, 10.00, 1.25),
    "openai/gpt-4o-mini": (0.15, 0.60, 0.075),
    "anthropic/claude-sonnet-4-5": (3.00, 15.00, 0.30),
    "anthropic/claude-haiku-4-5": (1.00, 5.00, 0.10),
}
# Local models cost nothing per token.
FREE_PROVIDERS = ("local", "fake")
CACHE_WRITE = 1.25  # Anthropic bills a prompt-cache write at 1.25x the input price
# Providers whose batch APIs judgelab uses, and what they bill for a batched request: half.
BATCH_PROVIDERS = ("openai", "anthropic")
BATCH_DISCOUNT = 0.5


def price_table() -> dict[str, tuple[float, ...]]:
    table = dict(DEFAULT_PRICES)
    raw = os.environ.get("JUDGELAB_PRICES")
    if raw:
        for model, pair in json.loads(raw).items():
            # [input, output] or [input, output, cached input]; without a cached price, no discount is assumed.
            table[model] = tuple(float(x) for x in pair[:3])
    return table


def cost_usd(model: str, input_tokens: int, output_tokens: int, table: dict[str, tuple[float, ...]],
             cached_input_tokens: int = 0, cache_write_tokens: int = 0) -> float | None:
    """The cost of one call, or None when the model has no price. Input read from the provider's
    prompt cache is priced at the cached rate; cache writes at 1.25x input."""
    if model.split("/", 1)[0] in FREE_PROVIDERS:
        return 0.0
    price = table.get(model)
    if price is None:
        return None
    cached_price = price[2] if len(price) > 2 else price[0]
    plain = max(0, input_tokens - cached_input_tokens - cache_write_tokens)
    return (plain * price[0] + cached_input_tokens * cached_price + cache_write_tokens * price[0] * CACHE_WRITE
            + output_tokens * price[1]) / 1_000_000
