"""The native (passthrough) routes' request life: the vendor's own body goes to a provider that speaks the
same API with only `model` and credentials replaced; the answer comes back untouched, and streams are
relayed as they arrive while usage and the terminator are read on the side.

Governance is the same as on the unified routes: the same RequestContext, routing (split, fallback,
retries), accounting in pipeline.finish().
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from django.conf import settings

from gateway import pipeline
from gateway.budgets import policies as budgets
from gateway.errors import BadRequest, GatewayError
from gateway.pipeline import RequestContext, finish
from gateway.routing.router import router
from gateway.routing.watchdog import GuardedStream
from gateway.relay_watchers import WATCHERS, StreamWatcher
from gateway.requestlogs.capture import RawCapture
from guardrails import engine as guardrails
from guardrails.sse import SSEGuard
from providers.base import PASSTHROUGH_APIS, ProviderError

logger = logging.getLogger(__name__)

# Request headers a vendor SDK sends that change the provider's behaviour; nothing else is forwarded
# (never the client's gateway key, cookies or forwarding headers).
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta", "openai-beta", "traceparent", "tracestate",
                     "idempotency-key")


def forwarded_headers(headers) -> dict[str, str]:
    return {name: headers[name] for name in FORWARDED_HEADERS if name in headers}


def check_supported(ctx: RequestContext, api: str, body: dict) -> None:
    """Refuse up front when no model of the endpoint speaks this API, naming what would work instead, and
    refuse what the gateway could not account for."""
    if api == "openai-responses" and body.get("background"):
        # The answer comes later from the provider's store, with usage the gateway never sees: it would be
        # spend outside every budget.
        raise BadRequest("Background responses ('background': true) are not available through the gateway, "
                         "which could not account for their usage.", param="background", code="unsupported_parameter")
    links = ctx.endpoint.primaries + ctx.endpoint.fallbacks
    if any(api in link.adapter.passthrough_apis for link in links):
        return
    providers = sorted({link.target.provider for link in links})
    supported = sorted({PASSTHROUGH_APIS[a] for link in links for a in link.adapter.passthrough_apis})
    routes = ", ".join(supported + ["/gateway/mlflow/v1/chat/completions"])
    raise BadRequest(
        f"Endpoint '{ctx.endpoint.name}' is served by provider {', '.join(repr(p) for p in providers)}, which does not "
        f"speak this API ({PASSTHROUGH_APIS[api]}). Routes that work for this endpoint: {routes}.",
        code="unsupported_api")


async def forward(ctx: RequestContext, api: str, body: dict, headers: dict[str, str]) -> dict | list:
    """Non-streaming call; returns the provider's JSON answer."""
    check_supported(ctx, api, body)
    return await pipeline.call(
        ctx, api, body, lambda adapter, stats: adapter.passthrough(api, body, headers, stats, stream=False),
        lambda response: response.body)


async def forward_stream(ctx: RequestContext, api: str, body: dict, headers: dict[str, str],
                         watcher_api: str, json_array: bool = False) -> AsyncIterator[bytes]:
    """Open the upstream stream (fallback is possible until its first bytes) and return the relay.
    `json_array` re-frames Gemini's SSE events as the JSON-array stream its non-SSE clients expect."""
    check_supported(ctx, api, body)

    async def open_upstream(adapter, stats) -> AsyncIterator[bytes]:
        response = await adapter.passthrough(api, body, headers, stats, stream=True)
        async for chunk in response.stream:
            yield chunk

    ctx.body = body
    if ctx.endpoint.log_payloads:
        ctx.capture = RawCapture(settings.GATEWAY_REQUEST_LOG_MAX_BYTES)
    try:
        await guardrails.run_before(ctx, body, api)
        await budgets.reserve(ctx, api, body)
        guard = guardrails.sse_guard(ctx, api)
        first, rest, _ = await router.open_stream(ctx.endpoint, open_upstream, ctx.outcome)
    except (Exception, asyncio.CancelledError) as exc:  # a client gone before the first bytes is recorded too
        ctx.fail(exc)
        finish(ctx)
        raise
    relay = _relay(ctx, WATCHERS[watcher_api](), first, rest, guard)
    return _as_json_array(relay) if json_array else relay


async def _relay(ctx: RequestContext, watcher: StreamWatcher, first: bytes, rest: GuardedStream[bytes],
                 guard: SSEGuard | None = None) -> AsyncIterator[bytes]:
    """Relay the upstream bytes; after-stage guardrails (`guard`) may rewrite the events, and end the
    stream with the API's error event instead of its terminator."""
    try:
        chunk = first
        while True:
            watcher.feed(chunk)
            if ctx.first_byte_at is None:
                ctx.first_byte_at = time.perf_counter()
            out = guard.feed(chunk) if guard else chunk
            if out:
                if ctx.capture is not None:
                    ctx.capture.feed(out)
                yield out
            try:
                chunk = await rest.__anext__()
            except StopAsyncIteration:
                break
        watcher.finish()
        if guard:
            tail = await guard.finish()
            if ctx.capture is not None:
                ctx.capture.feed(tail)
            yield tail
        if not watcher.complete and not watcher.errored:
            error = ProviderError(502, "The provider ended the stream before its terminator.", retryable=True,
                                  error_type="incomplete_stream")
            ctx.fail(error)
            rest.fail(error)
            yield watcher.error_event(error.status, error.message, error.error_type)
        elif watcher.errored:
            ctx.status, ctx.error_type = 502, "upstream_stream_error"
            rest.fail(ProviderError(502, "The provider reported an error mid-stream.", retryable=True))
    except GatewayError as exc:  # only guardrails raise these mid-stream
        ctx.fail(exc)
        yield guard.error(exc)
    except ProviderError as exc:
        ctx.fail(exc)
        yield watcher.error_event(exc.status, exc.message, exc.error_type)
    except (asyncio.CancelledError, GeneratorExit):
        ctx.status, ctx.error_type = 499, "client_closed"
        raise
    except Exception as exc:  # noqa: BLE001 - the client gets an error event, the log gets the details
        logger.exception("passthrough stream failed for request %s", ctx.request_id)
        ctx.fail(exc)
        yield watcher.error_event(500, "The gateway failed while streaming.", "api_error")
    finally:
        ctx.tokens, ctx.relayed_chars = watcher.tokens, watcher.text_chars
        aclose = getattr(rest, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception:  # noqa: BLE001 - closing an upstream that already failed
                pass
        finish(ctx)


async def _as_json_array(sse: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """SSE `data:` events out as one JSON array streamed element by element."""
    from gateway.relay_watchers import SSEParser

    parser = SSEParser()
    opened = False
    try:
        async for chunk in sse:
            for _event, data in parser.feed(chunk):
                yield (b",\r\n" if opened else b"[") + data.encode()
                opened = True
        for _event, data in parser.close():
            yield (b",\r\n" if opened else b"[") + data.encode()
            opened = True
        yield b"]" if opened else b"[]"
    finally:
        await sse.aclose()
