"""Adapter for Databricks Model Serving: the workspace's OpenAI-compatible serving endpoints
(`<workspace>/serving-endpoints/chat/completions`, `/embeddings`, the endpoint name as `model`), served by the
OpenAI adapter, with either credential Databricks issues:

- `api_key`: a personal access token, sent as a bearer token;
- `client_id` and `client_secret` of a service principal (OAuth machine-to-machine): exchanged at the
  workspace's `/oidc/v1/token` for an `all-apis` token, cached and renewed ahead of expiry
  (providers/oauth.py).

`auth_config`: `api_base` (the workspace URL), `timeout`.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing

import httpx

from providers import oauth
from providers.base import CallStats, ModelTarget, PassthroughResponse
from providers.openai.adapter import OpenAIAdapter

SCOPE = "all-apis"


class DatabricksAdapter(OpenAIAdapter):
    provider = "databricks"

    def __init__(self, target: ModelTarget, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(target, client)
        values = target.credentials
        self.oauth: oauth.ClientCredentialsToken | None = None
        if values.get("client_id") or values.get("client_secret"):
            if not values.get("client_id") or not values.get("client_secret"):
                raise ValueError("Databricks OAuth needs both secret values 'client_id' and 'client_secret'.")
            workspace = self.urls["chat/completions"].rpartition("/serving-endpoints/")[0]
            self.oauth = oauth.token_for(f"{workspace}/oidc/v1/token", str(values["client_id"]),
                                         str(values["client_secret"]), SCOPE, self.provider)
        elif not values.get("api_key"):
            raise ValueError("Databricks needs the secret value 'api_key' (a personal access token), or "
                             "'client_id' and 'client_secret' of a service principal.")

    async def _authorize(self) -> None:
        """Put the current OAuth token in the headers every call reads; tokens only ever change to fresher
        valid ones, so concurrent requests may share the dict."""
        if self.oauth is not None:
            self.headers["authorization"] = f"Bearer {await self.oauth.token(self.client)}"

    async def chat(self, request: dict, stats: CallStats) -> dict:
        await self._authorize()
        return await super().chat(request, stats)

    async def chat_stream(self, request: dict, stats: CallStats) -> AsyncIterator[dict]:
        await self._authorize()
        async with aclosing(super().chat_stream(request, stats)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def embeddings(self, request: dict, stats: CallStats) -> dict:
        await self._authorize()
        return await super().embeddings(request, stats)

    async def passthrough(self, api: str, body: dict, headers: Mapping[str, str], stats: CallStats,
                          *, stream: bool) -> PassthroughResponse:
        await self._authorize()
        return await super().passthrough(api, body, headers, stats, stream=stream)
