"""Prices per million tokens, used for cost accounting and estimates.

List prices change; override or extend them with JUDGELAB_PRICES (JSON:
{"provider/model": [input_usd_per_mtok, output_usd_per_mtok]}). A model with no price is
counted at 0 and reported as unpriced, never silently guessed.
"""

from __future__ import annotations

import json
import os

# USD per 1M tokens (input, output): public list prices for common judge models.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "openai/gpt-4.1": (2.00, 8.00),
    "openai/gpt-4.1-mini": (0.40, 1.60),
    "openai/gpt-4.1-nano": (0.10, 0.40),
    "openai/gpt-4o": (2.50, 10.00),
    "openai/gpt-4o-mini": (0.15, 0.60),
    "anthropic/claude-sonnet-4-5": (3.00, 15.00),
    "anthropic/claude-haiku-4-5": (1.00, 5.00),
}
# Local models cost nothing per token.
FREE_PROVIDERS = ("local", "fake")


def price_table() -> dict[str, tuple[float, float]]:
    table = dict(DEFAULT_PRICES)
    raw = os.environ.get("JUDGELAB_PRICES")
    if raw:
        for model, pair in json.loads(raw).items():
            table[model] = (float(pair[0]), float(pair[1]))
    return table


def cost_usd(model: str, input_tokens: int, output_tokens: int, table: dict[str, tuple[float, float]]) -> float | None:
    """The cost of one call, or None when the model has no price."""
    if model.split("/", 1)[0] in FREE_PROVIDERS:
        return 0.0
    price = table.get(model)
    if price is None:
        return None
    return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000
