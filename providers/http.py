"""Shared HTTP plumbing for adapters: one pooled `httpx.AsyncClient` per upstream per process, sending and
streaming on it, and the mapping of transport failures, upstream error statuses and broken streams onto
ProviderError."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TypeVar
from urllib.parse import urlsplit

import aiohttp
import httpx
import orjson
from django.conf import settings

from providers import outbound
from providers.errors import ProviderError
from providers.target import CallStats, ModelTarget, PassthroughResponse
from providers.wire import SSEEvent, SSEParser, google_retry_delay

logger = logging.getLogger(__name__)
T = TypeVar("T")

_clients: dict[tuple, httpx.AsyncClient] = {}
# Called with every request just before it is sent (the gateway's tracing adds the `traceparent` here).
request_hooks: list[Callable[[httpx.Request], None]] = []


def timeouts_for(target: ModelTarget) -> httpx.Timeout:
    """`auth_config.timeout` may be a number (read timeout) or {connect, read, write, pool}."""
    conf = target.auth_config.get("timeout")
    connect = settings.GATEWAY_DEFAULT_CONNECT_TIMEOUT
    read = settings.GATEWAY_DEFAULT_READ_TIMEOUT
    if isinstance(conf, (int, float)):
        read = float(conf)
    elif isinstance(conf, Mapping):
        connect = float(conf.get("connect", connect))
        read = float(conf.get("read", read))
    return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)


def _transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport | None:
    """aiohttp's connection pool (through httpx-aiohttp) costs a fraction of httpcore's per request on a
    busy gateway: httpcore checks every pooled connection with a poll() on each request, which the
    benchmark showed as half of the gateway's CPU at concurrency 32. `GATEWAY_HTTP_TRANSPORT=httpx` keeps
    httpx's own transport."""
    if settings.GATEWAY_HTTP_TRANSPORT != "aiohttp":
        return None
    from httpx_aiohttp import AiohttpTransport

    def session() -> aiohttp.ClientSession:
        # The transport's own session, with the outbound policy applied to every address it connects to.
        connector = aiohttp.TCPConnector(limit=limits.max_connections, keepalive_timeout=limits.keepalive_expiry,
                                         ssl=httpx.create_ssl_context(trust_env=False),
                                         resolver=outbound.PolicyResolver())
        return aiohttp.ClientSession(connector=connector)

    return AiohttpTransport(limits=limits, trust_env=False, client=session)


def client_for(target: ModelTarget, base_url: str | None = None) -> httpx.AsyncClient:
    """The pooled client for this upstream origin and timeout profile, created on first use."""
    origin = urlsplit(base_url or target.auth_config.get("api_base") or "")
    timeout = timeouts_for(target)
    try:
        loop = id(asyncio.get_running_loop())
    except RuntimeError:
        loop = None
    # Pools belong to one event loop; a server has one, a test session may run several.
    key = (loop, origin.scheme, origin.netloc, timeout.connect, timeout.read)
    client = _clients.get(key)
    if client is None:
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=60)
        client = httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False, trust_env=False,
                                   transport=_transport(limits))
        _clients[key] = client
    return client


async def close_clients() -> None:
    clients = list(_clients.values())
    _clients.clear()
    await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)


def transport_error(exc: Exception, provider: str) -> ProviderError:
    """Connection and timeout failures, phrased without URLs that might embed credentials."""
    cause = exc.__cause__
    # httpx-aiohttp maps every aiohttp connection error to an httpx timeout class; the aiohttp cause says
    # whether time really ran out.
    timed_out = isinstance(cause, TimeoutError) if cause is not None else isinstance(exc, httpx.TimeoutException)
    if timed_out:
        return ProviderError(504, f"Timed out waiting for provider '{provider}'.", retryable=True, error_type="timeout")
    return ProviderError(502, f"Could not reach provider '{provider}': {type(exc).__name__}.", retryable=True,
                         error_type="connection_error")


def upstream_error(status: int, body: bytes, provider: str, headers: Mapping[str, str] | None = None) -> ProviderError:
    """Keep the upstream status (except auth failures, which are the gateway's credentials' fault, not the
    client's) and the upstream message text. The wait before another attempt is the `Retry-After` header,
    or else the delay a Google error body asks for (`RetryInfo.retryDelay`)."""
    data = _json_or_none(body)
    message = (_extract_message(data) if data is not None else body[:300].decode("utf-8", "replace").strip()) \
        or f"HTTP {status}"
    client_status = 502 if status in (401, 403) else status
    retry_after = None
    if headers is not None:
        try:
            retry_after = float(headers.get("retry-after", ""))
        except ValueError:
            retry_after = None
    if retry_after is None:
        retry_after = google_retry_delay(data)
    error_type = {400: "invalid_request_error", 404: "not_found_error", 429: "rate_limit_error"}.get(
        status, "upstream_auth_error" if status in (401, 403) else "upstream_error"
    )
    return ProviderError(client_status, f"Provider '{provider}' returned HTTP {status}: {message}",
                         error_type=error_type, retry_after=retry_after, upstream_status=status)


def _json_or_none(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _extract_message(data: object) -> str:
    if isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail")
            if msg:
                return str(msg)[:1000]
        elif isinstance(err, str):
            return err[:1000]
        if "message" in data:
            return str(data["message"])[:1000]
    return ""


def malformed_event(provider: str) -> ProviderError:
    """A stream event that cannot be read: the stream is broken, and another attempt may succeed."""
    return ProviderError(502, f"Provider '{provider}' sent a malformed stream event.", retryable=True)


def json_event(data: str, provider: str) -> dict:
    """The JSON object one stream event carries; anything else is a malformed event."""
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        event = None
    if not isinstance(event, dict):
        raise malformed_event(provider)
    return event


def stream_error(provider: str, error: object) -> ProviderError:
    """An error event in the middle of a stream that has already answered 200."""
    message = error.get("message") if isinstance(error, dict) else error
    return ProviderError(502, f"Provider '{provider}' stream error: {message}", retryable=True)


def incomplete_stream(provider: str, awaited: str) -> ProviderError:
    """A stream that ended without its terminator (`awaited`) was cut, and must not pass for complete."""
    return ProviderError(502, f"Provider '{provider}' ended the stream before {awaited}.", retryable=True,
                         error_type="incomplete_stream")


async def send(client: httpx.AsyncClient, request: httpx.Request, stats: CallStats | None, provider: str, *,
               stream: bool = False) -> httpx.Response:
    """Send a built request and wait for the status line, timing the wait in `stats`; upstream errors raise
    here, before any byte is relayed, so the caller can still fall back or answer with a proper HTTP error."""
    for hook in request_hooks:
        hook(request)
    if stats is not None:
        stats.start()
    try:
        response = await client.send(request, stream=stream)
    except httpx.HTTPError as exc:
        raise transport_error(exc, provider) from None
    finally:
        if stats is not None:
            stats.stop()
    if response.status_code >= 400:
        try:
            content = await response.aread()
        except httpx.HTTPError:
            content = b""
        finally:
            await response.aclose()
        raise upstream_error(response.status_code, content, provider, response.headers)
    return response


async def post_json(client: httpx.AsyncClient, url: str, body: dict, headers: Mapping[str, str], stats: CallStats,
                    provider: str, params: Mapping[str, str] | None = None) -> dict:
    """POST a JSON body, return the parsed JSON answer or raise ProviderError."""
    request = client.build_request("POST", url, content=orjson.dumps(body), headers=headers, params=params)
    response = await send(client, request, stats, provider)
    try:
        answer = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise ProviderError(502, f"Provider '{provider}' returned a body that is not JSON.", retryable=True) from None
    return answer_object(answer, provider)


def answer_object(answer: object, provider: str) -> dict:
    """A success answer is a JSON object without an `error` (OpenAI's Responses objects carry
    `"error": null`); anything else (an array, an error body sent with 200) is the provider failing,
    reported with its own message rather than relayed as a success."""
    if isinstance(answer, dict) and not answer.get("error"):
        return answer
    if isinstance(answer, dict):
        raise ProviderError(502, f"Provider '{provider}' answered HTTP 200 with an error: "
                            f"{_extract_message(answer) or 'no message'}", retryable=True)
    raise not_an_answer(provider, "a JSON object")


def not_an_answer(provider: str, expected: str) -> ProviderError:
    """A 200 answer whose body is not what the API promises."""
    return ProviderError(502, f"Provider '{provider}' answered HTTP 200 with a body that is not {expected}.",
                         retryable=True)


async def post_each(call: Callable[[dict], Awaitable[dict]], bodies: list[dict], stats: CallStats, *,
                    concurrency: int) -> list[dict]:
    """`call`'s answer for every body, in order, with at most `concurrency` calls in flight; the first
    failure raises. One wait is measured for the whole batch: the calls overlap, so per-call times would
    over-count."""
    limit = asyncio.Semaphore(concurrency)

    async def limited(body: dict) -> dict:
        async with limit:
            return await call(body)

    stats.start()
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(limited(body)) for body in bodies]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    finally:
        stats.stop()
    return [task.result() for task in tasks]


class OpenStream:
    """An upstream streaming response that has answered with a success status; iterate `events()` (its
    Server-Sent Events, parsed by providers/wire.py) or `raw()`, and it closes itself at the end, on error,
    or when the consumer stops early (close the iterator: `contextlib.aclosing`)."""

    def __init__(self, response: httpx.Response, provider: str, stats: CallStats) -> None:
        self.response = response
        self.provider = provider
        self.stats = stats

    def raw(self) -> AsyncIterator[bytes]:
        return self._relay(self.response.aiter_raw())

    async def events(self) -> AsyncIterator[SSEEvent]:
        """The stream's events that carry data, as they complete."""
        parser = SSEParser()
        chunks = self._relay(self.response.aiter_bytes())  # decoded, unlike raw(): gzip is undone here
        try:
            async for chunk in chunks:
                for event in parser.feed(chunk):
                    if event.data is not None:
                        yield event
            for event in parser.close():
                if event.data is not None:
                    yield event
        finally:
            await chunks.aclose()

    async def _relay(self, items: AsyncIterator[T]) -> AsyncIterator[T]:
        try:
            async for item in items:
                yield item
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.provider) from None
        finally:
            await self.response.aclose()


async def open_stream(client: httpx.AsyncClient, method: str, url: str, body: dict | None,
                      headers: Mapping[str, str], stats: CallStats, provider: str,
                      params: Mapping[str, str] | None = None) -> OpenStream:
    """Send the request and wait for the status line; upstream errors raise here (see `send`)."""
    request = client.build_request(method, url, content=orjson.dumps(body) if body is not None else None,
                                   headers=headers, params=params)
    return OpenStream(await send(client, request, stats, provider, stream=True), provider, stats)


async def forward(client: httpx.AsyncClient, url: str, body: dict, headers: Mapping[str, str], stats: CallStats,
                  provider: str, *, stream: bool, params: Mapping[str, str] | None = None):
    """Send a native body as is and hand back the provider's answer: parsed JSON, or the raw byte stream
    for relaying unchanged."""
    if not stream:
        return PassthroughResponse(200, {}, body=await post_json(client, url, body, headers, stats, provider, params))
    opened = await open_stream(client, "POST", url, body, {**headers, "accept": "text/event-stream"}, stats,
                               provider, params)
    content_type = opened.response.headers.get("content-type", "")
    if not content_type.lower().startswith("text/event-stream"):
        # An HTML error page or a JSON body sent with 200 is not the promised stream: fail before relaying
        # a byte, so routing may fall back and the client gets a whole error answer.
        await opened.response.aclose()
        raise ProviderError(502, f"Provider '{provider}' answered a stream request with Content-Type "
                            f"'{content_type[:100] or 'none'}' instead of an event stream.", retryable=True)
    return PassthroughResponse(opened.response.status_code, opened.response.headers, stream=opened.raw())


def merge_client_headers(own: Mapping[str, str], client_headers: Mapping[str, str]) -> dict[str, str]:
    """The provider's auth and content headers always win over what a client sent."""
    merged = {k.lower(): v for k, v in client_headers.items()}
    merged.update(own)
    return merged
