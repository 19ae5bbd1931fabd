"""One realtime session between a client and the provider's WebSocket: frames relayed both ways as they
arrive (text and binary, audio never buffered) through a bounded queue per direction, so a slow side slows
the other instead of filling memory; each response reserved against budgets, priced from its
`response.done` and recorded; guardrails on text events; both sides closed together.

Accounting: one usage record per response (route `realtime/response`, request id `<session id>.<n>`) and
one for the session (route `realtime/session`, request id `<session id>`, its duration and how it ended,
no tokens or cost of its own so totals are never counted twice)."""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from websockets.exceptions import ConnectionClosed

from gateway import pipeline
from gateway.context import RequestContext
from gateway.envelopes import realtime_error
from gateway.config.snapshot import ClientKey, EndpointConfig, Link
from gateway.errors import GatewayError, ServiceUnavailable, UpstreamError
from gateway.observability.realtime import SessionObservation
from gateway.ratelimits.limiter import RateLimited
from gateway.realtime.queues import FrameQueue
from gateway.realtime.usage import RealtimeUsage, realtime_cost
from gateway.routing.router import Attempt
from guardrails import engine as guardrails
from guardrails.stream_text import OpenAIRealtimeStream
from guardrails.streams import StreamFilter
from guardrails.text import response_slots
from providers.wire import Api

logger = logging.getLogger(__name__)

# Close codes: 1000 normal; 1008 policy (budget); 1011 upstream failure; 1012 gateway restarting. Codes
# that exist only locally (1005 no status, 1006 abnormal) cannot be sent on and become 1000.
UNSENDABLE_CODES = frozenset({1005, 1006, 1015})
BUDGET_CLOSE_CODE = 1008
UPSTREAM_FAILED_CODE = 1011
RESTART_CODE = 1012

Frame = str | bytes
# Substrings a frame must contain to be worth parsing (base64 audio never contains a '.').
CLIENT_RESPONSE_CREATE, CLIENT_ITEM_CREATE = "response.create", "conversation.item.create"
RESPONSE_CREATED, RESPONSE_DONE = "response.created", "response.done"
PROVIDER_ERROR = '"error"'
GUARDED_EVENTS = OpenAIRealtimeStream.DELTAS | set(OpenAIRealtimeStream.DONES) | {"response.done"}


@dataclass(frozen=True)
class Close:
    """Queued after the last frame for the client: close with this code."""

    code: int


def sendable(code: int | None) -> int:
    return 1000 if code is None or code in UNSENDABLE_CODES else code


class RealtimeSession:
    """`upstream` is an open websockets client connection; `send_client(frame)` and `close_client(code)`
    write to the client's socket; `observed` is what /metrics and the trace learn of it."""

    def __init__(self, endpoint: EndpointConfig, key: ClientKey, link: Link, upstream,
                 send_client: Callable[[Frame], Awaitable[None]], close_client: Callable[[int], Awaitable[None]],
                 observed: SessionObservation | None = None):
        self.endpoint, self.key, self.link, self.upstream = endpoint, key, link, upstream
        self.send_client, self.close_client = send_client, close_client
        self.observed = observed or SessionObservation()
        self.record = self._context("realtime/session")
        self.id = self.record.request_id
        self.count = 0
        self.to_upstream: asyncio.Queue[Frame] = FrameQueue()
        self.to_client: asyncio.Queue[Frame | Close] = FrameQueue()
        self.pending: deque[RequestContext] = deque()  # reserved on response.create, not yet created
        self.creates: dict[str, RequestContext] = {}    # pending ones by the client's event_id, when it gave one
        self.active: dict[str, RequestContext] = {}    # by response id
        self.guarded = bool(endpoint.guardrails)
        self.filters: dict[str, StreamFilter] = {}  # after-stage guardrails per response id
        self.blocked: set[str] = set()
        self.tasks: list[asyncio.Task] = []
        self.ending = False
        self.ended = asyncio.Event()

    def _context(self, route: str) -> RequestContext:
        ctx = RequestContext(route, self.endpoint, self.key, streaming=True)
        ctx.outcome.link = self.link
        ctx.outcome.attempts.append(Attempt(self.link.target.name))
        return ctx

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._read_upstream()), asyncio.create_task(self._write_upstream()),
                      asyncio.create_task(self._write_client())]

    @property
    def responding(self) -> bool:
        return bool(self.pending or self.active)

    # -- client -> upstream ------------------------------------------------------------------------------
    async def from_client(self, frame: Frame) -> None:
        """One client frame; awaiting the bounded queue is the backpressure on the client's socket."""
        if self.ending:
            return
        interesting = isinstance(frame, str) and (
            CLIENT_RESPONSE_CREATE in frame or self.guarded and CLIENT_ITEM_CREATE in frame)
        if interesting:
            event = _event(frame)
            kind = event.get("type") if event else None
            if kind == "response.create":
                if not await self._reserve(event):
                    return
            elif kind == "conversation.item.create" and self.guarded:
                try:
                    await guardrails.run_before(self.record, event, Api.OPENAI_REALTIME)
                except GatewayError as exc:  # the item is not sent; the session goes on, as after an HTTP 400
                    await self.to_client.put(realtime_error(exc))
                    return
                frame = orjson.dumps(event).decode()
        await self.to_upstream.put(frame)

    async def _reserve(self, event: dict) -> bool:
        ctx = self._response_context()
        if not await self._admit(ctx, event, refusable=True):
            return False
        self.pending.append(ctx)
        if isinstance(event.get("event_id"), str):
            self.creates[event["event_id"]] = ctx
        return True

    def _take_pending(self) -> RequestContext:
        ctx = self.pending.popleft()
        self.creates = {event_id: held for event_id, held in self.creates.items() if held is not ctx}
        return ctx

    async def _admit(self, ctx: RequestContext, event: dict, *, refusable: bool) -> bool:
        """Admit one response against the rate limits and budgets; a response that is not admitted is
        accounted for here, whatever stopped it (a cancel included: what it was granted is settled, not held
        until it expires). Over a rate limit (or its store down, failing closed) a `refusable` response, one the
        client asked for, is not sent and the session goes on, as an HTTP client would retry; otherwise (a
        spent budget, or a response the provider started by itself) the session ends."""
        try:
            await pipeline.admit(ctx, Api.OPENAI_REALTIME, event)
        except BaseException as exc:
            ctx.fail(exc)
            self.observed.finished(ctx, pipeline.finish(ctx))
            if not isinstance(exc, GatewayError):
                raise
            if refusable and isinstance(exc, (RateLimited, ServiceUnavailable)):
                await self.to_client.put(realtime_error(exc))
                self.observed.record_soon()
            else:
                await self.end(BUDGET_CLOSE_CODE, realtime_error(exc), error_type=exc.error_type)
            return False
        self.observed.admitted(ctx)
        return True

    def _response_context(self) -> RequestContext:
        self.count += 1
        ctx = self._context("realtime/response")
        ctx.request_id = f"{self.id}.{self.count}"
        return ctx

    async def _write_upstream(self) -> None:
        while True:
            frame = await self.to_upstream.get()
            try:
                await self.upstream.send(frame)
            except ConnectionClosed:
                return  # the reader sees the same close and reports it
            self.observed.relayed_to_provider()

    # -- upstream -> client ------------------------------------------------------------------------------
    async def _read_upstream(self) -> None:
        try:
            async for frame in self.upstream:
                if isinstance(frame, bytes):
                    await self.to_client.put(frame)
                    continue
                for out in await self._inspect(frame):
                    await self.to_client.put(out)
                if self.observed.waiting:  # responses that ended with this frame, observed after it
                    self.observed.record_soon()
        except ConnectionClosed as exc:
            if exc.rcvd is None:  # no close frame: the provider (or the network) died mid-session
                await self._upstream_died()
                return
            await self.end(sendable(exc.rcvd.code), error_type="" if exc.rcvd.code in (1000, 1001) else "upstream_closed")
            return
        except Exception:  # noqa: BLE001 - the client gets an error event, the log the details
            logger.exception("realtime session %s failed reading upstream", self.id)
            await self._upstream_died()
            return
        await self.end(1000)

    async def _upstream_died(self) -> None:
        error = UpstreamError(f"The provider ('{self.link.target.provider}') closed the realtime session "
                              "unexpectedly.", status=502, error_type="server_error", code="upstream_closed")
        await self.end(UPSTREAM_FAILED_CODE, realtime_error(error), error_type="upstream_closed")

    async def _inspect(self, frame: str) -> list[Frame]:
        """Accounting and guardrails on one provider event; returns the frames to relay in its place.
        Most frames (audio deltas) are relayed without being parsed: only events whose type names can
        matter here are."""
        if not (self.filters or self.blocked or RESPONSE_CREATED in frame or RESPONSE_DONE in frame
                or self.creates and PROVIDER_ERROR in frame):
            return [frame]
        event = _event(frame)
        if event is None:
            return [frame]
        kind = event.get("type")
        if kind == "error":
            self._create_refused(event)
            return [frame]
        if kind in (RESPONSE_CREATED, RESPONSE_DONE) and not isinstance(event.get("response"), dict):
            return [frame]  # of a shape no response can be read from: relayed, and counted for none
        if kind == "response.created":
            await self._response_created(event)
        response_id = _response_id(event)
        if response_id in self.blocked:
            if kind != "response.done":
                return []  # the rest of a blocked response, audio included
            self.blocked.discard(response_id)
            for slot in response_slots(event, Api.OPENAI_REALTIME):
                slot.set("")
            self._response_done(event)
            return [orjson.dumps(event).decode()]
        outs: list[Frame] = [frame]
        guard = self.filters.get(response_id) if kind in GUARDED_EVENTS else None
        if guard is not None:
            try:
                events = guard.feed(event)
                if kind == "response.done":
                    events += await guard.finish()
            except GatewayError as exc:
                return await self._block(response_id, guard, exc)
            outs = [orjson.dumps(e).decode() for e in events]
        if kind == "response.done":
            self.filters.pop(response_id, None)
            self._response_done(event)
        return outs

    async def _block(self, response_id: str, guard: StreamFilter, exc: GatewayError) -> list[Frame]:
        """A guardrail stopped a response: the client gets an error event, the provider a cancel, and the
        rest of the response is dropped (its `response.done` still comes, text blanked, for accounting)."""
        self.filters.pop(response_id, None)
        self.blocked.add(response_id)
        await self.to_upstream.put(orjson.dumps({"type": "response.cancel", "response_id": response_id}).decode())
        return [realtime_error(exc)]

    async def _response_created(self, event: dict) -> None:
        response_id = _response_id(event)
        if self.pending:
            ctx = self.active[response_id] = self._take_pending()
            self._guard(response_id, ctx)
            return
        # The provider started a response by itself (server-side turn detection): reserve for it now.
        ctx = self._response_context()
        if not await self._admit(ctx, {}, refusable=False):
            return
        self.active[response_id] = ctx
        self._guard(response_id, ctx)

    def _guard(self, response_id: str, ctx: RequestContext) -> None:
        if self.guarded:
            guard = guardrails.stream_filter(ctx, Api.OPENAI_REALTIME)
            if guard is not None:
                self.filters[response_id] = guard

    def _create_refused(self, event: dict) -> None:
        """The provider's `error` names a `response.create` still waiting for its response (by the client's
        `event_id`): that response never starts, so it is recorded and its budget hold released now, not
        when the session ends."""
        error = event.get("error") if isinstance(event.get("error"), dict) else {}
        event_id = error.get("event_id")
        ctx = self.creates.pop(event_id, None) if isinstance(event_id, str) else None
        if ctx is None:
            return
        self.pending.remove(ctx)
        ctx.status = 400
        ctx.error_type = error["type"] if isinstance(error.get("type"), str) else "invalid_request_error"
        self.observed.finished(ctx, pipeline.finish(ctx))

    def _response_done(self, event: dict) -> None:
        response = event.get("response") or {}
        response_id = _response_id(event)
        ctx = self.active.pop(response_id, None)
        if ctx is None:
            ctx = self._take_pending() if self.pending else self._response_context()
        used = RealtimeUsage.from_response_done(event)
        ctx.tokens = used.tokens()
        ctx.pricing = lambda prices: realtime_cost(used, prices)
        status = response.get("status")
        if status == "failed":
            ctx.status, ctx.error_type = 502, "upstream_error"
        elif status in ("cancelled", "incomplete"):
            ctx.error_type = str(status)
        self.observed.finished(ctx, pipeline.finish(ctx), response_id, status if isinstance(status, str) else "",
                               (used.audio_input, used.audio_output))

    async def _write_client(self) -> None:
        """Sends until the Close item. A client socket that fails keeps the queue draining, so nothing that
        waits on it (the reader, `end`) waits forever for a client that is gone."""
        gone = False
        while True:
            item = await self.to_client.get()
            try:
                if isinstance(item, Close):
                    await self.close_client(item.code)
                elif not gone:
                    await self.send_client(item)
                    self.observed.relayed_to_client()
            except Exception:  # noqa: BLE001 - the client went away; its disconnect ends the session
                gone = True
            if isinstance(item, Close):
                self.ended.set()
                return

    # -- ending --------------------------------------------------------------------------------------------
    async def end(self, code: int, last_event: str | None = None, *, error_type: str = "") -> None:
        """End from the gateway's or the provider's side: the client gets `last_event` (an error event)
        after every frame already queued, then a close with `code`; the provider's socket is closed."""
        if self.ending:
            return
        self.ending = True
        while not self.to_upstream.empty():  # frames no one will send; frees a client frame waiting for room
            self.to_upstream.get_nowait()
        if error_type:
            self.record.status, self.record.error_type = (429 if code == BUDGET_CLOSE_CODE else 502), error_type
        if last_event is not None:
            await self.to_client.put(last_event)
        await self.to_client.put(Close(code))
        await self._close_upstream(1000)

    async def client_closed(self, code: int | None) -> None:
        """The client's socket closed (or the server is stopping): close the provider's with the same code,
        stop relaying and account for the session."""
        if not self.ending:
            self.ending = True
            if code not in (1000, 1001, 1005, None):  # 1005: a browser's close() without a code
                self.record.error_type = f"client_closed_{code}"
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self._close_upstream(sendable(code))
        self._finish()

    async def _close_upstream(self, code: int) -> None:
        try:
            await asyncio.wait_for(self.upstream.close(code), timeout=5)
        except Exception:  # noqa: BLE001 - a provider socket that is already gone
            pass

    def _finish(self) -> None:
        # Responses still open are cut by the session's end: failed with the session's error when the provider
        # or a budget ended it, else the client left them.
        failed = self.record.status >= 400
        for ctx in [*self.pending, *self.active.values()]:
            ctx.status, ctx.error_type = (self.record.status, self.record.error_type) if failed else (499, "session_closed")
            self.observed.finished(ctx, pipeline.finish(ctx))
        self.pending.clear()
        self.active.clear()
        record = self.record
        record.tokens = type(record.tokens)()
        record.pricing = lambda prices: None
        self.observed.closed(pipeline.finish(record))


def _response_id(event: dict) -> str:
    response = event.get("response")
    if isinstance(response, dict):
        return str(response.get("id") or "")
    return str(event.get("response_id") or "")


def _event(frame: str) -> dict | None:
    try:
        event = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None
