"""The request log in the admin: newest first, filtered by endpoint, key, model, status and time, paginated
without counting the table; the detail page shows the request, the answer, the attempts, the guardrail
results and the usage record. Filter choices come from the configuration, never from a scan of the log."""
from __future__ import annotations

import json
from functools import cached_property

from django.contrib import admin
from django.core.paginator import Paginator
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from gateway.models import ApiKey, Endpoint, ModelDefinition, RequestLog, UsageRecord


class NoCountPaginator(Paginator):
    """Pages of a table too large to count: the count is the rows before this page plus what one bounded
    query finds from here (at most a page and one row, to know whether a next page exists)."""

    def __init__(self, object_list, per_page, page_number: int, **kwargs) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self.page_number = max(page_number, 1)

    @cached_property
    def count(self) -> int:
        start = (self.page_number - 1) * self.per_page
        return start + len(self.object_list[start:start + self.per_page + 1])


class ConfiguredValueFilter(admin.SimpleListFilter):
    """Choices from a configuration table (small), matched exactly against the log's column (indexed)."""

    model = None
    field = ""

    def lookups(self, request, model_admin):
        names = self.model.objects.order_by("name").values_list("name", flat=True)
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset


class EndpointFilter(ConfiguredValueFilter):
    title, parameter_name, model, field = "endpoint", "endpoint_name", Endpoint, "endpoint_name"


class KeyFilter(ConfiguredValueFilter):
    title, parameter_name, model, field = "key", "api_key_name", ApiKey, "api_key_name"


class ModelFilter(ConfiguredValueFilter):
    title, parameter_name, model, field = "model", "model_name", ModelDefinition, "model_name"


class StatusFilter(admin.SimpleListFilter):
    title, parameter_name = "status", "status"
    CLASSES = {"2xx": (200, 299), "4xx": (400, 499), "5xx": (500, 599)}

    def lookups(self, request, model_admin):
        return [(name, name) for name in self.CLASSES]

    def queryset(self, request, queryset):
        bounds = self.CLASSES.get(self.value() or "")
        return queryset.filter(status_code__range=bounds) if bounds else queryset


def pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


@admin.register(RequestLog)
class RequestLogAdmin(admin.ModelAdmin):
    """Read-only: entries are written by the gateway itself."""

    list_display = ("created_at", "endpoint_name", "model_name", "api_key_name", "status_code", "streaming",
                    "latency_ms", "truncated", "request_id")
    list_filter = (EndpointFilter, KeyFilter, ModelFilter, StatusFilter, ("created_at", admin.DateFieldListFilter))
    show_full_result_count = False
    list_per_page = 50
    fields = ("created_at", "request_id", "endpoint_name", "model_name", "api_key_name", "route", "streaming",
              "status_code", "error_type", "latency_ms", "truncated", "request", "answer", "attempts_table",
              "guardrail_table", "usage_record")
    readonly_fields = fields

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        try:
            page = int(request.GET.get("p", 1))
        except ValueError:
            page = 1
        return NoCountPaginator(queryset, per_page, page, orphans=orphans,
                                allow_empty_first_page=allow_empty_first_page)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RequestLog | None = None) -> bool:
        return False

    @admin.display(description="request")
    def request(self, obj: RequestLog) -> str:
        return format_html('<pre class="request-body">{}</pre>', pretty(obj.request_body))

    @admin.display(description="answer")
    def answer(self, obj: RequestLog) -> str:
        return format_html('<pre class="response-body">{}</pre>', pretty(obj.response_body))

    @admin.display(description="attempts")
    def attempts_table(self, obj: RequestLog) -> str:
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                                ((a.get("model"), a.get("provider"), a.get("status") or "ok", a.get("error") or "")
                                 for a in obj.attempts))
        return format_html("<table><tr><th>model</th><th>provider</th><th>status</th><th>error</th></tr>{}</table>",
                           rows) if obj.attempts else "-"

    @admin.display(description="guardrails")
    def guardrail_table(self, obj: RequestLog) -> str:
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                                ((g.get("name"), g.get("stage"), g.get("action"), g.get("latency_ms"))
                                 for g in obj.guardrails))
        return format_html("<table><tr><th>guardrail</th><th>stage</th><th>action</th><th>ms</th></tr>{}</table>",
                           rows) if obj.guardrails else "-"

    @admin.display(description="usage record")
    def usage_record(self, obj: RequestLog) -> str:
        record = UsageRecord.objects.filter(request_id=obj.request_id, endpoint_name=obj.endpoint_name).first()
        if record is None:
            return "-"
        return format_html(
            "{} input, {} output, {} cached tokens; cost {} USD; {} ms ({} ms overhead); {} attempt(s)",
            record.input_tokens, record.output_tokens, record.cached_tokens,
            record.cost_usd if record.cost_usd is not None else "unknown", round(record.latency_ms, 1),
            round(record.overhead_ms, 2), record.attempts)
