"""Adapter for Cohere's v2 API: unified chat (plain and streaming, tools included) through `/v2/chat` and
embeddings through `/v2/embed`, translating with `translate.py`.

`auth_config`: `api_base` (default https://api.cohere.com/v2), `timeout`. Credentials: `api_key`, sent as
a bearer token.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

import httpx

from providers import http
from providers.base import CallStats, ModelTarget, ProviderAdapter
from providers.cohere import translate

DEFAULT_API_BASE = "https://api.cohere.com/v2"


class CohereAdapter(ProviderAdapter):
    provider = "cohere"

    def __init__(self, target: ModelTarget, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(target, client)
        self.base_url = str(target.auth_config.get("api_base") or DEFAULT_API_BASE).rstrip("/")
        if not target.credentials.get("api_key"):
            raise ValueError("Cohere needs the secret value 'api_key'.")
        self.headers = {"content-type": "application/json", "accept": "application/json",
                        "authorization": f"Bearer {target.credentials['api_key']}"}
        self.stream_headers = {**self.headers, "accept": "text/event-stream"}

    def upstream_url(self) -> str:
        return self.base_url

    async def chat(self, request: dict, stats: CallStats) -> dict:
        body = translate.chat_body(request, self.target.model_name, stream=False)
        answer = await http.post_json(self.client, f"{self.base_url}/chat", body, self.headers, stats, self.provider)
        return translate.chat_completion(answer, self.target.model_name)

    async def chat_stream(self, request: dict, stats: CallStats) -> AsyncIterator[dict]:
        body = translate.chat_body(request, self.target.model_name, stream=True)
        stream = await http.open_stream(self.client, "POST", f"{self.base_url}/chat", body, self.stream_headers,
                                        stats, self.provider)
        translator = translate.StreamTranslator(self.target.model_name)
        async with aclosing(stream.events()) as events:
            async for event in events:
                if event.data == "[DONE]":
                    break
                for chunk in translator.feed(http.json_event(event.data, self.provider)):
                    yield chunk
        if not translator.finished:
            raise http.incomplete_stream(self.provider, "message-end")
        yield translator.usage_chunk()

    async def embeddings(self, request: dict, stats: CallStats) -> dict:
        body = translate.embed_body(request, self.target.model_name)
        answer = await http.post_json(self.client, f"{self.base_url}/embed", body, self.headers, stats, self.provider)
        return translate.embeddings_response(answer, self.target.model_name, request.get("encoding_format"))
