"""The in-process configuration snapshot the hot path reads, and the watcher that keeps it fresh.

A snapshot is immutable and built in a worker thread (database reads, secret decryption, adapter
construction all happen there). Requests only read `store.current`, so in steady state they run no SQL.
Every process polls the ConfigVersion row and rebuilds when it moved, so an operator's change reaches every
server process within GATEWAY_CONFIG_POLL_SECONDS plus one build.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings

from gateway.config import prices
from gateway.config.version import current_config_version
from gateway.models import (
    ApiKey, BudgetPolicy, Endpoint, Linkage, ModelDefinition, RateLimit, RoutingStrategy, Secret,
)
from gateway.config.crypto import SecretDecryptionError, SecretsUnavailable
from gateway.config.secrets import secret_values
from gateway.db import db_task
from providers import outbound
from providers.base import ModelTarget, ProviderAdapter, ProviderError
from providers.registry import adapter_class

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Link:
    adapter: ProviderAdapter
    weight: float
    order: int

    @property
    def target(self) -> ModelTarget:
        return self.adapter.target


@dataclass(frozen=True)
class GuardrailSpec:
    name: str
    kind: str
    stage: str
    action: str
    settings: dict
    fail_mode: str


@dataclass(frozen=True)
class EndpointConfig:
    id: int
    name: str
    routing_strategy: str
    primaries: tuple[Link, ...]
    fallbacks: tuple[Link, ...]
    fallback_max_attempts: int | None = None
    usage_tracking: bool = True
    log_payloads: bool = False
    retries: int | None = None
    total_timeout: float | None = None
    stream_idle_timeout: float | None = None
    breaker_threshold: int | None = None
    breaker_cooldown: float | None = None
    guardrails: tuple[GuardrailSpec, ...] = ()

    @property
    def traffic_split(self) -> bool:
        return self.routing_strategy == RoutingStrategy.TRAFFIC_SPLIT


@dataclass(frozen=True)
class ClientKey:
    id: int
    name: str
    allowed_endpoints: frozenset[str] | None  # None: every endpoint
    is_admin: bool = False
    owner: str = ""
    user: str = ""  # a staff user in the admin's playground, which calls with no API key (id 0)

    def may_use(self, endpoint: str) -> bool:
        return self.allowed_endpoints is None or endpoint in self.allowed_endpoints


@dataclass(frozen=True)
class BudgetSpec:
    id: int
    name: str
    scope: str
    target: str
    amount_usd: Decimal
    window_unit: str
    window_value: int
    action: str
    webhook_url: str


@dataclass(frozen=True)
class RateLimitSpec:
    id: int
    name: str
    scope: str
    target: str  # "" for global, "*" for each endpoint or key separately
    requests_per_minute: int | None
    tokens_per_minute: int | None
    max_concurrent: int | None


@dataclass(frozen=True)
class Snapshot:
    version: int
    endpoints: dict[str, EndpointConfig] = field(default_factory=dict)
    keys_by_hash: dict[str, ClientKey] = field(default_factory=dict)
    budgets: tuple[BudgetSpec, ...] = ()
    rate_limits: tuple[RateLimitSpec, ...] = ()
    problems: tuple[str, ...] = ()  # configuration errors for the operator's log (names, never values)


class BrokenAdapter(ProviderAdapter):
    """Stands in for a model whose configuration cannot be used (credentials that do not decrypt, a provider
    GATEWAY_ALLOWED_PROVIDERS forbids, a base URL the outbound policy forbids). Routing skips it without a
    call, a retry or a breaker verdict (`problem` is set); were it called anyway, it refuses with the reason."""

    def __init__(self, target: ModelTarget, reason: str) -> None:
        super().__init__(target)
        self.problem = reason
        try:  # a native route must still find the endpoint, to answer that it is misconfigured
            self.passthrough_apis = adapter_class(target.provider).passthrough_apis
        except LookupError:
            pass

    def _fail(self):
        raise ProviderError(503, f"Model '{self.target.name}' cannot be used: {self.problem}", retryable=False,
                            error_type="configuration_error")

    async def chat(self, request, stats):
        self._fail()

    async def chat_stream(self, request, stats):
        self._fail()
        yield {}

    async def embeddings(self, request, stats):
        self._fail()

    async def passthrough(self, api, body, headers, stats, *, stream):
        self._fail()


def undecryptable(exc: Exception) -> str:
    """Why secrets cannot be read, naming the variable to fix (never a value)."""
    if isinstance(exc, SecretsUnavailable) and not settings.GATEWAY_KEK_PASSPHRASE:
        return "GATEWAY_KEK_PASSPHRASE is not set"
    if isinstance(exc, (SecretsUnavailable, SecretDecryptionError)) and "GATEWAY_KEK_OLD_PASSPHRASES" in str(exc):
        return str(exc)
    if isinstance(exc, SecretDecryptionError):
        return "GATEWAY_KEK_PASSPHRASE is not the passphrase they were sealed with, or the rows were altered"
    return f"{type(exc).__name__} while decrypting"


def _build_adapter(model: ModelDefinition, secrets: dict[int, Secret], plain: dict[int, dict | str],
                   price_table: prices.PriceTable) -> ProviderAdapter:
    secret = secrets.get(model.secret_id) if model.secret_id else None
    credentials: dict = {}
    reason = None
    if settings.GATEWAY_ALLOWED_PROVIDERS and model.provider not in settings.GATEWAY_ALLOWED_PROVIDERS:
        reason = f"provider '{model.provider}' is not in GATEWAY_ALLOWED_PROVIDERS"
    elif secret is not None:
        if secret.id not in plain:
            try:
                plain[secret.id] = secret_values(secret)
            except Exception as exc:  # noqa: BLE001 - any failure leaves this one model unusable, not the gateway
                plain[secret.id] = undecryptable(exc)
        credentials = plain[secret.id] if isinstance(plain[secret.id], dict) else {}
        if isinstance(plain[secret.id], str):
            reason = f"its secret '{secret.name}' cannot be decrypted: {plain[secret.id]}"
    target = ModelTarget(
        id=model.id, name=model.name, provider=model.provider, model_name=model.model_name,
        credentials=credentials, auth_config=dict(secret.auth_config if secret else {}),
        prices=prices.prices_for(model, price_table),
    )
    if reason:
        return BrokenAdapter(target, reason)
    api_base = target.auth_config.get("api_base")
    if api_base:
        problem = outbound.url_problem(str(api_base))
        if problem:
            return BrokenAdapter(target, f"its api_base is blocked by the outbound policy: {problem}")
    try:
        return adapter_class(model.provider)(target)
    except (LookupError, ValueError) as exc:
        return BrokenAdapter(target, str(exc))


def configuration_problems(secrets: dict[int, Secret], plain: dict[int, dict | str],
                           adapters: dict[int, ProviderAdapter]) -> tuple[str, ...]:
    """One line per problem for the operator: the secrets that cannot be read grouped by the variable to fix
    (names only), then every other model that cannot be used."""
    unreadable: dict[str, list[str]] = {}
    for secret_id, value in plain.items():
        if isinstance(value, str):
            unreadable.setdefault(value, []).append(secrets[secret_id].name)
    lines = [f"provider secrets {', '.join(repr(n) for n in sorted(names))} cannot be decrypted ({why}); the "
             f"models that need them are skipped" for why, names in sorted(unreadable.items())]
    lines += [f"model '{a.target.name}' cannot be used: {a.problem}" for a in adapters.values()
              if a.problem is not None and "cannot be decrypted" not in a.problem]
    return tuple(lines)


def build_snapshot() -> Snapshot:
    """Read the whole configuration once. Runs in a worker thread, never on the event loop."""
    version = current_config_version()
    secrets = {s.id: s for s in Secret.objects.all()}
    plain: dict[int, dict | str] = {}
    price_table = prices.current_table()
    adapters = {m.id: _build_adapter(m, secrets, plain, price_table) for m in ModelDefinition.objects.all()}
    problems = configuration_problems(secrets, plain, adapters)
    endpoints = {}
    for ep in Endpoint.objects.prefetch_related("links", "guardrail_links__guardrail"):
        links = list(ep.links.all())
        primaries = tuple(Link(adapters[l.model_id], l.weight, l.order)
                          for l in sorted(links, key=lambda l: (l.order, l.id)) if l.linkage == Linkage.PRIMARY)
        fallbacks = tuple(Link(adapters[l.model_id], l.weight, l.order)
                          for l in sorted(links, key=lambda l: (l.order, l.id)) if l.linkage == Linkage.FALLBACK)
        guardrails = tuple(
            GuardrailSpec(g.guardrail.name, g.guardrail.kind, g.guardrail.stage, g.guardrail.action,
                          dict(g.guardrail.settings or {}), g.guardrail.fail_mode)
            for g in ep.guardrail_links.all()
        )
        endpoints[ep.name] = EndpointConfig(
            id=ep.id, name=ep.name, routing_strategy=ep.routing_strategy, primaries=primaries, fallbacks=fallbacks,
            fallback_max_attempts=ep.fallback_max_attempts, usage_tracking=ep.usage_tracking, log_payloads=ep.log_payloads, retries=ep.retries,
            total_timeout=ep.total_timeout_seconds, stream_idle_timeout=ep.stream_idle_timeout_seconds,
            breaker_threshold=ep.breaker_threshold, breaker_cooldown=ep.breaker_cooldown_seconds,
            guardrails=guardrails,
        )
    keys = {}
    for key in ApiKey.objects.filter(is_active=True).select_related("owner").prefetch_related("endpoints"):
        allowed = frozenset(e.name for e in key.endpoints.all()) or None
        keys[key.key_hash] = ClientKey(key.id, key.name, allowed, key.is_admin,
                                       key.owner.get_username() if key.owner else "")
    budgets = tuple(
        BudgetSpec(b.id, b.name, b.scope, b.target, b.amount_usd, b.window_unit, b.window_value, b.action, b.webhook_url)
        for b in BudgetPolicy.objects.filter(enabled=True)
    )
    rate_limits = tuple(
        RateLimitSpec(r.id, r.name, r.scope, r.target, r.requests_per_minute, r.tokens_per_minute, r.max_concurrent)
        for r in RateLimit.objects.filter(enabled=True)
    )
    return Snapshot(version=version, endpoints=endpoints, keys_by_hash=keys, budgets=budgets, rate_limits=rate_limits,
                    problems=problems)


class SnapshotStore:
    """Holds the current snapshot for this process and refreshes it when the config version moves.

    `builder` and `version_reader` are injectable so tests can drive refreshes without a database."""

    def __init__(self, builder: Callable[[], Snapshot] = build_snapshot,
                 version_reader: Callable[[], int] = current_config_version) -> None:
        self._builder = builder
        self._version_reader = version_reader
        self.current: Snapshot | None = None
        self.checked_at: float | None = None  # time.monotonic() of the last successful check or build
        self._lock = asyncio.Lock()
        self._listeners: list[Callable[[Snapshot], None]] = []

    def on_change(self, listener: Callable[[Snapshot], None]) -> None:
        self._listeners.append(listener)

    async def get(self) -> Snapshot:
        """The snapshot, building the first one if the process has none yet (e.g. no lifespan startup)."""
        if self.current is None:
            await self.refresh()
        return self.current

    async def refresh(self) -> None:
        async with self._lock:
            snapshot = await db_task(self._builder)()
            previous, self.current = self.current, snapshot
            self.checked_at = time.monotonic()
        if snapshot.problems != (previous.problems if previous is not None else ()):
            for problem in snapshot.problems:  # once when it appears (at start-up), not on every rebuild
                logger.error("configuration error: %s", problem)
        for listener in self._listeners:
            listener(snapshot)
        logger.info("configuration snapshot v%s: %d endpoints, %d keys", snapshot.version,
                    len(snapshot.endpoints), len(snapshot.keys_by_hash))

    async def check(self) -> bool:
        """Rebuild if the stored version differs from ours; returns whether it did."""
        version = await db_task(self._version_reader)()
        if self.current is None or version != self.current.version:
            await self.refresh()
            return True
        self.checked_at = time.monotonic()
        return False

    async def watch(self, interval: float | None = None) -> None:
        """Poll forever (until cancelled); failures are logged and retried at the next tick."""
        interval = interval if interval is not None else settings.GATEWAY_CONFIG_POLL_SECONDS
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a database hiccup must not stop the watcher
                logger.exception("configuration refresh failed; keeping snapshot v%s",
                                 self.current.version if self.current else "-")


store = SnapshotStore()
