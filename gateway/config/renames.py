"""Renaming objects that budget policies and rate limits refer to by name.

Their targets are names (operators write them in YAML and read them in the admin), so a rename must carry
them along; otherwise the budget or limit would silently stop applying to the renamed endpoint or key.
"""
from __future__ import annotations

from django.db import models, transaction

from gateway.models import ApiKey, BudgetPolicy, BudgetScope, Endpoint, RateLimit

SCOPES = {Endpoint: BudgetScope.ENDPOINT, ApiKey: BudgetScope.API_KEY}


@transaction.atomic
def save_keeping_budget_targets(obj: models.Model, save) -> int:
    """Run `save()` and re-point budget policies and rate limits from the object's old name to its new one;
    returns how many budget policies followed."""
    scope = SCOPES[type(obj)]
    old = type(obj).objects.filter(pk=obj.pk).values_list("name", flat=True).first() if obj.pk else None
    save()
    if old is None or old == obj.name:
        return 0
    RateLimit.objects.filter(scope=scope, target=old).update(target=obj.name)
    return BudgetPolicy.objects.filter(scope=scope, target=old).update(target=obj.name)
