"""The operator's usage views: the admin dashboard page (staff, with charts) and `GET
/gateway/admin/v1/usage` (staff session or an admin-scoped key, JSON). Both read the same selector,
gateway/usage/stats.py.

The JSON route is served by Django's standard handler (see gateway_project/asgi.py), not the lean
gateway handler, because a staff session needs the session and authentication middleware.
"""
from __future__ import annotations

from datetime import datetime

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse

from gateway import auth, display
from gateway.usage.charts import Line, bar_chart, budget_bar, line_chart
from gateway.envelopes import family_for, render_error
from gateway.errors import BadRequest, GatewayError, PermissionDenied, Unauthenticated
from gateway.config.snapshot import store
from gateway.usage.stats import RANGES, usage_summary
from gateway.db import db_task

PERMISSION = "gateway.view_usagerecord"


def _label(iso: str, range_key: str) -> str:
    moment = datetime.fromisoformat(iso)
    return f"{moment:%H:%M}" if range_key == "24h" else f"{moment:%m-%d %H:%M}" if range_key == "7d" else f"{moment:%m-%d}"


def charts(summary: dict) -> list:
    series, key = summary["series"], summary["range"]
    labels = [_label(point["start"], key) for point in series]

    def values(name: str, cast=float) -> list:
        return [cast(point[name]) if point[name] is not None else None for point in series]

    ok = [point["requests"] - point["errors"] for point in series]
    return [
        bar_chart("Requests", [Line("succeeded", ok), Line("failed", values("errors"))], labels),
        line_chart("Tokens", [Line("input", values("input_tokens")), Line("output", values("output_tokens")),
                              Line("cached input", values("cached_tokens"))], labels),
        line_chart("Cost (USD)", [Line("cost", values("cost_usd"))], labels, unit=" $"),
        line_chart("Error rate", [Line("errors / requests", [p["error_rate"] * 100 if p["requests"] else None
                                                             for p in series])], labels, unit="%"),
        line_chart("Latency (ms)", [Line("p50", values("latency_p50_ms")), Line("p95", values("latency_p95_ms"))],
                   labels, unit=" ms"),
    ]


def _range(request: HttpRequest) -> str:
    choice = request.GET.get("range", "24h")
    if choice not in RANGES:
        raise BadRequest(f"'range' must be one of {', '.join(RANGES)}.", param="range", code="invalid_range")
    return choice


def dashboard_view(request: HttpRequest) -> HttpResponse:
    """The admin page; wrapped in `admin.site.admin_view` in the URLconf (staff login required)."""
    if not request.user.has_perm(PERMISSION):
        return HttpResponse("You may not view usage.", status=403)
    try:
        choice = _range(request)
    except BadRequest:
        choice = "24h"
    summary = usage_summary(choice)
    for budget in summary["budgets"]:
        amount = float(budget["amount_usd"]) or 1.0
        budget["bar"] = budget_bar(budget["fraction"], float(budget["reserved_usd"]) / amount)
        budget["limit"] = display.usd(budget["amount_usd"])
        budget["window_length"] = display.window(budget["window"]["value"], budget["window"]["unit"])
    context = {
        **admin.site.each_context(request), "title": "Usage dashboard", "summary": summary, "charts": charts(summary),
        "ranges": list(RANGES), "tables": [("Endpoint", summary["by_endpoint"]), ("Model", summary["by_model"]),
                                           ("API key", summary["by_key"])],
    }
    return TemplateResponse(request, "admin/gateway/dashboard.html", context)


async def _caller_may_read(request: HttpRequest) -> None:
    raw = auth.presented_key(request.headers, request.GET)
    if raw:
        key = auth.authenticate(await store.get(), raw)
        if not key.is_admin:
            raise PermissionDenied(f"API key '{key.name}' is not an admin key.", code="admin_key_required")
        return
    user = await request.auser()
    if not user.is_authenticated:
        raise Unauthenticated("Send an admin API key, or sign in to the admin.", code="missing_api_key")
    if not (user.is_active and user.is_staff and await user.ahas_perm(PERMISSION)):
        raise PermissionDenied("This user may not read usage.", code="usage_not_allowed")


async def usage_api(request: HttpRequest) -> HttpResponse:
    """GET /gateway/admin/v1/usage?range=24h|7d|30d — the dashboard's aggregates as JSON."""
    try:
        if request.method != "GET":
            raise GatewayError("Only GET is allowed here.", status=405, error_type="invalid_request_error")
        await _caller_may_read(request)
        summary = await db_task(usage_summary)(_range(request))
    except GatewayError as exc:
        return JsonResponse(render_error(exc, family_for(request.path)), status=exc.status)
    return JsonResponse(summary)
