"""The playground's page (staff, in the admin) and its chat stream. The stream runs the ordinary chat pipeline
on the current snapshot with the staff user as the caller (no API key), so guardrails, budgets and usage
records apply as for any client; after the answer it sends one `event: gateway` with what the request was:
the model that served it, attempts, tokens, cost and the gateway's overhead.

Both are served by Django's standard handler (sessions, CSRF), under /admin/."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

import orjson
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from gateway import pipeline, validation
from gateway.config.snapshot import ClientKey, store
from gateway.context import RequestContext
from gateway.envelopes import openai_error
from gateway.errors import BadRequest, GatewayError, NotFound, PermissionDenied
from gateway.models import Endpoint
from gateway.playground.snippets import snippets
from gateway.usage.records import cost_of
from gateway.views.base import SSE_HEADERS
from providers.registry import adapter_class

PERMISSION = "gateway.view_endpoint"
ROUTE = "playground/chat"


def _native_apis(endpoint: Endpoint) -> set[str]:
    """The native APIs every model linked to the endpoint speaks (a snippet for another API would fail)."""
    links = list(endpoint.links.select_related("model"))
    spoken = [adapter_class(link.model.provider).passthrough_apis_for(link.model.provider) for link in links]
    return set.intersection(*map(set, spoken)) if spoken else set()


def playground_page(request: HttpRequest, pk: int) -> HttpResponse:
    """GET /admin/gateway/endpoint/<pk>/try/ (wrapped in `admin.site.admin_view`: staff login required)."""
    if not request.user.has_perm(PERMISSION):
        return HttpResponse("You may not view endpoints.", status=403)
    endpoint = get_object_or_404(Endpoint, pk=pk)
    native = _native_apis(endpoint)
    context = {
        **admin.site.each_context(request), "title": f"Try {endpoint.name}", "endpoint": endpoint,
        "opts": Endpoint._meta, "original": endpoint,
        "stream_url": reverse("gateway-playground-stream", args=[endpoint.pk]),
        "snippets": [(snippet, snippet.api is None or snippet.api in native)
                     for snippet in snippets(request.build_absolute_uri("/"), endpoint.name)],
    }
    return TemplateResponse(request, "admin/gateway/endpoint/playground.html", context)


async def _caller(request: HttpRequest) -> ClientKey:
    user = await request.auser()
    if not (user.is_authenticated and user.is_active and user.is_staff):
        raise PermissionDenied("Sign in to the admin as a staff user.", code="not_staff")
    if not await user.ahas_perm(PERMISSION):
        raise PermissionDenied("This user may not view endpoints.", code="permission_required")
    return ClientKey(id=0, name="", allowed_endpoints=None, user=user.get_username())


async def _endpoint(pk: int):
    """The endpoint as the snapshot serves it; one saved a moment ago (before this process polled the change)
    is picked up with a rebuild, which only this admin path may afford."""
    name = await Endpoint.objects.filter(pk=pk).values_list("name", flat=True).afirst()
    if name is None:
        raise NotFound("No such endpoint.", code="endpoint_not_found")
    if name not in (await store.get()).endpoints:
        await store.check()
    endpoint = (await store.get()).endpoints.get(name)
    if endpoint is None:
        raise NotFound(f"Endpoint '{name}' is not served (does it link a primary model?).", code="endpoint_not_found")
    return endpoint


def _body(request: HttpRequest) -> dict:
    try:
        body = orjson.loads(request.body or b"")
    except orjson.JSONDecodeError:
        raise BadRequest("The body must be JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.", code="invalid_json")
    validation.check_chat(body)
    return {**body, "stream": True, "stream_options": {"include_usage": True}}


def _summary(ctx: RequestContext) -> bytes:
    target = ctx.outcome.link.target if ctx.outcome.link is not None else None
    cost = cost_of(ctx.tokens, target.prices) if target is not None else None
    summary = {
        "request_id": ctx.request_id, "status": ctx.status, "model": target.name if target else None,
        "provider": target.provider if target else None, "attempts": len(ctx.outcome.attempts),
        "input_tokens": ctx.tokens.input_tokens, "output_tokens": ctx.tokens.output_tokens,
        "cost_usd": str(cost) if cost is not None else None, "overhead_ms": round(ctx.timings()[1], 2),
    }
    return b"event: gateway\ndata: " + orjson.dumps(summary) + b"\n\n"


async def _with_summary(ctx: RequestContext, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async with aclosing(stream):
        async for chunk in stream:
            yield chunk
    yield _summary(ctx)


async def playground_stream(request: HttpRequest, pk: int) -> HttpResponse:
    """POST /admin/gateway/endpoint/<pk>/try/chat: `{"messages": [...]}` in, the chat stream out (SSE)."""
    ctx = None
    try:
        if request.method != "POST":
            raise GatewayError("Only POST is allowed here.", status=405, error_type="invalid_request_error")
        key = await _caller(request)
        endpoint = await _endpoint(pk)
        ctx = RequestContext(ROUTE, endpoint, key, streaming=True)
        stream = await pipeline.chat_stream(ctx, _body(request))
    except GatewayError as exc:
        if ctx is not None:
            pipeline.account_refusal(ctx, exc, route=ROUTE, endpoint_name=ctx.endpoint.name, key_name="")
        return JsonResponse(openai_error(exc), status=exc.status)
    response = StreamingHttpResponse(_with_summary(ctx, stream), content_type="text/event-stream")
    for header, value in {**SSE_HEADERS, **ctx.response_headers()}.items():
        response[header] = value
    return response
