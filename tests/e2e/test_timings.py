"""The timing headers and usage records add up: the gateway's overhead is the request's duration minus the
provider's wait, so it never exceeds the duration, on plain, streamed, failed and retried requests alike."""
from __future__ import annotations

import httpx
import openai
import pytest

from tests.e2e.conftest import endpoint, provider_config
from tests.e2e.db import wait_rows
from tests.e2e.harness import make_gateway

ROUNDS = 15


@pytest.fixture(scope="module")
def gateway(e2e_root, fake_openai, fake_anthropic, fake_gemini):
    config = provider_config(fake_openai, fake_anthropic, fake_gemini)
    config["models"].append({"name": "t-solo", "provider": "openai", "model_name": "t-solo", "secret": "openai-key"})
    config["endpoints"] = [
        endpoint("t-fake", "fake-echo"),  # no provider wait at all: overhead is the whole duration
        endpoint("t-openai", "gpt"),
        {**endpoint("t-retry", "t-solo"), "retries": 1, "circuit_breaker": {"threshold": 0}},
    ]
    server = make_gateway(e2e_root, "timings", config)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sdk(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/gateway/mlflow/v1", api_key=gateway.keys["default"],
                         max_retries=0, timeout=20)


def timings(headers) -> tuple[float, float]:
    return float(headers["x-gateway-duration-ms"]), float(headers["x-gateway-overhead-ms"])


def ask(sdk: openai.OpenAI, model: str, **extra):
    return sdk.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "how long did this take"}], **extra)


def assert_adds_up(headers) -> str:
    duration, overhead = timings(headers)
    assert 0 <= overhead <= duration, (duration, overhead)
    return headers["x-request-id"]


def test_overhead_never_exceeds_duration_on_any_kind_of_request(gateway, sdk, fake_openai):
    ids = []
    for _ in range(ROUNDS):
        ids.append(assert_adds_up(ask(sdk, "t-fake").headers))
        ids.append(assert_adds_up(ask(sdk, "t-openai").headers))
        streamed = ask(sdk, "t-fake", stream=True)  # headers are sent with the first chunk
        ids.append(assert_adds_up(streamed.headers))
        assert list(streamed.parse())
        streamed = ask(sdk, "t-openai", stream=True)
        ids.append(assert_adds_up(streamed.headers))
        assert list(streamed.parse())
        fake_openai.fail("gpt-4o-mini", 400)
        with pytest.raises(openai.BadRequestError) as failed:
            ask(sdk, "t-openai")
        ids.append(assert_adds_up(failed.value.response.headers))
        fake_openai.fail("t-solo", 503)
        retried = ask(sdk, "t-retry")
        assert retried.headers["x-gateway-attempts"] == "2"
        ids.append(assert_adds_up(retried.headers))

    marks = ",".join("?" * len(ids))
    records = wait_rows(gateway, f"SELECT request_id, latency_ms, overhead_ms FROM gateway_usagerecord "
                        f"WHERE request_id IN ({marks})", *ids, expect=lambda found: len(found) == len(ids))
    assert len(records) == len(ids)
    assert [r for r in records if not 0 <= r[2] <= r[1]] == []


def test_refused_requests_add_up_in_their_records_too(gateway):
    """A request refused before any provider is called spends all its time in the gateway."""
    response = httpx.post(f"{gateway.url}/gateway/mlflow/v1/chat/completions", json={
        "model": "t-fake", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
        headers={"Authorization": f"Bearer {gateway.keys['default']}"})
    assert response.status_code == 400
    records = wait_rows(gateway, "SELECT latency_ms, overhead_ms FROM gateway_usagerecord "
                        "WHERE endpoint_name = 't-fake' AND status_code = 400")
    assert records and all(overhead <= latency for latency, overhead in records)
