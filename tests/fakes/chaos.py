"""A broken upstream on 127.0.0.1 that speaks OpenAI, Anthropic and Gemini at once, each of their requests
answered well by the matching fake and then spoiled the way the model's name says (`chaos-<mode>`):

html        an HTML page with status 200, for plain and streamed requests alike
array       a JSON array with status 200 (`[1, 2, 3]`), not an answer
error200    an error object with status 200
reset       the first part of the answer, then the connection dropped
partial     the first part of the answer, then a line cut short and a clean end
invalid     streams: a `data:` line that is not JSON after the first event, then the rest
malformed   streams: a JSON event of the wrong shape (`"choices": "not-a-list"`) after the first, then the
            rest; plain answers: the answer with its usage of the wrong shape
slow        the answer dribbled out over about four seconds, with keep-alive comments in streams
ok          the answer as the fake gives it
"""
from __future__ import annotations

from dataclasses import dataclass

import orjson

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import FakeUpstream, Recorded, Reply
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI

MODES = ("html", "array", "error200", "reset", "partial", "invalid", "malformed", "slow", "ok")
HTML = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"
SLOW_STEPS, SLOW_STEP_SECONDS = 40, 0.1

# One event of the vendor's own stream, but of a shape no SDK expects.
WRONG_SHAPE = {
    "openai": b'data: {"id": "x", "object": "chat.completion.chunk", "choices": "not-a-list", "usage": 7}\n\n',
    "responses": b'event: response.output_text.delta\ndata: {"type": "response.output_text.delta", "delta": 5}\n\n',
    "anthropic": b'event: message_delta\ndata: {"type": "message_delta", "delta": "x", "usage": "none"}\n\n',
    "gemini": b'data: {"candidates": "not-a-list", "usageMetadata": [1]}\n\n',
}


@dataclass
class ChaosReply(Reply):
    reset: bool = False  # drop the connection after the chunks


class ChaosUpstream(FakeUpstream):
    def __init__(self) -> None:
        super().__init__()
        self.vendors = {"openai": FakeOpenAI(), "anthropic": FakeAnthropic(), "gemini": FakeGemini()}

    @staticmethod
    def vendor_of(request: Recorded) -> str:
        if "/models/" in request.path and ":" in request.path:
            return "gemini"
        if request.path.endswith("/messages"):
            return "anthropic"
        return "responses" if request.path.endswith("/responses") else "openai"

    def model_of(self, request: Recorded) -> str:
        if self.vendor_of(request) == "gemini":
            return self.vendors["gemini"].model_of(request)
        model = super().model_of(request)
        return model if isinstance(model, str) else ""  # a body sent through the raw proxy may hold anything

    def respond(self, request: Recorded) -> Reply:
        vendor = self.vendor_of(request)
        fake = self.vendors["openai" if vendor == "responses" else vendor]
        if request.method == "POST" and not isinstance(request.json, dict):
            return Reply(status=400, body=fake.error_body(400, "The body is not a JSON object."))
        try:
            good = fake.respond(request)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError):
            # The fakes expect well-formed requests; the real APIs validate them and answer 400.
            return Reply(status=400, body=fake.error_body(400, "Invalid request body."))
        mode = self.model_of(request).removeprefix("chaos-")
        if good.status != 200 or mode == "ok":
            return good
        if mode == "html":
            return Reply(body=HTML, content_type="text/html; charset=utf-8")
        if mode == "array":
            return Reply(body=[1, 2, 3])
        if mode == "error200":
            return Reply(body={"error": {"message": "chaos: the quota is exhausted", "code": 429}})
        if good.chunks is None:
            return self._plain(mode, orjson.dumps(good.body))
        return self._stream(mode, vendor, good)

    @staticmethod
    def _plain(mode: str, body: bytes) -> Reply:
        half = body[: len(body) // 2]
        if mode == "reset":
            return ChaosReply(chunks=[half], reset=True)
        if mode == "partial":
            return Reply(chunks=[half])
        if mode == "slow":
            step = max(len(body) // SLOW_STEPS, 1)
            return Reply(chunks=[body[i:i + step] for i in range(0, len(body), step)], chunk_delay=SLOW_STEP_SECONDS)
        if mode == "malformed":
            answer = orjson.loads(body)
            answer["usage" if "usage" in answer else "usageMetadata"] = "not-an-object"
            return Reply(body=answer)
        return Reply(body=orjson.loads(body))

    @staticmethod
    def _stream(mode: str, vendor: str, good: Reply) -> Reply:
        first, rest = good.chunks[:1], good.chunks[1:]
        kind = good.content_type
        if mode == "reset":
            return ChaosReply(chunks=first, content_type=kind, reset=True)
        if mode == "partial":
            return Reply(chunks=[*first, b'data: {"cho'], content_type=kind)
        if mode == "invalid":
            return Reply(chunks=[*first, b"data: {oops, not json\n\n", *rest], content_type=kind)
        if mode == "malformed":
            return Reply(chunks=[*first, WRONG_SHAPE[vendor], *rest], content_type=kind)
        if mode == "slow":
            return Reply(chunks=[*first, *[b": keep-alive\n\n"] * SLOW_STEPS, *rest], content_type=kind,
                         chunk_delay=SLOW_STEP_SECONDS)
        return good

    async def _send(self, reply: Reply, behaviour, send) -> None:
        if not (isinstance(reply, ChaosReply) and reply.reset):
            return await super()._send(reply, behaviour, send)
        headers = [(b"content-type", reply.content_type.encode())]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        for chunk in reply.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        raise ConnectionResetError("chaos: connection dropped mid-body")
