"""Realtime sessions in /metrics and in traces, through the real server, a fake provider WebSocket and a real
OTLP/HTTP receiver: the HTTP routes' metric and attribute names where they apply, plus the WebSocket's own
(sessions open, frames per direction, session duration); a span per session with a child per response; no
key, text or audio in any span."""
from __future__ import annotations

import asyncio
import json
import secrets
import time

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.e2e.conftest import endpoint, provider_config
from tests.e2e.test_observability import SERVER, scrape, value
from tests.e2e.test_realtime import item, send, until
from tests.fakes.otlp import FakeOTLP
from tests.fakes.realtime import API_KEY, AUDIO_CHUNK, FakeRealtime

# Not marked `clock`: nothing here reads a date, and under faketime the span exporter's timed wait (a
# condition variable with a deadline on the faked clock) never fires, as for the HTTP tracing tests.
METRICS_TOKEN = "metrics-token-realtime-0123"


@pytest.fixture(scope="module")
def otlp():
    server = FakeOTLP().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fake_realtime():
    server = FakeRealtime().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh(otlp, fake_realtime):
    otlp.reset()
    fake_realtime.reset()


@pytest.fixture(scope="module")
def gateway(e2e_root, fake_openai, fake_anthropic, fake_gemini, fake_realtime, otlp):
    from tests.e2e.harness import make_gateway

    config = provider_config(fake_openai, fake_anthropic, fake_gemini)
    config["secrets"].append({"name": "realtime-key", "provider": "openai", "values": {"api_key": API_KEY},
                              "auth_config": {"api_base": f"{fake_realtime.url}/v1"}})
    config["models"] += [
        {"name": "rt", "provider": "openai", "model_name": "rt-test", "secret": "realtime-key",
         "input_cost_per_million": 100, "output_cost_per_million": 1000},
        {"name": "rt-listed", "provider": "openai", "model_name": "gpt-realtime", "secret": "realtime-key"},
    ]
    config["guardrails"] = [{"name": "redact-pii", "kind": "pii", "stage": "before", "action": "sanitize"}]
    config["endpoints"] = [endpoint("voice", "rt"), endpoint("voice-audio", "rt-listed"),
                           endpoint("voice-guarded", "rt", guardrails=["redact-pii"])]
    server = make_gateway(e2e_root, "realtime-observability", config, env={
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{otlp.url}/v1/traces", "OTEL_BSP_SCHEDULE_DELAY": "50",
        "GATEWAY_METRICS_TOKEN": METRICS_TOKEN, "GATEWAY_BUDGET_BACKEND": "memory"})
    yield server
    server.stop()


def url(server, name: str) -> str:
    return f"ws://127.0.0.1:{server.port}/gateway/openai/v1/realtime?model={name}"


def session(server, name: str, key: str | None = None, **headers):
    token = key or server.keys["default"]
    return connect(url(server, name), additional_headers={"Authorization": f"Bearer {token}", **headers})


def metrics(server) -> dict:
    return scrape(server, METRICS_TOKEN)


def moved_until(server, before: dict, name: str, expected: float, **labels) -> dict:
    """Scrapes until `name{labels}` moved by `expected` since `before` (a session is recorded as it closes,
    just after the client saw the close); returns that scrape."""
    deadline = time.monotonic() + 10
    while True:
        after = metrics(server)
        if value(after, name, **labels) - value(before, name, **labels) >= expected or time.monotonic() > deadline:
            return after
        time.sleep(0.05)


async def test_a_session_moves_the_http_metrics_and_its_own(gateway, fake_realtime):
    before = metrics(gateway)
    received = 0
    async with session(gateway, "voice") as ws:
        await until(ws, "session.created")
        received += 1
        during = metrics(gateway)
        await ws.send(b"\x00\x01")
        assert await asyncio.wait_for(ws.recv(), 10) == b"\x01\x00"
        received += 1
        await send(ws, item("count me"))
        received += len(await until(ws, "conversation.item.created"))
        await send(ws, {"type": "response.create"})
        received += len(await until(ws, "response.done"))
    after = moved_until(gateway, before, "gateway_requests_total", 1, route="realtime/session")

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert value(during, "gateway_realtime_sessions_open") - value(before, "gateway_realtime_sessions_open") == 1
    assert moved("gateway_requests_total", endpoint="voice", model="rt", provider="openai",
                 route="realtime/response", status_code="200") == 1
    assert moved("gateway_requests_total", endpoint="voice", model="rt", provider="openai",
                 route="realtime/session", status_code="200") == 1
    # The fake's response: 11 input (3 cached), 7 output, at $100 / $1000 per million.
    assert [moved("gateway_tokens_total", endpoint="voice", kind=kind) for kind in ("input", "output", "cached")] == [
        11, 7, 3]
    assert moved("gateway_cost_usd_total", endpoint="voice") == pytest.approx(0.0081)
    assert moved("gateway_request_duration_seconds_count", endpoint="voice") == 1  # the response, not the session
    assert moved("gateway_realtime_session_duration_seconds_count", endpoint="voice", model="rt") == 1
    assert moved("gateway_upstream_attempts_total", provider="openai", outcome="success") == 1
    assert moved("gateway_realtime_frames_total", endpoint="voice", direction="to_provider") == len(
        fake_realtime.connections[-1].received) == 3
    assert moved("gateway_realtime_frames_total", endpoint="voice", direction="to_client") == received
    assert value(after, "gateway_realtime_sessions_open") == value(before, "gateway_realtime_sessions_open")
    assert value(after, "gateway_inflight_requests") == 0


async def test_refused_sessions_are_counted_without_the_clients_strings(gateway):
    before = metrics(gateway)
    unknown = "no-such-voice-" + secrets.token_hex(4)
    for name, key, status in (("voice", "gw-not-a-key", 401), (unknown, None, 404)):
        with pytest.raises(InvalidStatus) as refused:
            async with session(gateway, name, key):
                pass
        assert refused.value.response.status_code == status
    after = metrics(gateway)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("gateway_requests_total", endpoint="voice", route="realtime/session", status_code="401") == 1
    assert moved("gateway_requests_total", endpoint="", route="realtime/session", status_code="404") == 1
    assert not [key for key in after if unknown in str(key)]


async def test_a_session_is_one_span_with_a_child_per_response(gateway, otlp):
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    async with session(gateway, "voice-audio", traceparent=f"00-{trace_id}-{parent}-01") as ws:
        session_id = ws.response.headers["x-request-id"]
        await until(ws, "session.created")
        await send(ws, item("say it twice"))
        await send(ws, {"type": "response.create", "response": {"modalities": ["audio", "text"]}})
        first = (await until(ws, "response.done"))[-1]["response"]
        await send(ws, {"type": "response.create"})
        second = (await until(ws, "response.done"))[-1]["response"]
    [span] = otlp.wait_for(lambda s: s.kind == SERVER and s.attributes.get("gateway.request_id") == session_id)
    assert (span.name, span.trace_id, span.parent_id) == ("realtime voice-audio", trace_id, parent)
    attrs = span.attributes
    assert (attrs["gen_ai.request.model"], attrs["gen_ai.response.model"], attrs["gateway.model"]) == (
        "voice-audio", "gpt-realtime", "rt-listed")
    assert attrs["gen_ai.provider.name"] == "openai" and attrs["gateway.route"] == "realtime/session"
    assert attrs["gateway.key_name"] == "default" and attrs["gateway.realtime.responses"] == 2
    assert attrs["gateway.realtime.frames_to_provider"] == 3 and attrs["gateway.realtime.frames_to_client"] > 10
    children = sorted(otlp.wait_for(lambda s: s.parent_id == span.span_id and len(
        [c for c in otlp.spans if c.parent_id == span.span_id]) == 2), key=lambda s: s.start_ns)
    assert [c.attributes["gen_ai.response.id"] for c in children] == [first["id"], second["id"]]
    assert [c.attributes["gateway.request_id"] for c in children] == [f"{session_id}.1", f"{session_id}.2"]
    audio = children[0].attributes
    assert (audio["gen_ai.usage.input_tokens"], audio["gen_ai.usage.output_tokens"]) == (30, 25)
    assert (audio["gateway.usage.audio_input_tokens"], audio["gateway.usage.audio_output_tokens"]) == (20, 20)
    assert audio["gateway.cost_usd"] == pytest.approx((10 * 4 + 20 * 32 + 5 * 16 + 20 * 64) / 1e6)
    assert audio["gen_ai.response.finish_reasons"] == ["completed"] and children[0].name == "chat voice-audio"
    text = children[1].attributes
    assert (text["gen_ai.usage.input_tokens"], text["gen_ai.usage.cache_read.input_tokens"]) == (11, 3)
    assert "gateway.usage.audio_input_tokens" not in text
    assert span.start_ns <= children[0].start_ns < children[0].end_ns <= children[1].start_ns <= span.end_ns
    exported = json.dumps([(s.name, s.attributes) for s in otlp.spans])
    for secret in (gateway.keys["default"], API_KEY, AUDIO_CHUNK[:64], "say it twice", "echo:"):
        assert secret not in exported


async def test_guardrail_spans_nest_in_the_session_span(gateway, otlp):
    async with session(gateway, "voice-guarded") as ws:
        session_id = ws.response.headers["x-request-id"]
        await until(ws, "session.created")
        await send(ws, item("mail jane@example.com"))
        await until(ws, "conversation.item.created")
    [span] = otlp.wait_for(lambda s: s.kind == SERVER and s.attributes.get("gateway.request_id") == session_id)
    [guardrail] = otlp.wait_for(lambda s: s.parent_id == span.span_id)
    assert (guardrail.name, guardrail.attributes["gateway.guardrail.action"]) == ("guardrail redact-pii", "sanitize")
    assert span.attributes["gateway.guardrails"] == ["redact-pii:sanitize"]
    assert "jane@example.com" not in orjson.dumps([s.attributes for s in otlp.spans]).decode()
