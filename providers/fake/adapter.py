"""The built-in `fake` provider: no network, deterministic answers. It powers the quick-start demo
endpoint and load tests of the gateway itself.

`auth_config` knobs: `reply` (fixed answer text; default echoes the last user message), `latency_ms`
(simulated provider time), `dimensions` (embedding size, default 8).
"""
from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator

import orjson

from providers.base import CallStats, PassthroughResponse, ProviderAdapter, ProviderError, UnsupportedOperation
from providers.wire import Api


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


class FakeAdapter(ProviderAdapter):
    provider = "fake"
    # Its answers are OpenAI-shaped already, so the OpenAI-native routes can use it too.
    passthrough_apis = frozenset({Api.OPENAI_CHAT, Api.OPENAI_EMBEDDINGS})

    def __init__(self, target, client=None) -> None:
        super().__init__(target, client)
        self.reply = target.auth_config.get("reply")
        self.latency = float(target.auth_config.get("latency_ms", 0)) / 1000
        self.dimensions = int(target.auth_config.get("dimensions", 8))

    def _answer(self, request: dict) -> tuple[str, int]:
        messages = request.get("messages") or []
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            # The native route forwards bodies unchecked; answer as a real provider would.
            raise ProviderError(400, "Provider 'fake': 'messages' must be an array of objects.", retryable=False,
                                error_type="invalid_request_error")
        last_user = next((_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
        prompt_tokens = sum(_tokens(_text_of(m.get("content"))) for m in messages)
        return (self.reply if self.reply is not None else f"echo: {last_user}"), prompt_tokens

    async def _wait(self, stats: CallStats) -> None:
        if self.latency:
            stats.start()
            await asyncio.sleep(self.latency)
            stats.stop()

    async def chat(self, request: dict, stats: CallStats) -> dict:
        await self._wait(stats)
        text, prompt_tokens = self._answer(request)
        completion_tokens = _tokens(text)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": self.target.model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    async def chat_stream(self, request: dict, stats: CallStats) -> AsyncIterator[dict]:
        await self._wait(stats)
        text, prompt_tokens = self._answer(request)
        base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": self.target.model_name}
        yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
        for i, word in enumerate(text.split(" ")):
            yield {**base, "choices": [{"index": 0, "delta": {"content": word if i == 0 else " " + word},
                                        "finish_reason": None}]}
        yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        completion_tokens = _tokens(text)
        yield {**base, "choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                                "total_tokens": prompt_tokens + completion_tokens}}

    async def embeddings(self, request: dict, stats: CallStats) -> dict:
        await self._wait(stats)
        inputs = request.get("input")
        items = [inputs] if isinstance(inputs, str) else list(inputs or [])
        data = []
        for index, item in enumerate(items):
            digest = hashlib.sha256(str(item).encode()).digest()
            vector = [digest[i % len(digest)] / 255 for i in range(self.dimensions)]
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(_tokens(str(item)) for item in items)
        return {"object": "list", "data": data, "model": self.target.model_name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    async def passthrough(self, api: str, body: dict, headers, stats: CallStats, *, stream: bool) -> PassthroughResponse:
        if api == Api.OPENAI_EMBEDDINGS:
            return PassthroughResponse(200, {}, body=await self.embeddings(body, stats))
        if api != Api.OPENAI_CHAT:
            raise UnsupportedOperation(f"Provider 'fake' does not support the '{api}' API.")
        if not stream:
            return PassthroughResponse(200, {}, body=await self.chat(body, stats))

        async def sse() -> AsyncIterator[bytes]:
            async for chunk in self.chat_stream(body, stats):
                yield b"data: " + orjson.dumps(chunk) + b"\n\n"
            yield b"data: [DONE]\n\n"

        return PassthroughResponse(200, {"content-type": "text/event-stream"}, stream=sse())
