"""The ASGI layer every HTTP request passes: its id (accepted or made, echoed on the response, errors
included), and for the gateway's own routes the in-flight gauge, the request span, and at the end the
request's metrics and its log line. Also serves `/metrics`."""
from __future__ import annotations

import hmac
import logging
import time

from django.conf import settings

from gateway.config.snapshot import store
from gateway.observability import metrics, requestid, tracing

logger = logging.getLogger("gateway.requests")
OBSERVED_PREFIX = "/gateway/"


def _header(scope: dict, wanted: bytes) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return value
    return None


def observed(app):
    """Wrap an ASGI app; only `/gateway/` paths get metrics, spans and a log line."""

    async def wrapper(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        obs = requestid.begin(requestid.from_header(_header(scope, b"x-request-id")), scope["method"],
                              scope["path"])
        id_header = (b"x-request-id", obs.request_id.encode())

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                obs.status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        if not obs.path.startswith(OBSERVED_PREFIX):
            return await app(scope, receive, send_with_id)
        token = tracing.start_request(obs, scope)
        metrics.inflight.inc()
        try:
            await app(scope, receive, send_with_id)
        finally:
            metrics.inflight.dec()
            try:
                finished(obs)
            finally:
                if token is not None:
                    tracing.end_request(obs, token)

    return wrapper


def finished(obs: requestid.Scope) -> None:
    """Metrics and the log line of a request whose response is over; never raises into the server."""
    try:
        duration = time.perf_counter() - obs.started
        event, ctx = obs.event, obs.ctx
        if event is None:
            labels = dict(endpoint="", model="", provider="", route="", status=obs.status or 500)
            timings = dict(overhead_seconds=None, ttft=None)
        else:
            # A refusal before the pipeline names the endpoint the client asked for: a label only if it exists.
            known = ctx is not None or event.endpoint_name in getattr(store.current, "endpoints", {})
            labels = dict(endpoint=event.endpoint_name if known else "", model=event.model_name,
                          provider=event.provider, route=event.route, status=event.status_code)
            timings = dict(overhead_seconds=event.overhead_ms / 1000,
                           ttft=event.ttfb_ms / 1000 if event.ttfb_ms is not None else None)
        attempts = [(a.provider, metrics.attempt_outcome(a.status, a.error)) for a in ctx.outcome.attempts] \
            if ctx is not None else ()
        metrics.record_request(
            endpoint=labels["endpoint"], model=labels["model"], provider=labels["provider"], route=labels["route"],
            status=labels["status"], duration=duration, **timings,
            input_tokens=event.input_tokens if event else 0, output_tokens=event.output_tokens if event else 0,
            cached_tokens=event.cached_tokens if event else 0,
            cost=float(event.cost_usd) if event is not None and event.cost_usd else None,
            attempts=attempts, guardrails=event.guardrails if event else ())
        if logger.isEnabledFor(logging.INFO):
            _log(obs, labels, duration, event)
    except Exception:  # noqa: BLE001 - observing must never break serving
        logger.exception("recording request %s failed", obs.request_id)


def _log(obs: requestid.Scope, labels: dict, duration: float, event) -> None:
    fields = {"method": obs.method, "path": obs.path, "route": labels["route"], "endpoint": labels["endpoint"],
              "model": labels["model"], "provider": labels["provider"], "status": labels["status"],
              "duration_ms": round(duration * 1000, 2)}
    if event is not None:
        fields.update(overhead_ms=round(event.overhead_ms, 3), attempts=event.attempts,
                      ttft_ms=round(event.ttfb_ms, 2) if event.ttfb_ms is not None else None,
                      input_tokens=event.input_tokens, output_tokens=event.output_tokens,
                      error_type=event.error_type or None)
    logger.info("%s %s %s endpoint=%s model=%s duration_ms=%.2f overhead_ms=%s", obs.method, obs.path,
                labels["status"], labels["endpoint"] or "-", labels["model"] or "-", fields["duration_ms"],
                fields.get("overhead_ms", "-"), extra=fields)


async def metrics_page(scope, receive, send) -> None:
    """GET /metrics: the Prometheus text format; with GATEWAY_METRICS_TOKEN set, only for that bearer token."""
    token = settings.GATEWAY_METRICS_TOKEN
    if token:
        presented = (_header(scope, b"authorization") or b"").decode("latin-1")
        scheme, _, value = presented.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            await _respond(send, 401, b'{"error":"A valid bearer token is required for /metrics."}',
                           b"application/json", [(b"www-authenticate", b"Bearer")])
            return
    if scope["method"] not in ("GET", "HEAD"):
        await _respond(send, 405, b'{"error":"Use GET."}', b"application/json", [(b"allow", b"GET, HEAD")])
        return
    body = metrics.page()
    await _respond(send, 200, body if scope["method"] == "GET" else b"", metrics.CONTENT_TYPE.encode())


async def _respond(send, status: int, body: bytes, content_type: bytes, extra=()) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body})
