"""Admin additions for accounting: warnings on models whose price is unknown, each budget's current window
as a bar with its alert mark, and the loaded price entries. gateway/admin.py mixes these in."""
from __future__ import annotations

import time
from decimal import Decimal

from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from gateway import display
from gateway.config import prices
from gateway.budgets.policies import manager
from gateway.usage.charts import budget_bar
from gateway.models import BudgetPolicy, ModelDefinition, PriceEntry
from gateway.config.snapshot import BudgetSpec


_cached: tuple[float, prices.PriceTable] | None = None


def _table() -> prices.PriceTable:
    """The price table, read at most every few seconds however many rows a page shows."""
    global _cached
    if _cached is None or time.monotonic() - _cached[0] > 5:
        _cached = (time.monotonic(), prices.current_table())
    return _cached[1]


class PriceWarningAdmin:
    """For ModelDefinitionAdmin: a price column, and a warning wherever a model's cost would be unknown."""

    def get_list_display(self, request: HttpRequest):
        return (*super().get_list_display(request), "price")

    @admin.display(description="price (in / out / cached, per M tokens)")
    def price(self, obj: ModelDefinition) -> str:
        found = prices.prices_for(obj, _table())
        if found.input is None or found.output is None:
            return mark_safe('<strong style="color:#ba2121">unknown: cost not recorded</strong>')
        source = "own" if prices.sets_text_prices(obj) else "table"
        cached = f"{found.cached_input:g}" if found.cached_input is not None else "="
        return f"${found.input:g} / ${found.output:g} / {cached} ({source})"

    def changelist_view(self, request: HttpRequest, extra_context=None):
        table = _table()
        unknown = [m.name for m in ModelDefinition.objects.all() if prices.price_problem(m, table)]
        if unknown and request.method == "GET":
            messages.warning(request, f"No price is known for {', '.join(unknown)}: their requests are recorded with "
                                      "cost unknown and budgets do not count them. Set prices on the model, or load "
                                      "them with `manage.py load_prices`.")
        return super().changelist_view(request, extra_context)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        model = self.get_object(request, object_id)
        if model is not None and request.method == "GET":
            problem = prices.price_problem(model, _table())
            if problem:
                messages.warning(request, problem)
        return super().change_view(request, object_id, form_url, extra_context)


class BudgetStatusAdmin:
    """For BudgetPolicyAdmin: the current window's spend as a bar, and a mark when the alert fired."""

    def get_list_display(self, request: HttpRequest):
        return (*super().get_list_display(request), "current_window")

    @admin.display(description="current window")
    def current_window(self, obj: BudgetPolicy) -> str:
        spec = BudgetSpec(obj.id, obj.name, obj.scope, obj.target, obj.amount_usd, obj.window_unit, obj.window_value,
                          obj.action, obj.webhook_url)
        status = manager.status(spec)
        amount = float(obj.amount_usd) or 1.0
        alerted = (obj.last_alert_window_start is not None
                   and obj.last_alert_window_start.isoformat() == status["window"]["start"])
        mark = mark_safe(' <strong style="color:#ba2121">limit reached</strong>') if alerted else ""
        spent = Decimal(status["spent_usd"]).quantize(Decimal("0.000001"))
        return format_html("{} {} of {}{}", budget_bar(status["fraction"], float(status["reserved_usd"]) / amount),
                           display.usd(spent), display.usd(obj.amount_usd), mark)


@admin.register(PriceEntry)
class PriceEntryAdmin(admin.ModelAdmin):
    """Prices loaded with `manage.py load_prices`; they override the built-in table."""

    list_display = ("provider", "model_name", "input_cost_per_million", "output_cost_per_million",
                    "cached_input_cost_per_million", "audio_input_cost_per_million", "audio_output_cost_per_million",
                    "updated_at")
    list_filter = ("provider",)
    search_fields = ("model_name",)
