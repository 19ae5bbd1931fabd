"""Which of OpenAI's chat parameters each provider takes, and how: one declared table, applied in one place.

Providers differ in the OpenAI parameters they accept. Mistral answers 422 `extra_forbidden` to
`stream_options` and to `max_completion_tokens`; Anthropic and Bedrock have no `seed` or `logprobs`. A
parameter is therefore, per provider, either

- `Native`: sent under its own name (the OpenAI-compatible family),
- `Renamed`: sent under the provider's name for it (Mistral's `max_tokens`, `random_seed`),
- `Translated`: expressed by the provider's translator in its own field (`how` says which),
- `UsageFlag`: `stream_options`, which the gateway sets itself to account for streams (include_usage on),
- `Dropped`: left out, only where it cannot change the answer (a usage-reporting flag when the provider
  reports usage anyway),
- `Refused`: a 400 naming the parameter, unless its value asks for nothing (`n: 1`, `logprobs: false`).

`prepare` is called once per attempt on the unified request (gateway/pipeline.py) and on native OpenAI chat
bodies (providers/openai/adapter.py), so fallback to another provider applies that provider's table.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from providers.errors import TranslationError

PARAMETERS = ("stream_options", "max_completion_tokens", "parallel_tool_calls", "response_format", "logprobs",
              "seed", "n", "reasoning_effort")


@dataclass(frozen=True)
class Native:
    def describe(self) -> str:
        return "sent as is"

    def apply(self, body: dict, name: str, stream: bool) -> None:
        return None


@dataclass(frozen=True)
class Translated:
    how: str

    def describe(self) -> str:
        return f"mapped to {self.how}"

    def apply(self, body: dict, name: str, stream: bool) -> None:
        return None


@dataclass(frozen=True)
class Renamed:
    to: str

    def describe(self) -> str:
        return f"sent as `{self.to}`"

    def apply(self, body: dict, name: str, stream: bool) -> None:
        # It wins over a value already under the provider's name, as `max_completion_tokens` wins over
        # `max_tokens` for OpenAI.
        body[self.to] = body.pop(name)


@dataclass(frozen=True)
class UsageFlag:
    """`stream_options`: on streams the gateway asks for the closing usage chunk (it accounts for every
    stream; the client still gets the chunk only if it asked); on other calls the field means nothing."""

    def describe(self) -> str:
        return "sent, with include_usage on for streams"

    def apply(self, body: dict, name: str, stream: bool) -> None:
        if stream:
            body[name] = {**(body.get(name) or {}), "include_usage": True}
        else:
            body.pop(name, None)


@dataclass(frozen=True)
class Dropped:
    why: str

    def describe(self) -> str:
        return f"dropped ({self.why})"

    def apply(self, body: dict, name: str, stream: bool) -> None:
        body.pop(name, None)


@dataclass(frozen=True)
class Refused:
    provider: str
    # Values that ask for nothing the provider cannot do; they are left out instead of refused.
    harmless: tuple = ()

    def describe(self) -> str:
        allowed = ", ".join(f"{value!r}" for value in self.harmless)
        return "refused with a 400" + (f" (except {allowed})" if allowed else "")

    def apply(self, body: dict, name: str, stream: bool) -> None:
        if body[name] in self.harmless:
            body.pop(name)
            return
        raise TranslationError(f"{name}: {self.provider} models have no equivalent of this parameter; remove it "
                               "or route to a provider that supports it.")


Rule = Native | Translated | Renamed | UsageFlag | Dropped | Refused


@dataclass(frozen=True)
class Capabilities:
    """One provider's rule for each of `PARAMETERS`."""

    name: str
    rules: Mapping[str, Rule]

    def prepare(self, request: dict, *, stream: bool) -> dict:
        """A copy of the request as this provider takes it (the caller's body is reused by fallbacks to
        other providers); raises TranslationError (400) naming a parameter the provider cannot honour.
        `stream_options` is applied even when absent, since the gateway may need to add it."""
        body = dict(request)
        for name, rule in self.rules.items():
            if body.get(name) is None:
                body.pop(name, None)
                if not isinstance(rule, UsageFlag):
                    continue
            rule.apply(body, name, stream)
        return body


NO_USAGE_FLAG = "the provider reports usage on every stream, which the gateway reads"


def _openai_family(name: str) -> Capabilities:
    rules: dict[str, Rule] = {parameter: Native() for parameter in PARAMETERS}
    rules["stream_options"] = UsageFlag()
    return Capabilities(name, rules)


def _mistral() -> Capabilities:
    """From Mistral's chat completion reference: `max_tokens`, `random_seed`, `n`, `parallel_tool_calls` and
    `response_format`; no logprobs and no reasoning effort; usage on the last stream chunk by itself."""
    return Capabilities("mistral", {
        "stream_options": Dropped(NO_USAGE_FLAG),
        "max_completion_tokens": Renamed("max_tokens"),
        "parallel_tool_calls": Native(),
        "response_format": Native(),
        "logprobs": Refused("Mistral", (False,)),
        "seed": Renamed("random_seed"),
        "n": Native(),
        "reasoning_effort": Refused("Mistral"),
    })


def _translated(provider: str, *, max_tokens: str, parallel: Rule, response_format: str, seed: Rule, n: Rule,
                reasoning: Rule) -> Capabilities:
    return Capabilities(provider.lower(), {
        "stream_options": Dropped(NO_USAGE_FLAG),
        "max_completion_tokens": Translated(max_tokens),
        "parallel_tool_calls": parallel,
        "response_format": Translated(response_format),
        "logprobs": Refused(provider, (False,)),
        "seed": seed,
        "n": n,
        "reasoning_effort": reasoning,
    })


ANTHROPIC = _translated("Anthropic", max_tokens="`max_tokens`",
                        parallel=Translated("`tool_choice.disable_parallel_tool_use`"),
                        response_format="`output_config.format` (json_schema) or a system instruction (json_object)",
                        seed=Refused("Anthropic"), n=Refused("Anthropic", (1,)), reasoning=Refused("Anthropic"))
GEMINI = _translated("Gemini", max_tokens="`generationConfig.maxOutputTokens`",
                     parallel=Refused("Gemini", (True,)),
                     response_format="`generationConfig.responseMimeType` and `responseJsonSchema`",
                     seed=Translated("`generationConfig.seed`"), n=Translated("`generationConfig.candidateCount`"),
                     reasoning=Translated("`generationConfig.thinkingConfig.thinkingBudget` (none 0, low 1024, "
                                          "medium 8192, high 24576)"))
BEDROCK = _translated("Bedrock", max_tokens="`inferenceConfig.maxTokens`", parallel=Refused("Bedrock", (True,)),
                      response_format="`outputConfig` (json_schema) or a system instruction (json_object)",
                      seed=Refused("Bedrock"), n=Refused("Bedrock", (1,)), reasoning=Refused("Bedrock"))

MISTRAL = _mistral()
TABLES: dict[str, Capabilities] = {
    "mistral": MISTRAL,
    "anthropic": ANTHROPIC,
    "gemini": GEMINI,
    "bedrock": BEDROCK,
    "vertex_ai": GEMINI,
    # Vertex AI serves each partner publisher's models in that publisher's own format: Claude in Anthropic's
    # Messages API, Mistral in Mistral's chat API (the same 422 for fields it lacks).
    "vertex_ai/anthropic": ANTHROPIC,
    "vertex_ai/mistralai": MISTRAL,
    "fake": _openai_family("fake"),
}


def for_provider(provider: str, model_name: str = "") -> Capabilities:
    """The table for a provider (Claude models on Vertex AI follow Anthropic's); every provider without its
    own entry speaks OpenAI's API and takes every parameter as is."""
    if provider == "vertex_ai" and model_name.startswith("claude"):
        return for_vertex_publisher("anthropic")
    table = TABLES.get(provider)
    return table if table is not None else _openai_family(provider)


def for_vertex_publisher(publisher: str) -> Capabilities:
    """The table for a Vertex AI model of `publisher` (providers/vertex/translate.publisher_of): Google's
    own models follow Gemini's; a publisher without its own entry (Meta's Llama) is served on Vertex's
    OpenAI-compatible endpoint, where parameter support varies by model, so everything is sent as is."""
    if publisher == "google":
        return TABLES["vertex_ai"]
    table = TABLES.get(f"vertex_ai/{publisher}")
    return table if table is not None else _openai_family("vertex_ai")
