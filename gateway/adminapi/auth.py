"""Who may call the management API: an admin API key as a Bearer token, or a signed-in staff user (session,
with CSRF on writes) holding the admin permission for the object kind. No credentials or an unknown key is
401, as on every gateway route; any other key is 403."""
from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from gateway.adminapi.audit import Caller
from gateway.apikeys import hash_api_key
from gateway.auth import presented_key
from gateway.models import ApiKey

ACTIONS = {"GET": "view", "HEAD": "view", "OPTIONS": "view", "POST": "add", "PUT": "change", "PATCH": "change",
           "DELETE": "delete"}


class AdminKeyAuthentication(authentication.BaseAuthentication):
    """A key read from the database, not the snapshot: this API is off the hot path, and a key created or
    revoked a moment ago takes effect at once."""

    def authenticate(self, request: Request) -> tuple | None:
        raw = presented_key(request.headers, {})
        if not raw:
            return None
        api_key = ApiKey.objects.select_related("owner").filter(key_hash=hash_api_key(raw), is_active=True).first()
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.", code="invalid_api_key")
        return api_key.owner or AnonymousUser(), api_key

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"


class IsGatewayAdmin(permissions.BasePermission):
    def has_permission(self, request: Request, view) -> bool:
        if isinstance(request.auth, ApiKey):
            if not request.auth.is_admin:
                raise exceptions.PermissionDenied(f"API key '{request.auth.name}' is not an admin key.",
                                                  code="admin_key_required")
            return True
        user = request.user
        if user is None or not user.is_authenticated:
            raise exceptions.NotAuthenticated("Send an admin API key, or sign in to the admin.",
                                              code="missing_api_key")
        model = getattr(view, "permission_model", None)
        if not (user.is_active and user.is_staff):
            raise exceptions.PermissionDenied("Only staff users may use the management API.", code="not_staff")
        if model is not None:
            codename = f"{model._meta.app_label}.{ACTIONS.get(request.method, 'change')}_{model._meta.model_name}"
            if not user.has_perm(codename):
                raise exceptions.PermissionDenied(f"This user lacks the permission {codename}.",
                                                  code="permission_required")
        return True


def caller_of(request: Request) -> Caller:
    if isinstance(request.auth, ApiKey):
        return Caller(user=request.auth.owner, key_name=request.auth.name)
    return Caller(user=request.user)
