"""The native (passthrough) routes' request life: the vendor's own body goes to a provider that speaks the
same API with only `model` and credentials replaced; the answer comes back untouched, and streams are
relayed as they arrive while usage and the terminator are read on the side. An endpoint with a model that
does not speak the API takes the translation branch instead (gateway/translated.py).

Governance is the same as on the unified routes: the same RequestContext, routing (split, fallback,
retries), accounting in pipeline.finish().
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from django.conf import settings

from gateway import pipeline, translated
from gateway.budgets import policies as budgets
from gateway.errors import BadRequest
from gateway.context import RequestContext
from gateway.envelopes import stream_error_event
from gateway.pipeline import admit, close_quietly, ended_by, finish
from gateway.routing.router import router
from gateway.routing.watchdog import StallWatchdog
from gateway.relay_watchers import WATCHERS
from gateway.requestlogs.capture import RawCapture
from guardrails import engine as guardrails
from guardrails.sse import SSEGuard
from providers.base import ProviderError, clock
from providers.wire import Api, JSONArrayFrames, SSEFrames, SSEParser

# Request headers a vendor SDK sends that change the provider's behaviour; nothing else is forwarded
# (never the client's gateway key, cookies or forwarding headers).
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta", "openai-beta", "traceparent", "tracestate",
                     "idempotency-key")


def forwarded_headers(headers) -> dict[str, str]:
    return {name: headers[name] for name in FORWARDED_HEADERS if name in headers}


def refuse_unaccountable(api: str, body: dict) -> None:
    """Refuse what the gateway could not account for, whichever branch would serve it."""
    if api == Api.OPENAI_RESPONSES and body.get("background"):
        # The answer comes later from the provider's store, with usage the gateway never sees: it would be
        # spend outside every budget.
        raise BadRequest("Background responses ('background': true) are not available through the gateway, "
                         "which could not account for their usage.", param="background", code="unsupported_parameter")


async def forward(ctx: RequestContext, api: str, body: dict, headers: dict[str, str]) -> dict | list:
    """Non-streaming call; returns the provider's JSON answer (or, on the translation branch, the answer
    translated into the API's shape)."""
    refuse_unaccountable(api, body)
    if translated.serves(ctx, api):
        return await translated.forward(ctx, api, body)
    return await pipeline.call(
        ctx, api, body, lambda adapter, stats: adapter.passthrough(api, body, headers, stats, stream=False),
        lambda response: response.body)


async def forward_stream(ctx: RequestContext, api: str, body: dict, headers: dict[str, str],
                         watcher_api: str, json_array: bool = False) -> AsyncIterator[bytes]:
    """Open the upstream stream (fallback is possible until its first bytes) and return the relay.
    `json_array` re-frames Gemini's SSE events as the JSON-array stream its non-SSE clients expect (from
    the same parse, not a second one)."""
    refuse_unaccountable(api, body)
    if translated.serves(ctx, api):
        return await translated.forward_stream(ctx, api, body, json_array)

    async def open_upstream(adapter, stats) -> AsyncIterator[bytes]:
        response = await adapter.passthrough(api, body, headers, stats, stream=True)
        async for chunk in response.stream:
            yield chunk

    ctx.body = body
    if ctx.endpoint.log_payloads:
        ctx.capture = RawCapture(settings.GATEWAY_REQUEST_LOG_MAX_BYTES)
    try:
        await guardrails.run_before(ctx, body, api)
        await admit(ctx, api, body)
        frames = JSONArrayFrames() if json_array else SSEFrames()
        guard = guardrails.sse_guard(ctx, api, frames)
        first, rest, _ = await router.open_stream(ctx.endpoint, open_upstream, ctx.outcome)
    except (Exception, asyncio.CancelledError) as exc:  # a client gone before the first bytes is recorded too
        ctx.fail(exc)
        finish(ctx)
        raise
    return _relay(ctx, watcher_api, first, rest, guard, frames)


async def _relay(ctx: RequestContext, api: str, first: bytes, rest: StallWatchdog[bytes], guard: SSEGuard | None,
                 frames: SSEFrames | JSONArrayFrames) -> AsyncIterator[bytes]:
    """Relay the upstream stream, parsing each chunk once: the watcher reads the events on the side, and
    after-stage guardrails (`guard`) may rewrite them, and end the stream with the API's error event instead
    of its terminator. Without guardrails, whole SSE events go out as they came; `frames` may re-frame them.
    An event that is not JSON ends the stream with the API's error event after the events before it."""
    parser, watcher = SSEParser(), WATCHERS[api]()
    try:
        chunk = first
        while True:
            events = parser.feed(chunk)
            readable = watcher.observe(events)
            if ctx.first_byte_at is None:
                ctx.first_byte_at = clock()
            out = guard.feed(events[:readable]) if guard else frames.relay(events[:readable])
            if out:
                if ctx.capture is not None:
                    ctx.capture.feed(out)
                yield out
            if readable < len(events):
                error = ProviderError(502, "The provider sent a stream event that is not a JSON object.",
                                      retryable=True, error_type="malformed_stream")
                rest.fail(error)
                raise error
            try:
                chunk = await rest.__anext__()
            except StopAsyncIteration:
                break
        # An event the stream's end cut short is dropped, as an SSE client would (its data is unreadable).
        events = parser.close()
        events = events[:watcher.observe(events)]
        out = guard.feed(events) + await guard.finish() if guard else frames.relay(events)
        if out:
            if ctx.capture is not None:
                ctx.capture.feed(out)
            yield out
        if not watcher.complete and not watcher.errored:
            error = ProviderError(502, "The provider ended the stream before its terminator.", retryable=True,
                                  error_type="incomplete_stream")
            ctx.fail(error)
            rest.fail(error)
            yield frames.event(*stream_error_event(error, api))
        elif watcher.errored:
            ctx.status, ctx.error_type = 502, "upstream_stream_error"
            rest.fail(ProviderError(502, "The provider reported an error mid-stream.", retryable=True))
    except (asyncio.CancelledError, GeneratorExit):
        ctx.status, ctx.error_type = 499, "client_closed"
        raise
    except Exception as exc:  # noqa: BLE001 - guardrails' GatewayErrors, provider errors, and the unexpected
        ended_by(ctx, exc)
        yield frames.event(*stream_error_event(exc, api))
    finally:
        ctx.tokens, ctx.relayed_chars = watcher.tokens, watcher.text_chars
        await close_quietly(rest)
        finish(ctx)
        if ctx.status < 400:
            await budgets.settled(ctx)
    closing = frames.end()
    if closing:
        yield closing
