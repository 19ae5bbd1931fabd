"""AWS credentials for Bedrock and the SigV4 signature on every request, both through botocore.

Credential modes (`auth_config.auth_mode`):
- `api_key`: a Bedrock API key, sent as a bearer token (no AWS credentials at all);
- `access_keys`: the secret's `aws_access_key_id`, `aws_secret_access_key` (and `aws_session_token`);
- `default_chain`: botocore's default chain, as the AWS CLI resolves it: environment variables, the shared
  credentials and config files (`aws_profile_name` picks a profile; profiles may assume roles), web
  identity (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, as EKS IRSA sets them), the ECS/EKS container
  endpoint and EC2 instance metadata.
With `aws_role_arn`, the keys or the chain are only the source for STS AssumeRole (`aws_role_session_name`,
`aws_external_id`), whose temporary credentials botocore refreshes before they expire.

botocore's credential fetching is blocking HTTP (metadata services, STS), so it never runs on the event
loop: the first use and every refresh run in a worker thread, as one shared task that every caller needing
it awaits. Requests do not wait while the cached credentials have more than `MIN_VALIDITY` left; from
`REFRESH_AHEAD` before expiry a background refresh replaces them. One source per distinct configuration
per process, so adapters rebuilt at each configuration change share the cached credentials.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Mapping

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import (AssumeRoleCredentialFetcher, Credentials, DeferredRefreshableCredentials,
                                  ReadOnlyCredentials, RefreshableCredentials)
from botocore.exceptions import ClientError

from providers import outbound
from providers.errors import ProviderError

logger = logging.getLogger(__name__)
# botocore.auth logs each canonical request at DEBUG, session token included: never let that reach a log.
logging.getLogger("botocore.auth").setLevel(logging.INFO)

# botocore's own advisory and mandatory refresh windows for temporary credentials.
REFRESH_AHEAD = 15 * 60
MIN_VALIDITY = 10 * 60
# Where the SDKs' credential providers may be pointed; each override is held to the outbound policy for
# credential endpoints (metadata link-local addresses allowed, nothing else that api_base may not reach).
ENDPOINT_VARIABLES = ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                      "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL")


def sign(method: str, url: str, headers: Mapping[str, str], body: bytes, credentials: ReadOnlyCredentials,
         region: str, service: str) -> dict[str, str]:
    """The headers that make the request acceptable to AWS (`X-Amz-Date`, `X-Amz-Security-Token` with
    temporary credentials, `Authorization`), signed by botocore's SigV4 signer over `url` exactly as it goes
    on the wire (already percent-encoded) and every header in `headers`, which must not hold anything a
    proxy could rewrite."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    SigV4Auth(credentials, service, region).add_auth(request)
    return {name: request.headers[name] for name in ("X-Amz-Date", "X-Amz-Security-Token", "Authorization")
            if name in request.headers}


class CredentialSource:
    """Frozen AWS credentials for one configuration, fetched and refreshed off the event loop."""

    def __init__(self, resolve: Callable[[], Credentials | None], description: str) -> None:
        self._resolve = resolve
        self.description = description
        self._credentials: Credentials | None = None
        self._frozen: ReadOnlyCredentials | None = None
        self._refreshing: asyncio.Task | None = None

    async def frozen(self) -> ReadOnlyCredentials:
        credentials, frozen = self._credentials, self._frozen
        if frozen is not None:
            if not isinstance(credentials, RefreshableCredentials) or not credentials.refresh_needed(REFRESH_AHEAD):
                return frozen
            task = self._refresh_task()
            if not credentials.refresh_needed(MIN_VALIDITY):
                return frozen
            return await asyncio.shield(task)
        return await asyncio.shield(self._refresh_task())

    def _refresh_task(self) -> asyncio.Task:
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.get_running_loop().create_task(asyncio.to_thread(self._load))
            self._refreshing.add_done_callback(self._log_failure)
        return self._refreshing

    def _load(self) -> ReadOnlyCredentials:
        """In a worker thread: resolve the chain once, then let botocore refresh what it resolved."""
        try:
            if self._credentials is None:
                self._credentials = self._resolve()
                if self._credentials is None:
                    raise ProviderError(502, f"No AWS credentials were found ({self.description}).",
                                        retryable=False, error_type="upstream_auth_error")
            frozen = self._credentials.get_frozen_credentials()
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - botocore raises more than BotoCoreError (config parsing, OSError)
            # A refusal (STS AccessDenied, a malformed role ARN) will not change on retry; an outage may.
            refused = isinstance(exc, ClientError) and exc.response.get("ResponseMetadata", {}).get(
                "HTTPStatusCode", 500) < 500
            raise ProviderError(502, f"Could not obtain AWS credentials ({self.description}): {_reason(exc)}",
                                retryable=not refused, error_type="upstream_auth_error") from None
        if not frozen.access_key or not frozen.secret_key:
            raise ProviderError(502, f"AWS credentials are incomplete ({self.description}).", retryable=False,
                                error_type="upstream_auth_error")
        self._frozen = frozen
        return frozen

    def _log_failure(self, task: asyncio.Task) -> None:
        """A background refresh has no caller to raise to; the next request tries again."""
        if not task.cancelled() and task.exception() is not None:
            logger.warning("AWS credential refresh failed: %s", task.exception())


class StaticSource:
    """Access keys without a role: nothing to fetch or refresh."""

    def __init__(self, credentials: Credentials) -> None:
        self._frozen = credentials.get_frozen_credentials()

    async def frozen(self) -> ReadOnlyCredentials:
        return self._frozen


Source = CredentialSource | StaticSource


def _reason(exc: Exception) -> str:
    """botocore's message names the failing step (an STS error code, an unreachable endpoint), never a key."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return type(exc).__name__


def check_endpoint_overrides(environ: Mapping[str, str] = os.environ) -> None:
    """Raises ValueError when an SDK endpoint override points where credential fetching may not go."""
    for name in ENDPOINT_VARIABLES:
        if environ.get(name):
            problem = outbound.credential_endpoint_problem(environ[name])
            if problem:
                raise ValueError(f"{name} is blocked by the outbound policy: {problem}")


def static_credentials(values: Mapping) -> Credentials:
    if not values.get("aws_access_key_id") or not values.get("aws_secret_access_key"):
        raise ValueError("Bedrock auth_mode 'access_keys' needs the secret values 'aws_access_key_id' and "
                         "'aws_secret_access_key' (and 'aws_session_token' for temporary credentials).")
    return Credentials(str(values["aws_access_key_id"]), str(values["aws_secret_access_key"]),
                       str(values["aws_session_token"]) if values.get("aws_session_token") else None,
                       method="explicit")


def _chain(profile: str | None, region: str) -> Callable[[], Credentials | None]:
    def resolve() -> Credentials | None:
        return _session(profile, region).get_credentials()
    return resolve


def _session(profile: str | None, region: str) -> botocore.session.Session:
    """A botocore session for the profile; STS calls the chain makes (role profiles, web identity) go to
    the Bedrock region's STS unless AWS_ENDPOINT_URL_STS says otherwise."""
    session = botocore.session.Session(profile=profile or None)
    session.set_config_variable("region", region)
    return session


def _assume_role(base: Callable[[], Credentials | None], profile: str | None, region: str, auth_config: Mapping
                 ) -> Callable[[], Credentials | None]:
    """AssumeRole on top of `base`: botocore's fetcher calls STS (AWS_ENDPOINT_URL_STS is honoured) and
    caches the answer; DeferredRefreshableCredentials calls it again before the role's credentials expire."""
    extra = {"RoleSessionName": str(auth_config.get("aws_role_session_name") or "ai-gateway")}
    if auth_config.get("aws_external_id"):
        extra["ExternalId"] = str(auth_config["aws_external_id"])

    def resolve() -> Credentials | None:
        source = base()
        if source is None:
            return None
        session = _session(profile, region)
        fetcher = AssumeRoleCredentialFetcher(
            lambda *args, **kwargs: session.create_client(*args, region_name=region, **kwargs),
            source, str(auth_config["aws_role_arn"]), extra_args=extra)
        return DeferredRefreshableCredentials(fetcher.fetch_credentials, method="assume-role")
    return resolve


_sources: dict[tuple, CredentialSource] = {}
_sources_lock = threading.Lock()


def source_for(mode: str, values: Mapping, auth_config: Mapping, region: str) -> Source:
    """The access keys as they are (no role), or the shared source for the configuration. Raises ValueError when the configuration cannot work, which makes the model unusable
    with that message."""
    profile = str(auth_config.get("aws_profile_name") or "") or None
    role = str(auth_config.get("aws_role_arn") or "")
    if mode == "access_keys":
        static = static_credentials(values)
        if not role:
            return StaticSource(static)
        check_endpoint_overrides()
        base: Callable[[], Credentials | None] = lambda: static  # noqa: E731
        identity = (static.access_key, hashlib.sha256(static.secret_key.encode()).hexdigest())
    else:
        check_endpoint_overrides()
        base = _chain(profile, region)
        identity = ("default_chain", profile)
    resolve = _assume_role(base, profile, region, auth_config) if role else base
    key = (*identity, role, str(auth_config.get("aws_role_session_name") or ""),
           str(auth_config.get("aws_external_id") or ""), region)
    description = f"assuming {role}" if role else f"default chain{f', profile {profile}' if profile else ''}"
    with _sources_lock:  # snapshots are built in worker threads
        source = _sources.get(key)
        if source is None:
            source = _sources[key] = CredentialSource(resolve, description)
        return source
