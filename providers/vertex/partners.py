"""Mistral and Llama models on Vertex AI: OpenAI's chat format at the URLs Vertex gives them
(providers/vertex/translate.py), with the Vertex adapter's OAuth token."""
from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing

import httpx

from providers import http
from providers.base import CallStats, PassthroughResponse
from providers.openai.adapter import chat_chunks
from providers.vertex import translate

PROVIDER = "vertex_ai"


class OpenAIFormatModel:
    """Chat, streaming chat and the native OpenAI chat route for one partner model."""

    def __init__(self, model_url: str, model_name: str, client: Callable[[], httpx.AsyncClient],
                 auth_headers: Callable[[str], Awaitable[dict[str, str]]]) -> None:
        self.model_name = model_name
        self.url, self.stream_url = translate.openai_format_urls(model_url, model_name)
        self._client = client
        self._auth_headers = auth_headers

    async def chat(self, request: dict, stats: CallStats) -> dict:
        body = translate.openai_format_body(request, self.model_name, stream=False)
        return await http.post_json(self._client(), self.url, body, await self._auth_headers("application/json"),
                                    stats, PROVIDER)

    async def chat_stream(self, request: dict, stats: CallStats) -> AsyncIterator[dict]:
        body = translate.openai_format_body(request, self.model_name, stream=True)
        stream = await http.open_stream(self._client(), "POST", self.stream_url, body,
                                        await self._auth_headers("text/event-stream"), stats, PROVIDER)
        async with aclosing(chat_chunks(stream, PROVIDER)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def passthrough(self, body: dict, headers: Mapping[str, str], stats: CallStats, *,
                          stream: bool) -> PassthroughResponse:
        upstream = translate.openai_format_body(body, self.model_name, stream=stream)
        accept = "text/event-stream" if stream else "application/json"
        return await http.forward(self._client(), self.stream_url if stream else self.url, upstream,
                                  http.merge_client_headers(await self._auth_headers(accept), headers), stats,
                                  PROVIDER, stream=stream)
