"""Client API keys: creating one (the only moment the raw key exists) and the hash every lookup uses."""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from gateway.models import ApiKey, Endpoint

KEY_PREFIX = "gw-"
DISPLAY_PREFIX_LENGTH = 10


def hash_api_key(raw: str) -> str:
    """The stored and looked-up form of a client key: unsalted SHA-256, hex.

    A slow, salted password hash would buy nothing here: keys carry 256 random bits, so neither brute
    force nor precomputed tables can reverse the digest. A deterministic fast hash lets the hot path find
    a key with one dictionary lookup instead of verifying a slow hash on every request.
    """
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def api_key_create(*, name: str, endpoints: Iterable[Endpoint] = (), owner: AbstractBaseUser | None = None,
                   is_admin: bool = False) -> tuple[ApiKey, str]:
    """Create a key and return it with its raw value, which the caller must show once and then forget:
    only the hash and a short display prefix are stored. `endpoints` empty means every endpoint."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(name=name, owner=owner, is_admin=is_admin, key_hash=hash_api_key(raw),
                     prefix=raw[:DISPLAY_PREFIX_LENGTH])
    api_key.full_clean()
    api_key.save()
    api_key.endpoints.set(endpoints)
    return api_key, raw
