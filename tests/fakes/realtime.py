"""Fake OpenAI Realtime upstream: a real WebSocket server on 127.0.0.1 (the `websockets` library) in a
background thread. It checks the gateway's provider key (OpenAI's bearer token; on Azure OpenAI's path,
`/openai/realtime`, Azure's `api-key` header), answers `response.create` with text, audio and
transcript deltas and a `response.done` carrying usage, echoes binary frames, and can be told to die
without a close frame (`{"type": "test.die"}`) or to close normally (`{"type": "test.close"}`)."""
from __future__ import annotations

import asyncio
import base64
import itertools
import threading
from dataclasses import dataclass, field

import orjson
from websockets.asyncio.server import serve

API_KEY = "sk-upstream-openai-0123456789"
AZURE_API_KEY = "azure-upstream-realtime-0123456789"
AZURE_PATH = "/openai/realtime"
TEXT_USAGE = {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18,
              "input_token_details": {"text_tokens": 11, "audio_tokens": 0, "cached_tokens": 3},
              "output_token_details": {"text_tokens": 7, "audio_tokens": 0}}
AUDIO_USAGE = {"input_tokens": 30, "output_tokens": 25, "total_tokens": 55,
               "input_token_details": {"text_tokens": 10, "audio_tokens": 20, "cached_tokens": 0},
               "output_token_details": {"text_tokens": 5, "audio_tokens": 20}}
AUDIO_CHUNK = base64.b64encode(bytes(range(256)) * 4).decode()


@dataclass
class Connection:
    path: str
    headers: dict[str, str]
    received: list = field(default_factory=list)


class FakeRealtime:
    def __init__(self) -> None:
        self.connections: list[Connection] = []
        self.port = 0
        self.hold_responses = 0.0  # seconds between a response's deltas (a response in flight)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Future | None = None
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeRealtime":
        started = threading.Event()

        async def main() -> None:
            self._stop = asyncio.get_running_loop().create_future()
            async with serve(self._handle, "127.0.0.1", 0, process_request=self._check, max_size=None) as server:
                self.port = server.sockets[0].getsockname()[1]
                started.set()
                await self._stop

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(main())

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("fake realtime upstream did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set_result, None)
            self._thread.join(timeout=5)

    def reset(self) -> None:
        self.connections.clear()
        self.hold_responses = 0.0

    def _check(self, connection, request):
        if request.path.split("?")[0] == AZURE_PATH:
            accepted = request.headers.get("api-key") == AZURE_API_KEY and "authorization" not in request.headers
        else:
            accepted = request.headers.get("authorization") == f"Bearer {API_KEY}"
        return None if accepted else connection.respond(401, "bad provider key\n")

    async def _handle(self, ws) -> None:
        conn = Connection(ws.request.path, {k.lower(): v for k, v in ws.request.headers.raw_items()})
        self.connections.append(conn)
        await ws.send(orjson.dumps({"type": "session.created", "event_id": "ev_0",
                                    "session": {"id": "sess_1", "model": ws.request.path}}).decode())
        last_text = ""
        async for frame in ws:
            conn.received.append(frame)
            if isinstance(frame, bytes):
                await ws.send(frame[::-1])
                continue
            event = orjson.loads(frame)
            kind = event.get("type")
            if kind == "conversation.item.create":
                parts = event["item"].get("content") or []
                last_text = " ".join(p.get("text", "") for p in parts if "text" in p)
                await ws.send(orjson.dumps({"type": "conversation.item.created", "item": event["item"]}).decode())
            elif kind == "response.create":
                audio = "audio" in ((event.get("response") or {}).get("modalities") or [])
                await self._respond(ws, last_text, audio)
            elif kind == "test.die":
                ws.transport.abort()
                return
            elif kind == "test.close":
                await ws.close(4000, "test close")
                return

    async def _respond(self, ws, text: str, audio: bool) -> None:
        rid, item = f"resp_{next(self._ids)}", "item_1"
        await ws.send(orjson.dumps({"type": "response.created", "response": {"id": rid, "status": "in_progress"}}).decode())
        answer = f"echo: {text}"
        kind = "response.audio_transcript.delta" if audio else "response.text.delta"
        for piece in (answer[: len(answer) // 2], answer[len(answer) // 2:]):
            if self.hold_responses:
                await asyncio.sleep(self.hold_responses)
            await ws.send(orjson.dumps({"type": kind, "response_id": rid, "item_id": item, "output_index": 0,
                                        "content_index": 0, "delta": piece}).decode())
            if audio:
                await ws.send(orjson.dumps({"type": "response.audio.delta", "response_id": rid, "item_id": item,
                                            "output_index": 0, "content_index": 0, "delta": AUDIO_CHUNK}).decode())
        done_kind = "response.audio_transcript.done" if audio else "response.text.done"
        field_name = "transcript" if audio else "text"
        await ws.send(orjson.dumps({"type": done_kind, "response_id": rid, "item_id": item, "output_index": 0,
                                    "content_index": 0, field_name: answer}).decode())
        part = {"type": "audio" if audio else "text", field_name: answer}
        await ws.send(orjson.dumps({"type": "response.done", "response": {
            "id": rid, "status": "completed", "output": [{"id": item, "type": "message", "content": [part]}],
            "usage": AUDIO_USAGE if audio else TEXT_USAGE}}).decode())
