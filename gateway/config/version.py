"""The configuration version counter every server process watches (see gateway/config/snapshot.py)."""
from __future__ import annotations

from django.db import connection, transaction
from django.db.models import F

from gateway.models import ConfigVersion


def _bump() -> None:
    if not ConfigVersion.objects.filter(pk=1).update(version=F("version") + 1):
        ConfigVersion.objects.get_or_create(pk=1, defaults={"version": 1})


def bump_config_version() -> None:
    """Tell every process that configuration changed. Runs after the surrounding transaction commits so
    a process never rebuilds from data that is not visible yet, and once per transaction however many rows
    it wrote: one change from the API or `gateway_apply` is one new version."""
    if any(callback is _bump for _, callback, _ in connection.run_on_commit):
        return
    transaction.on_commit(_bump)


def current_config_version() -> int:
    return ConfigVersion.objects.filter(pk=1).values_list("version", flat=True).first() or 0
