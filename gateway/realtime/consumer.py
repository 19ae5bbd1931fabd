"""`GET /gateway/openai/v1/realtime?model=<endpoint>` as a Channels WebSocket consumer.

The handshake is held until the client is authenticated (`Authorization: Bearer`, or the browsers'
`openai-insecure-api-key.<key>` subprotocol) and the provider's socket is open: a refused key, an unknown
endpoint or an unreachable provider gets an HTTP error in OpenAI's envelope and never an open socket.
Then gateway/realtime/session.py relays."""
from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlencode

import orjson
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from gateway import auth
from gateway.config.snapshot import store
from gateway.envelopes import render_error
from gateway.errors import BadRequest, GatewayError, NotFound, ServiceUnavailable, UpstreamError
from gateway.observability.realtime import SessionObservation
from gateway.pipeline import account_refusal
from gateway.realtime import shutdown
from gateway.routing.router import first_usable
from gateway.realtime.queues import QUEUE_FRAMES
from gateway.realtime.session import RealtimeSession
from providers.base import UnsupportedOperation
from providers.http import timeouts_for

logger = logging.getLogger(__name__)

PATH = "/gateway/openai/v1/realtime"
ROUTE = "realtime/session"
KEY_SUBPROTOCOL = "openai-insecure-api-key."
BETA_SUBPROTOCOL = "openai-beta.realtime-v1"
MAX_FRAME_BYTES = 16 * 1024 * 1024


class RealtimeConsumer(AsyncWebsocketConsumer):
    session: RealtimeSession | None = None

    async def websocket_connect(self, message) -> None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in self.scope["headers"]}
        offered = list(self.scope.get("subprotocols") or ())
        observed = SessionObservation.begin(self.scope)
        endpoint_name = key_name = tried = ""
        try:
            if shutdown.draining():
                raise ServiceUnavailable("The gateway is restarting; reconnect shortly.", code="restarting")
            query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
            endpoint_name = (query.get("model") or [""])[0]
            if not endpoint_name:
                raise BadRequest("'model' is required in the query string and must name a gateway endpoint.",
                                 param="model", code="missing_model")
            snapshot = await store.get()
            key = auth.authenticate(snapshot, presented_key(headers, offered))
            key_name = key.name
            endpoint = snapshot.endpoints.get(endpoint_name)
            if endpoint is None:
                raise NotFound(f"Endpoint '{endpoint_name}' does not exist.", param="model",
                               code="endpoint_not_found")
            auth.authorize(key, endpoint_name)
            link = first_usable(endpoint)
            tried = link.target.provider
            upstream = await open_upstream(link, headers, offered)
        except GatewayError as exc:
            account_refusal(None, exc, route=ROUTE, endpoint_name=endpoint_name, key_name=key_name)
            # A label only for an endpoint that exists, never a string the client chose.
            known = endpoint_name in getattr(store.current, "endpoints", {})
            observed.refused(exc, route=ROUTE, endpoint=endpoint_name if known else "",
                             provider=tried if isinstance(exc, UpstreamError) else "")
            await self.refuse(exc)
            return
        self.session = RealtimeSession(endpoint, key, link, upstream, self.send_frame, self.close_with, observed)
        observed.opened(self.session)
        shutdown.sessions.add(self.session)
        await self.accept("realtime" if "realtime" in offered else None,
                          headers=[(b"x-request-id", self.session.id.encode())])
        self.session.start()

    async def refuse(self, exc: GatewayError) -> None:
        """An HTTP answer instead of the upgrade where the server supports it (uvicorn does), else a plain
        refusal of the handshake (403)."""
        if "websocket.http.response" not in self.scope.get("extensions", {}):
            await self.close()
            return
        body = orjson.dumps(render_error(exc, "openai"))
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await self.base_send({"type": "websocket.http.response.start", "status": exc.status, "headers": headers})
        await self.base_send({"type": "websocket.http.response.body", "body": body})

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if self.session is not None:
            await self.session.from_client(text_data if text_data is not None else bytes_data)

    async def websocket_disconnect(self, message) -> None:
        if self.session is not None:
            shutdown.sessions.discard(self.session)
            await self.session.client_closed(message.get("code"))
            self.session.observed.detach()
        raise StopConsumer()

    async def send_frame(self, frame: str | bytes) -> None:
        if isinstance(frame, str):
            await self.send(text_data=frame)
        else:
            await self.send(bytes_data=frame)

    async def close_with(self, code: int) -> None:
        await self.close(code)


def presented_key(headers: dict[str, str], subprotocols: list[str]) -> str | None:
    for protocol in subprotocols:
        if protocol.startswith(KEY_SUBPROTOCOL):
            return protocol[len(KEY_SUBPROTOCOL):] or None
    return auth.presented_key(headers, {})


async def open_upstream(link, headers: dict[str, str], offered: list[str]):
    """The provider's realtime socket with its credentials, open (upgrade answered) within the model's
    connect timeout (its secret's `auth_config.timeout`, else GATEWAY_DEFAULT_CONNECT_TIMEOUT); the client's
    `openai-beta` goes along (as a header, also when the browser sent it as a subprotocol)."""
    try:
        upstream = link.adapter.realtime_upstream()
    except (UnsupportedOperation, ValueError) as exc:
        raise BadRequest(str(getattr(exc, "message", exc)), code="unsupported_api") from None
    extra = dict(upstream.headers)
    if "openai-beta" in headers:
        extra["openai-beta"] = headers["openai-beta"]
    elif BETA_SUBPROTOCOL in offered:
        extra["openai-beta"] = "realtime=v1"
    url = f"{upstream.base_url}?{urlencode(dict(upstream.params))}" if upstream.params else upstream.base_url
    provider = link.target.provider
    try:
        return await connect(url, additional_headers=extra, compression=None, max_size=MAX_FRAME_BYTES,
                             max_queue=QUEUE_FRAMES, open_timeout=timeouts_for(link.target).connect,
                             proxy=None, user_agent_header=None, ping_interval=None)
    except InvalidStatus as exc:
        status = exc.response.status_code
        # The provider refusing the gateway's own credentials is the gateway's fault, not the client's.
        raise UpstreamError(f"Provider '{provider}' refused the realtime session (HTTP {status}).",
                            status=502 if status in (401, 403) else (status if 400 <= status < 600 else 502),
                            code="upstream_refused") from None
    except (OSError, TimeoutError, Exception) as exc:  # noqa: BLE001 - never the URL (it may carry a key)
        logger.warning("realtime upstream %s unreachable: %s", provider, type(exc).__name__)
        raise UpstreamError(f"Could not reach provider '{provider}' for the realtime session.", status=502,
                            code="upstream_unreachable") from None
