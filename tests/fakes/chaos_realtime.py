"""A realtime upstream on 127.0.0.1 that breaks on request, the way the model's name says (`chaos-<mode>`,
read from the `?model=` the gateway connects with), for the robustness suite:

refuse      the upgrade refused with HTTP 503
junk        each `response.create` answered first with junk (text that is not JSON, a JSON array, events of the
            wrong shape, binary bytes), then with a well-formed response
huge        a `response.create` answered with one frame larger than the gateway takes (16 MiB)
abnormal    a response started, then the socket closed with 1011
die         a response started, then the connection dropped without a close frame
stall       a response started, then nothing more (until the gateway closes the socket)
flood       a response of FLOOD_FRAMES large audio deltas, sent as fast as the gateway takes them (`flooded`
            counts the frames sent so far)
ok          a well-formed response

In every mode the client's events get OpenAI's answers to bad input: an `error` event for a frame that is
not a JSON object, an unknown event type, a binary frame, or an `item` or `response` that is not an object;
the session goes on. A socket that accepts connections and never answers the upgrade is `silent_port()`."""
from __future__ import annotations

import base64
import random
import socket
from urllib.parse import parse_qs, urlsplit

import orjson

from tests.fakes.realtime import TEXT_USAGE, FakeRealtime

MODES = ("refuse", "junk", "huge", "abnormal", "die", "stall", "flood", "ok")
KNOWN_EVENTS = frozenset({"session.update", "input_audio_buffer.append", "input_audio_buffer.commit",
                          "input_audio_buffer.clear", "conversation.item.create", "conversation.item.delete",
                          "response.create", "response.cancel"})
JUNK: tuple[str | bytes, ...] = (
    "}{ not json", "[1, 2, 3]", '{"type": "response.done", "response": "junk"}',
    '{"type": "response.created", "response": null}', '{"type": "response.done", "response": {"usage": [1]}}',
    b"\x00\xff\xfe junk bytes",
)
HUGE_BYTES = 16 * 1024 * 1024 + 1
FLOOD_FRAMES, FLOOD_BYTES = 600, 128 * 1024


def mode_of(path: str) -> str:
    model = (parse_qs(urlsplit(path).query).get("model") or [""])[0]
    return model.removeprefix("chaos-")


def _error(code: str, message: str, event: object = None) -> str:
    """OpenAI's error event; it names the client event it answers when that event had an `event_id`."""
    event_id = event.get("event_id") if isinstance(event, dict) else None
    return orjson.dumps({"type": "error", "error": {"type": "invalid_request_error", "code": code,
                                                    "message": message, "event_id": event_id}}).decode()


class ChaosRealtime(FakeRealtime):
    def __init__(self) -> None:
        super().__init__()
        self.flooded = 0
        self.closed: list[str] = []  # the mode of each connection once it is closed

    def _check(self, connection, request):
        if mode_of(request.path) == "refuse":
            return connection.respond(503, "overloaded\n")
        return None

    async def _handle(self, ws) -> None:
        mode = mode_of(ws.request.path)
        try:
            await self._serve(ws, mode)
        finally:
            self.closed.append(mode)

    async def _serve(self, ws, mode: str) -> None:
        await ws.send(orjson.dumps({"type": "session.created", "session": {"id": "sess_chaos"}}).decode())
        async for frame in ws:
            if isinstance(frame, bytes):
                await ws.send(_error("invalid_frame", "Binary frames are not supported."))
                continue
            try:
                event = orjson.loads(frame)
            except orjson.JSONDecodeError:
                event = None
            kind = event.get("type") if isinstance(event, dict) else None
            if not isinstance(event, dict):
                await ws.send(_error("invalid_json", "The event is not a JSON object."))
            elif not isinstance(kind, str) or kind not in KNOWN_EVENTS:
                await ws.send(_error("invalid_value", f"Invalid value: {str(kind)[:40]!r}."))
            elif kind == "conversation.item.create":
                item = event.get("item")
                await ws.send(orjson.dumps({"type": "conversation.item.created", "item": item}).decode()
                              if isinstance(item, dict) else _error("invalid_type", "'item' must be an object."))
            elif kind == "response.create":
                if not isinstance(event.get("response", {}), dict):
                    await ws.send(_error("invalid_type", "'response' must be an object.", event))
                elif await self._respond_as(ws, mode):
                    return

    async def _respond_as(self, ws, mode: str) -> bool:
        """One response in `mode`; True when the connection is over."""
        rid = f"resp_{next(self._ids)}"
        if mode == "junk":
            for junk in JUNK:
                await ws.send(junk)
        if mode == "huge":
            await ws.send("x" * HUGE_BYTES)
            return False
        await ws.send(orjson.dumps({"type": "response.created", "response": {"id": rid, "status": "in_progress"}}).decode())
        await ws.send(orjson.dumps({"type": "response.text.delta", "response_id": rid, "delta": "half an"}).decode())
        if mode == "abnormal":
            await ws.close(1011, "internal server error")
            return True
        if mode == "die":
            ws.transport.abort()
            return True
        if mode == "stall":
            await ws.wait_closed()
            return True
        if mode == "flood":
            await self._flood(ws, rid)
        await ws.send(orjson.dumps({"type": "response.done", "response": {
            "id": rid, "status": "completed", "output": [], "usage": TEXT_USAGE}}).decode())
        return False

    async def _flood(self, ws, rid: str) -> None:
        # Incompressible, like real audio: the client may have negotiated permessage-deflate with the gateway.
        filler = base64.b64encode(random.Random(0).randbytes(FLOOD_BYTES * 3 // 4)).decode()
        for index in range(FLOOD_FRAMES):
            await ws.send(f'{{"type": "response.audio.delta", "response_id": "{rid}", "index": {index}, '
                          f'"delta": "{filler}"}}')
            self.flooded = index + 1


def silent_port() -> socket.socket:
    """A listening socket that is never accepted from: connections open (the kernel's backlog) and every
    request on them waits forever. Close it when done."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock

