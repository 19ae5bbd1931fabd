"""Realtime sessions through /gateway/openai/v1/realtime against the real server and a fake provider WebSocket:
text and audio (and binary) frames both ways, usage and cost per response plus a session record, refusals
before the upgrade, budget exhaustion and upstream death closing the session with an error event, guardrails
on text events."""
from __future__ import annotations

import asyncio
import base64
import signal
import time

import openai
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.e2e.conftest import endpoint, provider_config
from tests.e2e.db import wait_rows
from tests.fakes.realtime import API_KEY, AUDIO_CHUNK, FakeRealtime

pytestmark = pytest.mark.clock

PRICED = {"input_cost_per_million": 100, "output_cost_per_million": 1000}


@pytest.fixture(scope="module")
def fake_realtime():
    server = FakeRealtime().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _reset_realtime(fake_realtime):
    fake_realtime.reset()


@pytest.fixture(scope="module")
def gateway(e2e_root, fake_openai, fake_anthropic, fake_gemini, fake_realtime):
    from tests.e2e.harness import make_gateway

    config = provider_config(fake_openai, fake_anthropic, fake_gemini)
    config["secrets"].append({"name": "realtime-key", "provider": "openai", "values": {"api_key": API_KEY},
                              "auth_config": {"api_base": f"{fake_realtime.url}/v1"}})
    config["secrets"].append({"name": "realtime-wrong", "provider": "openai", "values": {"api_key": "sk-wrong-0123456789"},
                              "auth_config": {"api_base": f"{fake_realtime.url}/v1"}})
    config["models"] += [
        {"name": "rt", "provider": "openai", "model_name": "rt-test", "secret": "realtime-key", **PRICED},
        {"name": "rt-listed", "provider": "openai", "model_name": "gpt-realtime", "secret": "realtime-key"},
        {"name": "rt-badkey", "provider": "openai", "model_name": "rt-test", "secret": "realtime-wrong"},
    ]
    config["guardrails"] = [
        {"name": "redact-pii", "kind": "pii", "stage": "before", "action": "sanitize"},
        {"name": "redact-words", "kind": "keywords", "stage": "after", "action": "sanitize",
         "settings": {"words": ["forbidden-term"]}},
        {"name": "block-words", "kind": "keywords", "stage": "after", "action": "block",
         "settings": {"words": ["forbidden-term"]}},
    ]
    config["endpoints"] = [
        endpoint("voice", "rt"), endpoint("voice-listed", "rt-listed"), endpoint("voice-budget", "rt"),
        endpoint("voice-badkey", "rt-badkey"), endpoint("voice-fake", "fake-echo"),
        endpoint("voice-redact", "rt", guardrails=["redact-pii", "redact-words"]),
        endpoint("voice-block", "rt", guardrails=["block-words"]), endpoint("voice-limited", "rt"),
    ]
    config["rate_limits"] = [{"name": "voice-two", "scope": "endpoint", "target": "voice-limited",
                              "requests_per_minute": 2}]
    config["budgets"] = [{"name": "voice-tiny", "scope": "endpoint", "target": "voice-budget",
                          "amount_usd": 0.006, "window": {"unit": "days", "value": 1}, "action": "reject"}]
    server = make_gateway(e2e_root, "realtime", config, keys={"default": None, "limited": ["voice-fake"]},
                          env={"GATEWAY_BUDGET_BACKEND": "memory"})
    yield server
    server.stop()


def url(server, name: str) -> str:
    return f"ws://127.0.0.1:{server.port}/gateway/openai/v1/realtime?model={name}"


def session(server, name: str = "voice", key: str = "default", **kwargs):
    return connect(url(server, name), additional_headers={"Authorization": f"Bearer {server.keys[key]}"}, **kwargs)


def send(ws, event: dict):
    return ws.send(orjson.dumps(event).decode())


def item(text: str) -> dict:
    return {"type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}}


async def until(ws, *types: str, limit: int = 200) -> list[dict]:
    """Events up to and including the first of `types` (bounded)."""
    seen = []
    for _ in range(limit):
        event = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        seen.append(event)
        if event["type"] in types:
            return seen
    raise AssertionError(f"none of {types} in {[e['type'] for e in seen]}")


def text_of(events: list[dict], kind: str) -> str:
    return "".join(e["delta"] for e in events if e["type"] == kind)


def records(server, route: str, like: str) -> list[tuple]:
    return wait_rows(server, "SELECT request_id, input_tokens, output_tokens, cached_tokens, cost_usd, status_code, "
                             "error_type FROM gateway_usagerecord WHERE route = ? AND request_id LIKE ? ORDER BY id",
                     route, like)


async def test_text_session_relays_events_and_records_usage(gateway, fake_realtime):
    async with session(gateway) as ws:
        assert (await until(ws, "session.created"))[-1]["type"] == "session.created"
        await send(ws, item("hello"))
        await until(ws, "conversation.item.created")
        await send(ws, {"type": "response.create"})
        events = await until(ws, "response.done")
    assert text_of(events, "response.text.delta") == "echo: hello"
    assert fake_realtime.connections[-1].path == "/v1/realtime?model=rt-test"
    response_id = events[-1]["response"]["id"]
    assert response_id.startswith("resp_")
    session_id = ws.response.headers["x-request-id"]
    [row] = records(gateway, "realtime/response", f"{session_id}.1")
    # 11 input (3 cached, billed at the input price: no cached price), 7 output, at $100 / $1000 per million.
    assert row[1:] == (row[0], 11, 7, 3, 0.0081, 200, "")[1:]
    [closed] = records(gateway, "realtime/session", session_id)
    assert closed[1:] == (0, 0, 0, None, 200, "")


async def test_audio_and_binary_frames_both_ways_with_the_browser_subprotocol(gateway, fake_realtime):
    key = gateway.keys["default"]
    async with connect(url(gateway, "voice"), subprotocols=["realtime", f"openai-insecure-api-key.{key}"]) as ws:
        assert ws.subprotocol == "realtime"
        await until(ws, "session.created")
        await ws.send(b"\x00\x01\x02\x03")
        assert await asyncio.wait_for(ws.recv(), 10) == b"\x03\x02\x01\x00"
        audio_in = base64.b64encode(b"\x10" * 3200).decode()
        await send(ws, {"type": "input_audio_buffer.append", "audio": audio_in})
        await send(ws, item("speak"))
        await send(ws, {"type": "response.create", "response": {"modalities": ["audio", "text"]}})
        events = await until(ws, "response.done")
    assert [e["delta"] for e in events if e["type"] == "response.audio.delta"] == [AUDIO_CHUNK, AUDIO_CHUNK]
    assert text_of(events, "response.audio_transcript.delta") == "echo: speak"
    received = fake_realtime.connections[-1].received
    assert received[0] == b"\x00\x01\x02\x03"
    assert orjson.loads(received[1])["audio"] == audio_in
    assert "authorization" in fake_realtime.connections[-1].headers  # the provider key, not the client's
    # Audio tokens and no audio price for this model: the cost is unknown, not zero.
    rows = wait_rows(gateway, "SELECT input_tokens, output_tokens, cached_tokens, cost_usd FROM gateway_usagerecord "
                              "WHERE route = 'realtime/response' AND endpoint_name = 'voice' ORDER BY id",
                     expect=lambda found: len(found) == 2)
    assert rows[-1] == (30, 25, 0, None)


async def test_audio_is_priced_with_the_models_audio_prices(gateway):
    async with session(gateway, "voice-listed") as ws:
        await until(ws, "session.created")
        await send(ws, {"type": "response.create", "response": {"modalities": ["audio", "text"]}})
        await until(ws, "response.done")
    rows = wait_rows(gateway, "SELECT cost_usd FROM gateway_usagerecord WHERE route = 'realtime/response' AND "
                              "endpoint_name = 'voice-listed'")
    # gpt-realtime: text $4 / $16, audio $32 / $64 per million; 10 + 20 in, 5 + 20 out.
    assert rows == [(pytest.approx((10 * 4 + 20 * 32 + 5 * 16 + 20 * 64) / 1e6),)]


@pytest.mark.parametrize("key, name, status, code", [
    (None, "voice", 401, "invalid_api_key"),
    ("limited", "voice", 403, "endpoint_not_allowed"),
    ("default", "no-such-endpoint", 404, "endpoint_not_found"),
    ("default", "voice-fake", 400, "unsupported_api"),
    ("default", "voice-badkey", 502, "upstream_refused"),
])
async def test_refused_before_the_upgrade(gateway, fake_realtime, key, name, status, code):
    token = gateway.keys[key] if key else "gw-not-a-key"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url(gateway, name), additional_headers={"Authorization": f"Bearer {token}"}):
            pass
    assert refused.value.response.status_code == status
    assert orjson.loads(refused.value.response.body)["error"]["code"] == code
    if code != "upstream_refused":
        assert not fake_realtime.connections


async def test_spent_budget_closes_the_session_with_an_error_event(gateway):
    async with session(gateway, "voice-budget") as ws:
        await until(ws, "session.created")
        # A response may cost up to 5 output tokens x $1000 / million = $0.005 of the $0.006: admitted. It then
        # costs $0.0081, so the window is spent and the next response is refused (settling is asynchronous).
        done, deadline = 0, time.monotonic() + 10
        while time.monotonic() < deadline:
            await send(ws, {"type": "response.create", "response": {"max_output_tokens": 5}})
            last = (await until(ws, "response.done", "error"))[-1]
            if last["type"] == "error":
                break
            done += 1
        assert done >= 1
        assert last["error"]["code"] == "budget_exceeded"
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd.code == 1008


async def test_a_rate_limited_response_is_refused_and_the_session_goes_on(gateway, fake_realtime):
    """Each response.create counts against the endpoint's rate limits; one over the limit gets an error event
    naming the limit and is not sent upstream, and the session stays open (unlike a spent budget)."""
    async with session(gateway, "voice-limited") as ws:
        await until(ws, "session.created")
        for _ in range(2):
            await send(ws, {"type": "response.create"})
            assert (await until(ws, "response.done", "error"))[-1]["type"] == "response.done"
        sent_upstream = len(fake_realtime.connections[-1].received)
        await send(ws, {"type": "response.create"})
        refused = (await until(ws, "response.done", "error"))[-1]
        assert refused["error"]["code"] == "rate_limit_exceeded"
        assert "voice-two" in refused["error"]["message"]
        await send(ws, item("still here"))
        assert (await until(ws, "conversation.item.created"))[-1]["type"] == "conversation.item.created"
        assert [orjson.loads(e)["type"] for e in fake_realtime.connections[-1].received[sent_upstream:]] == [
            "conversation.item.create"]
    session_id = ws.response.headers["x-request-id"]
    rows = records(gateway, "realtime/response", f"{session_id}.%")
    assert [(row[5], row[6]) for row in rows] == [(200, ""), (200, ""), (429, "rate_limit_exceeded")]


async def test_upstream_death_is_reported_then_closed(gateway):
    async with session(gateway) as ws:
        await until(ws, "session.created")
        await send(ws, {"type": "test.die"})
        error = (await until(ws, "error"))[-1]
        assert error["error"]["code"] == "upstream_closed"
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd.code == 1011
    rows = wait_rows(gateway, "SELECT error_type FROM gateway_usagerecord WHERE route = 'realtime/session' "
                              "AND error_type = 'upstream_closed'")
    assert rows


async def test_upstream_close_code_reaches_the_client(gateway):
    async with session(gateway) as ws:
        await until(ws, "session.created")
        await send(ws, {"type": "test.close"})
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(10):
                await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd.code == 4000


async def test_guardrails_rewrite_text_events(gateway, fake_realtime):
    async with session(gateway, "voice-redact") as ws:
        await until(ws, "session.created")
        await send(ws, item("mail jane@example.com about the forbidden-term"))
        await until(ws, "conversation.item.created")
        await send(ws, {"type": "response.create"})
        events = await until(ws, "response.done")
    sent = orjson.loads(fake_realtime.connections[-1].received[0])["item"]["content"][0]["text"]
    assert "jane@example.com" not in sent
    relayed = text_of(events, "response.text.delta")
    assert "forbidden-term" not in relayed and relayed.startswith("echo: mail")
    done = next(e for e in events if e["type"] == "response.text.done")
    assert done["text"] == relayed
    assert "forbidden-term" not in orjson.dumps(events[-1]).decode()


async def test_guardrail_block_stops_the_response(gateway, fake_realtime):
    async with session(gateway, "voice-block") as ws:
        await until(ws, "session.created")
        await send(ws, item("say forbidden-term"))
        await until(ws, "conversation.item.created")
        await send(ws, {"type": "response.create"})
        events = await until(ws, "response.done")
        assert "error" in [e["type"] for e in events]
        assert next(e for e in events if e["type"] == "error")["error"]["type"] == "guardrail_blocked"
        assert "forbidden-term" not in orjson.dumps(events).decode()
        # The session goes on.
        await send(ws, item("fine"))
        await until(ws, "conversation.item.created")


async def test_sigterm_lets_the_response_in_flight_finish_then_closes(e2e_root, gateway, fake_realtime):
    from tests.e2e.harness import GatewayServer

    # A second server on the same configuration, stopped by this test.
    server = GatewayServer(workdir=gateway.workdir, env=gateway.env, keys=gateway.keys).start()
    try:
        fake_realtime.hold_responses = 0.2
        async with session(server) as ws:
            await until(ws, "session.created")
            await send(ws, item("before the restart"))
            await send(ws, {"type": "response.create"})
            await until(ws, "response.created")
            server.process.send_signal(signal.SIGTERM)
            events = await until(ws, "response.done")
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        assert text_of(events, "response.text.delta") == "echo: before the restart"
        assert closed.value.rcvd.code == 1012
        assert server.process.wait(timeout=30) is not None
    finally:
        server.stop()


async def test_openai_sdk_realtime_client(gateway):
    client = openai.AsyncOpenAI(base_url=f"{gateway.url}/gateway/openai/v1", api_key=gateway.keys["default"])
    async with client.realtime.connect(model="voice") as connection:
        await connection.send({"type": "conversation.item.create",
                               "item": {"type": "message", "role": "user",
                                        "content": [{"type": "input_text", "text": "from the sdk"}]}})
        await connection.send({"type": "response.create"})
        deltas = []
        for _ in range(50):
            event = await asyncio.wait_for(connection.recv(), 10)
            if event.type in ("response.text.delta", "response.output_text.delta"):
                deltas.append(event.delta)
            if event.type == "response.done":
                break
    assert "".join(deltas) == "echo: from the sdk"
    assert event.response.usage.output_tokens == 7
