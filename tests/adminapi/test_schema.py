"""The management API describes itself: a valid OpenAPI 3 schema of every operation, and a reference page
whose scripts and styles come from this server, not a CDN."""
from __future__ import annotations

import re

import pytest
from django.test import Client
from drf_spectacular.validation import validate_schema

from gateway.apikeys import api_key_create

pytestmark = pytest.mark.django_db

RESOURCES = ("secrets", "models", "endpoints", "guardrails", "budgets", "rate-limits", "api-keys")


@pytest.fixture
def admin() -> Client:
    _, raw = api_key_create(name="docs", is_admin=True)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_the_schema_is_valid_openapi_3_covering_every_resource(admin):
    schema = admin.get("/gateway/admin/v1/openapi.json").json()
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    for resource in RESOURCES:
        assert set(schema["paths"][f"/gateway/admin/v1/{resource}"]) == {"get", "post"}
        assert set(schema["paths"][f"/gateway/admin/v1/{resource}/{{name}}"]) == {"get", "put", "patch", "delete"}
    assert not any(path.startswith("/gateway/mlflow") for path in schema["paths"])
    secret = schema["components"]["schemas"]["SecretRequest"]["properties"]
    assert "values" in secret and "values" not in schema["components"]["schemas"]["Secret"]["properties"]


def test_the_reference_page_loads_nothing_from_another_host(admin):
    page = admin.get("/gateway/admin/v1/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.content.decode())
    assert assets and all(not re.match(r"(https?:)?//", asset) for asset in assets)
    assert any("swagger-ui" in asset for asset in assets)
    for asset in assets:
        assert admin.get(asset).status_code == 200, asset
