"""A fake OpenAI upstream (chat, streaming chat, embeddings) cheap enough that the benchmark measures the
gateway and not the fake.

It is a bare asyncio protocol on uvloop with httptools' parser rather than an ASGI app: the load generator,
this fake and the gateway share two cores, so every microsecond the fake spends is taken from the gateway
under test. Answers are rendered once per distinct request shape and reused.

Run alone: `python -m bench.upstream [--port 0] [--latency-ms 0]`; it prints `listening <port>` when ready.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import time

import httptools
import orjson
import uvloop

PROMPT_TOKENS = 11
COMPLETION_TOKENS = 7
USAGE = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
         "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS, "prompt_tokens_details": {"cached_tokens": 0}}
REPLY_WORDS = ("Hello", " from", " the", " fake", " upstream.")
DEFAULT_DIMENSIONS = 256
MAX_CACHED_ANSWERS = 256
STATUS_TEXT = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}
OTLP_ACCEPTED = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"


def json_response(payload: dict, status: int = 200) -> bytes:
    body = orjson.dumps(payload)
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
            % (status, STATUS_TEXT[status], len(body))) + body


def sse_response(events: list[dict]) -> bytes:
    """One HTTP chunk per event, as OpenAI sends them, ending with `data: [DONE]`."""
    frames = [b"data: " + orjson.dumps(event) + b"\n\n" for event in events] + [b"data: [DONE]\n\n"]
    body = b"".join(b"%x\r\n%s\r\n" % (len(frame), frame) for frame in frames)
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n\r\n" + body + b"0\r\n\r\n")


def error_response(status: int, message: str) -> bytes:
    return json_response({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                    "code": None}}, status)


def chat_completion(model: str) -> bytes:
    return json_response({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(REPLY_WORDS)},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": USAGE,
    })


def chat_stream(model: str, include_usage: bool) -> bytes:
    """A role chunk, one chunk per word, a finish chunk and (when asked, like OpenAI) a usage chunk."""
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    deltas = [{"role": "assistant", "content": ""}, *({"content": word} for word in REPLY_WORDS)]
    events = [{**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if include_usage:
        events.append({**base, "choices": [], "usage": USAGE})
    return sse_response(events)


def embeddings(model: str, count: int, dimensions: int) -> bytes:
    vector = [round((i % 97) / 97, 6) for i in range(dimensions)]
    data = [{"object": "embedding", "index": i, "embedding": vector} for i in range(count)]
    return json_response({"object": "list", "data": data, "model": model,
                          "usage": {"prompt_tokens": 5 * count, "total_tokens": 5 * count}})


class Answers:
    """The response for a request, chosen by its path and a few body fields; the body is parsed, so a
    malformed request gets a 400 like a real provider would give."""

    def __init__(self) -> None:
        self.cache: dict[tuple, bytes] = {}

    def for_request(self, path: bytes, body: bytes) -> bytes:
        if path == b"/v1/traces":  # an OTLP/HTTP trace intake for `--trace`: accepts the batch unread
            return OTLP_ACCEPTED
        try:
            request = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            return error_response(400, "The body is not valid JSON.")
        if not isinstance(request, dict):
            return error_response(400, "The body must be a JSON object.")
        model = str(request.get("model", "unknown"))
        if path.endswith(b"/chat/completions"):
            stream = bool(request.get("stream"))
            include_usage = stream and bool((request.get("stream_options") or {}).get("include_usage"))
            key: tuple = ("chat", model, stream, include_usage)
        elif path.endswith(b"/embeddings"):
            inputs = request.get("input")
            count = 1 if isinstance(inputs, str) else len(inputs or [])
            key = ("embeddings", model, count, int(request.get("dimensions") or DEFAULT_DIMENSIONS))
        else:
            return error_response(404, f"No route {path.decode(errors='replace')}.")
        answer = self.cache.get(key)
        if answer is None:
            answer = self.render(key)
            if len(self.cache) < MAX_CACHED_ANSWERS:
                self.cache[key] = answer
        return answer

    @staticmethod
    def render(key: tuple) -> bytes:
        if key[0] == "chat":
            _, model, stream, include_usage = key
            return chat_stream(model, include_usage) if stream else chat_completion(model)
        _, model, count, dimensions = key
        return embeddings(model, count, dimensions)


class UpstreamProtocol(asyncio.Protocol):
    """One connection: HTTP/1.1 keep-alive, requests answered in order (httptools calls back per event)."""

    def __init__(self, answers: Answers, latency: float) -> None:
        self.answers = answers
        self.latency = latency
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.write(error_response(400, "Malformed HTTP request."))
            self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        answer = self.answers.for_request(self.url.partition(b"?")[0], b"".join(self.body))
        keep_alive = self.parser.should_keep_alive()
        if self.latency:
            asyncio.get_running_loop().call_later(self.latency, self.send, answer, keep_alive)
        else:
            self.send(answer, keep_alive)

    def send(self, answer: bytes, keep_alive: bool) -> None:
        if self.transport.is_closing():
            return
        self.transport.write(answer)
        if not keep_alive:
            self.transport.close()


async def serve(host: str, port: int, latency: float) -> None:
    loop = asyncio.get_running_loop()
    answers = Answers()
    server = await loop.create_server(lambda: UpstreamProtocol(answers, latency), host, port, backlog=1024)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed when ready)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before each answer")
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.latency_ms / 1000))


if __name__ == "__main__":
    main()
