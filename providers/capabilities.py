"""Which of OpenAI's chat parameters each provider takes, and how: one declared table, applied in one place.

Providers differ in the OpenAI parameters they accept. Mistral answers 422 `extra_forbidden` to any field
its schema does not declare (`stream_options`, `max_completion_tokens`, `user`...); Anthropic and Bedrock
have no `seed` or `logprobs`. A parameter is therefore, per provider, either

- `Native`: sent under its own name (the OpenAI-compatible family),
- `Renamed`: sent under the provider's name for it (Mistral's `max_tokens`, `random_seed`),
- `Mapped`: sent under the provider's name with its values translated (`service_tier`),
- `Translated`: expressed by the provider's translator in its own field (`how` says which),
- `UsageFlag`: `stream_options`, which the gateway sets itself to account for streams (include_usage on),
- `Dropped`: left out, only where it cannot change the answer: a usage-reporting flag when the provider
  reports usage anyway, and bookkeeping (`BOOKKEEPING`: who asked, tags, storage, cache routing),
- `Refused`: a 400 naming the parameter, unless its value asks for nothing (`n: 1`, `logprobs: false`).

A provider that refuses unknown fields (Mistral) also declares the closed list of fields it takes
(`accepts`): any other field is a 400 naming it, never the provider's 422.

A provider that gets the client's messages as they are (`relays_messages`: the OpenAI-compatible family)
gets them without the gateway's own carry data: the `extra_content` of tool calls in an answer translated
from Claude or Gemini (providers/anthropic/thinking.py, providers/gemini/translate.py), which only those
translators read. Mistral refuses it (422 `extra_forbidden`: mistralai 3.7.0 `ToolCall` declares `function`,
`id`, `type`, `index`), and OpenAI's own tool call has no such field (openai 3.63.0
`ChatCompletionMessageFunctionToolCallParam`), so a tool loop that falls back to another provider goes on.

`prepare` is called once per attempt on the unified request (gateway/pipeline.py) and on native OpenAI chat
bodies (providers/openai/adapter.py), so fallback to another provider applies that provider's table.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from providers.errors import TranslationError

# Parameters that providers take differently, then bookkeeping, then OpenAI-only features.
PARAMETERS = ("stream_options", "max_completion_tokens", "parallel_tool_calls", "response_format", "logprobs",
              "top_logprobs", "seed", "n", "reasoning_effort", "verbosity", "frequency_penalty", "presence_penalty",
              "service_tier",
              "user", "safety_identifier", "metadata", "store", "prompt_cache_key",
              "logit_bias", "prediction", "modalities", "audio", "web_search_options", "functions", "function_call")
# Fields that cannot change the answer, so a provider without them may drop them: the usage flag the
# gateway manages, who the end user is (abuse monitoring), tags for OpenAI's dashboards, whether OpenAI
# stores the completion, and which OpenAI cache server a prompt is routed to.
BOOKKEEPING = frozenset({"stream_options", "user", "safety_identifier", "metadata", "store", "prompt_cache_key"})


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
class Mapped:
    """Sent as `to`, each OpenAI value replaced by the provider's; a value without one is refused."""

    to: str
    values: Mapping[str, str]
    provider: str

    def describe(self) -> str:
        pairs = ", ".join(f"{key} → {value}" for key, value in self.values.items())
        return f"sent as `{self.to}` ({pairs}; other values refused)"

    def apply(self, body: dict, name: str, stream: bool) -> None:
        value = body.pop(name)
        if not isinstance(value, str) or value not in self.values:
            raise TranslationError(f"{name}: {self.provider} models take only {', '.join(map(repr, self.values))} "
                                   f"here, not {value!r}.")
        body[self.to] = self.values[value]


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


Rule = Native | Translated | Renamed | Mapped | UsageFlag | Dropped | Refused


@dataclass(frozen=True)
class Capabilities:
    """One provider's rule for each of `PARAMETERS`; `accepts`, for a provider that refuses unknown fields,
    the closed list of top-level fields its API takes."""

    name: str
    rules: Mapping[str, Rule]
    accepts: frozenset[str] | None = None
    relays_messages: bool = True

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
        if self.accepts is not None:
            unknown = next((name for name, value in body.items() if value is not None and name not in self.accepts),
                           None)
            if unknown is not None:
                raise TranslationError(f"{unknown}: {self.name} models do not take this parameter (the provider "
                                       "refuses fields it does not know); remove it.")
        if self.relays_messages and _carries(body.get("messages")):
            body["messages"] = [_without_carry(message) for message in body["messages"]]
        return body


def _carried(message: object) -> bool:
    calls = message.get("tool_calls") if isinstance(message, dict) else None
    return isinstance(calls, list) and any(isinstance(call, dict) and "extra_content" in call for call in calls)


def _carries(messages: object) -> bool:
    return isinstance(messages, list) and any(_carried(message) for message in messages)


def _without_carry(message: object) -> object:
    """The message with `extra_content` left out of its tool calls (a copy: the caller's body is reused by
    fallbacks to providers that read it)."""
    if not _carried(message):
        return message
    calls = [{key: value for key, value in call.items() if key != "extra_content"} if isinstance(call, dict) else call
             for call in message["tool_calls"]]
    return {**message, "tool_calls": calls}


NO_USAGE_FLAG = "the provider reports usage on every stream, which the gateway reads"
NO_EFFECT = "bookkeeping that cannot change the answer"
# Values of OpenAI-only parameters that ask for nothing: text output, OpenAI's default verbosity and tier.
TEXT_ONLY = (["text"],)
DEFAULT_TIER = ("auto", "default")
# OpenAI's `service_tier` in Mistral's and Anthropic's terms (both: `auto` or `standard_only`).
STANDARD_TIERS = {"auto": "auto", "default": "standard_only"}


def _openai_family(name: str) -> Capabilities:
    rules: dict[str, Rule] = {parameter: Native() for parameter in PARAMETERS}
    rules["stream_options"] = UsageFlag()
    return Capabilities(name, rules)


# The top-level fields of Mistral's chat completion request, as the official SDK (mistralai 3.7.0,
# `mistralai/client/models/chatcompletionrequest.py`) declares them; Mistral refuses any other with 422
# `extra_forbidden`.
MISTRAL_FIELDS = frozenset({
    "model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop", "random_seed", "metadata",
    "response_format", "tools", "tool_choice", "presence_penalty", "frequency_penalty", "min_tokens",
    "repetition_penalty", "top_k", "logprobs", "top_logprobs", "prompt_logprobs", "top_prompt_logprobs", "n",
    "prediction", "parallel_tool_calls", "reasoning_effort", "prompt_mode", "guardrails", "prompt_cache_key",
    "service_tier", "safe_prompt",
})


# Mistral's reasoning efforts (mistralai 3.7.0, `mistralai/client/models/reasoningeffort.py`), the same names
# as OpenAI's (openai 3.63.0 `types/shared/reasoning_effort.py`).
MISTRAL_EFFORTS = {effort: effort for effort in ("none", "minimal", "low", "medium", "high", "xhigh", "max")}


def _mistral() -> Capabilities:
    """From Mistral's chat completion request (mistralai 3.7.0): `max_tokens`, `random_seed`, `metadata`,
    `logprobs`/`top_logprobs` (answered in OpenAI's `choices[].logprobs.content[]` shape), `prediction`,
    `prompt_cache_key`, `service_tier` (auto or standard_only); usage on the last stream chunk by itself.
    Fields outside `MISTRAL_FIELDS` are refused by name.

    `reasoning_effort` takes the values OpenAI defines, which are Mistral's too (`ReasoningEffort`); a
    reasoning answer's content is a list of `thinking` and `text` chunks, which providers/mistral/ turns
    into OpenAI's string."""
    rules: dict[str, Rule] = {parameter: Native() for parameter in PARAMETERS}
    rules.update({
        "stream_options": Dropped(NO_USAGE_FLAG),
        "max_completion_tokens": Renamed("max_tokens"),
        "seed": Renamed("random_seed"),
        "reasoning_effort": Mapped("reasoning_effort", MISTRAL_EFFORTS, "Mistral"),
        "verbosity": Refused("Mistral", ("medium",)),
        "service_tier": Mapped("service_tier", STANDARD_TIERS, "Mistral"),
        "user": Dropped(NO_EFFECT), "safety_identifier": Dropped(NO_EFFECT), "store": Dropped(NO_EFFECT),
        "logit_bias": Refused("Mistral", ({},)),
        "modalities": Refused("Mistral", TEXT_ONLY),
        "audio": Refused("Mistral"),
        "web_search_options": Refused("Mistral"),
        "functions": Refused("Mistral", ([],)),
        "function_call": Refused("Mistral", ("none", "auto")),
    })
    return Capabilities("Mistral", rules, MISTRAL_FIELDS)


def _translated(provider: str, **rules: Rule) -> Capabilities:
    """A provider whose translator builds its own body (and reads its own carry data): bookkeeping is dropped
    unless mapped, OpenAI-only features are refused, and `rules` declares the rest."""
    common: dict[str, Rule] = {
        "stream_options": Dropped(NO_USAGE_FLAG),
        "logprobs": Refused(provider, (False,)),
        "top_logprobs": Refused(provider, (0,)),
        "verbosity": Refused(provider, ("medium",)),
        "service_tier": Refused(provider, DEFAULT_TIER),
        **{name: Dropped(NO_EFFECT) for name in BOOKKEEPING - {"stream_options"}},
        "logit_bias": Refused(provider, ({},)),
        "prediction": Refused(provider),
        "modalities": Refused(provider, TEXT_ONLY),
        "audio": Refused(provider),
        "web_search_options": Refused(provider),
        "functions": Refused(provider, ([],)),
        "function_call": Refused(provider, ("none", "auto")),
    }
    common.update(rules)
    return Capabilities(provider.lower(), {name: common[name] for name in PARAMETERS}, relays_messages=False)


CLAUDE_THINKING = ("`thinking` (none: disabled; minimal 1024, low 2048, medium 8192, high 16384, xhigh 24576 "
                   "budget tokens, chat_request.REASONING_BUDGETS, kept below max_tokens)")
ANTHROPIC = _translated(
    "Anthropic", max_completion_tokens=Translated("`max_tokens`"),
    parallel_tool_calls=Translated("`tool_choice.disable_parallel_tool_use`"),
    response_format=Translated("`output_config.format` (json_schema) or a system instruction (json_object)"),
    seed=Refused("Anthropic"), n=Refused("Anthropic", (1,)), reasoning_effort=Translated(CLAUDE_THINKING),
    frequency_penalty=Refused("Anthropic", (0,)), presence_penalty=Refused("Anthropic", (0,)),
    service_tier=Mapped("service_tier", STANDARD_TIERS, "Anthropic"),
    user=Translated("`metadata.user_id`"), safety_identifier=Translated("`metadata.user_id`"))
GEMINI = _translated(
    "Gemini", max_completion_tokens=Translated("`generationConfig.maxOutputTokens`"),
    parallel_tool_calls=Refused("Gemini", (True,)),
    response_format=Translated("`generationConfig.responseMimeType` and `responseJsonSchema`"),
    logprobs=Translated("`generationConfig.responseLogprobs`"), top_logprobs=Translated("`generationConfig.logprobs`"),
    seed=Translated("`generationConfig.seed`"), n=Translated("`generationConfig.candidateCount`"),
    reasoning_effort=Translated("`generationConfig.thinkingConfig`: `thinkingLevel` for Gemini 3 and later, else "
                                "`thinkingBudget` (none 0, minimal 512, low 1024, medium 8192, high 24576)"),
    frequency_penalty=Translated("`generationConfig.frequencyPenalty`"),
    presence_penalty=Translated("`generationConfig.presencePenalty`"))


def _bedrock(reasoning: Rule) -> Capabilities:
    return _translated(
        "Bedrock", max_completion_tokens=Translated("`inferenceConfig.maxTokens`"),
        parallel_tool_calls=Refused("Bedrock", (True,)),
        response_format=Translated("`outputConfig` (json_schema) or a system instruction (json_object)"),
        seed=Refused("Bedrock"), n=Refused("Bedrock", (1,)), reasoning_effort=reasoning,
        frequency_penalty=Refused("Bedrock", (0,)), presence_penalty=Refused("Bedrock", (0,)))


BEDROCK = _bedrock(Refused("Bedrock"))
BEDROCK_CLAUDE = _bedrock(Translated(f"`additionalModelRequestFields.thinking`, as Anthropic's {CLAUDE_THINKING}"))

# Cohere's v2 chat (cohere 7.3.1, `cohere/v2/`): `max_tokens`, `seed`, the penalties and `response_format`
# under their own names, reasoning as `thinking`; one answer per request and no way to forbid parallel tool
# calls. Its `logprobs` give one value per token of a text chunk without the tokens' text or alternatives
# (`types.LogprobItem`), which OpenAI's per-token shape cannot be built from, so they stay refused.
COHERE = _translated(
    "Cohere", max_completion_tokens=Translated("`max_tokens`"), parallel_tool_calls=Refused("Cohere", (True,)),
    response_format=Translated("`response_format` (json_object, with the schema for json_schema)"),
    seed=Translated("`seed`"), n=Refused("Cohere", (1,)),
    reasoning_effort=Translated("`thinking` (none: disabled; else enabled with `token_budget` as for Claude)"),
    frequency_penalty=Translated("`frequency_penalty`"), presence_penalty=Translated("`presence_penalty`"))

MISTRAL = _mistral()
# Mistral's models on Vertex AI: the same API, but their answers are not read through providers/mistral/, so
# a reasoning answer's content chunks would reach the client as they are (`none` asks for no reasoning).
VERTEX_MISTRAL_TABLE = Capabilities(
    "Mistral", {**MISTRAL.rules, "reasoning_effort": Refused("Mistral on Vertex AI", ("none",))}, MISTRAL_FIELDS)
TABLES: dict[str, Capabilities] = {
    "mistral": MISTRAL,
    "anthropic": ANTHROPIC,
    "gemini": GEMINI,
    "bedrock": BEDROCK,
    "bedrock/claude": BEDROCK_CLAUDE,
    "vertex_ai": GEMINI,
    # Vertex AI serves each partner publisher's models in that publisher's own format: Claude in Anthropic's
    # Messages API, Mistral in Mistral's chat API (the same 422 for fields it lacks).
    "vertex_ai/anthropic": ANTHROPIC,
    "vertex_ai/mistralai": VERTEX_MISTRAL_TABLE,
    "cohere": COHERE,
    "fake": _openai_family("fake"),
}
# Vertex AI's partner models (providers/vertex/translate.py): Mistral's speak Mistral's API there too.
VERTEX_MISTRAL = re.compile(r"(mistral|codestral|ministral)")


def for_provider(provider: str, model_name: str = "") -> Capabilities:
    """The table for a provider and model: Claude on Bedrock follows Anthropic's rules, and a Vertex AI
    partner model its publisher's (for_vertex_publisher: Claude Anthropic's, Mistral Mistral's, Llama OpenAI's);
    every provider without its own entry speaks OpenAI's API and takes every parameter as is."""
    if provider == "vertex_ai":
        if model_name.startswith("claude"):
            return for_vertex_publisher("anthropic")
        if VERTEX_MISTRAL.match(model_name):
            return for_vertex_publisher("mistralai")
        if model_name.startswith(("llama", "meta/")):
            return for_vertex_publisher("meta")
    if provider == "bedrock" and "anthropic." in model_name:
        return TABLES["bedrock/claude"]
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
