"""One proxied request's life: budget check, the client's body streamed to the provider under its own size
limit, the provider's answer streamed back as it arrives with the gateway's headers on top, usage read
when the answer is a JSON body with a usage block, and the request accounted for however it ends."""
from __future__ import annotations

import asyncio
import logging

import httpx
import orjson

from gateway import pipeline
from gateway.context import RequestContext
from gateway.config.snapshot import Link
from gateway.errors import BadRequest, PayloadTooLarge
from gateway.passthrough import FORWARDED_HEADERS
from gateway.routing.router import Attempt
from providers.base import ProviderError, RawUpstream, clock
from providers.wire import Api, TokenUsage, anthropic_usage, answer_usage
from providers.http import client_for, transport_error

logger = logging.getLogger(__name__)

CLIENT_HEADERS = (*FORWARDED_HEADERS, "content-type", "content-length", "accept")
# Connection-level headers, and cookies a provider would set on the gateway's domain.
DROPPED_RESPONSE_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                                      "proxy-authenticate", "proxy-connection", "set-cookie"})
USAGE_SCAN_BYTES = 1024 * 1024


class BodyReader:
    """The client's request body as an async iterator for httpx, refusing it once it passes `limit`.
    `refusal` keeps the refusal, since the HTTP client reports a failed body in its own terms."""

    def __init__(self, receive, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.refusal: PayloadTooLarge | None = None
        self.aborted = False  # the client left mid-body
        self.done = asyncio.Event()

    @classmethod
    def for_request(cls, method: str, headers: dict[str, str], receive, limit: int) -> BodyReader | None:
        """None when the request declares no body (a GET), so none is sent upstream."""
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise BadRequest("Content-Length must be a number.", code="invalid_request")
            if int(length) > limit:
                raise too_large(limit)
            if int(length) == 0:
                return None
        elif "chunked" not in headers.get("transfer-encoding", ""):
            return None
        return cls(receive, limit)

    async def __aiter__(self):
        size = 0
        try:
            while True:
                message = await self.receive()
                if message["type"] == "http.disconnect":
                    self.aborted = True
                    raise ConnectionAbortedError
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.limit:
                    self.refusal = too_large(self.limit)
                    raise self.refusal
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    return
        finally:
            self.done.set()


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than the proxy's limit of {limit} bytes "
                           "(GATEWAY_PROXY_MAX_REQUEST_BYTES).", code="request_too_large")


# Headers the gateway's outer layer adds to every answer (gateway/observability/asgi.py sets the request id).
ADDED_BY_THE_GATEWAY = frozenset({"x-request-id"})


def response_headers(ctx: RequestContext, upstream: httpx.Headers) -> list[tuple[bytes, bytes]]:
    """The gateway's own headers win; a provider header of the same name comes along as `x-upstream-<name>`."""
    own = {name.lower(): value for name, value in ctx.response_headers().items()}
    out = [(name.encode(), value.encode()) for name, value in own.items()]
    for name, value in upstream.raw:
        lowered = name.decode("latin-1").lower()
        if lowered in DROPPED_RESPONSE_HEADERS:
            continue
        renamed = lowered in own or lowered in ADDED_BY_THE_GATEWAY
        out.append(((f"x-upstream-{lowered}" if renamed else lowered).encode("latin-1"), value))
    return out


def usage_in(provider: str, body: bytes) -> TokenUsage:
    """Tokens from an answer that carries a usage block in one of the vendors' shapes; none otherwise."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return TokenUsage()
    if not isinstance(answer, dict):
        return TokenUsage()
    if "usageMetadata" in answer:
        return answer_usage(Api.GEMINI_GENERATE, answer)
    block = answer.get("usage")
    if not isinstance(block, dict):
        return TokenUsage()
    if "prompt_tokens" in block:
        return answer_usage(Api.OPENAI_CHAT, answer)
    if "input_tokens" in block:
        return anthropic_usage(block) if provider == "anthropic" else answer_usage(Api.OPENAI_RESPONSES, answer)
    return TokenUsage()


async def _client_gone(receive, body: BodyReader | None) -> None:
    if body is not None:
        await body.done.wait()
    while (await receive())["type"] != "http.disconnect":
        pass


def _remaining(ctx: RequestContext) -> float | None:
    """Seconds left of the endpoint's total timeout, which bounds a proxied call from its arrival to the
    last byte of the answer, as it bounds a call on the other routes."""
    total = ctx.endpoint.total_timeout
    return None if total is None else max(total - (clock() - ctx.started), 0.0)


def _timed_out(ctx: RequestContext, provider: str, waiting_for: str) -> ProviderError:
    return ProviderError(504, f"The endpoint's total timeout ({ctx.endpoint.total_timeout:g} s) ran out while "
                              f"{waiting_for} provider '{provider}'.", retryable=True, error_type="timeout")


async def relay(ctx: RequestContext, link: Link, upstream: RawUpstream, method: str, url: str,
                client_headers: dict[str, str], body: BodyReader | None, receive, send) -> None:
    """Raises GatewayError or ProviderError before the response starts; after that, a failure ends the
    response early (the client sees a truncated body) and is recorded."""
    ctx.outcome.link = link
    ctx.outcome.attempts.append(Attempt(link.target.name))
    provider = link.target.provider
    try:
        await pipeline.admit(ctx, Api.PROXY, {})
        headers = {**upstream.headers, **{n: client_headers[n] for n in CLIENT_HEADERS if n in client_headers}}
        client = client_for(link.target, upstream.base_url)
        request = client.build_request(method, url, headers=headers, params=upstream.params or None, content=body)
        ctx.outcome.stats.start()
        deadline = asyncio.timeout(_remaining(ctx))
        try:
            async with deadline:
                response = await client.send(request, stream=True)
        except Exception as exc:  # noqa: BLE001 - sorted below into the client's fault or the provider's
            if body is not None and body.refusal is not None:
                raise body.refusal from None
            if isinstance(exc, ConnectionAbortedError) or body is not None and body.aborted:
                raise ConnectionAbortedError from None
            if deadline.expired():
                raise _timed_out(ctx, provider, "waiting for") from None
            raise transport_error(exc, provider) from None
        finally:
            ctx.outcome.stats.stop()
    except BaseException as exc:
        ctx.fail(exc)
        raise
    watcher = asyncio.create_task(_client_gone(receive, body))
    pump = asyncio.create_task(_pump(ctx, link, response, send))
    timed_out = False
    try:
        done, _ = await asyncio.wait((watcher, pump), timeout=_remaining(ctx), return_when=asyncio.FIRST_COMPLETED)
        timed_out = not done
    finally:
        for task in (watcher, pump):
            task.cancel()
        await asyncio.gather(watcher, pump, return_exceptions=True)
        if timed_out and pump.cancelled():
            error = _timed_out(ctx, provider, "relaying the answer of")
            ctx.fail(error)
            logger.warning("proxied answer from %s cut: %s", provider, error.message)
        elif pump.cancelled():
            ctx.status, ctx.error_type = 499, "client_closed"
        await response.aclose()
        pipeline.finish(ctx)


async def _pump(ctx: RequestContext, link: Link, response: httpx.Response, send) -> None:
    ctx.status = response.status_code
    if response.status_code >= 400:
        ctx.error_type = "upstream_error"
    scan = (response.headers.get("content-type", "").startswith("application/json")
            and "content-encoding" not in response.headers)
    seen = bytearray()
    ctx.first_byte_at = clock()
    await send({"type": "http.response.start", "status": response.status_code,
                "headers": response_headers(ctx, response.headers)})
    try:
        async for chunk in response.aiter_raw():
            if scan and len(seen) + len(chunk) <= USAGE_SCAN_BYTES:
                seen += chunk
            else:
                scan = False
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except httpx.HTTPError as exc:
        error = transport_error(exc, link.target.provider)
        ctx.fail(error)
        logger.warning("proxied answer from %s broke off: %s", link.target.provider, error.message)
        return  # no final body message: the server ends the connection, so the client sees the truncation
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    if scan and seen:
        ctx.tokens = usage_in(link.target.provider, bytes(seen))
