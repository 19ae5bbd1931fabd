"""Mistral's adapter: the OpenAI-compatible adapter, with answers whose content is a list of chunks turned
into OpenAI's shape (content.py) on the unified route and the native OpenAI chat route alike."""
from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing

import orjson

from providers.base import CallStats, PassthroughResponse
from providers.mistral import content
from providers.openai.adapter import OpenAIAdapter
from providers.wire import Api, SSEEvent, SSEParser, sse_event

# Only an event whose data holds one of these can carry a content list (compact or spaced JSON); the others
# are relayed without being decoded.
CONTENT_LIST = ('"content":[', '"content": [')


class MistralAdapter(OpenAIAdapter):
    provider = "mistral"

    async def chat(self, request: dict, stats: CallStats) -> dict:
        return content.completion(await super().chat(request, stats))

    async def chat_stream(self, request: dict, stats: CallStats) -> AsyncIterator[dict]:
        async with aclosing(super().chat_stream(request, stats)) as chunks:
            async for chunk in chunks:
                yield content.chunk(chunk)

    async def passthrough(self, api: str, body: dict, headers: Mapping[str, str], stats: CallStats, *,
                          stream: bool) -> PassthroughResponse:
        response = await super().passthrough(api, body, headers, stats, stream=stream)
        if api != Api.OPENAI_CHAT:
            return response
        if response.stream is not None:
            return PassthroughResponse(response.status, response.headers, stream=relay(response.stream))
        if isinstance(response.body, dict):
            content.completion(response.body)
        return response


async def relay(raw: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The native stream with content lists rewritten: whole events out as they complete (the relay parses
    them again), anything that is not a chunk (comments, `[DONE]`, malformed data) as it came, and an event
    the stream's end left unterminated still unterminated, for the relay to judge."""
    parser = SSEParser()
    async with aclosing(raw) as chunks:
        async for data in chunks:
            out = b"".join(_event(event) for event in parser.feed(data))
            if out:
                yield out
    out = b"".join(event.raw.removesuffix(b"\n\n") for event in parser.close())
    if out:
        yield out


def _event(event: SSEEvent) -> bytes:
    if event.data is None or not any(marker in event.data for marker in CONTENT_LIST):
        return event.raw
    try:
        chunk = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        return event.raw
    if not isinstance(chunk, dict):
        return event.raw
    return sse_event(event.event or None, orjson.dumps(content.chunk(chunk)))
