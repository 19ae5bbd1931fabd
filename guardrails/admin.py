"""Staff admin for guardrails. Which guardrails an endpoint runs, and in what order, is edited on the
endpoint's page through `EndpointGuardrailInline`."""
from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import HttpRequest
from django.utils import timezone

from guardrails.models import EndpointGuardrail, Guardrail
from guardrails.selectors import guardrail_activity

ACTIVITY_WINDOW = timedelta(hours=24)


def _per_name(values: dict[str, int]) -> Case:
    return Case(*(When(name=name, then=Value(count)) for name, count in values.items()),
                default=Value(0), output_field=IntegerField())


@admin.register(Guardrail)
class GuardrailAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "stage", "action", "fail_mode", "blocks_24h", "updated_at")
    list_filter = ("kind", "stage", "action", "fail_mode")
    search_fields = ("name",)
    readonly_fields = ("created_at", "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """The last day's runs and blocks, read from the usage records once per page and attached as
        annotations, so the column is sortable and each row costs nothing more."""
        queryset = super().get_queryset(request)
        if request.resolver_match is None or request.resolver_match.url_name != "guardrails_guardrail_changelist":
            return queryset
        activity = guardrail_activity(since=timezone.now() - ACTIVITY_WINDOW)
        return queryset.annotate(runs_24h=_per_name({n: a.runs for n, a in activity.items()}),
                                 blocks_24h=_per_name({n: a.blocks for n, a in activity.items()}))

    @admin.display(description="blocks (24 h)", ordering="blocks_24h")
    def blocks_24h(self, obj: Guardrail) -> str:
        runs, blocks = getattr(obj, "runs_24h", 0), getattr(obj, "blocks_24h", 0)
        return f"{blocks} of {runs} ({blocks / runs:.1%})" if runs else "no runs"


class EndpointGuardrailInline(admin.TabularInline):
    model = EndpointGuardrail
    fields = ("guardrail", "order")
    extra = 0
    verbose_name = "guardrail"
    verbose_name_plural = "guardrails (run in ascending order)"
