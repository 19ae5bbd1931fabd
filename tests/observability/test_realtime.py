"""A realtime session as /metrics sees it, in-process: a response is observed after its `response.done` frame
went to the client (never before, so no frame waits on it), frames are counted per direction, and a session
that ends with responses in flight leaves the in-flight gauge where it found it."""
from __future__ import annotations

import asyncio
import secrets

import orjson

from gateway.config.snapshot import ClientKey, EndpointConfig, Link
from gateway.observability.realtime import FLUSH_FRAMES, SessionObservation
from gateway.realtime.session import RealtimeSession
from providers.base import ModelTarget
from providers.registry import adapter_class
from tests.observability.test_metrics import sample

USAGE = {"input_tokens": 4, "output_tokens": 2}


def event(kind: str, **fields) -> str:
    return orjson.dumps({"type": kind, **fields}).decode()


class ScriptedUpstream:
    """A provider socket that sends `frames`, then stays open and silent."""

    def __init__(self, frames: list[str]) -> None:
        self.frames = list(frames)
        self.sent: list = []

    def __aiter__(self):
        return self

    async def __anext__(self) -> str:
        await asyncio.sleep(0)
        if not self.frames:
            await asyncio.Event().wait()
        return self.frames.pop(0)

    async def send(self, frame) -> None:
        self.sent.append(frame)

    async def close(self, code: int = 1000) -> None:
        pass


def session_for(endpoint_name: str, upstream, send_client) -> RealtimeSession:
    adapter = adapter_class("fake")(ModelTarget(id=1, name="fake", provider="fake", model_name="fake-echo"))
    link = Link(adapter, 1.0, 0)
    endpoint = EndpointConfig(id=1, name=endpoint_name, routing_strategy="", primaries=(link,), fallbacks=())

    async def close_client(code: int) -> None:
        pass

    return RealtimeSession(endpoint, ClientKey(1, "k", None), link, upstream, send_client, close_client)


async def until(condition, limit: int = 200) -> None:
    for _ in range(limit):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not met")


async def test_a_response_is_observed_only_after_its_done_frame_was_sent():
    name = "unit-voice-" + secrets.token_hex(4)
    responses = dict(endpoint=name, route="realtime/response")
    seen_when_done: list[float] = []

    async def send_client(frame) -> None:
        if "response.done" in frame:
            seen_when_done.append(sample("gateway_requests_total", **responses))

    upstream = ScriptedUpstream([event("session.created"), event("response.created", response={"id": "r1"}),
                                 event("response.done", response={"id": "r1", "status": "completed",
                                                                  "usage": USAGE})])
    session = session_for(name, upstream, send_client)
    session.observed.opened(session)
    session.start()
    await until(lambda: seen_when_done and sample("gateway_requests_total", **responses) == 1)
    assert seen_when_done == [0]
    assert sample("gateway_tokens_total", endpoint=name, kind="input") == 4
    await session.client_closed(1000)
    assert sample("gateway_realtime_frames_total", endpoint=name, direction="to_client") == 3
    assert sample("gateway_requests_total", endpoint=name, route="realtime/session", status_code="200") == 1
    assert sample("gateway_realtime_session_duration_seconds_count", endpoint=name) == 1


async def test_a_session_closed_mid_response_releases_its_in_flight_count():
    name = "unit-voice-" + secrets.token_hex(4)
    inflight, sessions_open = sample("gateway_inflight_requests"), sample("gateway_realtime_sessions_open")
    session = session_for(name, ScriptedUpstream([event("response.created", response={"id": "r1"})]),
                          lambda frame: asyncio.sleep(0))
    session.observed.opened(session)
    session.start()
    await until(lambda: session.active)
    assert sample("gateway_inflight_requests") == inflight + 1
    assert sample("gateway_realtime_sessions_open") == sessions_open + 1
    await session.client_closed(1001)
    assert sample("gateway_inflight_requests") == inflight
    assert sample("gateway_realtime_sessions_open") == sessions_open
    assert sample("gateway_requests_total", endpoint=name, route="realtime/response", status_code="499") == 1


def test_frames_reach_the_counter_in_batches():
    name = "unit-voice-" + secrets.token_hex(4)
    observed = SessionObservation(endpoint=name)
    for _ in range(FLUSH_FRAMES - 1):
        observed.relayed_to_provider()
    assert sample("gateway_realtime_frames_total", endpoint=name, direction="to_provider") == 0
    observed.relayed_to_provider()
    assert sample("gateway_realtime_frames_total", endpoint=name, direction="to_provider") == FLUSH_FRAMES


async def test_a_session_ends_with_one_log_line(caplog):
    name = "unit-voice-" + secrets.token_hex(4)
    session = session_for(name, ScriptedUpstream([event("response.created", response={"id": "r1"})]),
                          lambda frame: asyncio.sleep(0))
    session.observed.opened(session)
    session.start()
    await until(lambda: session.active)
    with caplog.at_level("INFO", logger="gateway.observability.realtime"):
        await session.client_closed(1001)
    [line] = [r for r in caplog.records if r.name == "gateway.observability.realtime"]
    assert line.getMessage().startswith("WS /gateway/openai/v1/realtime ")
    assert f"endpoint={name}" in line.getMessage() and "frames_to_client=" in line.getMessage()
    assert (line.endpoint, line.route, line.request_id) == (name, "realtime/session", session.id)
