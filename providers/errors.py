"""The one error type provider adapters raise, and its two refinements: it carries the status the client
should see and whether another attempt can succeed."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


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
