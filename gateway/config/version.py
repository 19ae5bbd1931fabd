"""The configuration version counter every server process watches (see gateway/config/snapshot.py)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import transaction
from django.db.models import F

from gateway.models import ConfigVersion

# Inside `one_config_version()`: whether a bump was asked for (the bump itself waits for the block's end).
_batch: ContextVar[list[bool] | None] = ContextVar("config_version_batch", default=None)


def _bump() -> None:
    if not ConfigVersion.objects.filter(pk=1).update(version=F("version") + 1):
        ConfigVersion.objects.get_or_create(pk=1, defaults={"version": 1})


def bump_config_version() -> None:
    """Tell every process that configuration changed. Runs after the surrounding transaction commits so
    a process never rebuilds from data that is not visible yet."""
    pending = _batch.get()
    if pending is not None:
        pending[0] = True
        return
    transaction.on_commit(_bump)


@contextmanager
def one_config_version() -> Iterator[None]:
    """One change made of several rows (an endpoint and its links, a key and its endpoints) becomes one
    new version: every bump asked for inside the block is made once, when the block ends without error."""
    if _batch.get() is not None:
        yield
        return
    pending = [False]
    token = _batch.set(pending)
    try:
        yield
    finally:
        _batch.reset(token)
    if pending[0]:
        transaction.on_commit(_bump)


def current_config_version() -> int:
    return ConfigVersion.objects.filter(pk=1).values_list("version", flat=True).first() or 0
