"""OAuth 2.0 client-credentials tokens (RFC 6749 §4.4) for providers that take a machine identity instead of
an API key (Databricks service principals): fetched once, cached, and renewed before they expire.

The token call is async HTTP on the provider's pooled client, so nothing blocks the event loop. Only one
fetch per identity is in flight: a shared task every caller needing it awaits, which also keeps a renewal
going when the request that started it is cancelled. Requests never wait while the cached token has more
than `MIN_VALIDITY` left; from `REFRESH_AHEAD` before expiry a background renewal replaces it.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Callable

import httpx
import orjson

from providers import http
from providers.errors import ProviderError

logger = logging.getLogger(__name__)

REFRESH_AHEAD = 300.0
MIN_VALIDITY = 60.0
DEFAULT_LIFETIME = 3600.0


class ClientCredentialsToken:
    """Bearer tokens for one client id at one token endpoint. `clock` is monotonic seconds (injectable)."""

    def __init__(self, token_url: str, client_id: str, client_secret: str, scope: str, provider: str, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.token_url = token_url
        self._auth = httpx.BasicAuth(client_id, client_secret)
        self._form = {"grant_type": "client_credentials", "scope": scope}
        self.provider = provider
        self.clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._refreshing: asyncio.Task | None = None

    async def token(self, client: httpx.AsyncClient) -> str:
        remaining = self._expires_at - self.clock()
        if self._token is not None and remaining > REFRESH_AHEAD:
            return self._token
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.get_running_loop().create_task(self._fetch(client))
            self._refreshing.add_done_callback(self._log_failure)
        if self._token is not None and remaining > MIN_VALIDITY:
            return self._token
        return await asyncio.shield(self._refreshing)

    async def _fetch(self, client: httpx.AsyncClient) -> str:
        started = self.clock()
        try:
            response = await client.post(self.token_url, data=self._form, auth=self._auth,
                                         headers={"accept": "application/json"})
        except httpx.HTTPError as exc:
            raise http.transport_error(exc, self.provider) from None
        if response.status_code != 200:
            raise ProviderError(502, f"Provider '{self.provider}' refused the OAuth client credentials "
                                f"(HTTP {response.status_code} from its token endpoint).",
                                retryable=response.status_code >= 500, error_type="upstream_auth_error")
        try:
            answer = orjson.loads(response.content)
            token = answer["access_token"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise ProviderError(502, f"Provider '{self.provider}' token endpoint answered without an access_token.",
                                retryable=True, error_type="upstream_auth_error") from None
        lifetime = answer.get("expires_in")
        self._token = str(token)
        self._expires_at = started + (float(lifetime) if isinstance(lifetime, (int, float)) else DEFAULT_LIFETIME)
        return self._token

    def _log_failure(self, task: asyncio.Task) -> None:
        """A background renewal has no caller to raise to; the next request tries again."""
        if not task.cancelled() and task.exception() is not None:
            logger.warning("OAuth token renewal for %s failed: %s", self.provider, task.exception())


_tokens: dict[tuple[str, str, str, str], ClientCredentialsToken] = {}
_tokens_lock = threading.Lock()


def token_for(token_url: str, client_id: str, client_secret: str, scope: str, provider: str) -> ClientCredentialsToken:
    """One token cache per identity per process, shared by the adapters rebuilt at each configuration change
    and by every model of the same service principal."""
    key = (token_url, client_id, hashlib.sha256(client_secret.encode()).hexdigest(), scope)
    with _tokens_lock:  # snapshots are built in worker threads
        token = _tokens.get(key)
        if token is None:
            token = _tokens[key] = ClientCredentialsToken(token_url, client_id, client_secret, scope, provider)
        return token
