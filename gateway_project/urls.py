"""Top-level URLs: the staff admin and the gateway's client routes."""
from django.contrib import admin
from django.urls import include, path

from gateway.usage.dashboard import dashboard_view

urlpatterns = [
    path("admin/gateway/usage-dashboard/", admin.site.admin_view(dashboard_view), name="gateway-usage-dashboard"),
    path("admin/", admin.site.urls),
    path("", include("gateway.urls")),
]
