"""Adapter for Anthropic's Messages API: unified chat (plain and streaming) through `translate.py`.

`auth_config`: `api_base` (default https://api.anthropic.com/v1), `version` (the `anthropic-version`
header, default 2023-06-01), `timeout`. Credentials: `api_key`, sent as `x-api-key`.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

import httpx

from providers import http
from providers.anthropic import translate
from providers.base import (CallStats, ModelTarget, PassthroughResponse, ProviderAdapter, RawUpstream,
                            UnsupportedOperation)
from providers.wire import Api

DEFAULT_API_BASE = "https://api.anthropic.com/v1"
DEFAULT_VERSION = "2023-06-01"


class AnthropicAdapter(ProviderAdapter):
    provider = "anthropic"
    passthrough_apis = frozenset({Api.ANTHROPIC_MESSAGES, Api.ANTHROPIC_COUNT_TOKENS})
    unified_operations = frozenset({"chat", "chat_stream"})

    def __init__(self, target: ModelTarget, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(target, client)
        config = target.auth_config
        self.base_url = str(config.get("api_base") or DEFAULT_API_BASE).rstrip("/")
        self.messages_url = f"{self.base_url}/messages"
        self.headers = {"content-type": "application/json", "accept": "application/json",
                        "anthropic-version": str(config.get("version") or DEFAULT_VERSION)}
        if target.credentials.get("api_key"):
            self.headers["x-api-key"] = str(target.credentials["api_key"])
        self.stream_headers = {**self.headers, "accept": "text/event-stream"}

    def upstream_url(self) -> str:
        return self.base_url

    def raw_upstream(self) -> RawUpstream:
        return RawUpstream.of(self.base_url, self.headers)

    async def chat(self, request: dict, stats: CallStats) -> dict:
        body = translate.chat_request_to_anthropic(request, self.target.model_name)
        answer = await http.post_json(self.client, self.messages_url, body, self.headers, stats, self.provider)
        return translate.anthropic_response_to_chat(answer, self.target.model_name)

    async def chat_stream(self, request: dict, stats: CallStats) -> AsyncIterator[dict]:
        body = {**translate.chat_request_to_anthropic(request, self.target.model_name), "stream": True}
        stream = await http.open_stream(self.client, "POST", self.messages_url, body, self.stream_headers, stats,
                                        self.provider)
        async with aclosing(messages_chunks(stream, self.target.model_name, self.provider)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def embeddings(self, request: dict, stats: CallStats) -> dict:
        raise UnsupportedOperation("Anthropic has no embeddings API; link an embeddings model from another "
                                   "provider to this endpoint.")

    async def passthrough(self, api: str, body: dict, headers, stats: CallStats, *, stream: bool) -> PassthroughResponse:
        if api not in self.passthrough_apis:
            raise UnsupportedOperation(f"Provider 'anthropic' does not support the '{api}' API.")
        url = self.messages_url if api == Api.ANTHROPIC_MESSAGES else f"{self.messages_url}/count_tokens"
        # The client's anthropic-version / anthropic-beta describe the body it wrote, so they win over
        # the configured version; the credentials are always the gateway's.
        own = {k: v for k, v in self.headers.items() if not (k == "anthropic-version" and "anthropic-version" in headers)}
        return await http.forward(self.client, url, {**body, "model": self.target.model_name},
                                  http.merge_client_headers(own, headers), stats, self.provider,
                                  stream=stream and api == Api.ANTHROPIC_MESSAGES)


async def messages_chunks(stream: http.OpenStream, model_name: str, provider: str) -> AsyncIterator[dict]:
    """OpenAI chunks for an open Messages SSE stream, from Anthropic or from Claude on another platform; a
    stream that ends before `message_stop` raises. Close this iterator (`contextlib.aclosing`) when the
    client goes away early: that closes the upstream response at once, not at garbage collection."""
    state = translate.StreamTranslator(model_name)
    events = stream.events()
    try:
        async for event in events:
            payload = http.json_event(event.data, provider)
            for chunk in state.feed(event.event or payload.get("type", ""), payload):
                yield chunk
    finally:
        await events.aclose()
    if not state.finished:
        raise http.incomplete_stream(provider, "message_stop")
