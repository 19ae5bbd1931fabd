"""What one provider call is made for and what it measured: the resolved model (provider, model id,
credentials, prices), the per-attempt time spent waiting on the upstream, and a native answer."""
from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Prices:
    """USD per million tokens; None where unknown."""

    input: Decimal | None = None
    output: Decimal | None = None
    cached_input: Decimal | None = None
    audio_input: Decimal | None = None   # realtime audio tokens; None: an audio token's cost is unknown
    audio_output: Decimal | None = None


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


# The one clock for request timings: a request's start, its provider waits and every reading of its
# duration come from it, so durations and the waits inside them can be subtracted.
clock = time.perf_counter


@dataclass
class CallStats:
    """Per-attempt bookkeeping the adapter fills in: time spent waiting on the provider, for the
    gateway-overhead headers."""

    upstream_seconds: float = 0.0
    _started: float = 0.0

    def start(self) -> None:
        self._started = clock()

    def stop(self) -> None:
        if self._started:
            self.upstream_seconds += clock() - self._started
            self._started = 0.0

    def waited(self, now: float) -> float:
        """Seconds spent waiting on the provider up to `now` (a `clock()` reading), a wait still open
        included, so a reading taken mid-wait never counts the provider's time as the gateway's."""
        return self.upstream_seconds + (now - self._started if self._started else 0.0)


@dataclass
class PassthroughResponse:
    """A provider's native answer: a parsed JSON body, or (streaming) the raw byte chunks as they arrive."""

    status: int
    headers: Mapping[str, str]
    body: dict | list | None = None
    stream: AsyncIterator[bytes] | None = None


CONTENT_HEADERS = frozenset({"content-type", "accept"})


@dataclass(frozen=True)
class RawUpstream:
    """Where a provider's own API lives and how to authenticate to it, for routes that relay requests the
    gateway does not model (the raw proxy, realtime WebSockets). `headers` carry only credentials and
    provider-wide headers, never a content type."""

    base_url: str
    headers: Mapping[str, str] = field(repr=False, default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, base_url: str, headers: Mapping[str, str], params: Mapping[str, str] | None = None) -> RawUpstream:
        """Drop the JSON content headers an adapter sends on its own calls: a relayed request has its own."""
        return cls(base_url.rstrip("/"), {k: v for k, v in headers.items() if k.lower() not in CONTENT_HEADERS},
                   dict(params or {}))
