"""Metric recording and the /metrics page (its token, its format), in-process."""
from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.observability import metrics
from gateway.observability.asgi import metrics_page


async def get(headers=(), method="GET") -> tuple[int, dict, bytes]:
    sent = []

    async def send(message):
        sent.append(message)

    await metrics_page({"type": "http", "method": method, "path": "/metrics", "headers": list(headers)}, None, send)
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]


def sample(name: str, **labels) -> float:
    status, _, body = 0, None, metrics.page()
    for family in text_string_to_metric_families(body.decode()):
        for found in family.samples:
            if found.name == name and labels.items() <= found.labels.items():
                status += found.value
    return status


@pytest.mark.parametrize("status, error, outcome", [
    (None, "", "success"), (429, "x", "rate_limited"), (504, "x", "timeout"), (503, "x", "server_error"),
    (400, "x", "client_error"), (None, "refused", "error"),
])
def test_attempt_outcomes_are_a_small_set(status, error, outcome):
    assert metrics.attempt_outcome(status, error) == outcome


def test_a_recorded_request_moves_its_series():
    before = sample("gateway_requests_total", endpoint="unit-ep", status_code="200")
    metrics.record_request(endpoint="unit-ep", model="m", provider="openai", route="unified/chat", status=200,
                           duration=0.01, overhead_seconds=0.0004, ttft=None, input_tokens=3, output_tokens=4,
                           cached_tokens=1, cost=0.5, attempts=[("openai", "server_error"), ("openai", "success")],
                           guardrails=[{"name": "g", "action": "sanitize"}])
    assert sample("gateway_requests_total", endpoint="unit-ep", status_code="200") == before + 1
    assert sample("gateway_tokens_total", endpoint="unit-ep", kind="cached") >= 1
    assert sample("gateway_guardrail_results_total", guardrail="g", outcome="sanitized") >= 1
    assert sample("gateway_overhead_seconds_bucket", endpoint="unit-ep", le="0.0005") >= 1


async def test_the_page_is_open_without_a_token(settings):
    settings.GATEWAY_METRICS_TOKEN = ""
    status, headers, body = await get()
    assert status == 200 and headers[b"content-type"].startswith(b"text/plain")
    assert "gateway_inflight_requests" in {f.name for f in text_string_to_metric_families(body.decode())}


async def test_the_page_wants_the_bearer_token_when_one_is_set(settings):
    settings.GATEWAY_METRICS_TOKEN = "s3cret-token"
    assert (await get())[0] == 401
    assert (await get([(b"authorization", b"Bearer wrong")]))[0] == 401
    assert (await get([(b"authorization", b"Bearer s3cret-token")]))[0] == 200
    assert (await get([(b"authorization", b"Bearer s3cret-token")], method="POST"))[0] == 405
