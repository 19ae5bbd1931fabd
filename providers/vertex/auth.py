"""OAuth access tokens for Vertex AI, from a service-account key or from Application Default Credentials
(google.auth.default: GOOGLE_APPLICATION_CREDENTIALS, gcloud's user credentials, workload identity
federation, the GCE / GKE / Cloud Run metadata server): fetched once, cached, and renewed before they
expire, without ever blocking the event loop.

google-auth's discovery and refresh are synchronous HTTP (a signed JWT exchanged at the key's `token_uri`,
or the metadata server), so they run in a worker thread. Only one refresh per key is in flight at a time: it is a shared task that every caller
needing it awaits, which also keeps a refresh going when the request that started it is cancelled.
Requests never wait while the cached token has more than `MIN_VALIDITY` left; from `REFRESH_AHEAD`
before expiry a background refresh replaces it.
"""
from __future__ import annotations

import asyncio
import datetime
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import google.auth
import google.auth.credentials
import google.auth.exceptions
import orjson
import requests
from google.auth.transport.requests import Request
from google.oauth2 import service_account

from providers import outbound
from providers.base import ProviderError

logger = logging.getLogger(__name__)

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
REFRESH_AHEAD = 300.0
MIN_VALIDITY = 60.0
# Google's tokens last an hour; this is assumed only if the token endpoint does not say.
DEFAULT_LIFETIME = 3600.0


def service_account_info(value: object) -> dict:
    """The service-account key from the secret's `vertex_credentials`, stored as a JSON object or as the
    text of the key file. Raises ValueError, naming what is wrong but never a key's content."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ValueError("vertex_credentials is not valid JSON; paste the service-account key file.") from None
    if not isinstance(value, Mapping):
        raise ValueError("Vertex AI needs the secret value 'vertex_credentials': a service-account key (JSON).")
    missing = [key for key in ("client_email", "private_key", "token_uri") if not value.get(key)]
    if value.get("type", "service_account") != "service_account" or missing:
        raise ValueError("vertex_credentials must be a service-account key with client_email, private_key and "
                         f"token_uri{' (missing: ' + ', '.join(missing) + ')' if missing else ''}.")
    return dict(value)


def _service_account(info: Mapping) -> google.auth.credentials.Credentials:
    try:
        return service_account.Credentials.from_service_account_info(dict(info), scopes=SCOPES)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"vertex_credentials cannot be used: {type(exc).__name__} reading the private "
                         "key.") from None


def _application_default() -> google.auth.credentials.Credentials:
    """google.auth.default, in a worker thread (it may probe the metadata server)."""
    try:
        credentials, _ = google.auth.default(scopes=SCOPES)
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise ProviderError(502, f"No Google Application Default Credentials were found: {exc}", retryable=False,
                            error_type="upstream_auth_error") from None
    return credentials


def check_credential_endpoints(environ: Mapping[str, str] = os.environ) -> None:
    """Raises ValueError when Application Default Credentials would be fetched from where the outbound policy
    forbids: GCE_METADATA_HOST / GCE_METADATA_IP, or the `token_uri` of the key GOOGLE_APPLICATION_CREDENTIALS
    names (an unreadable file is left for google.auth.default to report)."""
    for name in ("GCE_METADATA_HOST", "GCE_METADATA_IP"):
        if environ.get(name):
            problem = outbound.credential_endpoint_problem(environ[name])
            if problem:
                raise ValueError(f"{name} is blocked by the outbound policy: {problem}")
    path = environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    try:
        key = orjson.loads(Path(path).read_bytes()) if path else None
    except (OSError, orjson.JSONDecodeError):
        return
    token_uri = key.get("token_uri") if isinstance(key, dict) else None
    problem = outbound.url_problem(str(token_uri)) if token_uri else None
    if problem:
        raise ValueError(f"the token_uri of GOOGLE_APPLICATION_CREDENTIALS is blocked by the outbound policy: {problem}")


class TokenSource:
    """Access tokens for one credential: `credentials` now, or `discover` to find them in a worker thread on
    first use. `clock` is monotonic seconds, injectable for tests."""

    def __init__(self, credentials: google.auth.credentials.Credentials | None = None, *,
                 discover: Callable[[], google.auth.credentials.Credentials] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._credentials = credentials
        self._discover = discover
        session = requests.Session()
        session.trust_env = False  # like the gateway's own clients: no proxies or netrc from the environment
        self._transport = Request(session)
        self.clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._refreshing: asyncio.Task | None = None

    async def token(self) -> str:
        remaining = self._expires_at - self.clock()
        if self._token is not None and remaining > REFRESH_AHEAD:
            return self._token
        task = self._refresh_task()
        if self._token is not None and remaining > MIN_VALIDITY:
            return self._token
        return await asyncio.shield(task)

    def _refresh_task(self) -> asyncio.Task:
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.get_running_loop().create_task(self._refresh())
            self._refreshing.add_done_callback(_log_failure)
        return self._refreshing

    async def _refresh(self) -> str:
        started = self.clock()
        try:
            await asyncio.to_thread(self._refresh_credentials)
        except google.auth.exceptions.TransportError as exc:
            raise ProviderError(502, f"Could not reach Google's token endpoint for Vertex AI: {type(exc).__name__}.",
                                retryable=True, error_type="connection_error") from None
        except google.auth.exceptions.RefreshError as exc:
            reason = exc.args[0] if exc.args else type(exc).__name__
            raise ProviderError(502, f"Google refused the Vertex AI credentials: {reason}",
                                retryable=False, error_type="upstream_auth_error") from None
        except google.auth.exceptions.GoogleAuthError as exc:
            raise ProviderError(502, f"Could not obtain Google credentials for Vertex AI: {type(exc).__name__}.",
                                retryable=False, error_type="upstream_auth_error") from None
        expiry = self._credentials.expiry
        utc_now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        lifetime = (expiry - utc_now).total_seconds() if expiry else DEFAULT_LIFETIME
        self._token = self._credentials.token
        self._expires_at = started + lifetime
        return self._token

    def _refresh_credentials(self) -> None:
        if self._credentials is None:
            self._credentials = self._discover()
        self._credentials.refresh(self._transport)


def _log_failure(task: asyncio.Task) -> None:
    """A background refresh has no caller to raise to; its failure is logged, and the next request tries
    again (waiting for it only once the old token is nearly expired)."""
    if not task.cancelled() and task.exception() is not None:
        logger.warning("Vertex AI token refresh failed: %s", task.exception())


ADC_KEY = ("application-default", "", "")
_sources: dict[tuple[str, str, str], TokenSource] = {}
_sources_lock = threading.Lock()


def token_source_for(info: Mapping) -> TokenSource:
    """One TokenSource per service-account key per process, so model definitions sharing a key, and the
    adapters rebuilt at each configuration change, share one cached token."""
    key = (str(info.get("client_email")), str(info.get("private_key_id") or info.get("private_key")),
           str(info.get("token_uri")))
    with _sources_lock:  # snapshots are built in worker threads
        source = _sources.get(key)
        if source is None:
            source = _sources[key] = TokenSource(_service_account(info))
        return source


def application_default_source() -> TokenSource:
    """The one TokenSource for the process's Application Default Credentials."""
    with _sources_lock:
        source = _sources.get(ADC_KEY)
        if source is None:
            source = _sources[ADC_KEY] = TokenSource(discover=_application_default)
        return source
