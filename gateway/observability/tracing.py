"""OpenTelemetry traces following the GenAI semantic conventions, exported over OTLP/HTTP (protobuf).

Configured only by the standard variables: tracing is on when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
`OTEL_EXPORTER_OTLP_ENDPOINT` is set (and `OTEL_SDK_DISABLED` is not true); the SDK itself reads the
headers, `OTEL_SERVICE_NAME`, the sampler (`OTEL_TRACES_SAMPLER` / `_ARG`) and the batch queue's bounds
(`OTEL_BSP_*`). Spans go to a BatchSpanProcessor: its worker thread exports them, and a full queue drops
spans rather than wait, so a collector that is down or slow never holds a request. When tracing is off,
every hook here is one `is None` check.

Spans: one SERVER span per gateway request (continuing an incoming W3C `traceparent`), a CLIENT child per
provider attempt (whose context is the `traceparent` sent to the provider) and an INTERNAL child per
guardrail run. A realtime session is one SERVER span from its handshake to its close, with a child per
response (gateway/observability/realtime.py).
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.observability import genai
from gateway.observability.requestid import Scope, current
from gateway.requestlogs.capture import ChatAssembler
from providers import http as provider_http

_tracer: trace.Tracer | None = None
_provider = None
_propagator = TraceContextTextMapPropagator()
_NULL = contextlib.nullcontext()
PROPAGATED = (b"traceparent", b"tracestate")


def wanted(environ=os.environ) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def enabled() -> bool:
    return _tracer is not None


def configure() -> None:
    """Start exporting if the environment asks for it (once per process, at start-up)."""
    global _tracer, _provider
    if _tracer is not None or not wanted():
        return
    # The SDK and the exporter (protobuf, requests) load only when tracing is on: nothing to pay otherwise.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "ai-gateway"}
    _provider = TracerProvider(resource=Resource.create(attributes))
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _tracer = _provider.get_tracer("gateway")
    provider_http.request_hooks.append(_inject)


def shutdown() -> None:
    """Export what is queued (bounded by the exporter's timeout) and stop."""
    global _tracer, _provider
    if _provider is None:
        return
    if _inject in provider_http.request_hooks:
        provider_http.request_hooks.remove(_inject)
    _provider.shutdown()
    _tracer = _provider = None


def _inject(request) -> None:
    """The attempt span (the current one) as the provider's `traceparent`, replacing any the client sent."""
    _propagator.inject(request.headers)


def start_request(obs: Scope, scope: dict) -> object | None:
    """Open the request's span as the current one; returns the token `end_request` needs, or None."""
    if _tracer is None:
        return None
    parent = _incoming(scope)
    span = _tracer.start_span(f"{obs.method} {obs.path}", context=parent, kind=SpanKind.SERVER, attributes={
        "http.request.method": obs.method, "url.path": obs.path, "gateway.request_id": obs.request_id})
    obs.span = span
    return otel_context.attach(trace.set_span_in_context(span, parent))


def _incoming(scope: dict):
    """The client's trace context (W3C `traceparent` / `tracestate` headers), or None."""
    carrier = {name.decode("latin-1"): value.decode("latin-1")
               for name, value in scope.get("headers", ()) if name in PROPAGATED}
    return _propagator.extract(carrier) if carrier else None


def start_session(scope: dict) -> trace.Span | None:
    """A WebSocket session's SERVER span, continuing the handshake's `traceparent`; None when tracing is off."""
    if _tracer is None:
        return None
    return _tracer.start_span(f"GET {scope['path']}", context=_incoming(scope), kind=SpanKind.SERVER,
                              attributes={"http.request.method": "GET", "url.path": scope["path"]})


def make_current(span: trace.Span) -> object:
    """Make `span` the parent of spans started from here on in this task (and tasks it creates); returns the
    token for `otel_context.detach`."""
    return otel_context.attach(trace.set_span_in_context(span))


def end_span(span: trace.Span, attributes: dict, *, failed: bool = False, end_ns: int | None = None) -> None:
    span.set_attributes(attributes)
    if failed:
        span.set_status(Status(StatusCode.ERROR))
    span.end(end_time=end_ns)


def finished_child(parent: trace.Span, name: str, attributes: dict, start_ns: int, end_ns: int, *,
                   failed: bool = False) -> None:
    """A child span of `parent` recorded after the fact, from its start and end times (epoch ns)."""
    if _tracer is None:
        return
    span = _tracer.start_span(name, context=trace.set_span_in_context(parent), start_time=start_ns,
                              attributes=attributes)
    end_span(span, {}, failed=failed, end_ns=end_ns)


def end_request(obs: Scope, token: object) -> None:
    span = obs.span
    try:
        _describe_request(span, obs)
    finally:
        span.end()
        otel_context.detach(token)


def _describe_request(span, obs: Scope) -> None:
    ctx, event = obs.ctx, obs.event
    status = event.status_code if event is not None else obs.status
    attributes: dict = {"http.response.status_code": obs.status}
    if ctx is not None:
        operation = genai.operation(ctx.route)
        span.update_name(f"{operation} {ctx.endpoint.name}")
        attributes.update({
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": ctx.endpoint.name,
            "gateway.endpoint": ctx.endpoint.name,
            "gateway.route": ctx.route,
            "gateway.key_name": ctx.key.name,
            "gateway.attempts": len(ctx.outcome.attempts),
            **genai.request_parameters(ctx.body),
        })
        # Each attribute costs the exporter a few microseconds per span: the rare ones only when they apply.
        if ctx.streaming:
            attributes["gateway.streaming"] = True
        if ctx.reservation is not None:
            attributes["gateway.budget"] = "reserved"
        elif ctx.error_type == "budget_exceeded":
            attributes["gateway.budget"] = "exceeded"
        link = ctx.outcome.link
        if link is not None:
            attributes.update({"gen_ai.provider.name": genai.provider_name(link.target.provider),
                               "gen_ai.response.model": link.target.model_name,
                               "gateway.model": link.target.name})
        reasons = genai.finish_reasons(ctx.answer)
        if reasons:
            attributes["gen_ai.response.finish_reasons"] = reasons
        if ctx.first_byte_at is not None:
            attributes["gateway.time_to_first_token_ms"] = round((ctx.first_byte_at - ctx.started) * 1000, 3)
        if ctx.guardrail_results:
            attributes["gateway.guardrails"] = [f"{r['name']}:{r['action']}" for r in ctx.guardrail_results]
        if len(ctx.outcome.attempts) > 1:
            attributes["gateway.fallback_reason"] = _reason(ctx.outcome.attempts[-2])
        if ctx.endpoint.log_payloads:
            attributes.update(_content(ctx))
    if event is not None:
        attributes.update({
            "gen_ai.usage.input_tokens": event.input_tokens,
            "gen_ai.usage.output_tokens": event.output_tokens,
            "gateway.overhead_ms": round(event.overhead_ms, 3),
        })
        if event.cached_tokens:
            attributes["gen_ai.usage.cache_read.input_tokens"] = event.cached_tokens
        if event.usage_estimated:
            attributes["gateway.usage_estimated"] = True
        if event.cost_usd is not None:
            attributes["gateway.cost_usd"] = float(event.cost_usd)
        if event.error_type:
            attributes["error.type"] = event.error_type
    elif status >= 400:
        attributes["error.type"] = str(status)
    span.set_attributes(attributes)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


def _content(ctx) -> dict:
    """gen_ai.input.messages / gen_ai.output.messages (JSON text), as the request log keeps them: after
    guardrails, a stream's answer as its client received it."""
    found = {}
    messages = genai.input_messages(ctx.body)
    if messages is not None:
        found["gen_ai.input.messages"] = orjson.dumps(messages, default=str).decode()
    answer = ctx.capture.result() if isinstance(ctx.capture, ChatAssembler) else ctx.answer
    output = genai.output_messages(answer)
    if output is not None:
        found["gen_ai.output.messages"] = orjson.dumps(output, default=str).decode()
    return found


def _reason(attempt) -> str:
    return f"{attempt.status}" if attempt.status is not None else "error"


def attempt_span(target, number: int, previous=None):
    """Context manager around one provider attempt (a no-op when tracing is off)."""
    if _tracer is None:
        return _NULL
    return _attempt(target, number, previous)


@contextlib.contextmanager
def _attempt(target, number: int, previous) -> Iterator[None]:
    obs = current.get()
    operation = genai.operation(obs.ctx.route) if obs is not None and obs.ctx is not None else "chat"
    attributes = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": genai.provider_name(target.provider),
        "gen_ai.request.model": target.model_name,
        "gateway.model": target.name,
        "gateway.attempt": number,
    }
    if previous is not None:
        attributes["gateway.fallback_reason"] = _reason(previous)
    with _tracer.start_as_current_span(f"{operation} {target.model_name}", kind=SpanKind.CLIENT,
                                       attributes=attributes, record_exception=False,
                                       set_status_on_exception=False) as span:
        try:
            yield
        except BaseException as exc:
            status = getattr(exc, "status", None)
            span.set_attribute("error.type", getattr(exc, "error_type", "") or type(exc).__name__)
            if status is not None:
                span.set_attribute("gateway.upstream_status", status)
            span.set_status(Status(StatusCode.ERROR))
            raise


def guardrail_span(result: dict):
    """Context manager around one guardrail run; `result` is its usage-record entry, read at the end."""
    if _tracer is None:
        return _NULL
    return _guardrail(result)


@contextlib.contextmanager
def _guardrail(result: dict) -> Iterator[None]:
    with _tracer.start_as_current_span(f"guardrail {result['name']}", attributes={
            "gateway.guardrail.name": result["name"], "gateway.guardrail.stage": result["stage"]},
            record_exception=False, set_status_on_exception=False) as span:
        try:
            yield
        finally:
            span.set_attributes({"gateway.guardrail.action": result["action"],
                                 "gateway.guardrail.passed": result["passed"]})
