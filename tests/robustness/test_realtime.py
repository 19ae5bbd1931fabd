"""The realtime route (`/gateway/openai/v1/realtime`) against hostile clients and a provider socket that breaks
(tests/fakes/chaos_realtime.py): junk from either side is relayed and the session goes on; a provider that
refuses or never answers the upgrade is an HTTP error in OpenAI's envelope; one that fails mid-session closes
the client's socket with its code (and an error event when it died without one); a client that stops reading
holds the provider back in bounded memory; every session and response leaves its usage record."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.e2e.db import wait_rows
from tests.fakes.chaos_realtime import FLOOD_BYTES, FLOOD_FRAMES, HUGE_BYTES, JUNK
from tests.fakes.realtime import TEXT_USAGE
from tests.robustness.conftest import REALTIME_CONNECT_TIMEOUT

SLACK = 3.0  # a loaded machine
TOKENS = (TEXT_USAGE["input_tokens"], TEXT_USAGE["output_tokens"])


def session(gateway, endpoint: str = "realtime-ok", **kwargs):
    return connect(f"ws://127.0.0.1:{gateway.port}/gateway/openai/v1/realtime?model={endpoint}",
                   additional_headers={"Authorization": f"Bearer {gateway.keys['default']}"}, open_timeout=10,
                   **kwargs)


async def send(ws, event: dict) -> None:
    await ws.send(orjson.dumps(event).decode())


def completed(event: dict) -> bool:
    return isinstance(event.get("response"), dict) and event["response"].get("status") == "completed"


async def until(ws, *types: str, limit: int = 50, where=lambda event: True) -> list:
    """Frames up to the first event of one of `types` that is `where` (bounded); JSON parsed where it is."""
    seen: list = []
    for _ in range(limit):
        frame = await asyncio.wait_for(ws.recv(), 10)
        try:
            seen.append(orjson.loads(frame))
        except orjson.JSONDecodeError:
            seen.append(frame)
        if isinstance(seen[-1], dict) and seen[-1].get("type") in types and where(seen[-1]):
            return seen
    raise AssertionError(f"none of {types} in {seen!r:.500}")


async def closed_with(ws) -> int:
    """The close code the gateway sent, after any frames still on their way."""
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(50):
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None, "closed without a close frame"
    return closed.value.rcvd.code


def records(gateway, session_id: str, responses: int = 0, counted: int = 0) -> tuple[tuple, list[tuple]]:
    """The session's record (status, error type) and its responses' (status, error type, input, output), once
    there are `responses` of them, `counted` with the provider's tokens."""
    [session_row] = wait_rows(gateway, "SELECT status_code, error_type FROM gateway_usagerecord "
                                       "WHERE route = 'realtime/session' AND request_id = ?", session_id)
    found = wait_rows(gateway, "SELECT status_code, error_type, input_tokens, output_tokens FROM gateway_usagerecord "
                               "WHERE route = 'realtime/response' AND request_id LIKE ? ORDER BY request_id",
                      f"{session_id}.%", expect=lambda rows: len(rows) >= responses
                      and sum(row[2:] == TOKENS for row in rows) >= counted)
    return session_row, found


# -- hostile clients ---------------------------------------------------------------------------------------

CLIENT_JUNK = [  # (frame, whether the provider answers it with an error event)
    (b"\x00\xff\xfe binary junk", True), ("}{ not json", True), ('{"type": "response.create"', True),
    ("[1, 2, 3]", True), ('{"type": "no.such.event"}', True), ('{"type": ["response.create"]}', True),
    ('{"type": null}', True), ('{"type": "response.create", "response": {"max_output_tokens": "inf"}}', False),
    ('{"type": "conversation.item.create", "item": 5}', True),
]


@pytest.mark.parametrize("endpoint", ["realtime-ok", "realtime-guarded"])
async def test_junk_from_the_client_reaches_the_provider_and_the_session_goes_on(gateway, endpoint):
    async with session(gateway, endpoint) as ws:
        await until(ws, "session.created")
        for frame, refused in CLIENT_JUNK:
            await ws.send(frame)
            answered = await until(ws, "error", "response.done")
            assert (answered[-1]["type"] == "error") == refused, (frame, answered[-1])
        await send(ws, {"type": "response.create"})
        answered = await until(ws, "response.done", where=completed)
        assert answered[-1]["response"]["usage"] == TEXT_USAGE
        session_id = ws.response.headers["x-request-id"]
    session_row, responses = records(gateway, session_id, counted=2)
    assert session_row == (200, "")
    assert [row[2:] for row in responses if row[0] == 200] == [TOKENS] * 2


async def test_a_response_the_provider_refuses_releases_its_reservation_at_once(gateway):
    async with session(gateway) as ws:
        await until(ws, "session.created")
        session_id = ws.response.headers["x-request-id"]
        await send(ws, {"type": "response.create", "event_id": "evt_bad", "response": "fast"})
        assert (await until(ws, "error"))[-1]["error"]["event_id"] == "evt_bad"
        # Recorded, its budget hold released, while the session goes on (not when it ends).
        refused = wait_rows(gateway, "SELECT request_id, status_code, error_type FROM gateway_usagerecord WHERE "
                                     "route = 'realtime/response' AND request_id LIKE ?", f"{session_id}.%")
        assert refused == [(f"{session_id}.1", 400, "invalid_request_error")]
        await send(ws, {"type": "response.create", "event_id": "evt_good"})
        await until(ws, "response.done", where=completed)
    _, responses = records(gateway, session_id, responses=2)
    assert responses == [(400, "invalid_request_error", 0, 0), (200, "", *TOKENS)]


async def test_bad_items_and_odd_text_on_a_guarded_endpoint_never_end_the_session(gateway):
    items = [{"content": "text, not parts"}, {"content": [5, {"type": "input_text", "text": 7}, None]},
             {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "mail jane@example.com"}]}]
    async with session(gateway, "realtime-guarded") as ws:
        await until(ws, "session.created")
        for item in items:
            await send(ws, {"type": "conversation.item.create", "item": item})
            answer = (await until(ws, "conversation.item.created", "error"))[-1]
            assert answer["type"] == "conversation.item.created", answer
        assert "jane@example.com" not in orjson.dumps(answer).decode()
        await send(ws, {"type": "response.create"})
        await until(ws, "response.done")


async def test_a_frame_past_the_limit_closes_the_session_with_1009(gateway, chaos_realtime):
    async with session(gateway) as ws:
        await until(ws, "session.created")
        session_id = ws.response.headers["x-request-id"]
        await ws.send("x" * (16 * 1024 * 1024 + 1))
        assert await closed_with(ws) == 1009
    session_row, _ = records(gateway, session_id)
    assert session_row == (200, "client_closed_1009")


def rss(gateway) -> int:
    for line in Path(f"/proc/{gateway.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def settled(count, *, steady: int = 5, limit: float = 20) -> int:
    """`count()` once it has not moved for `steady` readings a tenth of a second apart (bounded)."""
    last, same, deadline = -1, 0, time.monotonic() + limit
    while same < steady and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        now = count()
        same, last = (same + 1 if now == last else 0), now
    return last


async def test_a_client_that_stops_reading_holds_the_provider_back_in_bounded_memory(gateway, chaos_realtime):
    before = rss(gateway)
    async with session(gateway, "realtime-flood", max_size=None) as ws:
        await until(ws, "session.created")
        await send(ws, {"type": "response.create"})
        sent = await settled(lambda: chaos_realtime.flooded)
        grown = rss(gateway) - before
        # The provider is held back before its whole answer (FLOOD_FRAMES x FLOOD_BYTES = 75 MiB), with what
        # the gateway holds for the client bounded (its queues are bounded in frames)...
        assert sent < FLOOD_FRAMES, sent
        assert grown < 48 * 1024 * 1024, grown
        # ...and nothing is lost: reading again, every frame arrives, in order.
        events = await until(ws, "response.done", limit=FLOOD_FRAMES + 10)
    deltas = [event for event in events if event["type"] == "response.audio.delta"]
    assert [event["index"] for event in deltas] == list(range(FLOOD_FRAMES))
    assert all(len(event["delta"]) == FLOOD_BYTES for event in deltas)


@pytest.mark.parametrize("how", ["close", "drop"])
async def test_a_client_leaving_mid_response_closes_the_provider_and_is_recorded(gateway, chaos_realtime, how):
    closed_before = chaos_realtime.closed.count("stall")
    async with session(gateway, "realtime-stall") as ws:
        await until(ws, "session.created")
        session_id = ws.response.headers["x-request-id"]
        await send(ws, {"type": "response.create"})
        await until(ws, "response.text.delta")
        if how == "drop":
            ws.transport.abort()
    session_row, responses = records(gateway, session_id, responses=1)
    assert responses == [(499, "session_closed", 0, 0)]
    assert session_row[0] == 200
    deadline = time.monotonic() + 5
    while chaos_realtime.closed.count("stall") == closed_before and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert chaos_realtime.closed.count("stall") == closed_before + 1, "the provider's socket was left open"


# -- broken providers --------------------------------------------------------------------------------------

async def refusal(gateway, endpoint: str) -> tuple[int, dict, float]:
    started = time.monotonic()
    with pytest.raises(InvalidStatus) as refused:
        async with session(gateway, endpoint):
            pass
    response = refused.value.response
    return response.status_code, orjson.loads(response.body)["error"], time.monotonic() - started


async def test_a_provider_refusing_the_upgrade_is_an_http_error(gateway):
    status, error, _ = await refusal(gateway, "realtime-refuse")
    assert (status, error["code"]) == (503, "upstream_refused")
    assert wait_rows(gateway, "SELECT status_code FROM gateway_usagerecord WHERE route = 'realtime/session' "
                              "AND endpoint_name = 'realtime-refuse'") == [(503,)]


async def test_a_provider_that_never_answers_the_upgrade_is_a_502_within_its_connect_timeout(gateway):
    status, error, took = await refusal(gateway, "realtime-silent")
    assert (status, error["code"]) == (502, "upstream_unreachable")
    assert took < REALTIME_CONNECT_TIMEOUT + SLACK
    assert wait_rows(gateway, "SELECT status_code FROM gateway_usagerecord WHERE route = 'realtime/session' "
                              "AND endpoint_name = 'realtime-silent'") == [(502,)]


async def test_junk_from_the_provider_is_relayed_and_the_response_still_counted(gateway):
    async with session(gateway, "realtime-junk") as ws:
        await until(ws, "session.created")
        session_id = ws.response.headers["x-request-id"]
        for _ in range(2):
            await send(ws, {"type": "response.create"})
            frames = await until(ws, "response.done", where=completed)
            assert "}{ not json" in frames and JUNK[-1] in frames and [1, 2, 3] in frames
            assert frames[-1]["response"]["usage"] == TEXT_USAGE
    session_row, responses = records(gateway, session_id, counted=2)
    assert session_row == (200, "")
    assert [row for row in responses if row[2:] == TOKENS] == [(200, "", *TOKENS)] * 2


async def test_a_provider_frame_past_the_limit_ends_the_session_with_an_error_event(gateway):
    async with session(gateway, "realtime-huge", max_size=HUGE_BYTES * 2) as ws:
        await until(ws, "session.created")
        session_id = ws.response.headers["x-request-id"]
        await send(ws, {"type": "response.create"})
        error = (await until(ws, "error"))[-1]["error"]
        assert error["code"] == "upstream_closed"
        assert await closed_with(ws) == 1011
    session_row, _ = records(gateway, session_id)
    assert session_row == (502, "upstream_closed")


@pytest.mark.parametrize("mode, error_event", [("abnormal", False), ("die", True)])
async def test_a_provider_failing_mid_response_closes_with_1011_and_fails_the_response(gateway, mode, error_event):
    async with session(gateway, f"realtime-{mode}") as ws:
        await until(ws, "session.created")
        session_id = ws.response.headers["x-request-id"]
        await send(ws, {"type": "response.create"})
        await until(ws, "response.text.delta")
        if error_event:
            assert (await until(ws, "error"))[-1]["error"]["code"] == "upstream_closed"
        assert await closed_with(ws) == 1011
    session_row, responses = records(gateway, session_id, responses=1)
    assert session_row == (502, "upstream_closed")
    assert responses == [(502, "upstream_closed", 0, 0)]
