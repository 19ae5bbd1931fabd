"""A real HTTP server on 127.0.0.1 for tests and benchmarks, run by uvicorn in a background thread.

Subclasses speak one provider's wire format in `respond`. Every request is recorded, and failures can be
scripted per model (`fail`, `delay`, `cut_stream`, `stall`) so tests can drive fallback and error paths
through real sockets.
"""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    raw_path: str = ""  # the path exactly as it came on the wire, percent-encoding included


@dataclass
class Reply:
    """A JSON answer, or (when `chunks` is set) a streamed body sent chunk by chunk."""

    status: int = 200
    body: Any = None
    chunks: list[bytes] | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    chunk_delay: float = 0.0


@dataclass
class Behaviour:
    status: int | None = None          # answer with this error status
    body: Any = None                   # ...and this body
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0                 # wait before answering
    cut_after: int | None = None       # streams: stop after N chunks, without the terminator
    stall_after: int | None = None     # streams: after N chunks, sleep `stall_seconds`
    stall_seconds: float = 0.0


class FakeUpstream:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._once: dict[str, deque[Behaviour]] = defaultdict(deque)
        self._always: dict[str, Behaviour] = {}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "FakeUpstream":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this; without it Nagle holds the body behind the headers until the
        # client's delayed ACK, adding ~40 ms to every keep-alive request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, lifespan="off", log_level="warning", access_log=False,
                                loop="asyncio", http="h11", interface="asgi3")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake upstream did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeUpstream":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- scripting ------------------------------------------------------------------------
    def fail(self, model: str, status: int, *, times: int = 1, body: Any = None, headers: dict | None = None) -> None:
        for _ in range(times):
            self._once[model].append(Behaviour(status=status, body=body, headers=headers or {}))

    def behave(self, model: str, behaviour: Behaviour | None, *, times: int | None = None) -> None:
        """`times=None` applies to every request for the model until reset."""
        if times is None:
            if behaviour is None:
                self._always.pop(model, None)
            else:
                self._always[model] = behaviour
        else:
            self._once[model].extend([behaviour] * times)

    def reset(self) -> None:
        self.requests.clear()
        self._once.clear()
        self._always.clear()

    def requests_for(self, model: str) -> list[Recorded]:
        return [r for r in self.requests if self.model_of(r) == model]

    # -- provider specifics -----------------------------------------------------------------
    def model_of(self, request: Recorded) -> str:
        return (request.json or {}).get("model", "") if isinstance(request.json, dict) else ""

    def respond(self, request: Recorded) -> Reply:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> Any:
        return {"error": {"message": message, "type": "fake_error", "code": status}}

    # -- ASGI -----------------------------------------------------------------------------
    async def app(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            parsed = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            parsed = None
        request = Recorded(
            method=scope["method"], path=scope["path"], query=scope.get("query_string", b"").decode(),
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]}, body=body, json=parsed,
            raw_path=(scope.get("raw_path") or scope["path"].encode()).decode(),
        )
        self.requests.append(request)
        model = self.model_of(request)
        behaviour = self._once[model].popleft() if self._once.get(model) else self._always.get(model)
        if behaviour and behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        if behaviour and behaviour.status:
            reply = Reply(status=behaviour.status,
                          body=behaviour.body if behaviour.body is not None else self.error_body(behaviour.status, "scripted failure"),
                          headers=behaviour.headers)
        else:
            reply = self.respond(request)
        await self._send(reply, behaviour, send)

    async def _send(self, reply: Reply, behaviour: Behaviour | None, send) -> None:
        headers = [(b"content-type", reply.content_type.encode())]
        headers += [(k.encode(), v.encode()) for k, v in reply.headers.items()]
        if reply.chunks is None:
            payload = reply.body if isinstance(reply.body, bytes) else orjson.dumps(reply.body)
            await send({"type": "http.response.start", "status": reply.status, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
            return
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        for index, chunk in enumerate(reply.chunks):
            if behaviour and behaviour.cut_after is not None and index >= behaviour.cut_after:
                break
            if behaviour and behaviour.stall_after is not None and index == behaviour.stall_after:
                await asyncio.sleep(behaviour.stall_seconds)
            if reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, (bytes, str)) else orjson.dumps(data).decode()
    if isinstance(payload, bytes):
        payload = payload.decode()
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {payload}\n\n".encode()


def last_user_text(messages: list[dict]) -> str:
    """The text of the last user message, whatever its content shape (string or list of parts)."""
    for message in reversed(messages or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""
