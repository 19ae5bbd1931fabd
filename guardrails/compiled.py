"""Guardrails compiled once per configuration snapshot, and the bookkeeping of one guardrail's run.

`for_endpoint` returns an endpoint's guardrails ready to run (patterns compiled, settings parsed), cached
by the identity of the snapshot's spec tuple and rebuilt when a new snapshot arrives, so a request never
compiles anything. A guardrail whose settings are unusable compiles to one that fails on every run, which
its fail mode then turns into a 503 (closed) or a logged skip (open).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.errors import GatewayError, GuardrailBlocked, ServiceUnavailable
from gateway.config.snapshot import EndpointConfig, GuardrailSpec, Snapshot, store
from guardrails.kinds import build
from guardrails.kinds.base import Guard, SettingsError

if TYPE_CHECKING:
    from gateway.context import RequestContext

logger = logging.getLogger(__name__)

MAX_CACHED = 4096


class GuardrailUnusable(Exception):
    """The guardrail's configuration cannot run (reported when it is compiled, raised when it runs)."""


@dataclass(frozen=True)
class CompiledGuardrail:
    spec: GuardrailSpec
    guard: Guard | None
    problem: str = ""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def sanitize(self) -> bool:
        return self.spec.action == "sanitize"

    def ready(self) -> Guard:
        if self.guard is None:
            raise GuardrailUnusable(self.problem)
        return self.guard


@dataclass(frozen=True)
class EndpointGuardrails:
    before: tuple[CompiledGuardrail, ...] = ()
    after: tuple[CompiledGuardrail, ...] = ()


def compile_spec(spec: GuardrailSpec) -> CompiledGuardrail:
    try:
        return CompiledGuardrail(spec, build(spec.kind, spec.settings, sanitize=spec.action == "sanitize"))
    except SettingsError as exc:
        logger.error("guardrail %s cannot be used: %s", spec.name, exc)
        return CompiledGuardrail(spec, None, f"invalid settings ({exc})")


def compile_endpoint(specs: tuple[GuardrailSpec, ...]) -> EndpointGuardrails:
    compiled = [compile_spec(spec) for spec in specs]
    return EndpointGuardrails(tuple(c for c in compiled if c.spec.stage == "before"),
                              tuple(c for c in compiled if c.spec.stage == "after"))


_cache: dict[int, tuple[tuple[GuardrailSpec, ...], EndpointGuardrails]] = {}


def for_endpoint(endpoint: EndpointConfig) -> EndpointGuardrails:
    specs = endpoint.guardrails
    hit = _cache.get(id(specs))
    if hit is not None and hit[0] is specs:
        return hit[1]
    compiled = compile_endpoint(specs)
    if len(_cache) >= MAX_CACHED:
        _cache.clear()
    _cache[id(specs)] = (specs, compiled)  # keeping `specs` alive keeps its id from being reused
    return compiled


def _precompile(snapshot: Snapshot) -> None:
    """A new snapshot replaces the cache, compiled before its first request needs it."""
    _cache.clear()
    for endpoint in snapshot.endpoints.values():
        if endpoint.guardrails:
            for_endpoint(endpoint)


store.on_change(_precompile)


class Run:
    """One guardrail on one request: its entry in the usage record, its timing, its fail mode."""

    def __init__(self, compiled: CompiledGuardrail, ctx: "RequestContext") -> None:
        self.compiled = compiled
        self.disabled = False
        self.result = {"name": compiled.name, "stage": compiled.spec.stage, "passed": True, "action": "none",
                       "latency_ms": 0.0}
        ctx.guardrail_results.append(self.result)

    def clock(self, started: float) -> None:
        """Add the time since `started` (a `time.perf_counter()` reading) to the guardrail's latency."""
        self.result["latency_ms"] = round(self.result["latency_ms"] + (time.perf_counter() - started) * 1000, 4)

    def sanitized(self) -> None:
        self.result.update(passed=False, action="sanitize")

    def blocked(self, reason: str, subject: str) -> GuardrailBlocked:
        self.result.update(passed=False, action="block")
        return GuardrailBlocked(f"Guardrail '{self.compiled.name}' blocked the {subject}: {reason.rstrip('. ')}.")

    def failed(self, exc: Exception) -> GatewayError | None:
        """Fail closed: the error to answer with. Fail open: None, the guardrail is skipped from now on."""
        detail = exc.message if isinstance(exc, GatewayError) else str(exc) or type(exc).__name__
        self.disabled = True
        if self.compiled.spec.fail_mode == "open":
            self.result.update(action="skipped")
            logger.warning("guardrail %s failed (%s: %s); skipped, its fail mode is open",
                           self.compiled.name, type(exc).__name__, detail)
            return None
        self.result.update(passed=False, action="error")
        logger.error("guardrail %s failed (%s: %s); refusing the request, its fail mode is closed",
                     self.compiled.name, type(exc).__name__, detail)
        return ServiceUnavailable(f"Guardrail '{self.compiled.name}' could not run, so the request was refused.",
                                  code="guardrail_unavailable")
