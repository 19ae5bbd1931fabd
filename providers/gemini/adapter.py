"""Adapter for Google's Gemini API (generativelanguage.googleapis.com, or a compatible `api_base`)."""
from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx

from providers import http
from providers.base import (CallStats, ModelTarget, PassthroughResponse, ProviderAdapter, ProviderError, RawUpstream,
                            UnsupportedOperation)
from providers.gemini import translate
from providers.wire import Api

DEFAULT_API_BASE = "https://generativelanguage.googleapis.com/v1beta"


def _key_rejected(exc: ProviderError) -> ProviderError:
    """Google answers a wrong or expired API key with 400 INVALID_ARGUMENT rather than 401. That is the
    gateway's credential at fault, not the client's request, so it is reported like other upstream auth
    failures (502) instead of as the client's bad request."""
    if exc.upstream_status == 400 and "API key" in exc.message:
        return ProviderError(502, exc.message, retryable=False, error_type="upstream_auth_error", upstream_status=400)
    return exc


class GeminiAdapter(ProviderAdapter):
    provider = "gemini"
    passthrough_apis = frozenset({Api.GEMINI_GENERATE, Api.GEMINI_STREAM})

    def __init__(self, target: ModelTarget, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(target, client)
        self.base = (target.auth_config.get("api_base") or DEFAULT_API_BASE).rstrip("/")
        self.resource = translate.model_resource(target.model_name)
        prefix = f"{self.base}/{quote(self.resource, safe='/')}"
        self.urls = {method: f"{prefix}:{method}"
                     for method in ("generateContent", "embedContent", "batchEmbedContents")}
        self.urls["streamGenerateContent"] = f"{prefix}:streamGenerateContent?alt=sse"
        self.headers = {"content-type": "application/json", "accept": "application/json"}
        if target.credentials.get("api_key"):
            self.headers["x-goog-api-key"] = str(target.credentials["api_key"])
        self.stream_headers = {**self.headers, "accept": "text/event-stream"}

    def upstream_url(self) -> str:
        return self.base

    async def _post(self, method: str, body: dict, stats: CallStats) -> dict:
        try:
            return await http.post_json(self.client, self.urls[method], body, self.headers, stats, self.provider)
        except ProviderError as exc:
            raise _key_rejected(exc) from None

    async def chat(self, request: dict, stats: CallStats) -> dict:
        body = translate.build_generate_body(request, self.target.model_name)
        response = await self._post("generateContent", body, stats)
        return translate.chat_completion(response, self.target.model_name)

    async def chat_stream(self, request: dict, stats: CallStats) -> AsyncIterator[dict]:
        body = translate.build_generate_body(request, self.target.model_name)
        try:
            stream = await http.open_stream(self.client, "POST", self.urls["streamGenerateContent"], body,
                                            self.stream_headers, stats, self.provider)
        except ProviderError as exc:
            raise _key_rejected(exc) from None
        translator = translate.StreamTranslator(self.target.model_name)
        events = stream.events()
        try:
            async for event in events:
                for chunk in translator.feed(self._parse_event(event.data)):
                    yield chunk
        finally:
            # Closing the event reader closes the upstream response at once when the client goes away.
            await events.aclose()
        if not translator.finished:
            raise http.incomplete_stream(self.provider, "a finish reason")
        yield translator.usage_chunk()

    def _parse_event(self, data: str) -> dict:
        event = http.json_event(data, self.provider)
        if "error" in event:
            raise http.stream_error(self.provider, event["error"])
        return event

    async def embeddings(self, request: dict, stats: CallStats) -> dict:
        method, body = translate.build_embeddings_call(request, self.resource)
        response = await self._post(method, body, stats)
        return translate.embeddings_response(response, self.target.model_name, request.get("encoding_format"))

    async def passthrough(self, api: str, body: dict, headers, stats: CallStats, *, stream: bool) -> PassthroughResponse:
        """The model is in the URL, so the body goes upstream exactly as the client wrote it. Streams are
        always requested as SSE; the gateway re-frames them for clients that asked for the JSON array."""
        if api not in self.passthrough_apis:
            raise UnsupportedOperation(f"Provider 'gemini' does not support the '{api}' API.")
        method = "streamGenerateContent" if api == Api.GEMINI_STREAM else "generateContent"
        try:
            return await http.forward(self.client, self.urls[method], body,
                                      http.merge_client_headers(self.headers, headers), stats, self.provider,
                                      stream=api == Api.GEMINI_STREAM)
        except ProviderError as exc:
            raise _key_rejected(exc) from None

    def raw_upstream(self) -> RawUpstream:
        return RawUpstream.of(self.base, self.headers)
