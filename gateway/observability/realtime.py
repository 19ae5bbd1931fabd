"""Realtime sessions in the metrics and traces every HTTP route has (gateway/observability/asgi.py does it for
HTTP; a WebSocket passes that layer untouched).

Metrics use the HTTP routes' names where they apply: each response (`realtime/response`) is a request in
`gateway_requests_total`, `gateway_request_duration_seconds`, tokens, cost and guardrail results, and is in
`gateway_inflight_requests` from its admission to its `response.done`; the session (`realtime/session`,
refusals before the upgrade included) is one more request when it ends. WebSocket-only:
`gateway_realtime_sessions_open`, `gateway_realtime_frames_total{direction}` and
`gateway_realtime_session_duration_seconds`.

Traces: one SERVER span per session, from the handshake to the close, and a child per response carrying its
gen_ai usage; no event content, so never audio, text or a key.

Cost on the relay: a frame adds one integer increment here, added to the Prometheus counter in batches. A
response is recorded (metrics and its span) in a loop callback scheduled after its `response.done` frame was
queued for the client, so no frame waits on it; spans are exported by the SDK's own worker thread.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from opentelemetry import context as otel_context

from gateway.observability import genai, metrics, tracing

logger = logging.getLogger(__name__)
FLUSH_FRAMES = 1000  # frames counted locally before they are added to the shared counter
TO_PROVIDER, TO_CLIENT = "to_provider", "to_client"


@dataclass
class Finished:
    """A response accounted for and waiting to be observed."""

    ctx: object      # gateway.context.RequestContext
    event: object    # gateway.usage.records.UsageEvent
    response_id: str = ""
    status: str = ""  # the provider's response.status: completed, cancelled, failed, incomplete
    audio: tuple[int, int] = (0, 0)  # audio tokens in, out


@dataclass
class SessionObservation:
    """One realtime session as /metrics and the trace see it, from the handshake on."""

    span: object = None
    token: object = None
    route: str = ""
    endpoint: str = ""
    model: str = ""
    provider: str = ""
    to_provider: int = 0
    to_client: int = 0
    unflushed_provider: int = 0
    unflushed_client: int = 0
    responses: int = 0
    inflight: set[int] = field(default_factory=set)  # id() of the admitted response contexts not yet observed
    waiting: list[Finished] = field(default_factory=list)

    @classmethod
    def begin(cls, scope: dict) -> SessionObservation:
        return cls(span=tracing.start_session(scope))

    # -- the handshake ---------------------------------------------------------------------------------
    def refused(self, exc, *, route: str, endpoint: str, provider: str = "") -> None:
        """The handshake was answered with `exc` (an HTTP error). `endpoint` only when it exists;
        `provider` when the provider was tried and failed."""
        metrics.record_session(endpoint=endpoint, model="", provider="", route=route, status=exc.status,
                               duration=None)
        if provider:
            metrics.child(metrics.upstream_attempts, provider, metrics.attempt_outcome(exc.status, "error")).inc()
        if self.span is not None:
            attributes = {"http.response.status_code": exc.status, "error.type": exc.error_type or str(exc.status)}
            if endpoint:
                attributes.update({"gateway.endpoint": endpoint, "gen_ai.request.model": endpoint})
            tracing.end_span(self.span, attributes, failed=exc.status >= 500)

    def opened(self, session) -> None:
        """The upgrade is accepted: the session span becomes the parent of what the session's tasks trace."""
        target = session.link.target
        self.route = session.record.route
        self.endpoint, self.model, self.provider = session.endpoint.name, target.name, target.provider
        metrics.realtime_sessions_open.inc()
        metrics.child(metrics.upstream_attempts, self.provider, "success").inc()
        if self.span is not None:
            self.span.update_name(f"realtime {self.endpoint}")
            self.span.set_attributes({
                "http.response.status_code": 101, "gateway.request_id": session.id,
                "gen_ai.operation.name": genai.operation(self.route),
                "gen_ai.request.model": self.endpoint, "gen_ai.provider.name": genai.provider_name(self.provider),
                "gen_ai.response.model": target.model_name, "gateway.model": self.model,
                "gateway.endpoint": self.endpoint, "gateway.route": self.route,
                "gateway.key_name": session.key.name})
            self.token = tracing.make_current(self.span)

    # -- the relay ------------------------------------------------------------------------------------
    def relayed_to_provider(self) -> None:
        self.to_provider += 1
        self.unflushed_provider += 1
        if self.unflushed_provider >= FLUSH_FRAMES:
            self.flush_frames()

    def relayed_to_client(self) -> None:
        self.to_client += 1
        self.unflushed_client += 1
        if self.unflushed_client >= FLUSH_FRAMES:
            self.flush_frames()

    def flush_frames(self) -> None:
        if self.unflushed_provider:
            metrics.child(metrics.realtime_frames, self.endpoint, TO_PROVIDER).inc(self.unflushed_provider)
            self.unflushed_provider = 0
        if self.unflushed_client:
            metrics.child(metrics.realtime_frames, self.endpoint, TO_CLIENT).inc(self.unflushed_client)
            self.unflushed_client = 0

    # -- responses ------------------------------------------------------------------------------------
    def admitted(self, ctx) -> None:
        """A response passed its budget and rate limits: in flight until observed."""
        self.inflight.add(id(ctx))
        metrics.inflight.inc()

    def finished(self, ctx, event, response_id: str = "", status: str = "", audio: tuple[int, int] = (0, 0)) -> None:
        """A response accounted for (`event` from pipeline.finish); observed by `record_soon`."""
        if event is not None:
            self.waiting.append(Finished(ctx, event, response_id, status, audio))
        elif id(ctx) in self.inflight:
            self.inflight.discard(id(ctx))
            metrics.inflight.dec()

    def record_soon(self) -> None:
        """Observe the waiting responses in a callback after the frames already queued."""
        if self.waiting:
            waiting, self.waiting = self.waiting, []
            asyncio.get_running_loop().call_soon(self._record, waiting)

    def _record(self, waiting: list[Finished]) -> None:
        for item in waiting:
            self._response(item)
        self.flush_frames()

    def _response(self, item: Finished) -> None:
        ctx, event = item.ctx, item.event
        if id(ctx) in self.inflight:
            self.inflight.discard(id(ctx))
            metrics.inflight.dec()
        self.responses += 1
        metrics.record_request(
            endpoint=event.endpoint_name, model=event.model_name, provider=event.provider, route=event.route,
            status=event.status_code, duration=event.latency_ms / 1000, overhead_seconds=None, ttft=None,
            input_tokens=event.input_tokens, output_tokens=event.output_tokens, cached_tokens=event.cached_tokens,
            cost=float(event.cost_usd) if event.cost_usd else None, attempts=(), guardrails=event.guardrails)
        if self.span is not None:
            end = time.time_ns()
            tracing.finished_child(self.span, f"{genai.operation(event.route)} {event.endpoint_name}",
                                   _response_attributes(item), end - int(event.latency_ms * 1_000_000), end,
                                   failed=event.status_code >= 500)

    # -- the close ------------------------------------------------------------------------------------
    def closed(self, event) -> None:
        """The session is over and accounted for (`event`: its session record). Responses still waiting
        are observed now: there are no frames left to hold up."""
        waiting, self.waiting = self.waiting, []
        self._record(waiting)
        for _ in range(len(self.inflight)):
            metrics.inflight.dec()
        self.inflight.clear()
        metrics.realtime_sessions_open.dec()
        status = event.status_code if event is not None else 500
        metrics.record_session(endpoint=self.endpoint, model=self.model, provider=self.provider,
                               route=self.route, status=status,
                               duration=event.latency_ms / 1000 if event is not None else None,
                               guardrails=event.guardrails if event is not None else ())
        if event is not None and logger.isEnabledFor(logging.INFO):
            self._log(event)
        if self.span is not None:
            attributes = {"gateway.realtime.responses": self.responses,
                          "gateway.realtime.frames_to_provider": self.to_provider,
                          "gateway.realtime.frames_to_client": self.to_client}
            if event is not None and event.error_type:
                attributes["error.type"] = event.error_type
            if event is not None and event.guardrails:
                attributes["gateway.guardrails"] = [f"{r['name']}:{r['action']}" for r in event.guardrails]
            tracing.end_span(self.span, attributes, failed=status >= 500)

    def _log(self, event) -> None:
        """One line per session when it ends, as HTTP requests have (gateway/observability/asgi.py), with the
        same JSON fields where they apply."""
        fields = {"request_id": event.request_id, "method": "GET", "path": "/gateway/openai/v1/realtime",
                  "route": event.route, "endpoint": event.endpoint_name, "model": event.model_name,
                  "provider": event.provider, "status": event.status_code,
                  "duration_ms": round(event.latency_ms, 2), "error_type": event.error_type or None}
        logger.info("WS /gateway/openai/v1/realtime %s endpoint=%s model=%s duration_ms=%.2f responses=%d "
                    "frames_to_provider=%d frames_to_client=%d%s", event.status_code, event.endpoint_name or "-",
                    event.model_name or "-", event.latency_ms, self.responses, self.to_provider, self.to_client,
                    f" error={event.error_type}" if event.error_type else "", extra=fields)

    def detach(self) -> None:
        """Undo `opened`'s current span, in the task that made it current."""
        if self.token is not None:
            otel_context.detach(self.token)
            self.token = None


def _response_attributes(item: Finished) -> dict:
    ctx, event = item.ctx, item.event
    attributes = {
        "gen_ai.operation.name": genai.operation(event.route), "gen_ai.request.model": event.endpoint_name,
        "gen_ai.provider.name": genai.provider_name(event.provider), "gateway.model": event.model_name,
        "gateway.endpoint": event.endpoint_name, "gateway.route": event.route,
        "gateway.request_id": event.request_id,
        "gen_ai.usage.input_tokens": event.input_tokens, "gen_ai.usage.output_tokens": event.output_tokens,
    }
    link = ctx.outcome.link
    if link is not None:
        attributes["gen_ai.response.model"] = link.target.model_name
    if item.response_id:
        attributes["gen_ai.response.id"] = item.response_id
    if item.status:
        attributes["gen_ai.response.finish_reasons"] = [item.status]
    if event.cached_tokens:
        attributes["gen_ai.usage.cache_read.input_tokens"] = event.cached_tokens
    audio_in, audio_out = item.audio
    if audio_in:
        attributes["gateway.usage.audio_input_tokens"] = audio_in
    if audio_out:
        attributes["gateway.usage.audio_output_tokens"] = audio_out
    if event.cost_usd is not None:
        attributes["gateway.cost_usd"] = float(event.cost_usd)
    if ctx.reservation is not None:
        attributes["gateway.budget"] = "reserved"
    elif event.error_type == "budget_exceeded":
        attributes["gateway.budget"] = "exceeded"
    if event.guardrails:
        attributes["gateway.guardrails"] = [f"{r['name']}:{r['action']}" for r in event.guardrails]
    if event.error_type:
        attributes["error.type"] = event.error_type
    return attributes
