"""The admin site: the index lists the gateway's pages in the order an operator sets a gateway up, guardrails
(their own app) included, and links the usage dashboard."""
from __future__ import annotations

from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest

# Secrets before the models that use them, models before the endpoints that link them, and so on.
SETUP_ORDER = (
    "gateway.secret", "gateway.modeldefinition", "gateway.endpoint", "gateway.apikey", "gateway.budgetpolicy",
    "guardrails.guardrail", "gateway.usagerecord", "gateway.requestlog", "gateway.priceentry",
)
GATEWAY_APPS = ("gateway", "guardrails")


def _setup_rank(model: dict) -> tuple[int, str]:
    meta = model["model"]._meta
    key = f"{meta.app_label}.{meta.model_name}"
    return (SETUP_ORDER.index(key) if key in SETUP_ORDER else len(SETUP_ORDER), model["name"])


class GatewayAdminSite(AdminSite):
    site_header = "AI Gateway administration"
    site_title = "AI Gateway"
    index_title = "Configuration"
    index_template = "admin/gateway/index.html"

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        """Django sorts apps and models by name; here the gateway's apps come first as one section, in setup
        order, and the rest (users and groups) follow as Django lists them."""
        apps = super().get_app_list(request, app_label)
        ours = [app for app in apps if app["app_label"] in GATEWAY_APPS]
        others = [app for app in apps if app["app_label"] not in GATEWAY_APPS]
        if not ours:
            return apps
        section = next((app for app in ours if app["app_label"] == "gateway"), ours[0])
        if app_label is None:
            section = {**section, "models": [model for app in ours for model in app["models"]]}
            ours = [section]
        for app in ours:
            app["models"] = sorted(app["models"], key=_setup_rank)
        return [*ours, *others]


class GatewayAdminConfig(AdminConfig):
    """Installed instead of `django.contrib.admin`, so `admin.site` is the gateway's site."""

    default_site = "gateway.admin_site.GatewayAdminSite"
