"""Routes of the management API, /gateway/admin/v1/ (served by Django's standard handler, see
gateway_project/asgi.py): objects by name, providers and the model catalog, the OpenAPI schema and its
reference page; any other path there is a JSON 404."""
from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from gateway.adminapi import views

router = SimpleRouter(trailing_slash=False)
for resource, viewset in views.CONFIG_VIEWSETS.items():
    router.register(resource, viewset, basename=f"admin-api-{resource}")
router.register("api-keys", views.ApiKeyViewSet, basename="admin-api-api-keys")

urlpatterns = [
    *router.urls,
    path("providers", views.ProvidersView.as_view({"get": "list"}), name="admin-api-providers"),
    path("catalog/models", views.CatalogModelsView.as_view({"get": "list"}), name="admin-api-catalog-models"),
    path("openapi.json", views.SchemaView.as_view(), name="admin-api-schema"),
    path("docs", views.ReferenceView.as_view(url_name="admin-api-schema"), name="admin-api-docs"),
    re_path(r"^.*$", views.not_found, name="admin-api-not-found"),
]
