"""Top-level URLs: the staff admin and the gateway's client routes."""
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("gateway.urls")),
]
