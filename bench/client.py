"""A small HTTP/1.1 load client for what wrk cannot report: the time to the first body byte of each
response (for streams, the first event) and exact per-request latencies.

Each connection sends one request at a time over keep-alive; httptools parses the answers, so the client
costs little more per request than wrk does at low concurrency. Every run stops at its deadline or its
request budget, whichever comes first.
"""
from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field

import httptools

REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class Target:
    """One HTTP request to repeat."""

    host: str
    port: int
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    stream: bool = False

    def wire(self) -> bytes:
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Content-Type: application/json",
                 f"Content-Length: {len(self.body)}", *(f"{k}: {v}" for k, v in self.headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class Samples:
    """Seconds per request, in completion order; `errors` counts non-200 answers, incomplete streams and
    transport failures."""

    latencies: list[float] = field(default_factory=list)
    ttfb: list[float] = field(default_factory=list)
    errors: int = 0
    duration: float = 0.0
    first_error: str = ""

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.errors


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile; None without samples."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


class Reply:
    """What one response looked like: status, when its first body byte came, the end of its body (enough to
    see a stream's `[DONE]` or an error message)."""

    __slots__ = ("status", "first_body_at", "tail")

    def __init__(self) -> None:
        self.status = 0
        self.first_body_at = 0.0
        self.tail = b""


class Connection(asyncio.Protocol):
    """One keep-alive connection; `exchange` resolves when the whole answer has been parsed."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.reply = Reply()
        self.done: asyncio.Future[Reply] | None = None
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionResetError("the server closed the connection"))

    def on_headers_complete(self) -> None:
        self.reply.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if not self.reply.first_body_at:
            self.reply.first_body_at = time.perf_counter()
        self.reply.tail = (self.reply.tail + body)[-64:]

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        if self.done is not None and not self.done.done():
            self.done.set_result(self.reply)

    def _fail(self, exc: Exception) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc)

    async def exchange(self, request: bytes) -> Reply:
        self.reply = Reply()
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.done


def problem(reply: Reply, stream: bool) -> str:
    """Why an answer does not count as a success, or "" when it does."""
    if reply.status != 200:
        return f"HTTP {reply.status}: {reply.tail.decode(errors='replace')}"
    if stream and b"data: [DONE]" not in reply.tail:
        return f"stream did not end with [DONE]: {reply.tail.decode(errors='replace')}"
    return ""


async def _connect(target: Target) -> Connection:
    _, connection = await asyncio.get_running_loop().create_connection(Connection, target.host, target.port)
    return connection


async def _worker(target: Target, deadline: float, budget: list[int], samples: Samples) -> None:
    request = target.wire()
    connection: Connection | None = None
    while budget[0] > 0 and time.perf_counter() < deadline:
        budget[0] -= 1
        started = time.perf_counter()
        try:
            if connection is None:
                connection = await _connect(target)
            async with asyncio.timeout(REQUEST_TIMEOUT):
                reply = await connection.exchange(request)
        except (OSError, TimeoutError, httptools.HttpParserError) as exc:
            samples.errors += 1
            samples.first_error = samples.first_error or f"{type(exc).__name__}: {exc}"
            if connection is not None:
                connection.transport.close()
            connection = None
            continue
        finished = time.perf_counter()
        reason = problem(reply, target.stream)
        if reason:
            samples.errors += 1
            samples.first_error = samples.first_error or reason
        else:
            samples.latencies.append(finished - started)
            samples.ttfb.append(reply.first_body_at - started)
        if not connection.keep_alive:
            connection.transport.close()
            connection = None
    if connection is not None:
        connection.transport.close()


async def run(target: Target, *, concurrency: int, duration: float, max_requests: int) -> Samples:
    """`concurrency` connections, each sending its next request when the previous answer is complete."""
    samples = Samples()
    budget = [max_requests]
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(*(_worker(target, deadline, budget, samples) for _ in range(concurrency)))
    samples.duration = time.perf_counter() - started
    return samples
