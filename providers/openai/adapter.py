"""Adapter for OpenAI and every provider that speaks OpenAI's wire format (Azure OpenAI, Azure AI Foundry's
model inference API, Groq, DeepSeek, xAI, OpenRouter, Ollama, Mistral, Together, Fireworks, Databricks,
vLLM, Portkey, any custom api_base)."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

import orjson

from providers import http
from providers.base import (CallStats, ModelTarget, PassthroughResponse, ProviderAdapter, RawUpstream,
                            UnsupportedOperation)
from providers.openai import translate
from providers.wire import Api


PASSTHROUGH_OPERATIONS = {Api.OPENAI_CHAT: "chat/completions", Api.OPENAI_EMBEDDINGS: "embeddings",
                          Api.OPENAI_RESPONSES: "responses"}
# The Responses API exists at OpenAI, Azure and a few compatible hosts; the rest speak chat and embeddings.
RESPONSES_PROVIDERS = {"openai", "azure", "xai", "openrouter", "openai_compatible", "vllm"}
# Hosts that serve OpenAI's Realtime API over WebSockets (Azure too, at its own deployment URL).
REALTIME_PROVIDERS = {"openai", "openai_compatible"}


async def chat_chunks(stream: http.OpenStream, provider: str) -> AsyncIterator[dict]:
    """The `chat.completion.chunk` dicts of an OpenAI-format stream, up to `[DONE]`; an error event or a
    stream cut before `[DONE]` raises ProviderError. Shared by every host of OpenAI's chat format."""
    async with aclosing(stream.events()) as events:
        async for event in events:
            if event.data == "[DONE]":
                return
            try:
                chunk = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                raise http.malformed_event(provider) from None
            if isinstance(chunk, dict) and "error" in chunk and "choices" not in chunk:
                raise http.stream_error(provider, chunk["error"])
            yield chunk
    raise http.incomplete_stream(provider, "[DONE]")


class OpenAIAdapter(ProviderAdapter):
    provider = "openai"
    passthrough_apis = frozenset({Api.OPENAI_CHAT, Api.OPENAI_EMBEDDINGS, Api.OPENAI_RESPONSES})

    def __init__(self, target: ModelTarget, client=None) -> None:
        super().__init__(target, client)
        config = dict(target.auth_config)
        self.is_azure = target.provider == "azure" or config.get("api_type") in ("azure", "azuread")
        provider = "azure" if self.is_azure else target.provider
        self.headers = translate.auth_headers(provider, dict(target.credentials), config)
        self.params = {"api-version": config.get("api_version", "2024-10-21")} if self.is_azure else None
        if target.provider == "azure_ai":
            self.params = {"api-version": str(config.get("api_version") or translate.AZURE_AI_API_VERSION)}
        if self.is_azure:
            deployment = config.get("deployment_name") or target.model_name
            self.urls = {op: translate.azure_url(config, deployment, op) for op in ("chat/completions", "embeddings")}
            # Azure's Responses API is not per deployment: the deployment goes in the body's `model`.
            self.urls["responses"] = translate.azure_url(config, deployment, "responses").split("/deployments/")[0] + "/responses"
        else:
            base = translate.base_url(target.provider, config)
            self.urls = {op: f"{base}/{op}" for op in ("chat/completions", "embeddings", "responses")}

        self.config = config
        if not self.is_azure:
            self.passthrough_apis = self.passthrough_apis_for(target.provider)

    @classmethod
    def passthrough_apis_for(cls, provider: str) -> frozenset[str]:
        if provider in RESPONSES_PROVIDERS:
            return cls.passthrough_apis
        return frozenset({Api.OPENAI_CHAT, Api.OPENAI_EMBEDDINGS})

    def upstream_url(self) -> str:
        return self.urls["chat/completions"]

    async def chat(self, request: dict, stats: CallStats) -> dict:
        body = translate.build_chat_body(request, self.target.model_name, stream=False, include_model=not self.is_azure)
        answer = await http.post_json(self.client, self.urls["chat/completions"], body, self.headers, stats,
                                      self.target.provider, self.params)
        if not isinstance(answer.get("choices"), list):
            raise http.not_an_answer(self.target.provider, "a chat completion")
        return answer

    async def chat_stream(self, request: dict, stats: CallStats) -> AsyncIterator[dict]:
        body = translate.build_chat_body(request, self.target.model_name, stream=True, include_model=not self.is_azure)
        stream = await http.open_stream(self.client, "POST", self.urls["chat/completions"], body,
                                        {**self.headers, "accept": "text/event-stream"}, stats,
                                        self.target.provider, self.params)
        async with aclosing(chat_chunks(stream, self.target.provider)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def embeddings(self, request: dict, stats: CallStats) -> dict:
        body = translate.build_embeddings_body(request, self.target.model_name, include_model=not self.is_azure)
        return await http.post_json(self.client, self.urls["embeddings"], body, self.headers, stats,
                                    self.target.provider, self.params)

    async def passthrough(self, api: str, body: dict, headers, stats: CallStats, *, stream: bool) -> PassthroughResponse:
        if api not in self.passthrough_apis:
            raise UnsupportedOperation(f"Provider '{self.target.provider}' does not support the '{api}' API.")
        deployment = self.target.auth_config.get("deployment_name") or self.target.model_name
        upstream = {**body, "model": deployment if self.is_azure else self.target.model_name}
        if self.is_azure and api != Api.OPENAI_RESPONSES:
            upstream.pop("model")
        if api == Api.OPENAI_CHAT:
            # The same table as the unified route: Mistral takes neither `stream_options` (which others get
            # so the gateway can account for the stream) nor `max_completion_tokens`.
            upstream = self.capabilities.prepare(upstream, stream=stream)
        return await http.forward(self.client, self.urls[PASSTHROUGH_OPERATIONS[api]], upstream,
                                  http.merge_client_headers(self.headers, headers), stats, self.target.provider,
                                  stream=stream, params=self.params)

    def raw_upstream(self) -> RawUpstream:
        if self.is_azure:
            return RawUpstream.of(str(self.config.get("api_base") or ""), self.headers, self.params)
        return RawUpstream.of(translate.base_url(self.target.provider, self.config), self.headers)

    def realtime_upstream(self) -> RawUpstream:
        if self.target.provider not in REALTIME_PROVIDERS and not self.is_azure:
            raise UnsupportedOperation(f"Provider '{self.target.provider}' does not serve the realtime API.")
        if self.is_azure:
            deployment = self.config.get("deployment_name") or self.target.model_name
            url, params = translate.azure_realtime_url(self.config), {**self.params, "deployment": deployment}
        else:
            url = f"{translate.base_url(self.target.provider, self.config)}/realtime"
            params = {"model": self.target.model_name}
        return RawUpstream.of(translate.websocket_url(url), self.headers, params)
