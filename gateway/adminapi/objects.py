"""Writes to configuration objects through the management API: each one is applied as a one-item
`gateway_apply` section (gateway/config/apply.py), so it passes exactly the file's validation, is written by
the same services and bumps the configuration version once; the API adds what a single object needs
(name taken, unknown name, still in use) and the History entry."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, QuerySet

from gateway.adminapi.audit import Caller, record_change
from gateway.config import items
from gateway.config.apply import apply_config
from gateway.config.crypto import SecretDecryptionError, SecretsUnavailable
from gateway.config.file import BUDGET, ENDPOINT, GUARDRAIL, MODEL, RATE_LIMIT, SECRET, ConfigError
from gateway.config.schema import Schema
from gateway.config.secrets import secret_values
from gateway.config.version import one_config_version
from gateway.errors import BadRequest, GatewayError, NotFound
from gateway.models import ApiKey, BudgetPolicy, BudgetScope, Endpoint, ModelDefinition, RateLimit, Secret
from guardrails.models import Guardrail


class Conflict(GatewayError):
    status = 409
    error_type = "conflict_error"


@dataclass(frozen=True)
class Kind:
    """One resource of the API: its YAML section, schema, how it reads and what still uses an object."""

    resource: str
    section: str
    label: str
    schema: Schema
    queryset: Callable[[], QuerySet]
    item: Callable[[Any], dict]
    users: Callable[[Any], list[str]]

    def filters(self) -> dict[str, list[str]]:
        """Top-level keys with a fixed set of values (`provider`, `kind`, `scope`...): a list may be filtered
        by them, e.g. `?provider=openai`."""
        found = {}
        for key, field_name in self.schema.fields.items():
            choices = self.schema.model._meta.get_field(field_name).choices
            if "." not in key and choices:
                found[key] = [str(value) for value, _ in choices]
        return found

    def listed(self, query: dict[str, str]) -> list[dict]:
        """Every object as an item, keeping those whose filter keys equal the query's values."""
        filters = self.filters()
        for key, value in query.items():
            if key not in filters:
                raise BadRequest(f"{key}: unknown filter (expected one of: {', '.join(sorted(filters))})",
                                 param=key, code="invalid_value")
            if value not in filters[key]:
                raise BadRequest(f"{key}: must be one of: {', '.join(filters[key])}", param=key, code="invalid_value")
        return [item for item in map(self.item, self.queryset())
                if all(str(item[key]) == value for key, value in query.items())]

    def get(self, name: str) -> Any:
        obj = self.queryset().filter(name=name).first()
        if obj is None:
            raise NotFound(f"No {self.label} named '{name}'.", param="name", code="not_found")
        return obj


def _names(queryset: QuerySet, what: str) -> list[str]:
    names = sorted(set(queryset.values_list("name", flat=True)))
    return [f"{what} {', '.join(names)}"] if names else []


def _budgets_on(scope: str, name: str) -> list[str]:
    """Budgets and rate limits naming an endpoint or key as their target."""
    return (_names(BudgetPolicy.objects.filter(scope=scope, target=name), "budget")
            + _names(RateLimit.objects.filter(scope=scope, target=name), "rate limit"))


KINDS = {kind.resource: kind for kind in (
    Kind("secrets", "secrets", "secret", SECRET, Secret.objects.all, items.secret_item,
         lambda obj: _names(obj.model_definitions.all(), "model")),
    Kind("models", "models", "model", MODEL, lambda: ModelDefinition.objects.select_related("secret"),
         items.model_item, lambda obj: _names(Endpoint.objects.filter(links__model=obj), "endpoint")),
    Kind("guardrails", "guardrails", "guardrail", GUARDRAIL, Guardrail.objects.all, items.guardrail_item,
         lambda obj: _names(Endpoint.objects.filter(guardrail_links__guardrail=obj), "endpoint")),
    Kind("endpoints", "endpoints", "endpoint", ENDPOINT,
         lambda: Endpoint.objects.prefetch_related("links__model", "guardrail_links__guardrail"),
         items.endpoint_item,
         lambda obj: _budgets_on(BudgetScope.ENDPOINT, obj.name) + _names(obj.apikey_set.all(), "API key")),
    Kind("budgets", "budgets", "budget", BUDGET, BudgetPolicy.objects.all, items.budget_item, lambda obj: []),
    Kind("rate-limits", "rate_limits", "rate limit", RATE_LIMIT, RateLimit.objects.all, items.rate_limit_item,
         lambda obj: []),
)}

# Keys a read answers that a write ignores, so a read object can be sent back unchanged.
READ_ONLY = frozenset({"masked_values"})

_PATH = re.compile(r"^(?P<path>[\w.\[\]]+): (?P<message>.*)$", re.S)
_ROW = re.compile(r"^[\w ]+ '[^']*': ")


def problem_error(problems: list[str], prefix: str) -> BadRequest:
    """The file's problems as one 400: located relative to the object (`models[1].model`), the first one's
    location as `param`."""
    located = []
    for problem in problems:
        text = _ROW.sub("", problem, count=1)
        if text.startswith(prefix):
            text = text[len(prefix):].lstrip(".")
        match = _PATH.match(text)
        located.append((match["path"], match["message"]) if match else (None, text))
    message = "; ".join(f"{path}: {text}" if path else text for path, text in located)
    return BadRequest(message, param=located[0][0] if located else None, code="invalid_value")


def object_write(kind: Kind, *, body: dict, caller: Caller, name: str | None = None) -> Any:
    """Create (`name` None) or replace the named object with `body`, an item as `gateway_apply` reads it.
    Returns the stored object."""
    item = {key: value for key, value in body.items() if key not in READ_ONLY}
    if name is not None:
        existing = kind.get(name)
        if item.setdefault("name", name) != name:
            raise BadRequest("The name cannot change: create the object under the new name instead.",
                             param="name", code="invalid_value")
        if kind is KINDS["secrets"] and "values" not in item:
            item["values"] = _stored_values(existing)
    elif isinstance(item.get("name"), str) and kind.queryset().filter(name=item["name"]).exists():
        raise Conflict(f"A {kind.label} named '{item['name']}' already exists.", param="name", code="name_taken")
    if kind is KINDS["secrets"]:
        _refuse_environment_references(item.get("values"), "values")
    with transaction.atomic(), one_config_version():
        try:
            result = apply_config({kind.section: [item]}, actor=caller.actor)
        except ConfigError as exc:
            raise problem_error(exc.problems, f"{kind.section}[0]") from None
        except IntegrityError:
            # Another request created the same name between the check and the write.
            raise Conflict(f"A {kind.label} named '{item['name']}' already exists.", param="name",
                           code="name_taken") from None
        obj = kind.get(item["name"])
        for change in result.changes:
            record_change(caller, change.action, obj, change.fields)
    return obj


def _stored_values(secret: Secret) -> dict:
    """A secret written without `values` keeps its stored ones."""
    try:
        return secret_values(secret)
    except (SecretDecryptionError, SecretsUnavailable):
        raise BadRequest("The stored values cannot be read; send 'values' to replace them.", param="values",
                         code="invalid_value") from None


def _refuse_environment_references(values: Any, path: str) -> None:
    """`{env: VAR}` reads the server's environment: meant for files an operator controls, not for callers
    of an HTTP API."""
    if isinstance(values, dict):
        if set(values) == {"env"}:
            raise BadRequest(f"{path}: environment references are only read from gateway_apply files.",
                             param=path, code="invalid_value")
        for key, value in values.items():
            _refuse_environment_references(value, f"{path}.{key}")


def object_delete(kind: Kind, *, name: str, caller: Caller) -> None:
    obj = kind.get(name)
    in_use = kind.users(obj)
    if in_use:
        raise Conflict(f"The {kind.label} '{name}' is still used by {'; '.join(in_use)}.", param="name",
                       code="in_use")
    with transaction.atomic(), one_config_version():
        record_change(caller, "delete", obj)
        try:
            obj.delete()
        except ProtectedError:
            raise Conflict(f"The {kind.label} '{name}' is still in use.", param="name", code="in_use") from None


def merged(current: dict, patch: dict) -> dict:
    """PATCH: the stored item with the body's keys replacing its own; nested mappings (`fallback`,
    `window`, `circuit_breaker`) merge key by key."""
    result = dict(current)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict) and key not in ("values", "auth_config",
                                                                                          "settings"):
            result[key] = {**result[key], **value}
        else:
            result[key] = value
    return result


def api_key_users(api_key: ApiKey) -> list[str]:
    return _budgets_on(BudgetScope.API_KEY, api_key.name)
