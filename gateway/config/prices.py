"""What a model costs: the built-in price table (gateway/config/prices.json), operator-loaded entries (PriceEntry,
`manage.py load_prices`) on top of it, and a model definition's own prices on top of both. Text prices (input,
output, cached) and audio prices (realtime audio input, output) are two groups, each taken whole from the
first place that sets any of it.

Lookups run when the configuration snapshot is built, never per request: each ModelTarget carries its
resolved Prices. A model with no price anywhere gets empty Prices, so its cost is recorded as unknown.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from gateway.config.version import bump_config_version
from gateway.models import ModelDefinition, PriceEntry
from providers.base import Prices

BUILTIN_FILE = Path(__file__).with_name("prices.json")
FIELDS = ("input", "output", "cached_input", "audio_input", "audio_output")
# The same prices as model columns (ModelDefinition, PriceEntry), in Prices' field order.
TEXT_COLUMNS = ("input_cost_per_million", "output_cost_per_million", "cached_input_cost_per_million")
AUDIO_COLUMNS = ("audio_input_cost_per_million", "audio_output_cost_per_million")
COLUMNS = TEXT_COLUMNS + AUDIO_COLUMNS
# What the model catalog shows beside prices; optional in a price file.
INFO_FIELDS = ("context_window", "max_output_tokens", "capabilities")
CAPABILITIES = ("chat", "embeddings", "tools", "vision", "json_schema", "reasoning")

# Providers that bill the same as another provider's table for the same model ids.
TABLE_ALIASES = {"azure": "openai", "vertex_ai": "gemini"}
# `vendor/model` ids (OpenRouter, Together, Portkey, ...) map to the vendor's own table when the
# provider's table has no entry for the full id.
VENDOR_TABLES = {
    "openai": "openai", "anthropic": "anthropic", "google": "gemini", "gemini": "gemini", "mistralai": "mistral",
    "mistral": "mistral", "x-ai": "xai", "xai": "xai", "deepseek": "deepseek",
}
# Version and date suffixes that do not change the price: -2024-08-06, -20241022, @20240620, -0613,
# -001, -latest, and a Gemini preview's -05-20.
SUFFIXES = (
    re.compile(r"[-@]\d{4}-\d{2}-\d{2}$"), re.compile(r"[-@]\d{8}$"), re.compile(r"-\d{2}-\d{2}$"),
    re.compile(r"-\d{3,4}$"), re.compile(r"-latest$"),
)


class PriceFileError(ValueError):
    """A price file that cannot be loaded; the message says where."""


@dataclass(frozen=True)
class ModelInfo:
    """A model's limits (tokens; None where unpublished) and capabilities, for the model catalog."""

    context_window: int | None = None
    max_output_tokens: int | None = None
    capabilities: tuple[str, ...] = ()


# One model's line in a price file: provider, model id, prices, catalog information.
PriceLine = tuple[str, str, Prices, ModelInfo]


@dataclass(frozen=True)
class PriceTable:
    """Provider → model id → Prices, with ids already normalised."""

    entries: Mapping[str, Mapping[str, Prices]]
    as_of: str = ""

    def lookup(self, provider: str, model_name: str) -> Prices | None:
        """The price of `model_name` on `provider`, trying the id as given, then without date or version
        suffixes, then (for `vendor/model` ids) in the vendor's table."""
        provider = TABLE_ALIASES.get(provider, provider)
        name = normalise(model_name)
        for candidate in candidates(name):
            found = self.entries.get(provider, {}).get(candidate)
            if found is not None:
                return found
        vendor, slash, rest = name.partition("/")
        if slash and VENDOR_TABLES.get(vendor):
            return self.lookup(VENDOR_TABLES[vendor], rest)
        return None

    def overlaid(self, extra: Iterable[tuple[str, str, Prices]]) -> PriceTable:
        merged = {provider: dict(models) for provider, models in self.entries.items()}
        for provider, model_name, prices in extra:
            merged.setdefault(provider, {})[normalise(model_name)] = prices
        return PriceTable(merged, self.as_of)


def normalise(model_name: str) -> str:
    name = model_name.strip().lower()
    return name.removeprefix("models/")


def candidates(name: str) -> Iterator[str]:
    """`name`, then `name` with one more price-neutral suffix removed each time."""
    yield name
    for _ in range(len(SUFFIXES)):
        for pattern in SUFFIXES:
            shorter = pattern.sub("", name)
            if shorter != name and shorter:
                name = shorter
                yield name
                break
        else:
            return


def _price(value, where: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise PriceFileError(f"{where}: expected a number or null, got {value!r}")
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise PriceFileError(f"{where}: '{value}' is not a number") from None
    if price < 0 or not price.is_finite():
        raise PriceFileError(f"{where}: a price must be a finite number >= 0")
    return price


def _tokens(value, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PriceFileError(f"{where}: expected a whole number of tokens (>= 1) or null")
    return value


def _info(fields: dict, where: str) -> ModelInfo:
    capabilities = fields.get("capabilities") or []
    if not isinstance(capabilities, list) or any(item not in CAPABILITIES for item in capabilities):
        raise PriceFileError(f"{where}.capabilities: expected a list of {', '.join(CAPABILITIES)}")
    return ModelInfo(_tokens(fields.get("context_window"), f"{where}.context_window"),
                     _tokens(fields.get("max_output_tokens"), f"{where}.max_output_tokens"), tuple(capabilities))


def parse_price_file(data: object) -> tuple[str, list[PriceLine]]:
    """Validate a price document (the format of gateway/config/prices.json); returns (as_of, entries)."""
    if not isinstance(data, dict) or not isinstance(data.get("providers"), dict):
        raise PriceFileError("the file must be a JSON object with a 'providers' object")
    entries = []
    for provider, models in data["providers"].items():
        if not isinstance(models, dict):
            raise PriceFileError(f"providers.{provider}: expected an object of model ids")
        for model_name, fields in models.items():
            where = f"providers.{provider}.{model_name}"
            if not isinstance(fields, dict) or set(fields) - set(FIELDS) - set(INFO_FIELDS):
                raise PriceFileError(f"{where}: expected an object with keys {', '.join(FIELDS + INFO_FIELDS)}")
            prices = Prices(*(_price(fields.get(name), f"{where}.{name}") for name in FIELDS))
            if prices.input is None or prices.output is None:
                raise PriceFileError(f"{where}: 'input' and 'output' are required")
            entries.append((provider, model_name, prices, _info(fields, where)))
    return str(data.get("as_of", "")), entries


def read_price_file(path: Path | str) -> tuple[str, list[PriceLine]]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PriceFileError(f"cannot read {path}: {exc}") from None
    return parse_price_file(data)


@lru_cache(maxsize=1)
def builtin_table() -> PriceTable:
    as_of, entries = read_price_file(BUILTIN_FILE)
    return PriceTable({}, as_of).overlaid((provider, model, prices) for provider, model, prices, _ in entries)


def current_table() -> PriceTable:
    """The built-in table with the operator's loaded entries on top (one query)."""
    return builtin_table().overlaid((e.provider, e.model_name, row_prices(e)) for e in PriceEntry.objects.all())


def row_prices(row: ModelDefinition | PriceEntry) -> Prices:
    """The price columns of a model definition or a loaded entry, as stored (None where empty)."""
    return Prices(*(Decimal(value) if (value := getattr(row, column)) is not None else None for column in COLUMNS))


def sets_text_prices(model: ModelDefinition) -> bool:
    return any(getattr(model, column) is not None for column in TEXT_COLUMNS)


def prices_for(model: ModelDefinition, table: PriceTable) -> Prices:
    """The model's own text prices when it sets any of them, used as a whole so a negotiated price is never
    mixed with list prices (an empty cached price then bills cached tokens at the input price), else the
    table's; the same, apart, for its audio prices. No audio price anywhere leaves audio unknown (None)."""
    own = row_prices(model)
    listed = table.lookup(model.provider, model.model_name) or Prices()
    text = own if sets_text_prices(model) else listed
    audio = own if any(getattr(model, column) is not None for column in AUDIO_COLUMNS) else listed
    return Prices(text.input, text.output, text.cached_input, audio.audio_input, audio.audio_output)


def price_problem(model: ModelDefinition, table: PriceTable | None = None) -> str | None:
    """Why this model's cost cannot be computed, for the admin's warning; None when it can."""
    prices = prices_for(model, table or current_table())
    if prices.input is None or prices.output is None:
        return (f"No price known for '{model.model_name}' on provider '{model.provider}': its requests are recorded "
                "with cost unknown and not counted by budgets. Set prices here or load them with "
                "`manage.py load_prices`.")
    return None


@transaction.atomic
def prices_load(*, entries: list[PriceLine], replace: bool = False) -> dict[str, int]:
    """Upsert loaded prices (and with `replace`, delete entries absent from `entries`); every server picks
    the new prices up with its next configuration snapshot."""
    existing = {(e.provider, e.model_name): e for e in PriceEntry.objects.select_for_update()}
    counts = {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0}
    seen = set()
    for provider, model_name, prices, info in entries:
        key = (provider, model_name)
        seen.add(key)
        values = dict(zip(COLUMNS, (getattr(prices, name) for name in FIELDS)))
        values.update(context_window=info.context_window, max_output_tokens=info.max_output_tokens,
                      capabilities=list(info.capabilities))
        row = existing.get(key)
        if row is None:
            PriceEntry.objects.create(provider=provider, model_name=model_name, **values)
            counts["created"] += 1
        elif any(getattr(row, name) != value for name, value in values.items()):
            PriceEntry.objects.filter(pk=row.pk).update(**values, updated_at=timezone.now())
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    if replace:
        stale = [row.pk for key, row in existing.items() if key not in seen]
        counts["deleted"] = PriceEntry.objects.filter(pk__in=stale).delete()[0]
    if counts["created"] or counts["updated"] or counts["deleted"]:
        bump_config_version()
    return counts
