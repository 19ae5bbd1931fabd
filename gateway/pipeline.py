"""One gateway request's life, the same for every route: guardrails before, budget reservation, routing to
a provider, guardrails after, then usage and cost recorded (for streams, when the stream ends, however it
ends)."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, TypeVar

import orjson

from gateway.budgets import policies as budgets
from gateway.context import RequestContext
from gateway.ratelimits.limiter import limiter
from gateway.usage import records as usage
from gateway.envelopes import stream_error
from gateway.errors import GatewayError
from gateway.observability import requestid
from gateway.requestlogs import writer as requestlogs
from gateway.requestlogs.capture import ChatAssembler
from gateway.routing.router import router
from guardrails import engine as guardrails
from guardrails.streams import StreamFilter
from providers.base import CallStats, ProviderAdapter, ProviderError, clock
from providers.wire import Api, answer_usage, openai_usage

logger = logging.getLogger(__name__)
T = TypeVar("T")


def finish(ctx: RequestContext) -> usage.UsageEvent | None:
    """Queue the usage record once and return it (None when already accounted or accounting failed); never
    raises into the request."""
    if ctx.finished:
        return None
    ctx.finished = True
    try:
        link = ctx.outcome.link
        target = link.target if link is not None else None
        total_ms, overhead_ms = ctx.timings()
        tokens, estimated = ctx.tokens, False
        if ctx.streaming and ctx.first_byte_at is not None and target is not None:
            tokens, estimated = usage.stream_usage(ctx.tokens, ctx.relayed_chars, lambda: _input_estimate(ctx),
                                                   complete=ctx.status < 400)
        cost = None
        if target is not None:
            cost = ctx.pricing(target.prices) if ctx.pricing else usage.cost_of(tokens, target.prices)
        event = usage.UsageEvent(
            created_at=usage.now(), endpoint_name=ctx.endpoint.name, route=ctx.route, request_id=ctx.request_id,
            model_name=target.name if target else "", provider=target.provider if target else "",
            api_key_name=ctx.key.name, streaming=ctx.streaming, status_code=ctx.status, error_type=ctx.error_type,
            attempts=len(ctx.outcome.attempts), input_tokens=tokens.input_tokens,
            output_tokens=tokens.output_tokens, cached_tokens=tokens.cached_tokens,
            cost_usd=cost, latency_ms=total_ms,
            ttfb_ms=(ctx.first_byte_at - ctx.started) * 1000 if ctx.first_byte_at else None,
            overhead_ms=overhead_ms, guardrails=ctx.guardrail_results, usage_estimated=estimated,
            user_name=ctx.key.user,
        )
        # With tracking off, a request a budget covers is still recorded: budget windows are re-seeded from
        # these rows after a restart, and spend missing there could be spent twice.
        if ctx.endpoint.usage_tracking or ctx.reservation is not None:
            usage.writer.submit(event)
        if ctx.key.id:
            usage.writer.touch(ctx.key.id, event.created_at)
        budgets.settle(ctx, cost)
        limiter.settle(ctx.rate_limit, tokens.input_tokens + tokens.output_tokens)
        scope = requestid.current.get()
        if scope is not None and scope.ctx is ctx:
            scope.event = event
        if ctx.endpoint.log_payloads and not ctx.internal:
            requestlogs.record(ctx, event)
        return event
    except Exception:  # noqa: BLE001 - accounting must never break a response
        logger.exception("could not record usage for request %s", ctx.request_id)
        return None


def account_refusal(ctx: RequestContext | None, exc: GatewayError, *, route: str, endpoint_name: str,
                    key_name: str) -> None:
    """Record a request refused with `exc`: through its context when it had one (a no-op when the pipeline
    already accounted for it), else as a bare record of who asked for what and why it was refused."""
    if ctx is not None:
        if not ctx.finished:
            ctx.fail(exc)
            finish(ctx)
        return
    event = usage.UsageEvent(
        created_at=usage.now(), endpoint_name=endpoint_name, route=route, api_key_name=key_name,
        request_id=requestid.current_id(), status_code=exc.status, error_type=exc.error_type, attempts=0)
    usage.writer.submit(event)
    scope = requestid.current.get()
    if scope is not None and scope.ctx is None:
        scope.event = event


async def abandon(ctx: RequestContext, stream: AsyncIterator[bytes]) -> None:
    """Close a response stream (running its own cleanup, which accounts for it) and account for the request
    if that never happened: the client left before the stream's first step. A no-op for a finished one."""
    await close_quietly(stream)
    if not ctx.finished:
        ctx.status, ctx.error_type = 499, "client_closed"
        finish(ctx)


async def admit(ctx: RequestContext, api: str, body: dict) -> None:
    """Rate limits, then the budget reservation: everything checked before the provider is called."""
    await limiter.admit(ctx, api, body)
    await budgets.reserve(ctx, api, body)


def _input_estimate(ctx: RequestContext) -> int:
    if ctx.reservation is not None:
        return ctx.reservation.estimate.input_tokens
    return budgets.input_tokens_estimate(ctx.body) if ctx.body is not None else 0


async def call(ctx: RequestContext, api: str, body: dict,
               operation: Callable[[ProviderAdapter, CallStats], Awaitable[T]], answer_of: Callable[[T], dict],
               *, check_answer: bool = True) -> dict:
    """The sequence every non-streaming request goes through, unified or native: guardrails on the request,
    budget reservation, routing, usage read from the answer, guardrails on the answer; accounted for in
    finish() however it ends. `api` names the wire format of `body` and of the answer."""
    ctx.body = body
    try:
        await guardrails.run_before(ctx, body, api)
        await admit(ctx, api, body)
        outcome = await router.call(ctx.endpoint, operation, ctx.outcome)
        answer = ctx.answer = answer_of(outcome.value)
        ctx.tokens = answer_usage(api, answer)
        if check_answer:
            await guardrails.run_after(ctx, answer, api)
    except (Exception, asyncio.CancelledError) as exc:
        ctx.fail(exc)
        raise
    finally:
        finish(ctx)
    await budgets.settled(ctx)
    return answer


async def chat(ctx: RequestContext, body: dict) -> dict:
    return await call(ctx, Api.OPENAI_CHAT, body, lambda adapter, stats: adapter.chat(
        adapter.capabilities.prepare(body, stream=False), stats), _itself)



async def embeddings(ctx: RequestContext, body: dict) -> dict:
    return await call(ctx, Api.OPENAI_EMBEDDINGS, body, lambda adapter, stats: adapter.embeddings(body, stats), _itself,
                      check_answer=False)


def _itself(answer: dict) -> dict:
    return answer


def _sse(data: dict) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


class StreamWriter(Protocol):
    """How a relayed chat stream goes out: the bytes for each chunk (maybe none), for its normal end, and
    for the failure that ends it."""

    def chunk(self, chunk: dict) -> bytes: ...

    def end(self) -> bytes: ...

    def error(self, exc: BaseException) -> bytes: ...


class ChatSSE:
    """The unified routes' StreamWriter: OpenAI chat's `data:` lines, `[DONE]` at the end, its error event.
    The native routes served by translation (gateway/translated.py) pass writers of their own API's events."""

    def __init__(self, wants_usage: bool) -> None:
        self.wants_usage = wants_usage

    def chunk(self, chunk: dict) -> bytes:
        # The closing usage chunk goes out only to clients that asked for it.
        return _sse(chunk) if self.wants_usage or chunk.get("choices") or not chunk.get("usage") else b""

    def end(self) -> bytes:
        return b"data: [DONE]\n\n"

    def error(self, exc: BaseException) -> bytes:
        return stream_error(exc, Api.OPENAI_CHAT)


async def chat_stream(ctx: RequestContext, body: dict, writer: StreamWriter | None = None) -> AsyncIterator[bytes]:
    """Open the upstream stream (falling back while nothing was sent) and return the byte iterator that
    `writer` (default: OpenAI chat's SSE) makes of the chunks. Errors before the first chunk raise here, so
    the view answers with a real HTTP error status."""
    if writer is None:
        writer = ChatSSE(bool((body.get("stream_options") or {}).get("include_usage")))
    ctx.body = body
    if ctx.endpoint.log_payloads:
        ctx.capture = ChatAssembler()
    try:
        await guardrails.run_before(ctx, body, Api.OPENAI_CHAT)
        await admit(ctx, Api.OPENAI_CHAT, body)
        guard = guardrails.stream_filter(ctx, Api.OPENAI_CHAT)
        first, rest, _ = await router.open_stream(
            ctx.endpoint, lambda adapter, stats: adapter.chat_stream(adapter.capabilities.prepare(body, stream=True),
                                                                     stats), ctx.outcome)
    except (Exception, asyncio.CancelledError) as exc:  # a client gone before the first chunk is recorded too
        ctx.fail(exc)
        finish(ctx)
        raise
    return _relay_chat(ctx, first, rest, writer, guard)


async def _relay_chat(ctx: RequestContext, first: dict, rest: AsyncIterator[dict], writer: StreamWriter,
                      guard: StreamFilter | None = None) -> AsyncIterator[bytes]:
    """Relay the chunks through `writer`; after-stage guardrails (`guard`) may rewrite them, and end the
    stream with an error event instead of the terminator."""
    try:
        chunk = first
        while True:
            if chunk.get("usage"):
                ctx.tokens = openai_usage(chunk["usage"])
            if ctx.first_byte_at is None:
                ctx.first_byte_at = clock()
            ctx.relayed_chars += usage.delta_chars(chunk)
            for out in guard.feed(chunk) if guard else (chunk,):
                if ctx.capture is not None:
                    ctx.capture.feed(out)
                data = writer.chunk(out)
                if data:
                    yield data
            try:
                chunk = await rest.__anext__()
            except StopAsyncIteration:
                break
        for out in await guard.finish() if guard else ():
            if ctx.capture is not None:
                ctx.capture.feed(out)
            data = writer.chunk(out)
            if data:
                yield data
        yield writer.end()
    except (asyncio.CancelledError, GeneratorExit):
        ctx.status, ctx.error_type = 499, "client_closed"
        raise
    except Exception as exc:  # noqa: BLE001 - the client gets an error event, the log gets the details
        ended_by(ctx, exc)
        yield writer.error(exc)
    finally:
        await close_quietly(rest)
        finish(ctx)
        if ctx.status < 400:
            await budgets.settled(ctx)


def ended_by(ctx: RequestContext, exc: Exception) -> None:
    """Account for the failure that ends a stream already under way (the caller sends the API's error
    event). Gateway and provider errors are expected; anything else is logged (call it in the except)."""
    if not isinstance(exc, (GatewayError, ProviderError)):
        logger.exception("stream failed for request %s", ctx.request_id)
    ctx.fail(exc)


async def close_quietly(iterator: AsyncIterator) -> None:
    """Close an upstream iterator that may already have failed."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # noqa: BLE001 - closing an upstream that already failed
            pass
