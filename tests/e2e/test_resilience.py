"""Resilient routing against the real server and fake upstreams on 127.0.0.1 that fail on demand: fallback,
same-model retries, refused connections, the total deadline, stream cuts and stalls, circuit breakers and
the traffic split; the usage record names the model that answered and counts the attempts."""
from __future__ import annotations

import json
import math
import statistics
import time
from collections import Counter

import httpx
import openai
import pytest

from tests.e2e.conftest import provider_config
from tests.e2e.db import wait_rows
from tests.e2e.harness import free_port, make_gateway
from tests.fakes.base import Behaviour

IDLE_TIMEOUT = 0.3
DEADLINE = 0.5
COOLDOWN = 0.5
SPLIT_WEIGHTS = {"split-a": 0.15, "split-b": 0.35, "split-c": 0.5}
SPLIT_SAMPLES = 1300


def model(name: str, secret: str = "openai-key", provider: str = "openai") -> dict:
    return {"name": name, "provider": provider, "model_name": name, "secret": secret}


def link(name: str, order: int | None = None, **extra) -> dict:
    if order is None:
        return {"model": name, **extra}
    return {"model": name, "linkage": "fallback", "order": order, **extra}


@pytest.fixture(scope="module")
def gateway(e2e_root, fake_openai, fake_anthropic, fake_gemini):
    config = provider_config(fake_openai, fake_anthropic, fake_gemini)
    config["secrets"].append({"name": "dead", "provider": "openai", "values": {"api_key": "sk-dead-0123456789"},
                              "auth_config": {"api_base": f"http://127.0.0.1:{free_port()}/v1"}})
    config["secrets"].append({"name": "capped", "provider": "openai", "values": {"api_key": "sk-capped-0123456789"},
                              "auth_config": {"api_base": f"{fake_openai.url}/v1", "timeout": {"total": DEADLINE}}})
    names = ["r-primary", "r-backup", "r-solo", "r-slow", "r-stream", "r-stream-backup", "r-flaky",
             "r-flaky-backup", "r-f1", "r-f2", "r-f3", "r-served"]
    config["models"] += [model(n) for n in names] + [model("r-dead", secret="dead"), model("r-capped", "capped")]
    config["models"] += [{"name": f"split-{n}", "provider": "fake", "model_name": n} for n in "abc"]
    config["endpoints"] = [
        {"name": "fallback", "models": [link("r-primary"), link("r-backup", 1)]},
        {"name": "solo", "models": [link("r-solo")]},
        {"name": "refused", "models": [link("r-dead"), link("r-served", 1)],
         "circuit_breaker": {"threshold": 100000}},
        {"name": "direct", "models": [link("r-served")]},
        {"name": "deadline", "timeout": DEADLINE, "models": [link("r-slow")]},
        {"name": "capped", "models": [link("r-capped"), link("r-backup", 1)]},
        {"name": "stream", "stream_idle_timeout": IDLE_TIMEOUT, "circuit_breaker": {"threshold": 100000},
         "models": [link("r-stream"), link("r-stream-backup", 1)]},
        {"name": "breaker", "retries": 0, "circuit_breaker": {"threshold": 3, "cooldown_seconds": COOLDOWN},
         "models": [link("r-flaky"), link("r-flaky-backup", 1)]},
        {"name": "limited", "fallback": {"max_attempts": 1},
         "models": [link("r-f1"), link("r-f2", 1), link("r-f3", 2)]},
        {"name": "native-claude", "models": [link("claude")]},
        {"name": "native-gemini", "models": [link("gemini-flash")]},
        {"name": "split", "routing_strategy": "traffic_split",
         "models": [link(name, weight=weight) for name, weight in SPLIT_WEIGHTS.items()]},
    ]
    server = make_gateway(e2e_root, "resilience", config)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sdk(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/gateway/mlflow/v1", api_key=gateway.keys["default"],
                         max_retries=0, timeout=20)


@pytest.fixture(scope="module")
def http(gateway):
    with httpx.Client(base_url=f"{gateway.url}/gateway/mlflow/v1", timeout=20,
                      headers={"Authorization": f"Bearer {gateway.keys['default']}"}) as client:
        yield client


def ask(sdk: openai.OpenAI, endpoint: str, text: str = "hi"):
    return sdk.chat.completions.with_raw_response.create(model=endpoint, messages=[{"role": "user", "content": text}])


def stream_events(http: httpx.Client, endpoint: str) -> tuple[int, list[str], float]:
    """Status, the `data:` payloads, and the seconds the whole stream took."""
    started = time.perf_counter()
    with http.stream("POST", "/chat/completions", json={
            "model": endpoint, "stream": True, "messages": [{"role": "user", "content": "one two three four"}]}) as r:
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    return r.status_code, events, time.perf_counter() - started


def test_500_falls_back(gateway, sdk, fake_openai):
    fake_openai.fail("r-primary", 500)
    raw = ask(sdk, "fallback", "fallback please")
    assert raw.parse().choices[0].message.content == "echo: fallback please"
    assert (raw.headers["x-gateway-model"], raw.headers["x-gateway-attempts"]) == ("r-backup", "2")
    assert wait_rows(gateway, "SELECT model_name, attempts, status_code FROM gateway_usagerecord WHERE request_id = ?",
                     raw.headers["x-request-id"]) == [("r-backup", 2, 200)]


def test_429_with_retry_after_is_retried_on_the_same_model(sdk, fake_openai):
    fake_openai.fail("r-solo", 429, headers={"retry-after": "0.3"})
    started = time.perf_counter()
    raw = ask(sdk, "solo")
    elapsed = time.perf_counter() - started
    assert (raw.headers["x-gateway-model"], raw.headers["x-gateway-attempts"]) == ("r-solo", "2")
    assert len(fake_openai.requests_for("r-solo")) == 2
    assert 0.3 <= elapsed < 2


def test_fallback_max_attempts_bounds_the_fallbacks_and_lists_attempts(sdk, fake_openai):
    fake_openai.fail("r-f1", 503)
    fake_openai.fail("r-f2", 502)
    with pytest.raises(openai.APIStatusError) as info:
        ask(sdk, "limited")
    assert info.value.status_code == 502
    message = info.value.body["message"]
    assert "All 2 attempts failed" in message and "r-f1:" in message and "r-f2:" in message
    assert fake_openai.requests_for("r-f3") == []


def test_refused_connection_falls_back_within_milliseconds(http, capsys):
    """The refused connect to the dead primary is the only extra work on the failover path, so the
    difference of the medians of X-Gateway-Duration-Ms is its cost."""
    def duration(endpoint: str) -> float:
        response = http.post("/chat/completions", json={"model": endpoint,
                                                        "messages": [{"role": "user", "content": "x"}]})
        assert response.status_code == 200 and response.headers["x-gateway-model"] == "r-served"
        return float(response.headers["x-gateway-duration-ms"])

    for endpoint in ("refused", "direct"):
        duration(endpoint)  # warm the pools
    failover, direct = [], []
    for _ in range(40):
        failover.append(duration("refused"))
        direct.append(duration("direct"))
    added = statistics.median(failover) - statistics.median(direct)
    with capsys.disabled():
        print(f"\nfailover after a refused connection: median {statistics.median(failover):.2f} ms vs "
              f"{statistics.median(direct):.2f} ms direct -> added {added:.2f} ms")
    assert added < 50


def test_slow_upstream_beyond_the_deadline_is_504_at_the_deadline(sdk, fake_openai):
    fake_openai.behave("r-slow", Behaviour(delay=3.0), times=1)
    started = time.perf_counter()
    with pytest.raises(openai.APIStatusError) as info:
        ask(sdk, "deadline")
    elapsed = time.perf_counter() - started
    assert info.value.status_code == 504 and "total timeout" in info.value.body["message"]
    assert DEADLINE * 0.9 <= elapsed < DEADLINE + 0.7
    assert len(fake_openai.requests_for("r-slow")) == 1


def test_a_models_own_total_timeout_moves_on_to_the_fallback(sdk, fake_openai):
    fake_openai.behave("r-capped", Behaviour(delay=3.0), times=1)
    started = time.perf_counter()
    raw = ask(sdk, "capped")
    elapsed = time.perf_counter() - started
    assert (raw.headers["x-gateway-model"], raw.headers["x-gateway-attempts"]) == ("r-backup", "2")
    assert DEADLINE * 0.9 <= elapsed < DEADLINE + 0.7


def test_stream_cut_after_two_chunks_ends_with_an_error_event_and_no_done(http, fake_openai):
    fake_openai.behave("r-stream", Behaviour(cut_after=2), times=1)
    status, events, _ = stream_events(http, "stream")
    assert status == 200 and len(events) == 3
    assert "[DONE]" not in events
    error = json.loads(events[-1])["error"]
    assert error["type"] == "incomplete_stream" and error["code"] is None  # OpenAI's code: a string or null
    assert fake_openai.requests_for("r-stream-backup") == []


def _sse_payloads(raw: str) -> list[dict]:
    return [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: {")]


NATIVE_CUTS = {
    # route: (path, body, upstream model, what the terminator looks like, the error event's shape)
    "openai-chat": ("/gateway/openai/v1/chat/completions",
                    {"model": "stream", "stream": True, "messages": [{"role": "user", "content": "one two three"}]},
                    "r-stream", lambda raw: "[DONE]" in raw,
                    lambda event: set(event) == {"error"} and event["error"]["code"] is None),
    "openai-responses": ("/gateway/openai/v1/responses", {"model": "stream", "stream": True, "input": "one two"},
                         "r-stream", lambda raw: "response.completed" in raw,
                         lambda event: event["type"] == "error" and event["code"] == "incomplete_stream"),
    "anthropic": ("/gateway/anthropic/v1/messages",
                  {"model": "native-claude", "stream": True, "max_tokens": 50,
                   "messages": [{"role": "user", "content": "one two three"}]},
                  "claude-haiku-4-5", lambda raw: "message_stop" in raw,
                  lambda event: event["type"] == "error" and event["error"]["type"] == "api_error"),
    "gemini-sse": ("/gateway/gemini/v1beta/models/native-gemini:streamGenerateContent?alt=sse",
                   {"contents": [{"role": "user", "parts": [{"text": "one two three"}]}]},
                   "gemini-2.5-flash", lambda raw: "finishReason" in raw,
                   lambda event: event["error"]["code"] == 502),
}


@pytest.mark.parametrize("route", NATIVE_CUTS)
def test_native_stream_cut_ends_with_the_apis_error_event_and_no_terminator(gateway, fake_openai, fake_anthropic,
                                                                            fake_gemini, route):
    path, body, upstream, terminated, is_error = NATIVE_CUTS[route]
    fake = {"r-stream": fake_openai, "claude-haiku-4-5": fake_anthropic}.get(upstream, fake_gemini)
    fake.behave(upstream, Behaviour(cut_after=2), times=1)
    response = httpx.post(f"{gateway.url}{path}", json=body, timeout=20,
                          headers={"Authorization": f"Bearer {gateway.keys['default']}"})
    assert response.status_code == 200 and not terminated(response.text)
    assert is_error(_sse_payloads(response.text)[-1])


def test_native_stream_stall_after_the_first_bytes_ends_with_an_error_event(gateway, fake_openai):
    fake_openai.behave("r-stream", Behaviour(stall_after=2, stall_seconds=3.0), times=1)
    path, body, *_ = NATIVE_CUTS["openai-chat"]
    started = time.perf_counter()
    response = httpx.post(f"{gateway.url}{path}", json=body, timeout=20,
                          headers={"Authorization": f"Bearer {gateway.keys['default']}"})
    assert "[DONE]" not in response.text and time.perf_counter() - started < IDLE_TIMEOUT + 1
    assert _sse_payloads(response.text)[-1]["error"]["type"] == "stream_idle_timeout"


def test_gemini_json_array_stream_cut_ends_with_an_error_element(gateway, fake_gemini):
    fake_gemini.behave("gemini-2.5-flash", Behaviour(cut_after=2), times=1)
    response = httpx.post(f"{gateway.url}/gateway/gemini/v1beta/models/native-gemini:streamGenerateContent",
                          json={"contents": [{"role": "user", "parts": [{"text": "one two three"}]}]}, timeout=20,
                          headers={"x-goog-api-key": gateway.keys["default"]})
    elements = response.json()
    assert elements[-1]["error"]["status"] == "UNAVAILABLE"
    assert not any(c.get("finishReason") for e in elements[:-1] for c in e["candidates"])


def test_stream_stall_fails_after_the_idle_timeout(http, fake_openai):
    fake_openai.behave("r-stream", Behaviour(stall_after=2, stall_seconds=3.0), times=1)
    status, events, elapsed = stream_events(http, "stream")
    assert status == 200 and "[DONE]" not in events
    assert json.loads(events[-1])["error"]["type"] == "stream_idle_timeout"
    assert IDLE_TIMEOUT * 0.9 <= elapsed < IDLE_TIMEOUT + 1


def test_stream_falls_back_before_the_first_byte(http, fake_openai):
    fake_openai.fail("r-stream", 500)
    status, events, _ = stream_events(http, "stream")
    assert status == 200 and events[-1] == "[DONE]"
    assert json.loads(events[0])["model"] == "r-stream-backup"


def test_stream_stalled_before_the_first_byte_falls_back(http, fake_openai):
    fake_openai.behave("r-stream", Behaviour(stall_after=0, stall_seconds=3.0), times=1)
    status, events, elapsed = stream_events(http, "stream")
    assert status == 200 and events[-1] == "[DONE]"
    assert json.loads(events[0])["model"] == "r-stream-backup"
    assert elapsed >= IDLE_TIMEOUT * 0.9


def test_circuit_opens_after_threshold_and_closes_after_the_cooldown(http, fake_openai):
    def served() -> tuple[str, str]:
        response = http.post("/chat/completions", json={"model": "breaker",
                                                        "messages": [{"role": "user", "content": "x"}]})
        assert response.status_code == 200
        return response.headers["x-gateway-model"], response.headers["x-gateway-attempts"]

    fake_openai.behave("r-flaky", Behaviour(status=500))
    assert [served() for _ in range(3)] == [("r-flaky-backup", "2")] * 3
    assert [served() for _ in range(5)] == [("r-flaky-backup", "1")] * 5
    assert len(fake_openai.requests_for("r-flaky")) == 3
    fake_openai.behave("r-flaky", None)
    time.sleep(COOLDOWN + 0.1)
    assert served() == ("r-flaky", "1")
    assert served() == ("r-flaky", "1")


def test_traffic_split_distribution_through_the_server(http):
    """Every request is served by the model the split picked (one attempt: no retry or fallback can hide
    in the counts), and each model's share is within five standard errors of its weight. At this sample
    size that bound is under 0.07 for every weight, and a correct split fails it in fewer than two runs in
    a million, however slow the machine."""
    served: Counter[str] = Counter()
    for _ in range(SPLIT_SAMPLES):
        response = http.post("/chat/completions", json={"model": "split",
                                                        "messages": [{"role": "user", "content": "x"}]})
        assert (response.status_code, response.headers.get("x-gateway-attempts")) == (200, "1"), response.text
        served[response.headers["x-gateway-model"]] += 1
    assert set(served) <= set(SPLIT_WEIGHTS), served
    for name, weight in SPLIT_WEIGHTS.items():
        bound = 5 * math.sqrt(weight * (1 - weight) / SPLIT_SAMPLES)
        assert abs(served[name] / SPLIT_SAMPLES - weight) < bound, (name, bound, served)
