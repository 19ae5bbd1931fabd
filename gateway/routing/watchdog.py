"""The upstream side of a relayed stream: stall detection, and one report of how the stream ended.

A provider that goes quiet for longer than the idle timeout fails like any other upstream error
(ProviderError, status 504, retryable), so the same rules apply: before the first item the router falls
back, after it the pipeline ends the client's stream with an error event and no terminator. Idle time is
measured between the items the adapter produces: translated chunks on the unified routes (keep-alive pings
carry no content and do not count as activity), raw bytes on the native routes.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Generic, TypeVar

from providers.base import ProviderError

T = TypeVar("T")


class StallWatchdog(Generic[T]):
    """Wraps an adapter's stream iterator and reports, once, how it ended: `on_end(error)` when it failed
    (the error) or when the consumer closes it after it completed (None); `on_abandon()` when the consumer
    closes it early. Completion is reported at `aclose` rather than at the last item so that a consumer that
    finds a cleanly closed stream incomplete (no terminator) can still `fail` it. Until `arm` is called
    nothing is reported: failures before the first item are the router's to count."""

    def __init__(self, inner: AsyncIterator[T], idle_timeout: float | None, provider: str,
                 credentials: Mapping[str, Any] | None = None, *, total_timeout: float | None = None,
                 remaining: float | None = None) -> None:
        self.inner = inner
        self.idle_timeout = idle_timeout
        # The endpoint's total timeout bounds the whole stream too: `remaining` seconds of it are left now.
        self.total_timeout = total_timeout
        self.deadline = None if remaining is None else asyncio.get_running_loop().time() + remaining
        self.provider = provider
        self.credentials = credentials or {}
        self._on_end: Callable[[ProviderError | None], None] | None = None
        self._on_abandon: Callable[[], None] | None = None
        self._ended = False
        self._completed = False

    def arm(self, on_end: Callable[[ProviderError | None], None], on_abandon: Callable[[], None]) -> None:
        self._on_end, self._on_abandon = on_end, on_abandon

    def __aiter__(self) -> StallWatchdog[T]:
        return self

    async def __anext__(self) -> T:
        idle_at = None if self.idle_timeout is None else asyncio.get_running_loop().time() + self.idle_timeout
        overall = self.deadline is not None and (idle_at is None or self.deadline <= idle_at)
        scope = asyncio.timeout_at(self.deadline if overall else idle_at)
        try:
            async with scope:
                return await self.inner.__anext__()
        except TimeoutError:
            if not scope.expired():
                raise
            if overall:
                error = ProviderError(504, f"The endpoint's total timeout ({self.total_timeout:g} s) ran out while "
                                      f"provider '{self.provider}' was streaming.", retryable=True,
                                      error_type="timeout")
            else:
                error = ProviderError(504, f"Provider '{self.provider}' sent nothing for {self.idle_timeout:g} s; "
                                      "the stream was abandoned.", retryable=True, error_type="stream_idle_timeout")
            self._end(error)
            raise error from None
        except StopAsyncIteration:
            self._completed = True
            raise
        except ProviderError as exc:
            exc.redact(self.credentials)  # a mid-stream error event's text, relayed to the client
            self._end(exc)
            raise

    async def aclose(self) -> None:
        """Close the upstream now (not at garbage collection), e.g. when the client disconnected."""
        if self._completed:
            self._end(None)
        elif not self._ended:
            self._ended = True
            if self._on_abandon is not None:
                self._on_abandon()
        aclose = getattr(self.inner, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception:  # noqa: BLE001 - closing an upstream that already failed
                pass

    def fail(self, error: ProviderError) -> None:
        """The consumer judged the stream failed (e.g. it ended without the provider's terminator)."""
        self._end(error)

    def _end(self, error: ProviderError | None) -> None:
        if self._ended:
            return
        self._ended = True
        if self._on_end is not None:
            self._on_end(error)
