"""Stored objects in the shape of a `gateway_apply` item (the same keys, nested the same way), so what the
management API answers can be sent back as it is, and reads like the YAML an operator writes. Secret values
never appear: only their masked form."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models

from gateway.config.file import BUDGET, ENDPOINT, GUARDRAIL, MODEL, RATE_LIMIT, SECRET
from gateway.config.schema import Schema
from gateway.models import BudgetPolicy, Endpoint, ModelDefinition, RateLimit, Secret
from guardrails.models import Guardrail


def _plain(value: Any) -> Any:
    """Decimals as numbers: the file's type check wants a number where a price or amount goes."""
    return float(value) if isinstance(value, Decimal) else value


def fields_item(schema: Schema, obj: models.Model) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for key, field_name in schema.fields.items():
        head, _, tail = key.partition(".")
        value = _plain(getattr(obj, field_name))
        if tail:
            item.setdefault(head, {})[tail] = value
        else:
            item[key] = value
    return item


def secret_item(secret: Secret) -> dict[str, Any]:
    return {**fields_item(SECRET, secret), "masked_values": dict(secret.masked_value)}


def model_item(model: ModelDefinition) -> dict[str, Any]:
    return {**fields_item(MODEL, model), "secret": model.secret.name if model.secret_id else None}


def guardrail_item(guardrail: Guardrail) -> dict[str, Any]:
    return fields_item(GUARDRAIL, guardrail)


def endpoint_item(endpoint: Endpoint) -> dict[str, Any]:
    links = [{"model": link.model.name, "linkage": link.linkage, "weight": link.weight, "order": link.order}
             for link in endpoint.links.all()]
    guardrails = [link.guardrail.name for link in endpoint.guardrail_links.all()]
    return {**fields_item(ENDPOINT, endpoint), "models": links, "guardrails": guardrails}


def budget_item(budget: BudgetPolicy) -> dict[str, Any]:
    return fields_item(BUDGET, budget)


def rate_limit_item(rate_limit: RateLimit) -> dict[str, Any]:
    return fields_item(RATE_LIMIT, rate_limit)
