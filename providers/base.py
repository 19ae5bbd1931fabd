"""The one small interface every provider adapter implements, and the error type they all raise.

Unified calls speak OpenAI's chat/embeddings shapes on both sides: adapters translate to and from their
provider's wire format with the pure functions in their own `translate.py`. Passthrough calls forward a
vendor-native body (OpenAI, Anthropic or Gemini format) to a provider that speaks it.
"""
from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

import httpx


@dataclass(frozen=True)
class Prices:
    """USD per million tokens; None where unknown."""

    input: Decimal | None = None
    output: Decimal | None = None
    cached_input: Decimal | None = None


@dataclass(frozen=True)
class ModelTarget:
    """A model definition resolved for calling: provider, model id and decrypted credentials."""

    id: int
    name: str
    provider: str
    model_name: str
    credentials: Mapping[str, Any] = field(repr=False, default_factory=dict)
    auth_config: Mapping[str, Any] = field(default_factory=dict)
    prices: Prices = field(default_factory=Prices)


class ProviderError(Exception):
    """Any failure talking to a provider.

    `status` is what the client should see; `retryable` says whether another attempt (same model after a
    backoff, or a fallback model) can reasonably succeed. Messages never carry credentials.
    """

    def __init__(self, status: int, message: str, *, retryable: bool | None = None, error_type: str = "upstream_error",
                 retry_after: float | None = None, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retryable = is_retryable_status(upstream_status or status) if retryable is None else retryable
        self.error_type = error_type
        self.retry_after = retry_after
        self.upstream_status = upstream_status

    def redact(self, credentials: Mapping[str, Any]) -> ProviderError:
        """Blank out every credential value the message quotes, in place. Messages carry the upstream's
        error text, and some servers echo the key they refused."""
        for value in _credential_strings(credentials):
            self.message = self.message.replace(value, "[REDACTED]")
        self.args = (self.message,)
        return self


# Shorter values are placeholders, not credentials; replacing them would garble every message.
MIN_REDACTED_LENGTH = 8


def _credential_strings(value: Any) -> Iterator[str]:
    """The string leaves of a secret's values (Vertex AI's service-account key is a nested object)."""
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _credential_strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _credential_strings(item)
    elif isinstance(value, str) and len(value) >= MIN_REDACTED_LENGTH:
        yield value


def is_retryable_status(status: int) -> bool:
    return status in (408, 429) or status >= 500


class UnsupportedOperation(ProviderError):
    def __init__(self, message: str) -> None:
        super().__init__(400, message, retryable=False, error_type="unsupported_operation")


class TranslationError(ProviderError):
    """The client's request cannot be expressed in the provider's wire format: the client must change it,
    so it is never retried."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message, retryable=False, error_type="invalid_request_error")


@dataclass
class CallStats:
    """Per-attempt bookkeeping the adapter fills in: time spent waiting on the provider, for the
    gateway-overhead headers."""

    upstream_seconds: float = 0.0
    _started: float = 0.0

    def start(self) -> None:
        self._started = time.perf_counter()

    def stop(self) -> None:
        if self._started:
            self.upstream_seconds += time.perf_counter() - self._started
            self._started = 0.0


@dataclass
class PassthroughResponse:
    """A provider's native answer: a parsed JSON body, or (streaming) the raw byte chunks as they arrive."""

    status: int
    headers: Mapping[str, str]
    body: dict | list | None = None
    stream: AsyncIterator[bytes] | None = None


class ProviderAdapter:
    """Base class: one instance per model definition, built when the config snapshot is built, so per-request
    work is only translation and I/O.

    Subclasses override what their provider supports; the defaults raise `UnsupportedOperation`.
    `passthrough_apis` names the native APIs (see PASSTHROUGH_APIS) the provider speaks.
    """

    provider: ClassVar[str] = ""
    passthrough_apis: ClassVar[frozenset[str]] = frozenset()
    unified_operations: ClassVar[frozenset[str]] = frozenset({"chat", "chat_stream", "embeddings"})

    @classmethod
    def passthrough_apis_for(cls, provider: str) -> frozenset[str]:
        """The native APIs this adapter speaks for `provider` (one adapter may serve several providers)."""
        return cls.passthrough_apis

    def __init__(self, target: ModelTarget, client: httpx.AsyncClient | None = None) -> None:
        self.target = target
        self._client = client

    @property
    def client(self) -> httpx.AsyncClient:
        """The pooled client for `upstream_url()`'s origin, looked up on first use."""
        if self._client is None:
            from providers.http import client_for

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


PASSTHROUGH_APIS = {
    "openai-chat": "/gateway/openai/v1/chat/completions",
    "openai-embeddings": "/gateway/openai/v1/embeddings",
    "openai-responses": "/gateway/openai/v1/responses",
    "anthropic-messages": "/gateway/anthropic/v1/messages",
    "anthropic-count-tokens": "/gateway/anthropic/v1/messages/count_tokens",
    "gemini-generate": "/gateway/gemini/v1beta/models/<endpoint>:generateContent",
    "gemini-stream": "/gateway/gemini/v1beta/models/<endpoint>:streamGenerateContent",
}
