"""Small builders shared by the guardrail unit tests."""
from __future__ import annotations

from gateway.context import RequestContext
from gateway.config.snapshot import ClientKey, EndpointConfig, GuardrailSpec
from guardrails.kinds import build

KEY = ClientKey(1, "tester", None)


def spec(name: str, kind: str, stage: str = "before", action: str = "block", fail_mode: str = "closed",
         **settings) -> GuardrailSpec:
    return GuardrailSpec(name, kind, stage, action, settings, fail_mode)


def endpoint(*specs: GuardrailSpec, name: str = "guarded", primaries: tuple = ()) -> EndpointConfig:
    return EndpointConfig(id=1, name=name, routing_strategy="first", primaries=primaries, fallbacks=(),
                          guardrails=tuple(specs))


def context(*specs: GuardrailSpec, streaming: bool = False) -> RequestContext:
    return RequestContext("unified/chat", endpoint(*specs), KEY, streaming=streaming)


def redact(kind: str, text: str, **settings) -> str:
    verdict = build(kind, settings, sanitize=True).check([text])
    return verdict.texts[0] if verdict.texts else text


def blocks(kind: str, text: str, **settings) -> bool:
    return not build(kind, settings, sanitize=False).check([text]).passed
