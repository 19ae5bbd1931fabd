"""The raw proxy route, `/gateway/proxy/<endpoint>/<path>` (any method), as its own small ASGI app.

It stays outside the lean handler on purpose: that handler reads the whole body before routing, and this
route must stream request bodies (file uploads) to the provider with their own size limit. The app parses
and authenticates, then hands over to gateway/proxy/relay.py; every refusal is an OpenAI error envelope.
"""
from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qsl, urlencode

import orjson
from django.conf import settings

from gateway import auth, pipeline
from gateway.context import RequestContext
from gateway.envelopes import render_error
from gateway.errors import BadRequest, GatewayError, NotFound
from gateway.config.snapshot import store
from gateway.proxy import paths
from gateway.routing.router import first_usable
from gateway.proxy.relay import BodyReader, relay
from providers.base import ProviderError, UnsupportedOperation

logger = logging.getLogger(__name__)

PREFIX = "/gateway/proxy/"
ROUTE = "proxy"


async def send_error(send, exc: GatewayError) -> None:
    body = orjson.dumps(render_error(exc, "openai"))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), str(value).encode()) for name, value in exc.headers.items()]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def split_target(raw_path: str) -> tuple[str, str]:
    """`<endpoint>/<path>` from the raw (still percent-encoded) request path."""
    name, slash, rest = raw_path[len(PREFIX):].partition("/")
    if not name or not slash:
        raise NotFound("Use /gateway/proxy/<endpoint>/<path relative to the provider's api_base>.",
                       code="invalid_path")
    return name, rest


def forwarded_query(query: str) -> str:
    """The client's query string without `key` (a gateway key given the Gemini way must not reach the
    provider)."""
    if "key=" not in query:
        return query
    return urlencode([(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "key"])


async def application(scope, receive, send) -> None:
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
    query = scope.get("query_string", b"").decode("latin-1")
    ctx: RequestContext | None = None
    endpoint_name = key_name = ""
    try:
        raw_path = scope.get("raw_path") or scope["path"].encode()
        endpoint_name, path = split_target(raw_path.decode("latin-1"))
        snapshot = await store.get()
        key = auth.authenticate(snapshot, auth.presented_key(headers, dict(parse_qsl(query))))
        key_name = key.name
        endpoint = snapshot.endpoints.get(endpoint_name)
        if endpoint is None:
            raise NotFound(f"Endpoint '{endpoint_name}' does not exist.", code="endpoint_not_found")
        auth.authorize(key, endpoint_name)
        link = first_usable(endpoint)
        try:
            upstream = link.adapter.raw_upstream()
        except (UnsupportedOperation, ValueError) as exc:
            raise BadRequest(str(exc), code="unsupported_api") from None
        path = paths.clean_path(path)
        paths.check_allowed(path, link.target.provider,
                            paths.allowed_prefixes(link.target.provider, settings.GATEWAY_PROXY_ALLOWED_PATHS))
        url = paths.upstream_url(upstream.base_url, path, forwarded_query(query))
        body = BodyReader.for_request(scope["method"], headers, receive, settings.GATEWAY_PROXY_MAX_REQUEST_BYTES)
        ctx = RequestContext(ROUTE, endpoint, key, streaming=True)
        await relay(ctx, link, upstream, scope["method"], url, headers, body, receive, send)
    except GatewayError as exc:
        await _refuse(send, ctx, exc, endpoint_name, key_name)
    except ProviderError as exc:
        error = GatewayError(exc.message, status=exc.status, error_type=exc.error_type)
        await _refuse(send, ctx, error, endpoint_name, key_name)
    except (asyncio.CancelledError, ConnectionAbortedError):
        if ctx is not None and not ctx.finished:
            ctx.status, ctx.error_type = 499, "client_closed"
            pipeline.finish(ctx)
    except Exception:  # noqa: BLE001 - never a traceback to the client
        logger.exception("proxy request failed")
        await _refuse(send, ctx, GatewayError("The gateway hit an internal error."), endpoint_name, key_name)


async def _refuse(send, ctx, exc: GatewayError, endpoint_name: str, key_name: str) -> None:
    if ctx is not None:
        exc.headers = {**ctx.response_headers(), **exc.headers}
    pipeline.account_refusal(ctx, exc, route=ROUTE, endpoint_name=endpoint_name, key_name=key_name)
    try:
        await send_error(send, exc)
    except Exception:  # noqa: BLE001 - the response had started (a relay that broke midway): end it there
        pass
