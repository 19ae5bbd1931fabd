"""Client authentication on /gateway/ routes: every SDK's own key header, resolved against the cached
snapshot (a hash and a dict lookup, no query)."""
from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from gateway.apikeys import hash_api_key
from gateway.errors import PermissionDenied, Unauthenticated
from gateway.config.snapshot import ClientKey, Snapshot


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """`Authorization: Bearer` (OpenAI), `x-api-key` (Anthropic), `x-goog-api-key` or `?key=` (Gemini), or
    `Authorization: Basic` whose password is the key, any user name (MLflow's clients send
    MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD that way)."""
    auth = headers.get("authorization") or headers.get("Authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer" and value:
            return value
        if scheme == "basic" and value:
            return basic_password(value)
    for name in ("x-api-key", "x-goog-api-key"):
        value = headers.get(name)
        if value:
            return value.strip()
    return query.get("key") or None


def basic_password(credentials: str) -> str | None:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _user, colon, password = decoded.partition(":")
    return password if colon and password else None


def authenticate(snapshot: Snapshot, raw_key: str | None) -> ClientKey:
    if not raw_key:
        raise Unauthenticated("Missing API key. Send it as 'Authorization: Bearer <key>', 'x-api-key', 'x-goog-api-key' "
                              "or as the password of 'Authorization: Basic'.",
                              code="missing_api_key")
    key = snapshot.keys_by_hash.get(hash_api_key(raw_key))
    if key is None:
        raise Unauthenticated("Invalid API key.", code="invalid_api_key")
    return key


def authorize(key: ClientKey, endpoint: str) -> None:
    if not key.may_use(endpoint):
        raise PermissionDenied(f"API key '{key.name}' may not use endpoint '{endpoint}'.", code="endpoint_not_allowed")
