"""Top-level URLs: the staff admin, a home page at `/`, and the gateway's client routes."""
from django.contrib import admin
from django.urls import include, path

from gateway.usage.dashboard import dashboard_view
from gateway.views.home import favicon, home

urlpatterns = [
    path("admin/gateway/usage-dashboard/", admin.site.admin_view(dashboard_view), name="gateway-usage-dashboard"),
    path("admin/", admin.site.urls),
    path("", home, name="home"),
    path("favicon.ico", favicon),
    path("", include("gateway.urls")),
]
