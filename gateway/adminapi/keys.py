"""API keys through the management API. Keys have no `gateway_apply` section, but their items are read by the
same item reader (gateway/config/schema.py: strict types, model field rules, unknown keys) and created by
the same service as `create_api_key` and the admin (gateway/apikeys.py)."""
from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from gateway.adminapi.audit import Caller, record_change
from gateway.adminapi.objects import Conflict, api_key_users, problem_error
from gateway.apikeys import api_key_create
from gateway.config.schema import Problems, Schema, read_item
from gateway.config.version import one_config_version
from gateway.errors import NotFound
from gateway.models import ApiKey, Endpoint

API_KEY = Schema(ApiKey, {"name": "name", "is_admin": "is_admin", "is_active": "is_active"},
                 extra=frozenset({"endpoints", "owner"}), required=frozenset({"name"}))
READ_ONLY = frozenset({"prefix", "created_at", "last_used_at"})


def api_key_item(api_key: ApiKey) -> dict[str, Any]:
    return {
        "name": api_key.name, "prefix": api_key.prefix, "endpoints": [e.name for e in api_key.endpoints.all()],
        "is_admin": api_key.is_admin, "is_active": api_key.is_active,
        "owner": api_key.owner.get_username() if api_key.owner_id else None,
        "created_at": api_key.created_at, "last_used_at": api_key.last_used_at,
    }


def api_keys() -> Any:
    return ApiKey.objects.select_related("owner").prefetch_related("endpoints")


def api_key_get(name: str) -> ApiKey:
    api_key = api_keys().filter(name=name).first()
    if api_key is None:
        raise NotFound(f"No API key named '{name}'.", param="name", code="not_found")
    return api_key


def _read(body: dict) -> tuple[dict, list[Endpoint]]:
    problems = Problems()
    item = {key: value for key, value in body.items() if key not in READ_ONLY}
    fields = read_item(item, "api_key", API_KEY, problems)
    endpoints = _endpoints(item.get("endpoints"), problems)
    fields["owner"] = _owner(item.get("owner"), problems)
    if problems:
        raise problem_error(list(problems), "api_key")
    return fields, endpoints


def _owner(username: Any, problems: Problems) -> AbstractBaseUser | None:
    """The key's owner by username, as `create_api_key --owner` takes it; null for none."""
    if username is None:
        return None
    if not isinstance(username, str):
        problems.add("api_key.owner", "must be a username or null")
        return None
    owner = get_user_model()._default_manager.filter(**{get_user_model().USERNAME_FIELD: username}).first()
    if owner is None:
        problems.add("api_key.owner", f"unknown user '{username}'")
    return owner


def _endpoints(raw: Any, problems: Problems) -> list[Endpoint]:
    """Endpoint names; an empty list lets the key use every endpoint."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(name, str) for name in raw):
        problems.add("api_key.endpoints", "must be a list of endpoint names")
        return []
    found = Endpoint.objects.in_bulk(set(raw), field_name="name")
    for index, name in enumerate(raw):
        if name not in found:
            problems.add(f"api_key.endpoints[{index}]", f"unknown endpoint '{name}'")
    return list(found.values())


def _refuse_own_key(api_key: ApiKey, caller: Caller, what: str) -> None:
    """A key cannot lock its own automation out by accident; another admin key or the admin can."""
    if caller.key_name == api_key.name:
        raise Conflict(f"An API key cannot {what} itself; use another admin key or the admin.", param="name",
                       code="own_key")


def api_key_write(*, body: dict, caller: Caller, name: str | None = None) -> tuple[ApiKey, str | None]:
    """Create (`name` None; returns the raw key, which exists only now) or replace the named key."""
    if name is not None:
        body = {"name": name, **body}
    fields, endpoints = _read(body)
    with transaction.atomic(), one_config_version():
        if name is None:
            if ApiKey.objects.filter(name=fields["name"]).exists():
                raise Conflict(f"An API key named '{fields['name']}' already exists.", param="name",
                               code="name_taken")
            try:
                api_key, raw = api_key_create(name=fields["name"], endpoints=endpoints,
                                              is_admin=fields["is_admin"], owner=fields["owner"])
            except (IntegrityError, ValidationError):
                # The name was taken between the check above and the write.
                raise Conflict(f"An API key named '{fields['name']}' already exists.", param="name",
                               code="name_taken") from None
            if not fields["is_active"]:
                api_key.is_active = False
                api_key.save(update_fields=["is_active"])
            record_change(caller, "create", api_key)
            return api_key_get(api_key.name), raw
        api_key = api_key_get(name)
        if not (fields["is_admin"] and fields["is_active"]):
            _refuse_own_key(api_key, caller, "revoke or demote")
        if fields["name"] != name:
            raise problem_error(["api_key.name: The name cannot change: create a new key instead."], "api_key")
        changed = [key for key in ("is_admin", "is_active", "owner") if getattr(api_key, key) != fields[key]]
        if {e.pk for e in api_key.endpoints.all()} != {e.pk for e in endpoints}:
            changed.append("endpoints")
            api_key.endpoints.set(endpoints)
        if changed:
            for key in ("is_admin", "is_active", "owner"):
                setattr(api_key, key, fields[key])
            api_key.save(update_fields=["is_admin", "is_active", "owner"])
            record_change(caller, "update", api_key, tuple(changed))
    return api_key_get(name), None


def api_key_delete(*, name: str, caller: Caller) -> None:
    api_key = api_key_get(name)
    _refuse_own_key(api_key, caller, "delete")
    in_use = api_key_users(api_key)
    if in_use:
        raise Conflict(f"The API key '{name}' is still used by {'; '.join(in_use)}.", param="name", code="in_use")
    with transaction.atomic(), one_config_version():
        record_change(caller, "delete", api_key)
        api_key.delete()
