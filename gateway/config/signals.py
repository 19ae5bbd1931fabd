"""Any saved or deleted configuration row bumps the config version, whoever wrote it (admin, services,
shell), so running servers pick the change up."""
from __future__ import annotations

from django.db.models.signals import m2m_changed, post_delete, post_save

from gateway.config.version import bump_config_version
from gateway.models import ApiKey, BudgetPolicy, Endpoint, EndpointModel, ModelDefinition, RateLimit, Secret
from guardrails.models import EndpointGuardrail, Guardrail

WATCHED = (Secret, ModelDefinition, Endpoint, EndpointModel, ApiKey, BudgetPolicy, RateLimit, Guardrail,
           EndpointGuardrail)


def _changed(sender, **kwargs) -> None:
    if kwargs.get("raw"):
        return
    bump_config_version()


for _model in WATCHED:
    post_save.connect(_changed, sender=_model, dispatch_uid=f"cfg-save-{_model.__name__}")
    post_delete.connect(_changed, sender=_model, dispatch_uid=f"cfg-delete-{_model.__name__}")
m2m_changed.connect(_changed, sender=ApiKey.endpoints.through, dispatch_uid="cfg-m2m-apikey-endpoints")
