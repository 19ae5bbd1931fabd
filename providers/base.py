"""The one small interface every provider adapter implements, and the error type they all raise.

Unified calls speak OpenAI's chat/embeddings shapes on both sides: adapters translate to and from their
provider's wire format with the pure functions in their own `translate.py`. Passthrough calls forward a
vendor-native body (OpenAI, Anthropic or Gemini format) to a provider that speaks it.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import ClassVar

import httpx

from providers.errors import ProviderError, TranslationError, UnsupportedOperation, is_retryable_status
from providers.http import client_for
from providers.target import CallStats, ModelTarget, PassthroughResponse, Prices, RawUpstream, clock

# The interface's types live in the modules below it (providers/http.py uses them too); adapters import
# them from here.
__all__ = ["CallStats", "ModelTarget", "clock", "PassthroughResponse", "Prices", "ProviderAdapter",
           "RawUpstream", "ProviderError", "TranslationError", "UnsupportedOperation", "is_retryable_status"]


class ProviderAdapter:
    """Base class: one instance per model definition, built when the config snapshot is built, so per-request
    work is only translation and I/O.

    Subclasses override what their provider supports; the defaults raise `UnsupportedOperation`.
    `passthrough_apis` names the native APIs (`providers.wire.Api`) the provider speaks.
    """

    provider: ClassVar[str] = ""
    passthrough_apis: ClassVar[frozenset[str]] = frozenset()
    unified_operations: ClassVar[frozenset[str]] = frozenset({"chat", "chat_stream", "embeddings"})

    @classmethod
    def passthrough_apis_for(cls, provider: str) -> frozenset[str]:
        """The native APIs this adapter speaks for `provider` (one adapter may serve several providers)."""
        return cls.passthrough_apis
    # Why this model cannot be called at all (its configuration is wrong), or None: routing skips it.
    problem: str | None = None

    def __init__(self, target: ModelTarget, client: httpx.AsyncClient | None = None) -> None:
        self.target = target
        self._client = client

    @property
    def client(self) -> httpx.AsyncClient:
        """The pooled client for `upstream_url()`'s origin, looked up on first use."""
        if self._client is None:
            self._client = client_for(self.target, self.upstream_url())
        return self._client

    def upstream_url(self) -> str | None:
        """A URL on this model's upstream, whose origin picks the pooled client; None means the configured
        `api_base`."""
        return None

    async def chat(self, request: dict, stats: CallStats) -> dict:
        """OpenAI chat request in (endpoint `model` already removed), OpenAI `chat.completion` out."""
        raise UnsupportedOperation(f"Provider '{self.target.provider}' does not support chat.")

    def chat_stream(self, request: dict, stats: CallStats) -> AsyncIterator[dict]:
        """Async iterator of OpenAI `chat.completion.chunk` dicts. HTTP errors surface on the first
        `__anext__`; a stream that ends without the provider's terminator raises ProviderError."""
        raise UnsupportedOperation(f"Provider '{self.target.provider}' does not support streaming chat.")

    async def embeddings(self, request: dict, stats: CallStats) -> dict:
        """OpenAI embeddings request in, OpenAI embeddings list out."""
        raise UnsupportedOperation(f"Provider '{self.target.provider}' does not support embeddings.")

    async def passthrough(self, api: str, body: dict, headers: Mapping[str, str], stats: CallStats,
                          *, stream: bool) -> PassthroughResponse:
        """Forward a native body for `api` with this model's name and credentials."""
        raise UnsupportedOperation(f"Provider '{self.target.provider}' does not support the '{api}' API.")

    def raw_upstream(self) -> RawUpstream:
        """This model's `api_base` and credentials, for the raw proxy route."""
        raise UnsupportedOperation(f"Provider '{self.target.provider}' cannot be reached through the raw proxy.")

    def realtime_upstream(self) -> RawUpstream:
        """The full WebSocket URL (ws/wss) of this model's realtime API, with its credentials."""
        raise UnsupportedOperation(f"Provider '{self.target.provider}' does not serve the realtime API.")
