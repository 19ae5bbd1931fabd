"""Thin viewsets: authenticate, hand the JSON body to a service (gateway/adminapi/objects.py, keys.py), answer
the stored object in its `gateway_apply` shape. One viewset class per resource, built from `KINDS`."""
from __future__ import annotations

from typing import Any

from drf_spectacular.renderers import OpenApiJsonRenderer
from drf_spectacular.utils import (
    OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_serializer, extend_schema_view,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import authentication, parsers, renderers, status, viewsets
from rest_framework import serializers as drf_serializers
from rest_framework.decorators import (
    api_view, authentication_classes, permission_classes, renderer_classes, schema,
)
from rest_framework.request import Request
from rest_framework.response import Response

import gateway.adminapi.schema  # noqa: F401 - registers the admin key's security scheme with drf-spectacular
from gateway.adminapi import keys, serializers
from gateway.adminapi.auth import AdminKeyAuthentication, IsGatewayAdmin, caller_of
from gateway.adminapi.errors import exception_handler
from gateway.adminapi.objects import KINDS, Kind, merged, object_delete, object_write
from gateway.adminapi.providers import provider_descriptions
from gateway.config.catalog import catalog_models
from gateway.envelopes import openai_error
from gateway.errors import BadRequest, NotFound
from gateway.models import ApiKey, PriceEntry, Provider

ERRORS = {code: OpenApiResponse(serializers.ErrorSerializer, description=text) for code, text in (
    (400, "Invalid body; `param` names the first offending field."), (401, "No key, or an unknown key."),
    (403, "Not an admin key, or a staff user without the permission."),
)}
NOT_FOUND = {404: OpenApiResponse(serializers.ErrorSerializer, description="No object with this name.")}
CONFLICT = {409: OpenApiResponse(serializers.ErrorSerializer,
                                 description="Name taken, still in use, or a key revoking itself.")}


class AdminAPIView(viewsets.ViewSet):
    """What every management route shares: who may call, JSON in and out, the error envelope."""

    authentication_classes = [AdminKeyAuthentication, authentication.SessionAuthentication]
    permission_classes = [IsGatewayAdmin]
    parser_classes = [parsers.JSONParser]
    renderer_classes = [renderers.JSONRenderer]
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    permission_model: Any = None

    def get_exception_handler(self):
        return exception_handler

    @staticmethod
    def body(request: Request) -> dict:
        if not isinstance(request.data, dict):
            raise BadRequest("The body must be a JSON object.", code="invalid_body")
        where = _nul_at(request.data, "")
        if where is not None:
            # PostgreSQL stores no NUL character in text or JSON: refuse it here rather than fail there.
            raise BadRequest(f"{where or 'body'}: must not contain NUL characters", param=where or None,
                             code="invalid_value")
        return request.data

    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        if "\x00" in kwargs.get("name", ""):
            raise NotFound("No object with a NUL character in its name.", param="name", code="not_found")


def _nul_at(value: Any, path: str) -> str | None:
    """Where (`auth_config.api_base`, `models[0].model`) a string or key holds a NUL character."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return inner
            found = _nul_at(item, inner)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_at(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _list_of(serializer: type) -> type:
    """`{"data": [...]}`: one object, though the action is a list (spectacular would wrap it in an array)."""
    listing = type(f"{serializer.__name__}List", (drf_serializers.Serializer,), {"data": serializer(many=True)})
    return extend_schema_serializer(many=False)(listing)


def config_viewset(kind: Kind) -> type[AdminAPIView]:
    serializer = serializers.BY_RESOURCE[kind.resource]
    tag = [kind.resource]
    schemas = extend_schema_view(
        list=extend_schema(tags=tag, responses={200: _list_of(serializer), **ERRORS}, parameters=[
            OpenApiParameter(key, enum=values, description=f"Only objects with this {key}.")
            for key, values in kind.filters().items()]),
        create=extend_schema(tags=tag, request=serializer, responses={201: serializer, **ERRORS, **CONFLICT}),
        retrieve=extend_schema(tags=tag, responses={200: serializer, **ERRORS, **NOT_FOUND}),
        update=extend_schema(tags=tag, request=serializer, responses={200: serializer, **ERRORS, **NOT_FOUND}),
        partial_update=extend_schema(tags=tag, request=serializer(partial=True),
                                     responses={200: serializer, **ERRORS, **NOT_FOUND}),
        destroy=extend_schema(tags=tag, responses={204: None, **ERRORS, **NOT_FOUND, **CONFLICT}),
    )

    class ConfigViewSet(AdminAPIView):
        permission_model = kind.schema.model

        def list(self, request: Request) -> Response:
            return Response({"data": kind.listed(dict(request.query_params.items()))})

        def retrieve(self, request: Request, name: str) -> Response:
            return Response(kind.item(kind.get(name)))

        def create(self, request: Request) -> Response:
            obj = object_write(kind, body=self.body(request), caller=caller_of(request))
            return Response(kind.item(obj), status=status.HTTP_201_CREATED)

        def update(self, request: Request, name: str) -> Response:
            obj = object_write(kind, body=self.body(request), caller=caller_of(request), name=name)
            return Response(kind.item(obj))

        def partial_update(self, request: Request, name: str) -> Response:
            body = merged(kind.item(kind.get(name)), self.body(request))
            if kind.resource == "secrets" and "values" not in self.body(request):
                body.pop("values", None)
            obj = object_write(kind, body=body, caller=caller_of(request), name=name)
            return Response(kind.item(obj))

        def destroy(self, request: Request, name: str) -> Response:
            object_delete(kind, name=name, caller=caller_of(request))
            return Response(status=status.HTTP_204_NO_CONTENT)

    ConfigViewSet.__name__ = ConfigViewSet.__qualname__ = f"{serializer.__name__}ViewSet"
    return schemas(ConfigViewSet)


CONFIG_VIEWSETS = {resource: config_viewset(kind) for resource, kind in KINDS.items()}
KEY_TAG = ["api-keys"]


@extend_schema_view(
    list=extend_schema(tags=KEY_TAG, responses={200: _list_of(serializers.ApiKey), **ERRORS}),
    create=extend_schema(tags=KEY_TAG, request=serializers.ApiKey,
                         responses={201: serializers.CreatedApiKey, **ERRORS, **CONFLICT}),
    retrieve=extend_schema(tags=KEY_TAG, responses={200: serializers.ApiKey, **ERRORS, **NOT_FOUND}),
    update=extend_schema(tags=KEY_TAG, request=serializers.ApiKey,
                         responses={200: serializers.ApiKey, **ERRORS, **NOT_FOUND, **CONFLICT}),
    partial_update=extend_schema(tags=KEY_TAG, request=serializers.ApiKey(partial=True),
                                 responses={200: serializers.ApiKey, **ERRORS, **NOT_FOUND, **CONFLICT}),
    destroy=extend_schema(tags=KEY_TAG, responses={204: None, **ERRORS, **NOT_FOUND, **CONFLICT}),
)
class ApiKeyViewSet(AdminAPIView):
    """Client keys: the raw key is answered once, in `key`, when the key is created; afterwards only `prefix`."""

    permission_model = ApiKey

    def list(self, request: Request) -> Response:
        return Response({"data": [keys.api_key_item(api_key) for api_key in keys.api_keys()]})

    def retrieve(self, request: Request, name: str) -> Response:
        return Response(keys.api_key_item(keys.api_key_get(name)))

    def create(self, request: Request) -> Response:
        api_key, raw = keys.api_key_write(body=self.body(request), caller=caller_of(request))
        return Response({**keys.api_key_item(api_key), "key": raw}, status=status.HTTP_201_CREATED)

    def update(self, request: Request, name: str) -> Response:
        api_key, _ = keys.api_key_write(body=self.body(request), caller=caller_of(request), name=name)
        return Response(keys.api_key_item(api_key))

    def partial_update(self, request: Request, name: str) -> Response:
        body = merged(keys.api_key_item(keys.api_key_get(name)), self.body(request))
        api_key, _ = keys.api_key_write(body=body, caller=caller_of(request), name=name)
        return Response(keys.api_key_item(api_key))

    def destroy(self, request: Request, name: str) -> Response:
        keys.api_key_delete(name=name, caller=caller_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProvidersView(AdminAPIView):
    """GET /gateway/admin/v1/providers: what each provider needs and serves."""

    @extend_schema(tags=["catalog"], responses={200: _list_of(serializers.ProviderSerializer), **ERRORS})
    def list(self, request: Request) -> Response:
        return Response({"data": provider_descriptions()})


class CatalogModelsView(AdminAPIView):
    """GET /gateway/admin/v1/catalog/models?provider=…: known models with prices, limits and capabilities."""

    permission_model = PriceEntry

    @extend_schema(tags=["catalog"], parameters=[OpenApiParameter("provider", enum=list(Provider.values),
                                                                  description="Only this provider's models.")],
                   responses={200: _list_of(serializers.CatalogModelSerializer), **ERRORS})
    def list(self, request: Request) -> Response:
        provider = request.query_params.get("provider") or None
        if provider is not None and provider not in Provider.values:
            raise BadRequest(f"provider: must be one of: {', '.join(Provider.values)}", param="provider",
                             code="invalid_value")
        return Response({"data": catalog_models(provider)})


class SchemaView(SpectacularAPIView):
    """GET /gateway/admin/v1/openapi.json: the OpenAPI 3 schema, generated from the serializers above."""

    authentication_classes = AdminAPIView.authentication_classes
    permission_classes = [IsGatewayAdmin]
    renderer_classes = [OpenApiJsonRenderer]

    def get_exception_handler(self):
        return exception_handler


class ReferenceView(SpectacularSwaggerView):
    """GET /gateway/admin/v1/docs: the browsable reference (Swagger UI's files served by this server, no CDN)."""

    authentication_classes = AdminAPIView.authentication_classes
    permission_classes = [IsGatewayAdmin]

    def get_exception_handler(self):
        return exception_handler


@api_view(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
@authentication_classes([])
@permission_classes([])
@renderer_classes([renderers.JSONRenderer])
@schema(None)
def not_found(request: Request) -> Response:
    """Any other path under /gateway/admin/v1/: a JSON 404, as the gateway's other routes answer."""
    return Response(openai_error(NotFound(f"No route {request.path}.", code="unknown_route")),
                    status=status.HTTP_404_NOT_FOUND)
