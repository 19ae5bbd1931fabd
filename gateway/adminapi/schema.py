"""What drf-spectacular needs to describe the management API alone: its paths only, and the admin key as a
bearer security scheme (a staff session works too, from a browser)."""
from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension

PREFIX = "/gateway/admin/v1/"


def management_paths_only(endpoints: list, **kwargs) -> list:
    """Preprocessing hook: the client routes have their vendors' own references."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith(PREFIX)]


class AdminKeyScheme(OpenApiAuthenticationExtension):
    target_class = "gateway.adminapi.auth.AdminKeyAuthentication"
    name = "adminKey"

    def get_security_definition(self, auto_schema) -> dict:
        return {"type": "http", "scheme": "bearer",
                "description": "An admin API key (`manage.py create_api_key NAME --admin`)."}
