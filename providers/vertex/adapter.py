"""Adapter for Google Vertex AI: Gemini models through the generateContent API, Claude models through
Anthropic's Messages API as Vertex publishes it (`:rawPredict` / `:streamRawPredict`), and Mistral and
Llama models through OpenAI's chat format (providers/vertex/partners.py).

`auth_config`: `vertex_project` (required), `vertex_location` (default `global`), `api_base` (default
https://aiplatform.googleapis.com/v1, or https://<location>-aiplatform.googleapis.com/v1), `timeout`.
Credentials (`auth_mode`): `service_account`, the secret's `vertex_credentials` (a key as a JSON object or
its text), or `adc`, Application Default Credentials (google.auth.default), exchanged for an OAuth token
that is cached and renewed off the event loop (providers/vertex/auth.py).
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing

import httpx

from providers import http, outbound
from providers.anthropic import translate as anthropic
from providers.anthropic.adapter import messages_chunks
from providers.base import CallStats, ModelTarget, PassthroughResponse, ProviderAdapter, UnsupportedOperation
from providers.capabilities import for_vertex_publisher
from providers.gemini.adapter import GeminiAdapter
from providers.registry import AUTH_MODES
from providers.vertex import translate
from providers.vertex.auth import (TokenSource, application_default_source, check_credential_endpoints,
                                   service_account_info, token_source_for)
from providers.vertex.partners import OpenAIFormatModel
from providers.wire import Api

EMBEDDING_CONCURRENCY = 8


class _VertexGemini(GeminiAdapter):
    """The Gemini adapter, named for Vertex in its error messages."""

    provider = "vertex_ai"


def _token_source(target: ModelTarget) -> TokenSource:
    """`auth_mode`: `service_account` (the secret's `vertex_credentials`; the default when it is set) or
    `adc` (Application Default Credentials; the default otherwise). Raises ValueError for a configuration
    that cannot work."""
    values = target.credentials
    mode = target.auth_config.get("auth_mode") or ("service_account" if values.get("vertex_credentials") else "adc")
    if mode == "adc":
        check_credential_endpoints()
        return application_default_source()
    if mode not in AUTH_MODES["vertex_ai"]:
        raise ValueError(f"Vertex AI auth_mode '{mode}' is not supported; use one of "
                         f"{', '.join(AUTH_MODES['vertex_ai'])}.")
    info = service_account_info(values.get("vertex_credentials"))
    # The key names the token endpoint the gateway will call, so it answers to the outbound policy like
    # any api_base.
    problem = outbound.url_problem(str(info["token_uri"]))
    if problem:
        raise ValueError(f"the token_uri of vertex_credentials is blocked by the outbound policy: {problem}")
    return token_source_for(info)


class VertexAdapter(ProviderAdapter):
    provider = "vertex_ai"
    passthrough_apis = frozenset({Api.GEMINI_GENERATE, Api.GEMINI_STREAM, Api.ANTHROPIC_MESSAGES})

    def __init__(self, target: ModelTarget, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(target, client)
        self.model_url = translate.model_url(target.auth_config, target.model_name)
        publisher = translate.publisher_of(target.model_name)
        self.capabilities = for_vertex_publisher(publisher)
        self.is_claude = publisher == "anthropic"
        self.tokens = _token_source(target)
        self.headers = {"content-type": "application/json", "accept": "application/json"}
        self.passthrough_apis = frozenset({Api.ANTHROPIC_MESSAGES} if self.is_claude
                                          else {Api.GEMINI_GENERATE, Api.GEMINI_STREAM})
        self.partner = None
        if publisher in translate.OPENAI_FORMAT:
            self.partner = OpenAIFormatModel(self.model_url, target.model_name, lambda: self.client, self._auth_headers)
            self.passthrough_apis = frozenset({Api.OPENAI_CHAT})
        # Gemini on Vertex is the Gemini API under a longer prefix: the Gemini adapter, pointed at that
        # prefix, serves it; only the credential differs (a fresh OAuth token in place of an API key).
        publisher = self.model_url.rpartition("/models/")[0]
        self._gemini = _VertexGemini(ModelTarget(id=target.id, name=target.name, provider=self.provider,
                                                 model_name=target.model_name, auth_config={
                                                     **target.auth_config, "api_base": publisher}), client)

    def upstream_url(self) -> str:
        return self.model_url

    async def _auth_headers(self, accept: str = "application/json") -> dict[str, str]:
        return {**self.headers, "accept": accept, "authorization": f"Bearer {await self.tokens.token()}"}

    async def _gemini_adapter(self) -> _VertexGemini:
        """The Gemini adapter with the current token in its headers. Every request reads whichever token
        is current when it is sent, and tokens only ever change to fresher valid ones."""
        token = f"Bearer {await self.tokens.token()}"
        self._gemini.headers["authorization"] = self._gemini.stream_headers["authorization"] = token
        return self._gemini

    async def chat(self, request: dict, stats: CallStats) -> dict:
        if self.partner:
            return await self.partner.chat(request, stats)
        if not self.is_claude:
            return await (await self._gemini_adapter()).chat(request, stats)
        body = translate.claude_body(anthropic.chat_request_to_anthropic(request, self.target.model_name), stream=False)
        answer = await http.post_json(self.client, f"{self.model_url}:rawPredict", body, await self._auth_headers(),
                                      stats, self.provider)
        return anthropic.anthropic_response_to_chat(answer, self.target.model_name)

    async def chat_stream(self, request: dict, stats: CallStats) -> AsyncIterator[dict]:
        if self.partner:
            async with aclosing(self.partner.chat_stream(request, stats)) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        if not self.is_claude:
            async for chunk in (await self._gemini_adapter()).chat_stream(request, stats):
                yield chunk
            return
        body = translate.claude_body(anthropic.chat_request_to_anthropic(request, self.target.model_name), stream=True)
        stream = await http.open_stream(self.client, "POST", f"{self.model_url}:streamRawPredict", body,
                                        await self._auth_headers("text/event-stream"), stats, self.provider)
        async with aclosing(messages_chunks(stream, self.target.model_name, self.provider)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def embeddings(self, request: dict, stats: CallStats) -> dict:
        if self.is_claude or self.partner:
            raise UnsupportedOperation(f"'{self.target.model_name}' has no embeddings API on Vertex AI; link a "
                                       "Vertex AI embedding model (e.g. text-embedding-005) to this endpoint.")
        bodies = translate.predict_bodies(request, self.target.model_name)
        headers = await self._auth_headers()

        async def predict(body: dict) -> dict:
            return await http.post_json(self.client, f"{self.model_url}:predict", body, headers, CallStats(),
                                        self.provider)

        answers = await http.post_each(predict, bodies, stats, concurrency=EMBEDDING_CONCURRENCY)
        return translate.embeddings_response(answers, self.target.model_name, request.get("encoding_format"))

    async def passthrough(self, api: str, body: dict, headers: Mapping[str, str], stats: CallStats,
                          *, stream: bool) -> PassthroughResponse:
        if api not in self.passthrough_apis:
            family = "Claude" if self.is_claude else "partner" if self.partner else "Gemini"
            raise UnsupportedOperation(f"Provider 'vertex_ai' does not support the '{api}' API for {family} model "
                                       f"'{self.target.model_name}'.")
        if self.partner:
            # The same table as the unified route, as the OpenAI adapter applies it on its native route.
            return await self.partner.passthrough(self.capabilities.prepare(body, stream=stream), headers, stats,
                                                  stream=stream)
        if api != Api.ANTHROPIC_MESSAGES:
            return await (await self._gemini_adapter()).passthrough(api, body, headers, stats, stream=stream)
        method = "streamRawPredict" if stream else "rawPredict"
        # The version is in the body on Vertex; a client's anthropic-version header describes the public API.
        client_headers = {k: v for k, v in headers.items() if k.lower() != "anthropic-version"}
        return await http.forward(self.client, f"{self.model_url}:{method}", translate.claude_body(body, stream=stream),
                                  http.merge_client_headers(await self._auth_headers(), client_headers), stats,
                                  self.provider, stream=stream)
