"""The `gateway_apply` file format: reading a YAML file and validating it, whole, into the desired state
that gateway/config/apply.py compares with the database.

Every problem is collected with its location so an operator fixes a bad file in one round. No message
ever contains a secret value, not even the offending one.
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from django.db import models

from gateway.config.schema import Problems, Schema, read_item
from gateway.models import (
    OPENAI_FAMILY, ApiKey, BudgetPolicy, BudgetScope, Endpoint, EndpointModel, ModelDefinition, Provider, RateLimit, Secret,
    validate_endpoint_links,
)
from guardrails.models import Guardrail
from providers.outbound import url_problem
from providers.registry import AUTH_MODES

SECTIONS = ("secrets", "models", "guardrails", "endpoints", "budgets", "rate_limits")


class ConfigError(Exception):
    """A configuration that cannot be applied; `problems` lists every problem, each with its location."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{len(problems)} problem(s) in the configuration; nothing was changed:\n{listing}")


SECRET = Schema(Secret, {"name": "name", "provider": "provider", "auth_config": "auth_config",
                         "description": "description"},
                extra=frozenset({"values"}), required=frozenset({"name", "provider", "values"}))
MODEL = Schema(ModelDefinition, {
    "name": "name", "provider": "provider", "model_name": "model_name",
    "input_cost_per_million": "input_cost_per_million", "output_cost_per_million": "output_cost_per_million",
    "cached_input_cost_per_million": "cached_input_cost_per_million",
    "audio_input_cost_per_million": "audio_input_cost_per_million",
    "audio_output_cost_per_million": "audio_output_cost_per_million",
}, extra=frozenset({"secret"}), required=frozenset({"name", "provider", "model_name"}))
GUARDRAIL = Schema(Guardrail, {"name": "name", "kind": "kind", "stage": "stage", "action": "action",
                               "settings": "settings", "fail_mode": "fail_mode"},
                   required=frozenset({"name", "kind"}))
ENDPOINT = Schema(Endpoint, {
    "name": "name", "description": "description", "routing_strategy": "routing_strategy",
    "usage_tracking": "usage_tracking", "log_payloads": "log_payloads", "fallback.strategy": "fallback_strategy",
    "fallback.max_attempts": "fallback_max_attempts", "retries": "retries", "timeout": "total_timeout_seconds",
    "stream_idle_timeout": "stream_idle_timeout_seconds", "circuit_breaker.threshold": "breaker_threshold",
    "circuit_breaker.cooldown_seconds": "breaker_cooldown_seconds",
}, extra=frozenset({"models", "guardrails"}), required=frozenset({"name", "models"}))
LINK = Schema(EndpointModel, {"linkage": "linkage", "weight": "weight", "order": "order"},
              extra=frozenset({"model"}), required=frozenset({"model"}))
BUDGET = Schema(BudgetPolicy, {
    "name": "name", "scope": "scope", "target": "target", "amount_usd": "amount_usd",
    "window.unit": "window_unit", "window.value": "window_value", "action": "action",
    "webhook_url": "webhook_url", "enabled": "enabled",
}, required=frozenset({"name", "scope", "amount_usd", "window.unit", "window.value"}))
RATE_LIMIT = Schema(RateLimit, {
    "name": "name", "scope": "scope", "target": "target", "requests_per_minute": "requests_per_minute",
    "tokens_per_minute": "tokens_per_minute", "max_concurrent": "max_concurrent", "enabled": "enabled",
}, required=frozenset({"name", "scope"}))
RATE_KINDS = ("requests_per_minute", "tokens_per_minute", "max_concurrent")


@dataclass
class ObjectSpec:
    """One object as the file wants it: model field values by field name (every managed field, with the
    model's default where the file is silent, so removing a key from the file resets it)."""

    name: str
    fields: dict[str, Any]


@dataclass
class SecretSpec(ObjectSpec):
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelSpec(ObjectSpec):
    secret: str | None = None


@dataclass(frozen=True)
class LinkSpec:
    model: str
    linkage: str
    weight: float
    order: int


@dataclass
class EndpointSpec(ObjectSpec):
    links: list[LinkSpec] = field(default_factory=list)
    guardrails: list[str] = field(default_factory=list)


# Turns one item (its raw mapping, location and cleaned fields) into a spec, adding its own problems.
SpecBuilder = Callable[[dict, str, dict, Problems], ObjectSpec]


@dataclass
class DesiredConfig:
    secrets: list[SecretSpec]
    models: list[ModelSpec]
    guardrails: list[ObjectSpec]
    endpoints: list[EndpointSpec]
    budgets: list[ObjectSpec]
    rate_limits: list[ObjectSpec]


@dataclass
class _Known:
    """Names a reference may point at: the file's own, plus the database's unless pruning removes them."""

    secrets: dict[str, Any]  # name -> provider as written
    models: set[str]
    guardrails: set[str]
    endpoints: set[str]
    api_keys: set[str]


def load_config_file(path: str | Path) -> dict:
    """Parse the file; YAML errors are reported by position only, since the offending line may hold a
    secret value."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the file ({exc.strerror})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise ConfigError([f"{path}: invalid YAML at {where}: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError:
        raise ConfigError([f"{path}: invalid YAML"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: the top level must be a mapping of sections ({', '.join(SECTIONS)})"])
    return data


def validate_config(data: dict, *, prune: bool) -> DesiredConfig:
    """The whole file as specs, or ConfigError listing every problem found."""
    problems = Problems()
    if not isinstance(data, dict):
        raise ConfigError([f"the configuration must be a mapping of sections ({', '.join(SECTIONS)})"])
    for key in data:
        if key not in SECTIONS:
            problems.add(str(key), f"unknown section (expected one of: {', '.join(SECTIONS)})")
    items = {section: _section_items(data, section, problems) for section in SECTIONS}
    known = _known_names(items, prune=prune)
    desired = DesiredConfig(
        secrets=_validate_section(items["secrets"], SECRET, problems, _secret_spec),
        models=_validate_section(items["models"], MODEL, problems, partial(_model_spec, known=known)),
        guardrails=_validate_section(items["guardrails"], GUARDRAIL, problems, _guardrail_spec),
        endpoints=_validate_section(items["endpoints"], ENDPOINT, problems, partial(_endpoint_spec, known=known)),
        budgets=_validate_section(items["budgets"], BUDGET, problems, partial(_budget_spec, known=known)),
        rate_limits=_validate_section(items["rate_limits"], RATE_LIMIT, problems,
                                      partial(_rate_limit_spec, known=known)),
    )
    if prune:
        _check_prune_keeps_key_scopes({spec.name for spec in desired.endpoints}, problems)
    if problems:
        raise ConfigError(list(problems))
    return desired


def _section_items(data: dict, section: str, problems: Problems) -> list[tuple[str, dict]]:
    """(location, item) pairs of the section's well-formed items."""
    raw = data.get(section)
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.add(section, "must be a list")
        return []
    items = []
    for index, item in enumerate(raw):
        path = f"{section}[{index}]"
        if isinstance(item, dict):
            items.append((path, item))
        else:
            problems.add(path, "must be a mapping")
    return items


def _known_names(items: dict[str, list[tuple[str, dict]]], *, prune: bool) -> _Known:
    """Names declared in the file (even on items with other problems, so that one bad field does not
    cascade into "unknown" errors elsewhere), plus those in the database when nothing is pruned."""

    def declared(section: str) -> dict[str, Any]:
        return {item["name"]: item.get("provider") for _, item in items[section] if isinstance(item.get("name"), str)}

    def stored(model: type[models.Model]) -> set[str]:
        return set() if prune else set(model.objects.values_list("name", flat=True))

    secrets = {} if prune else dict(Secret.objects.values_list("name", "provider"))
    secrets.update(declared("secrets"))
    return _Known(
        secrets=secrets,
        models=stored(ModelDefinition) | set(declared("models")),
        guardrails=stored(Guardrail) | set(declared("guardrails")),
        endpoints=stored(Endpoint) | set(declared("endpoints")),
        api_keys=set(ApiKey.objects.values_list("name", flat=True)),
    )


def _validate_section(items: list[tuple[str, dict]], schema: Schema, problems: Problems,
                      build: SpecBuilder) -> list:
    """Each item's spec, checking names are unique within the section."""
    specs = []
    first_seen: dict[str, str] = {}
    for path, item in items:
        fields = read_item(item, path, schema, problems)
        name = fields.get("name")
        spec = build(item, path, fields, problems)
        if name is None:
            continue
        if name in first_seen:
            problems.add(f"{path}.name", f"duplicate name '{name}' (first used at {first_seen[name]})")
            continue
        first_seen[name] = path
        specs.append(spec)
    return specs


def _secret_spec(item: dict, path: str, fields: dict, problems: Problems) -> SecretSpec:
    values = item.get("values")
    if values is not None and not isinstance(values, dict):
        problems.add(f"{path}.values", "must be a mapping")
    resolved = _resolve_secret_value(values, f"{path}.values", problems) if isinstance(values, dict) else {}
    auth_config = fields.get("auth_config") if isinstance(fields.get("auth_config"), dict) else {}
    modes = AUTH_MODES.get(str(fields.get("provider")))
    if auth_config.get("auth_mode") is not None and modes and auth_config["auth_mode"] not in modes:
        problems.add(f"{path}.auth_config.auth_mode", f"must be one of: {', '.join(modes)}")
    api_base = auth_config.get("api_base")
    if api_base:
        problem = url_problem(str(api_base), resolve=False)
        if problem:
            problems.add(f"{path}.auth_config.api_base", f"not allowed by the outbound policy: {problem}")
    return SecretSpec(name=fields.pop("name", ""), fields=fields, values=resolved)


def _resolve_secret_value(value: Any, path: str, problems: Problems) -> Any:
    """The value with every `{env: VAR}` replaced from the environment. Problems never quote the value."""
    if isinstance(value, dict):
        if set(value) == {"env"}:
            return _from_environment(value["env"], path, problems)
        resolved = {}
        for key, item in value.items():
            if not isinstance(key, str):
                problems.add(path, "keys must be strings")
                continue
            resolved[key] = _resolve_secret_value(item, f"{path}.{key}", problems)
        return resolved
    if isinstance(value, list):
        return [_resolve_secret_value(item, f"{path}[{index}]", problems) for index, item in enumerate(value)]
    if isinstance(value, str):
        return value
    problems.add(path, "must be a string")
    return None


def _from_environment(variable: Any, path: str, problems: Problems) -> str | None:
    if not isinstance(variable, str) or not variable:
        problems.add(f"{path}.env", "must name an environment variable")
        return None
    value = os.environ.get(variable)
    if value is None:
        problems.add(path, f"environment variable {variable} is not set")
    elif not value:
        problems.add(path, f"environment variable {variable} is empty")
    return value


def _model_spec(item: dict, path: str, fields: dict, problems: Problems, *, known: _Known) -> ModelSpec:
    provider = fields.get("provider")
    secret = item.get("secret")
    if secret is None:
        if provider is not None and provider != Provider.FAKE:
            problems.add(f"{path}.secret", f"required for provider '{provider}'")
    elif not isinstance(secret, str):
        problems.add(f"{path}.secret", "must be a secret name")
    elif secret not in known.secrets:
        problems.add(f"{path}.secret", f"unknown secret '{secret}'")
    elif provider is not None and known.secrets[secret] in Provider.values \
            and not _providers_compatible(provider, known.secrets[secret]):
        problems.add(f"{path}.secret", f"secret '{secret}' is for provider '{known.secrets[secret]}', not '{provider}'")
    return ModelSpec(name=fields.pop("name", ""), fields=fields, secret=secret if isinstance(secret, str) else None)


def _providers_compatible(model_provider: str, secret_provider: str) -> bool:
    """The rule of ModelDefinition.clean, checked here because the secret may be defined in this same file
    (the model's own clean runs again when the row is written)."""
    return model_provider == secret_provider or {model_provider, secret_provider} <= OPENAI_FAMILY


def _guardrail_spec(item: dict, path: str, fields: dict, problems: Problems) -> ObjectSpec:
    if "kind" in fields and "settings" in fields:
        for message in _kind_settings_problems(fields["kind"], fields["settings"]):
            problems.add(f"{path}.settings", message)
    return ObjectSpec(name=fields.pop("name", ""), fields=fields)


def _kind_settings_problems(kind: str, settings: dict) -> list[str]:
    """Kind-specific settings rules live with the guardrail kinds; until that module exists, any settings
    mapping is accepted."""
    try:
        kinds = importlib.import_module("guardrails.kinds")
    except ModuleNotFoundError as exc:
        if exc.name != "guardrails.kinds":
            raise
        return []
    validate = getattr(kinds, "validate_settings", None)
    return list(validate(kind, settings)) if validate else []


def _endpoint_spec(item: dict, path: str, fields: dict, problems: Problems, *, known: _Known) -> EndpointSpec:
    return EndpointSpec(
        name=fields.pop("name", ""), fields=fields,
        links=_endpoint_links(item.get("models"), f"{path}.models", known, problems),
        guardrails=_endpoint_guardrails(item.get("guardrails"), f"{path}.guardrails", known, problems),
    )


def _endpoint_links(raw: Any, path: str, known: _Known, problems: Problems) -> list[LinkSpec]:
    """The links in the order the routing layer will see them: fallbacks by `order`, ties in file order."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.add(path, "must be a list")
        return []
    links: list[LinkSpec] = []
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(raw):
        link_path = f"{path}[{index}]"
        if not isinstance(item, dict):
            problems.add(link_path, "must be a mapping")
            continue
        fields = read_item(item, link_path, LINK, problems)
        model = item.get("model")
        if model is not None and not isinstance(model, str):
            problems.add(f"{link_path}.model", "must be a model name")
        elif model is not None and model not in known.models:
            problems.add(f"{link_path}.model", f"unknown model '{model}'")
        elif model is not None and "linkage" in fields:
            if (model, fields["linkage"]) in seen:
                problems.add(f"{link_path}.model", f"'{model}' is already linked as {fields['linkage']}")
            seen.add((model, fields["linkage"]))
        if isinstance(model, str) and set(fields) == set(LINK.fields.values()):
            links.append(LinkSpec(model=model, **fields))
    # The set as a whole (a primary exists, weights) can only be judged once every link reads correctly.
    if len(links) == len(raw):
        for message in validate_endpoint_links([(link.linkage, link.weight) for link in links]):
            problems.add(path, message)
    return sorted(links, key=lambda link: (link.linkage, link.order))


def _endpoint_guardrails(raw: Any, path: str, known: _Known, problems: Problems) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.add(path, "must be a list of guardrail names")
        return []
    names: list[str] = []
    for index, name in enumerate(raw):
        if not isinstance(name, str):
            problems.add(f"{path}[{index}]", "must be a guardrail name")
        elif name not in known.guardrails:
            problems.add(f"{path}[{index}]", f"unknown guardrail '{name}'")
        elif name in names:
            problems.add(f"{path}[{index}]", f"guardrail '{name}' is listed twice")
        else:
            names.append(name)
    return names


def _budget_spec(item: dict, path: str, fields: dict, problems: Problems, *, known: _Known) -> ObjectSpec:
    if "scope" in fields and "target" in fields:
        message = _budget_target_problem(fields["scope"], fields["target"], known)
        if message:
            problems.add(f"{path}.target", message)
    return ObjectSpec(name=fields.pop("name", ""), fields=fields)


def _budget_target_problem(scope: str, target: str, known: _Known) -> str | None:
    if scope == BudgetScope.GLOBAL:
        return "a global budget has no target" if target else None
    if not target:
        return f"required for scope '{scope}'"
    if scope == BudgetScope.ENDPOINT and target not in known.endpoints:
        return f"unknown endpoint '{target}'"
    if scope == BudgetScope.API_KEY and target not in known.api_keys:
        return f"unknown API key '{target}'"
    return None


def _rate_limit_spec(item: dict, path: str, fields: dict, problems: Problems, *, known: _Known) -> ObjectSpec:
    if not any(item.get(kind) is not None for kind in RATE_KINDS):
        problems.add(path, f"needs at least one of: {', '.join(RATE_KINDS)}")
    if "scope" in fields and "target" in fields and fields["target"] != "*":
        message = _budget_target_problem(fields["scope"], fields["target"], known)
        if message:
            problems.add(f"{path}.target", message.replace("budget", "rate limit"))
    elif fields.get("target") == "*" and fields.get("scope") == BudgetScope.GLOBAL:
        problems.add(f"{path}.target", "a global rate limit has no target")
    return ObjectSpec(name=fields.pop("name", ""), fields=fields)


def _check_prune_keeps_key_scopes(kept_endpoints: set[str], problems: Problems) -> None:
    """An API key limited to endpoints that all get pruned would be left with an empty list, which means
    *every* endpoint: pruning must never widen a key's access."""
    for api_key in ApiKey.objects.prefetch_related("endpoints"):
        allowed = {endpoint.name for endpoint in api_key.endpoints.all()}
        if allowed and not allowed & kept_endpoints:
            problems.add("prune", f"API key '{api_key.name}' may only use {', '.join(sorted(allowed))}; removing "
                                  f"them would let it use every endpoint (keep one in the file or change the key first)")
