"""Prometheus metrics (prometheus-client) and the `/metrics` page.

With several worker processes, set `PROMETHEUS_MULTIPROC_DIR` to an empty directory shared by them (before
they start): each process then writes its values to memory-mapped files there and the page, served by any
worker, sums them (prometheus-client's multiprocess mode). Labels only take bounded values: endpoint,
model, provider, policy and guardrail names from the configuration snapshot, route names from the code,
status codes; never a request id or a string a client chose.

Recording is a dict lookup per metric (labelled children are cached by their label values) and a few
additions; nothing here touches the database.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
# In multiprocess mode values live in the shared files and the page's registry is built per scrape.
_registry = None if MULTIPROCESS else CollectorRegistry(auto_describe=True)

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
SESSION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)

requests_total = Counter("gateway_requests_total", "Requests served, by how they ended.",
                         ("endpoint", "model", "provider", "route", "status_code"), registry=_registry)
request_duration = Histogram("gateway_request_duration_seconds", "Time from request to the end of its answer.",
                             ("endpoint", "model"), buckets=DURATION_BUCKETS, registry=_registry)
overhead = Histogram("gateway_overhead_seconds", "Time the gateway itself added (duration minus upstream waits).",
                     ("endpoint",), buckets=OVERHEAD_BUCKETS, registry=_registry)
time_to_first_token = Histogram("gateway_time_to_first_token_seconds", "Streams: time to the first relayed chunk.",
                                ("endpoint", "model"), buckets=TTFT_BUCKETS, registry=_registry)
tokens_total = Counter("gateway_tokens_total", "Tokens, by kind (input, output, cached).",
                       ("endpoint", "model", "kind"), registry=_registry)
cost_total = Counter("gateway_cost_usd_total", "Cost in USD at the configured prices.", ("endpoint", "model"),
                     registry=_registry)
upstream_attempts = Counter("gateway_upstream_attempts_total", "Calls to providers, by outcome.",
                            ("provider", "outcome"), registry=_registry)
inflight = Gauge("gateway_inflight_requests", "Requests being served now.", registry=_registry,
                 multiprocess_mode="livesum")
circuit_open = Gauge("gateway_circuit_open", "1 while the model's circuit breaker is open (per process, max).",
                     ("model",), registry=_registry, multiprocess_mode="livemax")
budget_spend_ratio = Gauge("gateway_budget_spend_ratio", "Spend in the current window over the policy's amount.",
                           ("policy",), registry=_registry, multiprocess_mode="livemax")
usage_queue_depth = Gauge("gateway_usage_queue_depth", "Usage records waiting to be written.", registry=_registry,
                          multiprocess_mode="livesum")
guardrail_results = Counter("gateway_guardrail_results_total", "Guardrail runs, by outcome.",
                            ("guardrail", "outcome"), registry=_registry)
# Realtime (WebSocket) sessions; their responses and the sessions themselves are also counted above.
realtime_sessions_open = Gauge("gateway_realtime_sessions_open", "Realtime sessions open now.", registry=_registry,
                               multiprocess_mode="livesum")
realtime_frames = Counter("gateway_realtime_frames_total", "Realtime frames relayed, by direction "
                          "(to_provider, to_client).", ("endpoint", "direction"), registry=_registry)
realtime_session_duration = Histogram("gateway_realtime_session_duration_seconds",
                                      "Realtime sessions: time from the upgrade to the close.", ("endpoint", "model"),
                                      buckets=SESSION_BUCKETS, registry=_registry)

_children: dict[tuple, object] = {}


def child(metric, *labels: str):
    """The metric's child for these label values, cached (prometheus-client validates labels per call)."""
    key = (metric, labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found


def attempt_outcome(status: int | None, error: str) -> str:
    """A bounded name for how one provider attempt ended."""
    if not error:
        return "success"
    if status == 429:
        return "rate_limited"
    if status in (408, 504):
        return "timeout"
    if status is not None and status >= 500:
        return "server_error"
    if status is not None and status >= 400:
        return "client_error"
    return "error"


# A guardrail's action in its usage-record entry -> the outcome label.
GUARDRAIL_OUTCOMES = dict(none="passed", sanitize="sanitized", block="blocked", error="error", skipped="skipped")


def record_request(*, endpoint: str, model: str, provider: str, route: str, status: int, duration: float,
                   overhead_seconds: float | None, ttft: float | None, input_tokens: int, output_tokens: int,
                   cached_tokens: int, cost: float | None, attempts: Iterable[tuple[str, str]],
                   guardrails: Iterable[dict]) -> None:
    """One finished request. `attempts` holds (provider, outcome) pairs; names must come from the snapshot."""
    child(requests_total, endpoint, model, provider, route, str(status)).inc()
    child(request_duration, endpoint, model).observe(duration)
    if overhead_seconds is not None:
        child(overhead, endpoint).observe(overhead_seconds)
    if ttft is not None:
        child(time_to_first_token, endpoint, model).observe(ttft)
    if input_tokens:
        child(tokens_total, endpoint, model, "input").inc(input_tokens)
    if output_tokens:
        child(tokens_total, endpoint, model, "output").inc(output_tokens)
    if cached_tokens:
        child(tokens_total, endpoint, model, "cached").inc(cached_tokens)
    if cost:
        child(cost_total, endpoint, model).inc(cost)
    for attempt_provider, outcome in attempts:
        child(upstream_attempts, attempt_provider, outcome).inc()
    for result in guardrails:
        child(guardrail_results, result["name"], GUARDRAIL_OUTCOMES.get(result["action"], "other")).inc()


def record_session(*, endpoint: str, model: str, provider: str, route: str, status: int, duration: float | None,
                   guardrails: Iterable[dict] = ()) -> None:
    """One realtime session over (or refused: `duration` None). Its responses are recorded with
    `record_request`, so the session adds no tokens or cost of its own."""
    child(requests_total, endpoint, model, provider, route, str(status)).inc()
    if duration is not None:
        child(realtime_session_duration, endpoint, model).observe(duration)
    for result in guardrails:
        child(guardrail_results, result["name"], GUARDRAIL_OUTCOMES.get(result["action"], "other")).inc()


def page() -> bytes:
    """The text exposition of every metric (all worker processes' in multiprocess mode)."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(_registry)


def process_exited() -> None:
    """Drop this process's live gauges from the shared files (multiprocess mode) on a clean exit."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(os.getpid())
