"""Top-level URLs: the staff admin (with the usage dashboard and the endpoint playground), a home page at
`/`, and the gateway's client routes."""
from django.contrib import admin
from django.urls import include, path

from gateway.playground.views import playground_page, playground_stream
from gateway.usage.dashboard import dashboard_view
from gateway.views.home import favicon, home

urlpatterns = [
    path("admin/gateway/usage-dashboard/", admin.site.admin_view(dashboard_view), name="gateway-usage-dashboard"),
    path("admin/gateway/endpoint/<int:pk>/try/", admin.site.admin_view(playground_page), name="gateway-playground"),
    path("admin/gateway/endpoint/<int:pk>/try/chat", playground_stream, name="gateway-playground-stream"),
    path("admin/", admin.site.urls),
    path("", home, name="home"),
    path("favicon.ico", favicon),
    path("", include("gateway.urls")),
]
