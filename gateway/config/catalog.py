"""The model catalog: known models with prices, limits and capabilities, from the built-in price file
(gateway/config/prices.json) with the operator's `load_prices` entries on top. Read by the management API
and the admin's model-definition form; never on the request path."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from gateway.config.prices import BUILTIN_FILE, TABLE_ALIASES, ModelInfo, PriceLine, read_price_file, row_prices
from gateway.models import PriceEntry


@lru_cache(maxsize=1)
def _builtin_lines() -> tuple[PriceLine, ...]:
    return tuple(read_price_file(BUILTIN_FILE)[1])


def _loaded_lines() -> list[PriceLine]:
    return [(row.provider, row.model_name,
             row_prices(row),
             ModelInfo(row.context_window, row.max_output_tokens, tuple(row.capabilities or ())))
            for row in PriceEntry.objects.all()]


def _number(value: Any) -> float | None:
    return float(value) if value is not None else None


def catalog_models(provider: str | None = None) -> list[dict[str, Any]]:
    """Catalog entries, for one provider (through the table it bills by: Azure by OpenAI's) or all."""
    lines: dict[tuple[str, str], PriceLine] = {}
    for line in (*_builtin_lines(), *_loaded_lines()):
        lines[(line[0], line[1])] = line
    table = TABLE_ALIASES.get(provider, provider) if provider else None
    entries = []
    for (line_provider, model_name), (_, _, prices, info) in sorted(lines.items()):
        if table is not None and line_provider != table:
            continue
        entries.append({
            "provider": provider or line_provider, "model_name": model_name,
            "input_cost_per_million": _number(prices.input), "output_cost_per_million": _number(prices.output),
            "cached_input_cost_per_million": _number(prices.cached_input),
            "audio_input_cost_per_million": _number(prices.audio_input),
            "audio_output_cost_per_million": _number(prices.audio_output),
            "context_window": info.context_window, "max_output_tokens": info.max_output_tokens,
            "capabilities": list(info.capabilities),
        })
    return entries
