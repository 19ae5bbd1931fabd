"""One gateway request's life, the same for every route: guardrails before, budget reservation, routing to
a provider, guardrails after, then usage and cost recorded (for streams, when the stream ends, however it
ends)."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson

from gateway import usage
from gateway.errors import GatewayError
from gateway.routing import Outcome, router
from gateway.snapshot import ClientKey, EndpointConfig
from providers.base import ProviderError

logger = logging.getLogger(__name__)


@dataclass
class RequestContext:
    """Everything the gateway learns about one request, from arrival to the usage record."""

    route: str
    endpoint: EndpointConfig
    key: ClientKey
    streaming: bool = False
    internal: bool = False
    started: float = field(default_factory=time.perf_counter)
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    outcome: Outcome = field(default_factory=Outcome)
    tokens: usage.TokenUsage = field(default_factory=usage.TokenUsage)
    status: int = 200
    error_type: str = ""
    first_byte_at: float | None = None
    finished: bool = False
    guardrail_results: list = field(default_factory=list)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def overhead_ms(self) -> float:
        return max(self.elapsed_ms() - self.outcome.stats.upstream_seconds * 1000, 0.0)

    def fail(self, exc: Exception) -> None:
        if isinstance(exc, GatewayError):
            self.status, self.error_type = exc.status, exc.error_type
        elif isinstance(exc, ProviderError):
            self.status, self.error_type = exc.status, exc.error_type
        else:
            self.status, self.error_type = 500, type(exc).__name__

    def response_headers(self) -> dict[str, str]:
        headers = {
            "X-Gateway-Duration-Ms": f"{self.elapsed_ms():.2f}",
            "X-Gateway-Overhead-Ms": f"{self.overhead_ms():.2f}",
            "X-Gateway-Attempts": str(len(self.outcome.attempts)),
            "X-Request-Id": self.request_id,
        }
        if self.outcome.link is not None:
            headers["X-Gateway-Model"] = self.outcome.link.target.name
        return headers


def finish(ctx: RequestContext) -> None:
    """Queue the usage record once; never raises into the request."""
    if ctx.finished:
        return
    ctx.finished = True
    try:
        link = ctx.outcome.link
        target = link.target if link is not None else None
        total_ms = ctx.elapsed_ms()
        event = usage.UsageEvent(
            created_at=usage.now(), endpoint_name=ctx.endpoint.name, route=ctx.route, request_id=ctx.request_id,
            model_name=target.name if target else "", provider=target.provider if target else "",
            api_key_name=ctx.key.name, streaming=ctx.streaming, status_code=ctx.status, error_type=ctx.error_type,
            attempts=len(ctx.outcome.attempts), input_tokens=ctx.tokens.input_tokens,
            output_tokens=ctx.tokens.output_tokens, cached_tokens=ctx.tokens.cached_tokens,
            cost_usd=usage.cost_of(ctx.tokens, target.prices) if target else None, latency_ms=total_ms,
            ttfb_ms=(ctx.first_byte_at - ctx.started) * 1000 if ctx.first_byte_at else None,
            overhead_ms=ctx.overhead_ms(), guardrails=ctx.guardrail_results,
        )
        if ctx.endpoint.usage_tracking:
            usage.writer.submit(event)
        if ctx.streaming:
            logger.info("stream done endpoint=%s model=%s status=%s total_ms=%.1f overhead_ms=%.2f",
                        ctx.endpoint.name, event.model_name, ctx.status, total_ms, event.overhead_ms)
    except Exception:  # noqa: BLE001 - accounting must never break a response
        logger.exception("could not record usage for request %s", ctx.request_id)


async def chat(ctx: RequestContext, body: dict) -> dict:
    try:
        outcome = await router.call(ctx.endpoint, lambda adapter, stats: adapter.chat(body, stats), ctx.outcome)
        response = outcome.value
        ctx.tokens = usage.TokenUsage.from_openai(response.get("usage"))
        return response
    except Exception as exc:
        ctx.fail(exc)
        raise
    finally:
        finish(ctx)


async def embeddings(ctx: RequestContext, body: dict) -> dict:
    try:
        outcome = await router.call(ctx.endpoint, lambda adapter, stats: adapter.embeddings(body, stats), ctx.outcome)
        ctx.tokens = usage.TokenUsage.from_openai(outcome.value.get("usage"))
        return outcome.value
    except Exception as exc:
        ctx.fail(exc)
        raise
    finally:
        finish(ctx)


def _sse(data: dict) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


async def chat_stream(ctx: RequestContext, body: dict) -> AsyncIterator[bytes]:
    """Open the upstream stream (falling back while nothing was sent) and return the SSE byte iterator.
    Errors before the first chunk raise here, so the view answers with a real HTTP error status."""
    wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    try:
        first, rest, _ = await router.open_stream(
            ctx.endpoint, lambda adapter, stats: adapter.chat_stream(body, stats), ctx.outcome)
    except Exception as exc:
        ctx.fail(exc)
        finish(ctx)
        raise
    return _relay_chat(ctx, first, rest, wants_usage)


async def _relay_chat(ctx: RequestContext, first: dict, rest: AsyncIterator[dict], wants_usage: bool) -> AsyncIterator[bytes]:
    try:
        chunk = first
        while True:
            if chunk.get("usage"):
                ctx.tokens = usage.TokenUsage.from_openai(chunk["usage"])
            if wants_usage or chunk.get("choices") or not chunk.get("usage"):
                if ctx.first_byte_at is None:
                    ctx.first_byte_at = time.perf_counter()
                yield _sse(chunk)
            try:
                chunk = await rest.__anext__()
            except StopAsyncIteration:
                break
        yield b"data: [DONE]\n\n"
    except ProviderError as exc:
        ctx.fail(exc)
        yield _sse({"error": {"message": exc.message, "type": exc.error_type, "param": None, "code": exc.status}})
    except (asyncio.CancelledError, GeneratorExit):
        ctx.status, ctx.error_type = 499, "client_closed"
        raise
    except Exception as exc:  # noqa: BLE001 - the client gets an error event, the log gets the details
        logger.exception("stream failed for request %s", ctx.request_id)
        ctx.fail(exc)
        yield _sse({"error": {"message": "The gateway failed while streaming.", "type": "api_error",
                              "param": None, "code": 500}})
    finally:
        await _close(rest)
        finish(ctx)


async def _close(iterator: AsyncIterator) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # noqa: BLE001 - closing an upstream that already failed
            pass
