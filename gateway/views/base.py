"""A small async base view on DRF's Request and Response.

DRF 3.18 has no async views; `adrf` runs authentication and permissions in a worker thread per request.
This base keeps everything on the event loop: our authentication is a hash and a dict lookup against the
cached snapshot, so it needs no thread. Errors become the route family's native envelope here, in one place.
"""
from __future__ import annotations

import inspect
import logging

import orjson
from django.http import HttpResponseBase, StreamingHttpResponse
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from gateway import auth, limits, pipeline
from gateway.envelopes import family_for, render_error
from gateway.context import RequestContext
from gateway.errors import BadRequest, GatewayError, NotFound
from gateway.config.snapshot import ClientKey, EndpointConfig, Snapshot, store
from gateway.views.renderers import OrjsonRenderer

logger = logging.getLogger(__name__)


class JsonOnly(BaseContentNegotiation):
    """Every gateway answer is JSON (or SSE, which bypasses rendering); skip Accept-header negotiation."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class GatewayView(APIView):
    """Subclasses implement `async def post(self, request, ...)` and may raise GatewayError."""

    authentication_classes: list = []
    permission_classes: list = []
    renderer_classes = [OrjsonRenderer]
    parser_classes: list = []
    content_negotiation_class = JsonOnly

    route = ""

    async def dispatch(self, request, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        drf_request = self.initialize_request(request, *args, **kwargs)
        self.request = drf_request
        self.headers = {}
        self.ctx: RequestContext | None = None
        self.endpoint_name, self.key = "", None
        try:
            method = request.method.lower()
            handler = getattr(self, method, None) if method in self.http_method_names else None
            # APIView's own handlers (OPTIONS) are synchronous; only our async ones serve.
            if handler is None or not inspect.iscoroutinefunction(handler):
                raise GatewayError(f"Method {request.method} is not allowed here.", status=405,
                                   error_type="invalid_request_error")
            response = await handler(drf_request, *args, **kwargs)
        except GatewayError as exc:
            response = self.error_response(exc)
            self.account(exc)
        except Exception:  # noqa: BLE001 - never a traceback to the client
            logger.exception("unhandled error on %s", request.path)
            error = GatewayError("The gateway hit an internal error.", status=500)
            response = self.error_response(error)
            self.account(error)
        if isinstance(response, Response):
            response = self.finalize_response(drf_request, response, *args, **kwargs)
            response.render()
        return response

    def error_response(self, exc: GatewayError) -> HttpResponseBase:
        response = Response(render_error(exc, family_for(self.request.path)), status=exc.status)
        for name, value in exc.headers.items():
            response[name] = value
        return response

    def account(self, exc: GatewayError) -> None:
        """Every refused request leaves a usage record too, whether or not its pipeline had started."""
        key_name = self.key.name if self.key is not None else ""
        pipeline.account_refusal(self.ctx, exc, route=self.route, endpoint_name=self.endpoint_name, key_name=key_name)

    # -- helpers for subclasses -------------------------------------------------------------
    def context(self, route: str, endpoint: EndpointConfig, key: ClientKey) -> RequestContext:
        """The request's context, remembered so a failure before the pipeline accounts for it."""
        self.ctx = RequestContext(route, endpoint, key)
        return self.ctx

    @staticmethod
    def json_body(request) -> dict:
        try:
            body = orjson.loads(request._request.body or b"")
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"Invalid JSON payload: {exc}", code="invalid_json") from None
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object.", code="invalid_json")
        limits.check_body(body)
        return body

    async def authenticate(self, request) -> tuple[Snapshot, ClientKey]:
        snapshot = await store.get()
        raw = auth.presented_key(request._request.headers, request._request.GET)
        self.key = auth.authenticate(snapshot, raw)
        return snapshot, self.key

    def endpoint(self, snapshot: Snapshot, key: ClientKey, name: str) -> EndpointConfig:
        self.endpoint_name = name
        endpoint = snapshot.endpoints.get(name)
        if endpoint is None:
            raise NotFound(f"Endpoint '{name}' does not exist.", param="model", code="endpoint_not_found")
        auth.authorize(key, name)
        return endpoint


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def stream_response(ctx: RequestContext, stream, content_type: str = "text/event-stream") -> StreamingHttpResponse:
    """A streamed answer with the gateway's headers. `gateway_abandon` lets the ASGI handler close the
    stream and account for it as soon as the response is over, including a stream the client left before
    its first step ran (whose own cleanup would never run)."""
    response = StreamingHttpResponse(stream, content_type=content_type)
    for name, value in {**SSE_HEADERS, **ctx.response_headers()}.items():
        response[name] = value
    response.gateway_abandon = lambda: pipeline.abandon(ctx, stream)
    return response
