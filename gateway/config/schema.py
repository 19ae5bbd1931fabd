"""Reading one item of a `gateway_apply` file onto a model's fields, with every problem recorded at its
location. The model fields themselves check choices, lengths and validators, so the file obeys the same
rules as the admin; a strict type check comes first because YAML's `"3"` is not the number 3."""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

_MISSING = object()
_INVALID = object()


class Problems(list[str]):
    """Problem messages, each prefixed with its location (`endpoints[0].models[2].model`)."""

    def add(self, path: str, message: str) -> None:
        self.append(f"{path}: {message}")


@dataclass(frozen=True)
class Schema:
    """How one kind of item maps onto its model: `fields` maps file keys (dotted inside a nested mapping,
    e.g. `fallback.strategy`) to model fields; `extra` keys are read by the section's own code."""

    model: type[models.Model]
    fields: dict[str, str]
    extra: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()

    def label(self, field_name: str) -> str:
        """The file key an operator wrote for a model field, for change reports."""
        return next((key for key, name in self.fields.items() if name == field_name), field_name)


def read_item(item: dict, path: str, schema: Schema, problems: Problems) -> dict[str, Any]:
    """Model field values of one item; fields with problems are left out."""
    _check_keys(item, path, schema, problems)
    values: dict[str, Any] = {}
    for key, field_name in schema.fields.items():
        model_field = schema.model._meta.get_field(field_name)
        raw = _lookup(item, key)
        if raw is _MISSING or raw is None:
            if key not in schema.required:
                values[field_name] = model_field.get_default()
            continue
        cleaned = _clean_field(model_field, raw, f"{path}.{key}", problems)
        if cleaned is not _INVALID:
            values[field_name] = cleaned
    return values


def _check_keys(item: dict, path: str, schema: Schema, problems: Problems) -> None:
    """Unknown keys (at the top and inside nested mappings) and missing required ones."""
    nested: dict[str, set[str]] = {}
    for key in schema.fields:
        head, _, tail = key.partition(".")
        nested.setdefault(head, set())
        if tail:
            nested[head].add(tail)
    _unknown_keys(item, set(nested) | schema.extra, path, problems)
    for head, tails in nested.items():
        sub = item.get(head)
        if tails and isinstance(sub, dict):
            _unknown_keys(sub, tails, f"{path}.{head}", problems)
        elif tails and sub is not None:
            problems.add(f"{path}.{head}", "must be a mapping")
    _check_required(item, path, schema.required, problems)


def _check_required(item: dict, path: str, required: frozenset[str], problems: Problems) -> None:
    """A missing nested mapping is reported once, not once per required key inside it."""
    reported: set[str] = set()
    for key in sorted(required):
        head = key.partition(".")[0]
        if head in reported:
            continue
        sub = item.get(head)
        if sub is None:
            reported.add(head)
            problems.add(f"{path}.{head}", "required")
        elif isinstance(sub, dict) and _lookup(item, key) in (_MISSING, None):
            problems.add(f"{path}.{key}", "required")


def _unknown_keys(mapping: dict, allowed: set[str], path: str, problems: Problems) -> None:
    for key in mapping:
        if key not in allowed:
            problems.add(f"{path}.{key}", f"unknown key (expected one of: {', '.join(sorted(allowed))})")


def _lookup(item: dict, dotted: str) -> Any:
    node: Any = item
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _clean_field(model_field: models.Field, value: Any, path: str, problems: Problems) -> Any:
    """The value converted and checked by the model field itself (choices, lengths, validators), after a
    strict type check: YAML `"3"` is not silently accepted where a number is meant."""
    expected = _type_problem(model_field, value)
    if expected:
        problems.add(path, expected)
        return _INVALID
    if isinstance(model_field, models.DecimalField) and isinstance(value, float):
        value = Decimal(str(value))
    try:
        return model_field.clean(value, None)
    except ValidationError as exc:
        for error in exc.error_list:
            problems.add(path, _field_message(model_field, error))
        return _INVALID


def _type_problem(model_field: models.Field, value: Any) -> str | None:
    if isinstance(model_field, models.BooleanField):
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(model_field, models.IntegerField):
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be an integer"
    if isinstance(model_field, (models.FloatField, models.DecimalField)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "must be a number"
        return None if math.isfinite(value) else "must be a finite number"
    if isinstance(model_field, models.JSONField):
        return None if isinstance(value, dict) else "must be a mapping"
    return None if isinstance(value, str) else "must be a string"


def _field_message(model_field: models.Field, error: ValidationError) -> str:
    if error.code == "invalid_choice":
        values = [str(value) for value, _ in model_field.flatchoices]
        omitted = " (or omit it)" if "" in values else ""
        return f"must be one of: {', '.join(value for value in values if value)}{omitted}"
    if error.code == "blank":
        return "must not be empty"
    return error.messages[0]
