"""DRF serializers describing the API's objects for the OpenAPI schema, built from the same `Schema`s the
`gateway_apply` file is read with (gateway/config/file.py), so a field added there appears here too. They
describe; validation is the file's (gateway/adminapi/objects.py), so its messages are the ones answered."""
from __future__ import annotations

from django.db import models
from rest_framework import serializers

from gateway.adminapi.keys import API_KEY
from gateway.config.file import BUDGET, ENDPOINT, GUARDRAIL, LINK, MODEL, RATE_LIMIT, SECRET
from gateway.config.prices import CAPABILITIES
from gateway.config.schema import Schema


class ErrorDetailSerializer(serializers.Serializer):
    message = serializers.CharField()
    type = serializers.CharField()
    param = serializers.CharField(allow_null=True)
    code = serializers.CharField(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


def _model_field(model: type[models.Model], field_name: str, required: bool) -> serializers.Field:
    """The DRF field ModelSerializer would build for this model field (choices, lengths, nullability)."""
    builder = type("Builder", (serializers.ModelSerializer,), {
        "Meta": type("Meta", (), {"model": model, "fields": "__all__"}),
    })()
    field_class, kwargs = builder.build_standard_field(field_name, model._meta.get_field(field_name))
    kwargs.pop("validators", None)
    kwargs.pop("read_only", None)
    kwargs["required"] = required
    kwargs.pop("default", None)
    if issubclass(field_class, serializers.DecimalField):
        field_class, kwargs = serializers.FloatField, {k: v for k, v in kwargs.items()
                                                       if k in ("required", "allow_null", "help_text", "label")}
    if issubclass(field_class, serializers.JSONField):
        field_class = serializers.DictField
        kwargs = {k: v for k, v in kwargs.items() if k in ("required", "help_text", "label")}
    return field_class(**kwargs)


def schema_serializer(name: str, schema: Schema, extra: dict[str, serializers.Field]) -> type[serializers.Serializer]:
    """A serializer whose keys are the file's keys: dotted ones (`window.unit`) become nested objects."""
    fields: dict[str, serializers.Field] = {}
    groups: dict[str, dict[str, serializers.Field]] = {}
    for key, field_name in schema.fields.items():
        head, _, tail = key.partition(".")
        field = _model_field(schema.model, field_name, key in schema.required)
        if tail:
            groups.setdefault(head, {})[tail] = field
        else:
            fields[key] = field
    for head, members in groups.items():
        required = any(key.startswith(f"{head}.") for key in schema.required)
        group = type(f"{name}{head.title().replace('_', '')}", (serializers.Serializer,), members)
        fields[head] = group(required=required)
    return type(name, (serializers.Serializer,), {**fields, **extra})


Link = schema_serializer("EndpointModelLink", LINK, {
    "model": serializers.CharField(help_text="A model definition's name."),
})

Secret = schema_serializer("Secret", SECRET, {
    "values": serializers.DictField(write_only=True, required=False, help_text=(
        "The credentials, e.g. {\"api_key\": \"...\"}. Write-only; on update, omit to keep the stored values.")),
    "masked_values": serializers.DictField(child=serializers.CharField(), read_only=True),
})
Model = schema_serializer("Model", MODEL, {
    "secret": serializers.CharField(allow_null=True, required=False, help_text="A secret's name."),
})
Guardrail = schema_serializer("Guardrail", GUARDRAIL, {})
Endpoint = schema_serializer("Endpoint", ENDPOINT, {
    "models": Link(many=True),
    "guardrails": serializers.ListField(child=serializers.CharField(), required=False,
                                        help_text="Guardrail names, in the order they run."),
})
Budget = schema_serializer("Budget", BUDGET, {})
RateLimit = schema_serializer("RateLimit", RATE_LIMIT, {})
ApiKey = schema_serializer("ApiKey", API_KEY, {
    "endpoints": serializers.ListField(child=serializers.CharField(), required=False,
                                       help_text="Endpoint names this key may call; empty: every endpoint."),
    "prefix": serializers.CharField(read_only=True, help_text="The key's first characters, to recognise it."),
    "owner": serializers.CharField(required=False, allow_null=True, help_text="The owning user's username."),
    "created_at": serializers.DateTimeField(read_only=True),
    "last_used_at": serializers.DateTimeField(read_only=True, allow_null=True),
})


class CreatedApiKey(ApiKey):
    key = serializers.CharField(read_only=True, help_text="The raw key: answered once, at creation, never again.")


BY_RESOURCE = {"secrets": Secret, "models": Model, "guardrails": Guardrail, "endpoints": Endpoint,
               "budgets": Budget, "rate-limits": RateLimit, "api-keys": ApiKey}


class ProviderFieldSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()
    default = serializers.JSONField(allow_null=True)
    required = serializers.BooleanField()
    description = serializers.CharField(allow_blank=True)
    secret = serializers.BooleanField()


class CredentialFieldSerializer(serializers.Serializer):
    name = serializers.CharField()
    secret = serializers.BooleanField()


class CredentialModeSerializer(serializers.Serializer):
    name = serializers.CharField()
    requires = serializers.ListField(child=serializers.CharField())
    optional = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField(allow_blank=True)


class ProviderSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    credential_fields = CredentialFieldSerializer(many=True)
    credential_modes = CredentialModeSerializer(many=True)
    auth_config_fields = ProviderFieldSerializer(many=True)
    operations = serializers.ListField(child=serializers.CharField(),
                                       help_text="chat, chat_stream, embeddings and the native APIs spoken.")
    routes = serializers.ListField(child=serializers.CharField(), help_text="Gateway routes that reach it.")
    passthrough_routes = serializers.ListField(
        child=serializers.CharField(),
        help_text="Native routes relayed to it untouched; its other native routes are translated through unified chat.")


class CatalogModelSerializer(serializers.Serializer):
    provider = serializers.CharField()
    model_name = serializers.CharField()
    input_cost_per_million = serializers.FloatField(allow_null=True)
    output_cost_per_million = serializers.FloatField(allow_null=True)
    cached_input_cost_per_million = serializers.FloatField(allow_null=True)
    audio_input_cost_per_million = serializers.FloatField(allow_null=True)
    audio_output_cost_per_million = serializers.FloatField(allow_null=True)
    context_window = serializers.IntegerField(allow_null=True)
    max_output_tokens = serializers.IntegerField(allow_null=True)
    capabilities = serializers.ListField(child=serializers.ChoiceField(choices=CAPABILITIES))
