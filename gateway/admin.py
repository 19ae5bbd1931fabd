"""Staff admin for the gateway's configuration and usage records.

Secrets and API keys are written only through their services (gateway/config/secrets.py, gateway/apikeys.py),
so encryption and hashing happen exactly as they do for `gateway_apply` and the command line. Neither a
secret value nor a key hash is ever rendered.
"""
from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from gateway import display
from gateway.config import crypto
from gateway.config.catalog_admin import CatalogSuggestionsAdmin
from gateway.usage.admin import BudgetStatusAdmin, PriceWarningAdmin
from gateway.apikeys import api_key_create
from gateway.models import (
    ApiKey, BudgetPolicy, Endpoint, EndpointModel, Linkage, ModelDefinition, Provider, RateLimit, Secret, UsageRecord,
    validate_endpoint_links,
)
from gateway.config.renames import save_keeping_budget_targets
from gateway.requestlogs import admin as requestlog_admin  # noqa: F401  (registers the request log's admin)
from gateway.config.secrets import secret_create, secret_update, secret_values
from guardrails.admin import EndpointGuardrailInline

AUDIT_FIELDS = ("created_at", "created_by", "updated_at", "updated_by")
AUDIT_FIELDSET = ("Audit", {"fields": AUDIT_FIELDS, "classes": ("collapse",)})


class AuditedAdmin(admin.ModelAdmin):
    """Records which staff user created and last changed a row."""

    readonly_fields = AUDIT_FIELDS

    def save_model(self, request: HttpRequest, obj, form: forms.ModelForm, change: bool) -> None:
        actor = request.user.get_username()
        if not change:
            obj.created_by = actor
        obj.updated_by = actor
        super().save_model(request, obj, form, change)


# --- Secrets ------------------------------------------------------------------------------------------

AUTH_CONFIG_KEYS = (
    ("openai", "api_base, organization, project"),
    ("azure", "api_base (https://<resource>.openai.azure.com), api_version, deployment_name"),
    ("anthropic", "api_base, version (sent as the anthropic-version header)"),
    ("gemini", "api_base"),
    ("bedrock", "aws_region_name, auth_mode: api_key, access_keys (aws_access_key_id, aws_secret_access_key, "
                "optional aws_session_token among the values) or default_chain (no values: environment, shared "
                "profile aws_profile_name, web identity, container or instance metadata); aws_role_arn, "
                "aws_role_session_name, aws_external_id to assume a role"),
    ("vertex_ai", "vertex_project, vertex_location, auth_mode: service_account (vertex_credentials among the "
                  "values) or adc (Application Default Credentials, no values)"),
    ("cohere", "api_base (default https://api.cohere.com/v2)"),
    ("databricks", "api_base (the workspace URL); values: api_key (a personal access token) or client_id and "
                   "client_secret (a service principal, OAuth M2M)"),
    ("azure_ai", "api_base (https://<resource>.services.ai.azure.com), api_version; values: api_key or "
                 "azure_ad_token"),
    ("ollama, vllm, openai_compatible", "api_base (where the server listens, including /v1)"),
    ("every provider", 'timeout: seconds, or {"connect": seconds, "read": seconds, "total": seconds}'),
)
AUTH_CONFIG_HELP = format_html(
    "Non-secret settings as a JSON object, e.g. <code>{}</code>. Keys each provider reads:<ul>{}</ul>",
    '{"api_base": "https://api.openai.com/v1"}',
    format_html_join("", "<li><b>{}</b>: {}</li>", AUTH_CONFIG_KEYS),
)
VALUES_HELP = (
    "Paste the API key, or a JSON object when the provider needs several values, e.g. Bedrock "
    '<code>{"aws_access_key_id": "...", "aws_secret_access_key": "..."}</code> or Vertex AI '
    '<code>{"vertex_credentials": {...service account...}}</code>. Stored encrypted; never shown again. '
    "The built-in fake provider needs none."
)


class WriteOnlyTextarea(forms.Textarea):
    """Renders empty whatever it holds, so no secret (stored or just submitted) ever reaches the page."""

    def format_value(self, value: object) -> None:
        return None


def _short_column(field: str, label: str):
    """A changelist column showing `field` under a short heading, still sortable: long verbose names made the
    usage list scroll sideways."""

    @admin.display(description=label, ordering=field)
    def column(self, obj: models.Model) -> object:
        return getattr(obj, field)

    return column


class SecretForm(forms.ModelForm):
    values = forms.CharField(
        widget=WriteOnlyTextarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
        label="Secret values",
        help_text=VALUES_HELP,
        required=False,
    )

    class Meta:
        model = Secret
        fields = ("name", "provider", "auth_config", "description")
        widgets = {"auth_config": forms.Textarea(attrs={"rows": 4, "spellcheck": "false"})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["auth_config"].help_text = AUTH_CONFIG_HELP
        if self.instance.pk is not None:
            self.fields["values"].help_text = (
                "Leave empty to keep the stored values; anything entered replaces all of them. " + VALUES_HELP
            )

    def clean_values(self) -> dict | None:
        text = self.cleaned_data["values"].strip()
        if not text:
            return None
        if not text.startswith("{"):
            return {"api_key": text}
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            # The message names the position only, never the content.
            raise ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None
        if not isinstance(values, dict) or not values:
            raise ValidationError('Enter the key itself, or a JSON object of named values like {"api_key": "..."}.')
        return values

    def clean_auth_config(self) -> dict:
        config = self.cleaned_data["auth_config"] or {}
        if not isinstance(config, dict):
            raise ValidationError('Enter a JSON object, e.g. {"api_base": "https://api.openai.com/v1"}.')
        return config

    def clean(self) -> dict:
        """Refuse, with a form error instead of a server error, a save that cannot be encrypted."""
        cleaned = super().clean()
        if self.instance.pk is None and cleaned.get("values") is None:
            # The built-in fake provider has no credentials: it is stored with no values at all.
            if cleaned.get("provider") != Provider.FAKE:
                self.add_error("values", "This field is required (only the fake provider needs no values).")
                return cleaned
            cleaned["values"] = {}
        renamed = self.instance.pk is not None and "name" in self.changed_data
        if cleaned.get("values") is None and not renamed:
            return cleaned
        try:
            crypto.keyring_from_settings()
            if cleaned.get("values") is None:
                # The name is bound into the ciphertext: a rename re-encrypts the stored values.
                secret_values(Secret.objects.get(pk=self.instance.pk))
        except crypto.SecretsUnavailable as exc:
            raise ValidationError(str(exc)) from None
        except crypto.SecretDecryptionError as exc:
            raise ValidationError(f"The stored values cannot be re-encrypted under the new name: {exc} "
                                  "Enter the values again to replace them.") from None
        return cleaned


@admin.register(Secret)
class SecretAdmin(AuditedAdmin):
    form = SecretForm
    list_display = ("name", "provider", "masked", "kek_version", "updated_at")
    list_filter = ("provider", "kek_version")
    search_fields = ("name", "description")
    readonly_fields = ("masked", "kek_version", *AUDIT_FIELDS)

    def get_fieldsets(self, request: HttpRequest, obj: Secret | None = None) -> tuple:
        stored = ("masked",) if obj is not None else ()
        return (
            (None, {"fields": ("name", "provider", *stored, "values", "auth_config", "description")}),
            ("Audit", {"fields": (*AUDIT_FIELDS, "kek_version"), "classes": ("collapse",)}),
        )

    @admin.display(description="stored values")
    def masked(self, obj: Secret) -> str:
        return format_html_join(", ", "{}: <code>{}</code>", sorted(obj.masked_value.items())) or "-"

    def save_model(self, request: HttpRequest, obj: Secret, form: SecretForm, change: bool) -> None:
        actor = request.user.get_username()
        fields = {name: getattr(obj, name) for name in ("name", "provider", "auth_config", "description")}
        if change:
            secret_update(secret=obj, values=form.cleaned_data["values"], actor=actor, **fields)
            return
        created = secret_create(values=form.cleaned_data["values"], actor=actor, **fields)
        obj.pk = created.pk
        obj.refresh_from_db()


# --- Models and endpoints -------------------------------------------------------------------------------


@admin.register(ModelDefinition)
class ModelDefinitionAdmin(CatalogSuggestionsAdmin, PriceWarningAdmin, AuditedAdmin):
    list_display = ("name", "provider", "model_name", "secret", "input_cost_per_million", "output_cost_per_million")
    list_filter = ("provider",)
    search_fields = ("name", "model_name", "secret__name")
    list_select_related = ("secret",)
    fieldsets = (
        (None, {"fields": ("name", "provider", "model_name", "secret")}),
        ("Prices in USD per million tokens (empty: built-in price table)", {
            "fields": ("input_cost_per_million", "output_cost_per_million", "cached_input_cost_per_million"),
        }),
        ("Realtime audio prices in USD per million tokens (empty: built-in price table; none: cost unknown)", {
            "fields": ("audio_input_cost_per_million", "audio_output_cost_per_million"),
        }),
        AUDIT_FIELDSET,
    )


class EndpointLinksFormSet(BaseInlineFormSet):
    """Checks the endpoint's links as they will be after saving, with the rule the model layer owns."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        links = [
            (form.cleaned_data["linkage"], form.cleaned_data["weight"])
            for form in self.forms
            if form.cleaned_data and not self._should_delete_form(form)
        ]
        if problems := validate_endpoint_links(links):
            raise ValidationError(problems)


class EndpointModelInline(admin.TabularInline):
    model = EndpointModel
    formset = EndpointLinksFormSet
    fields = ("model", "linkage", "weight", "order")
    extra = 1
    verbose_name = "linked model"
    verbose_name_plural = "linked models (primaries share traffic by weight; fallbacks run by order)"


@admin.register(Endpoint)
class EndpointAdmin(AuditedAdmin):
    inlines = (EndpointModelInline, EndpointGuardrailInline)

    def save_model(self, request: HttpRequest, obj: Endpoint, form: forms.ModelForm, change: bool) -> None:
        save_keeping_budget_targets(obj, lambda: super(EndpointAdmin, self).save_model(request, obj, form, change))

    list_display = ("name", "routing_strategy", "linked_models", "usage_tracking", "log_payloads", "request_log",
                    "updated_at")
    list_filter = ("routing_strategy", "usage_tracking", "log_payloads")
    search_fields = ("name", "description", "links__model__name")
    fieldsets = (
        (None, {"fields": ("name", "description")}),
        ("Routing", {"fields": ("routing_strategy", "fallback_strategy", "fallback_max_attempts", "usage_tracking")}),
        ("Observability", {"fields": ("log_payloads",)}),
        ("Resilience (empty: built-in defaults)", {
            "fields": ("retries", "total_timeout_seconds", "stream_idle_timeout_seconds", "breaker_threshold",
                       "breaker_cooldown_seconds"),
            "classes": ("collapse",),
        }),
        AUDIT_FIELDSET,
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Endpoint]:
        return super().get_queryset(request).prefetch_related("links__model")

    @admin.display(description="request log")
    def request_log(self, obj: Endpoint) -> str:
        url = reverse("admin:gateway_requestlog_changelist")
        return format_html('<a href="{}?endpoint_name={}">requests</a>', url, obj.name)

    @admin.display(description="models")
    def linked_models(self, obj: Endpoint) -> str:
        links = sorted(obj.links.all(), key=lambda link: (link.linkage != Linkage.PRIMARY, link.order, link.pk))
        return ", ".join(f"{link.model.name} ({link.linkage})" for link in links) or "-"


# --- Budgets, keys, usage ----------------------------------------------------------------------------------


@admin.register(BudgetPolicy)
class BudgetPolicyAdmin(BudgetStatusAdmin, AuditedAdmin):
    list_display = ("name", "scope", "target", "amount", "window", "action", "enabled")
    list_filter = ("scope", "action", "window_unit", "enabled")
    search_fields = ("name", "target")
    readonly_fields = (*AUDIT_FIELDS, "last_alert_window_start")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description="amount", ordering="amount_usd")
    def amount(self, obj: BudgetPolicy) -> str:
        return display.usd(obj.amount_usd)

    @admin.display(description="window")
    def window(self, obj: BudgetPolicy) -> str:
        return display.window(obj.window_value, obj.window_unit)


@admin.register(RateLimit)
class RateLimitAdmin(AuditedAdmin):
    list_display = ("name", "scope", "target", "requests_per_minute", "tokens_per_minute", "max_concurrent", "enabled")
    list_filter = ("scope", "enabled")
    search_fields = ("name", "target")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "key_prefix", "owner", "endpoint_names", "is_active", "is_admin", "created_at",
                    "last_used_at")
    list_filter = ("is_active", "is_admin")
    search_fields = ("name", "prefix", "owner__username")
    list_select_related = ("owner",)
    filter_horizontal = ("endpoints",)
    readonly_fields = ("key_prefix", "created_at", "last_used_at")

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("name", "owner", "endpoints", "is_admin")
        return ("name", "key_prefix", "owner", "endpoints", "is_active", "is_admin", "created_at", "last_used_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        return super().get_queryset(request).prefetch_related("endpoints")

    @admin.display(description="key")
    def key_prefix(self, obj: ApiKey) -> str:
        return f"{obj.prefix}…"

    @admin.display(description="endpoints")
    def endpoint_names(self, obj: ApiKey) -> str:
        return ", ".join(endpoint.name for endpoint in obj.endpoints.all()) or "all"

    def save_model(self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm, change: bool) -> None:
        if change:
            save_keeping_budget_targets(obj, lambda: super(ApiKeyAdmin, self).save_model(request, obj, form, change))
            return
        created, raw = api_key_create(name=obj.name, endpoints=form.cleaned_data["endpoints"], owner=obj.owner,
                                      is_admin=obj.is_admin)
        obj.pk = created.pk
        obj.refresh_from_db()
        self.message_user(request, format_html(
            "The new key is <code>{}</code>. Copy it now: it is stored only as a hash and cannot be shown again.",
            raw,
        ), messages.SUCCESS)


USAGE_DETAIL_FIELDS = (
    "created_at", "request_id", "endpoint_name", "model_name", "provider", "api_key_name", "route", "streaming",
    "status_code", "error_type", "attempts", "input_tokens", "output_tokens", "cached_tokens", "usage", "cost",
    "latency", "time_to_first_byte", "overhead", "guardrails",
)


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    """Read-only: rows are written by the gateway itself. The list fits a 1,400 px screen: tokens, cost and
    latency are never scrolled out of view."""

    list_display = ("created", "endpoint_column", "model_column", "key_column", "route_and_mode", "status_column",
                    "tokens", "cost", "latency", "overhead")
    list_display_links = ("created",)
    list_filter = ("provider", "streaming", "status_code", "route")
    search_fields = ("request_id", "endpoint_name", "model_name", "api_key_name")
    date_hierarchy = "created_at"
    fields = USAGE_DETAIL_FIELDS
    readonly_fields = USAGE_DETAIL_FIELDS
    # Counting a large usage table on every page view is the slow part of a changelist.
    show_full_result_count = False

    @admin.display(description="created (UTC)", ordering="created_at")
    def created(self, obj: UsageRecord) -> str:
        return f"{obj.created_at:%Y-%m-%d %H:%M:%S}"

    endpoint_column = _short_column("endpoint_name", "endpoint")
    model_column = _short_column("model_name", "model")
    key_column = _short_column("api_key_name", "key")
    status_column = _short_column("status_code", "status")

    @admin.display(description="route", ordering="route")
    def route_and_mode(self, obj: UsageRecord) -> str:
        return f"{obj.route} (stream)" if obj.streaming else obj.route

    @admin.display(description="tokens in / out")
    def tokens(self, obj: UsageRecord) -> str:
        estimated = " (estimated)" if obj.usage_estimated else ""
        return f"{obj.input_tokens:,} / {obj.output_tokens:,}{estimated}"

    @admin.display(description="usage")
    def usage(self, obj: UsageRecord) -> str:
        if obj.usage_estimated:
            return ("estimated: the provider never reported usage (the stream was abandoned or cut), so the tokens "
                    "are estimated")
        return "reported by the provider"

    @admin.display(description="cost", ordering="cost_usd")
    def cost(self, obj: UsageRecord) -> str:
        return display.usd(obj.cost_usd)

    @admin.display(description="latency", ordering="latency_ms")
    def latency(self, obj: UsageRecord) -> str:
        return display.ms(obj.latency_ms)

    @admin.display(description="time to first byte")
    def time_to_first_byte(self, obj: UsageRecord) -> str:
        return display.ms(obj.ttfb_ms)

    @admin.display(description="overhead", ordering="overhead_ms")
    def overhead(self, obj: UsageRecord) -> str:
        return display.ms(obj.overhead_ms)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: UsageRecord | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: UsageRecord | None = None) -> bool:
        return False
