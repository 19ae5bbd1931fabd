"""The service behind `manage.py gateway_apply`: make the database match a declarative configuration.

The file is validated whole (gateway/config/file.py), then compared with the stored rows into a plan of
create / update / delete steps, then the plan runs in one transaction. Because the plan is computed
before anything is written, a dry run reports exactly what a real run would do, and a file that already
matches the database produces an empty plan: no write, no config version bump.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db import models, transaction

from gateway.config.file import (
    BUDGET, ENDPOINT, GUARDRAIL, MODEL, RATE_LIMIT, SECRET, ConfigError, DesiredConfig, EndpointSpec, LinkSpec, ModelSpec,
    ObjectSpec, SecretSpec, load_config_file, validate_config,
)
from gateway.config.schema import Schema
from gateway.config.version import bump_config_version, one_config_version
from gateway.config.crypto import SecretDecryptionError
from gateway.models import Audited, BudgetPolicy, Endpoint, EndpointModel, ModelDefinition, RateLimit, Secret
from gateway.config.secrets import secret_create, secret_update, secret_values
from guardrails.models import EndpointGuardrail, Guardrail

__all__ = ["ApplyResult", "Change", "ConfigError", "apply_config", "load_config_file"]

# Deletions run in this order so nothing is removed while something else still points at it.
PRUNE_ORDER = ("budget", "rate_limit", "endpoint", "guardrail", "model", "secret")


@dataclass(frozen=True)
class Change:
    """One line of the plan. It names the fields that differ, never their values."""

    action: Literal["create", "update", "delete"]
    kind: str
    name: str
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.action} {self.kind} {self.name}"
        return f"{text} ({', '.join(self.fields)})" if self.fields else text


@dataclass(frozen=True)
class ApplyResult:
    changes: list[Change]
    dry_run: bool

    def summary(self) -> str:
        if not self.changes:
            return "No changes."
        counts = Counter(change.action for change in self.changes)
        if self.dry_run:
            return (f"Dry run: {counts['create']} to create, {counts['update']} to update, "
                    f"{counts['delete']} to delete; nothing was changed.")
        return f"Applied: {counts['create']} created, {counts['update']} updated, {counts['delete']} deleted."


@dataclass(frozen=True)
class _Step:
    change: Change
    run: Callable[[str], None]  # called with the actor recorded in the audit fields


# What differs beyond plain model fields (links, references), as labels; and how to write one object.
# `changed` is None for an object being created.
ExtraDiff = Callable[[Any, Any], list[str]]
Writer = Callable[[Any, Any, "set[str] | None", str], None]


def apply_config(data: dict, *, prune: bool = False, dry_run: bool = False,
                 actor: str = "gateway_apply") -> ApplyResult:
    """Apply a parsed configuration. With `prune`, objects of every kind absent from the file are deleted:
    the file then describes the whole configuration, so a section left out means "none of these".
    Raises ConfigError listing every problem; nothing is changed then, nor on a dry run."""
    with transaction.atomic():
        desired = validate_config(data, prune=prune)
        steps = _plan(desired, prune=prune)
        if not dry_run:
            with one_config_version():
                for step in steps:
                    step.run(actor)
                if steps:
                    bump_config_version()
    return ApplyResult(changes=[step.change for step in steps], dry_run=dry_run)


def _plan(desired: DesiredConfig, *, prune: bool) -> list[_Step]:
    stored: dict[str, dict[str, Any]] = {
        "secret": _by_name(Secret.objects.all()),
        "model": _by_name(ModelDefinition.objects.select_related("secret")),
        "guardrail": _by_name(Guardrail.objects.all()),
        "endpoint": _by_name(Endpoint.objects.prefetch_related("links__model", "guardrail_links__guardrail")),
        "budget": _by_name(BudgetPolicy.objects.all()),
        "rate_limit": _by_name(RateLimit.objects.all()),
    }
    steps = [
        *_plan_secrets(desired.secrets, stored["secret"]),
        *_plan_upserts("model", MODEL, desired.models, stored["model"], _write_model, _model_diff),
        *_plan_upserts("guardrail", GUARDRAIL, desired.guardrails, stored["guardrail"], _write_plain),
        *_plan_upserts("endpoint", ENDPOINT, desired.endpoints, stored["endpoint"], _write_endpoint, _endpoint_diff),
        *_plan_upserts("budget", BUDGET, desired.budgets, stored["budget"], _write_plain),
        *_plan_upserts("rate_limit", RATE_LIMIT, desired.rate_limits, stored["rate_limit"], _write_plain),
    ]
    if prune:
        wanted = {
            "secret": desired.secrets, "model": desired.models, "guardrail": desired.guardrails,
            "endpoint": desired.endpoints, "budget": desired.budgets, "rate_limit": desired.rate_limits,
        }
        for kind in PRUNE_ORDER:
            steps += _plan_deletions(kind, stored[kind], {spec.name for spec in wanted[kind]})
    return steps


def _by_name(objects: Iterable[Any]) -> dict[str, Any]:
    return {obj.name: obj for obj in objects}


def _changed_fields(obj: models.Model, fields: dict[str, Any]) -> list[str]:
    return [name for name, value in fields.items() if getattr(obj, name) != value]


def _plan_upserts(kind: str, schema: Schema, specs: list[ObjectSpec], stored: dict[str, Any], write: Writer,
                  extra_diff: ExtraDiff | None = None) -> list[_Step]:
    steps = []
    for spec in specs:
        obj = stored.get(spec.name)
        if obj is None:
            new = schema.model(name=spec.name)
            steps.append(_Step(Change("create", kind, spec.name), partial(write, spec, new, None)))
            continue
        changed = [schema.label(name) for name in _changed_fields(obj, spec.fields)]
        changed += extra_diff(spec, obj) if extra_diff else []
        if changed:
            steps.append(_Step(Change("update", kind, spec.name, tuple(changed)),
                               partial(write, spec, obj, set(changed))))
    return steps


def _plan_deletions(kind: str, stored: dict[str, Any], wanted: set[str]) -> list[_Step]:
    return [_Step(Change("delete", kind, name), partial(_delete, obj))
            for name, obj in sorted(stored.items()) if name not in wanted]


def _delete(obj: models.Model, actor: str) -> None:
    obj.delete()


def _plan_secrets(specs: list[SecretSpec], stored: dict[str, Secret]) -> list[_Step]:
    """Secrets go through the secret services so values are always encrypted; stored values are
    decrypted only to compare, so an unchanged secret is not re-encrypted on every apply."""
    steps = []
    for spec in specs:
        secret = stored.get(spec.name)
        if secret is None:
            steps.append(_Step(Change("create", "secret", spec.name), partial(_create_secret, spec)))
            continue
        changed = _changed_fields(secret, spec.fields)
        values_changed = _stored_values(secret) != spec.values
        labels = [SECRET.label(name) for name in changed] + (["values"] if values_changed else [])
        if labels:
            steps.append(_Step(Change("update", "secret", spec.name, tuple(labels)),
                               partial(_update_secret, spec, secret, changed, values_changed)))
    return steps


def _stored_values(secret: Secret) -> dict | None:
    """None when the stored values cannot be read (e.g. sealed under a lost passphrase): the file's values
    then replace them."""
    try:
        return secret_values(secret)
    except SecretDecryptionError:
        return None


def _create_secret(spec: SecretSpec, actor: str) -> None:
    try:
        secret_create(name=spec.name, values=spec.values, actor=actor, **spec.fields)
    except ValidationError as exc:
        raise _config_error(f"secret '{spec.name}'", exc) from None


def _update_secret(spec: SecretSpec, secret: Secret, changed: list[str], values_changed: bool, actor: str) -> None:
    try:
        secret_update(secret=secret, values=spec.values if values_changed else None, actor=actor,
                      **{name: spec.fields[name] for name in changed})
    except ValidationError as exc:
        raise _config_error(f"secret '{spec.name}'", exc) from None


def _model_diff(spec: ModelSpec, model: ModelDefinition) -> list[str]:
    current = model.secret.name if model.secret else None
    return [] if current == spec.secret else ["secret"]


def _endpoint_diff(spec: EndpointSpec, endpoint: Endpoint) -> list[str]:
    links = [LinkSpec(model=link.model.name, linkage=link.linkage, weight=link.weight, order=link.order)
             for link in endpoint.links.all()]
    guardrails = [link.guardrail.name for link in endpoint.guardrail_links.all()]
    return (["models"] if links != spec.links else []) + (["guardrails"] if guardrails != spec.guardrails else [])


def _write_plain(spec: ObjectSpec, obj: models.Model, changed: set[str] | None, actor: str) -> None:
    _save(obj, spec.fields, actor)


def _write_model(spec: ModelSpec, model: ModelDefinition, changed: set[str] | None, actor: str) -> None:
    model.secret = Secret.objects.get(name=spec.secret) if spec.secret else None
    _save(model, spec.fields, actor)


def _write_endpoint(spec: EndpointSpec, endpoint: Endpoint, changed: set[str] | None, actor: str) -> None:
    """Links and guardrail lists are replaced wholesale, so the endpoint ends up with exactly what the file
    lists; the endpoint row itself is only written when one of its own fields changed."""
    if changed is None or changed - {"models", "guardrails"}:
        _save(endpoint, spec.fields, actor)
    if changed is None or "models" in changed:
        _replace_links(endpoint, spec.links)
    if changed is None or "guardrails" in changed:
        _replace_guardrails(endpoint, spec.guardrails)


def _replace_links(endpoint: Endpoint, links: list[LinkSpec]) -> None:
    endpoint.links.all().delete()
    by_name = ModelDefinition.objects.in_bulk({link.model for link in links}, field_name="name")
    for link in links:
        EndpointModel.objects.create(endpoint=endpoint, model=by_name[link.model], linkage=link.linkage,
                                     weight=link.weight, order=link.order)


def _replace_guardrails(endpoint: Endpoint, names: list[str]) -> None:
    endpoint.guardrail_links.all().delete()
    by_name = Guardrail.objects.in_bulk(names, field_name="name")
    for order, name in enumerate(names):
        EndpointGuardrail.objects.create(endpoint=endpoint, guardrail=by_name[name], order=order)


def _save(obj: models.Model, fields: dict[str, Any], actor: str) -> None:
    """Write one row after the model's own validation, so rules added to a model later apply to the file
    too; a failure aborts the whole transaction."""
    for name, value in fields.items():
        setattr(obj, name, value)
    if isinstance(obj, Audited):
        if obj._state.adding:
            obj.created_by = actor
        obj.updated_by = actor
    try:
        obj.full_clean()
    except ValidationError as exc:
        raise _config_error(f"{obj._meta.verbose_name} '{obj.name}'", exc) from None
    obj.save()


def _config_error(label: str, exc: ValidationError) -> ConfigError:
    """A model's own validation failure, located by object and field, as the file's other problems are."""
    return ConfigError([f"{label}: {field}: {message}" for field, messages in exc.message_dict.items()
                        for message in messages])
