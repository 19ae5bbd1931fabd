"""Staff admin for guardrails. Which guardrails an endpoint runs, and in what order, is edited on the
endpoint's page through `EndpointGuardrailInline`."""
from __future__ import annotations

from django.contrib import admin

from guardrails.models import EndpointGuardrail, Guardrail


@admin.register(Guardrail)
class GuardrailAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "stage", "action", "fail_mode", "updated_at")
    list_filter = ("kind", "stage", "action", "fail_mode")
    search_fields = ("name",)
    readonly_fields = ("created_at", "updated_at")


class EndpointGuardrailInline(admin.TabularInline):
    model = EndpointGuardrail
    fields = ("guardrail", "order")
    extra = 0
    verbose_name = "guardrail"
    verbose_name_plural = "guardrails (run in ascending order)"
