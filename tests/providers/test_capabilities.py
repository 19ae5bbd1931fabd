"""The capability table (providers/capabilities.py): each OpenAI parameter is sent, renamed, translated,
dropped (only a usage flag the provider does not need) or refused with a 400 naming it, per provider."""
from __future__ import annotations

import pytest

from providers.capabilities import (BOOKKEEPING, MISTRAL_FIELDS, PARAMETERS, TABLES, Dropped, Refused, UsageFlag,
                                    for_provider, for_vertex_publisher)
from providers.errors import TranslationError

HI = {"messages": [{"role": "user", "content": "Hi"}]}


def test_mistral_gets_no_stream_options_and_max_tokens_instead_of_max_completion_tokens():
    """Mistral answers 422 extra_forbidden to both; it reports usage on its last stream chunk by itself."""
    sent = for_provider("mistral").prepare({**HI, "stream_options": {"include_usage": True},
                                            "max_completion_tokens": 64, "seed": 3}, stream=True)
    assert sent == {**HI, "max_tokens": 64, "random_seed": 3}


def test_openai_family_streams_ask_for_usage_and_plain_calls_carry_no_stream_options():
    table = for_provider("groq")
    assert table.prepare(HI, stream=True) == {**HI, "stream_options": {"include_usage": True}}
    assert table.prepare({**HI, "stream_options": {"include_usage": False}}, stream=False) == HI
    assert table.prepare({**HI, "max_completion_tokens": 5, "logprobs": True, "n": 2}, stream=False) == {
        **HI, "max_completion_tokens": 5, "logprobs": True, "n": 2}


@pytest.mark.parametrize("provider, parameter, value", [
    ("anthropic", "seed", 7), ("anthropic", "logprobs", True), ("anthropic", "n", 2),
    ("bedrock", "parallel_tool_calls", False), ("bedrock", "seed", 1), ("bedrock", "reasoning_effort", "low"),
    ("gemini", "parallel_tool_calls", False), ("anthropic", "top_logprobs", 3), ("bedrock", "logprobs", True),
    ("mistral", "logit_bias", {"50256": -100}), ("mistral", "audio", {"voice": "alloy", "format": "mp3"}),
    ("mistral", "modalities", ["text", "audio"]), ("mistral", "web_search_options", {}),
    ("mistral", "verbosity", "low"), ("mistral", "functions", [{"name": "f"}]),
    ("anthropic", "logit_bias", {"1": 2}), ("anthropic", "prediction", {"type": "content", "content": "x"}),
    ("anthropic", "frequency_penalty", 0.5), ("anthropic", "verbosity", "high"), ("anthropic", "service_tier", "flex"),
    ("gemini", "audio", {"voice": "alloy"}), ("gemini", "prediction", {"type": "content", "content": "x"}),
    ("vertex_ai", "logit_bias", {"1": 2}), ("bedrock", "presence_penalty", 1), ("mistral", "service_tier", "priority"),
    ("mistral", "reasoning_effort", "extreme"),
])
def test_a_parameter_the_provider_cannot_honour_is_refused_by_name(provider, parameter, value):
    with pytest.raises(TranslationError, match=f"^{parameter}: ") as refused:
        for_provider(provider).prepare({**HI, parameter: value}, stream=False)
    assert refused.value.status == 400


@pytest.mark.parametrize("provider, parameter, value", [
    ("anthropic", "n", 1), ("anthropic", "logprobs", False), ("gemini", "parallel_tool_calls", True),
    ("bedrock", "parallel_tool_calls", True), ("anthropic", "seed", None), ("mistral", "logit_bias", {}),
    ("mistral", "modalities", ["text"]), ("bedrock", "frequency_penalty", 0), ("gemini", "service_tier", "auto"),
    ("anthropic", "verbosity", "medium"),
])
def test_values_that_ask_for_nothing_are_left_out_not_refused(provider, parameter, value):
    assert for_provider(provider).prepare({**HI, parameter: value}, stream=False) == HI


def test_translated_parameters_reach_the_translator_untouched():
    request = {**HI, "max_completion_tokens": 9, "response_format": {"type": "json_object"}, "seed": 4, "n": 2}
    assert for_provider("gemini").prepare(request, stream=True) == request


def test_claude_on_vertex_follows_anthropics_table_and_gemini_on_vertex_geminis():
    assert for_provider("vertex_ai", "claude-sonnet-4-5@20250929") is TABLES["anthropic"]
    assert for_provider("vertex_ai", "gemini-2.5-flash") is TABLES["gemini"]


def test_partner_models_on_vertex_follow_their_publishers_table():
    """Mistral on Vertex AI refuses what Mistral refuses; Llama's OpenAI-compatible endpoint gets every
    parameter as sent, never a refusal in Gemini's name."""
    mistral = for_vertex_publisher("mistralai").prepare({**HI, "max_completion_tokens": 8, "seed": 7}, stream=False)
    assert mistral == {**HI, "max_tokens": 8, "random_seed": 7}
    llama = {**HI, "parallel_tool_calls": False, "logprobs": True}
    assert for_vertex_publisher("meta").prepare(llama, stream=False) == llama
    assert for_vertex_publisher("google") is TABLES["gemini"]
    assert for_vertex_publisher("anthropic") is TABLES["anthropic"]


def test_the_callers_request_is_never_changed():
    request = {**HI, "max_completion_tokens": 8, "stream_options": {"include_usage": False}}
    for_provider("mistral").prepare(request, stream=True)
    for_provider("openai").prepare(request, stream=True)
    assert request == {**HI, "max_completion_tokens": 8, "stream_options": {"include_usage": False}}


@pytest.mark.parametrize("provider", sorted(TABLES))
def test_every_table_declares_every_parameter_and_drops_only_bookkeeping(provider):
    rules = TABLES[provider].rules
    assert set(rules) == set(PARAMETERS)
    assert {name for name, rule in rules.items() if isinstance(rule, (Dropped, UsageFlag))} <= BOOKKEEPING
    assert all(rule.describe() for rule in rules.values())
    assert any(isinstance(rule, Refused) for rule in rules.values()) or provider == "fake"


def test_max_completion_tokens_wins_over_max_tokens_on_mistral_as_on_openai():
    sent = for_provider("mistral").prepare({**HI, "max_tokens": 500, "max_completion_tokens": 64}, stream=False)
    assert sent == {**HI, "max_tokens": 64}


@pytest.mark.parametrize("provider, model", [("anthropic", "claude-sonnet-4-5"), ("vertex_ai", "claude-sonnet-4-5@20250929"),
                                             ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
                                             ("gemini", "gemini-2.5-flash"), ("vertex_ai", "gemini-3-pro-preview"),
                                             ("cohere", "command-a-reasoning-08-2025")])
def test_reasoning_effort_reaches_every_provider_with_an_equivalent(provider, model):
    """Claude (Anthropic, Vertex, Bedrock) and Cohere think with a budget, Gemini with a thinking config."""
    request = {**HI, "reasoning_effort": "high"}
    assert for_provider(provider, model).prepare(request, stream=False) == request


@pytest.mark.parametrize("provider", ["gemini", "vertex_ai", "mistral"])
def test_logprobs_reach_providers_that_answer_them(provider):
    request = {**HI, "logprobs": True, "top_logprobs": 2}
    assert for_provider(provider, "gemini-2.5-flash").prepare(request, stream=True) == request


def test_mistral_gets_only_the_fields_its_schema_declares():
    """Mistral answers 422 extra_forbidden to any other field: bookkeeping is dropped, its own equivalents
    are kept or renamed, and every other field is refused by name before it is sent."""
    sent = for_provider("mistral").prepare({
        **HI, "user": "u-1", "safety_identifier": "h", "store": True, "metadata": {"team": "a"},
        "prompt_cache_key": "k", "prediction": {"type": "content", "content": "x"}, "service_tier": "default",
        "max_completion_tokens": 9, "seed": 2, "logit_bias": {}, "modalities": ["text"], "verbosity": "medium"},
        stream=True)
    assert sent == {**HI, "metadata": {"team": "a"}, "prompt_cache_key": "k", "service_tier": "standard_only",
                    "prediction": {"type": "content", "content": "x"}, "max_tokens": 9, "random_seed": 2}
    assert set(sent) <= MISTRAL_FIELDS
    with pytest.raises(TranslationError, match="^reasoning: Mistral models do not take this parameter") as refused:
        for_provider("mistral").prepare({**HI, "reasoning": {"effort": "low"}}, stream=False)
    assert refused.value.status == 400


def test_user_becomes_anthropic_metadata_and_is_dropped_where_nothing_takes_it():
    request = {**HI, "user": "u-1", "metadata": {"team": "a"}, "store": False, "prompt_cache_key": "k"}
    assert for_provider("anthropic").prepare(request, stream=False) == {**HI, "user": "u-1"}
    assert for_provider("gemini").prepare(request, stream=False) == HI
    assert for_provider("bedrock", "amazon.nova-lite-v1:0").prepare(request, stream=False) == HI


def test_service_tier_is_mapped_to_anthropics_values():
    assert for_provider("anthropic").prepare({**HI, "service_tier": "default"}, stream=False) == {
        **HI, "service_tier": "standard_only"}


def test_partner_models_on_vertex_follow_their_own_family():
    assert for_provider("vertex_ai", "mistral-small-2503") is TABLES["vertex_ai/mistralai"]
    assert for_provider("vertex_ai", "mistral-small-2503").accepts == MISTRAL_FIELDS
    assert for_provider("vertex_ai", "llama-3.3-70b-instruct-maas").prepare(
        {**HI, "logprobs": True}, stream=False) == {**HI, "logprobs": True}


@pytest.mark.parametrize("parameter, value", [("logprobs", True), ("n", 3), ("parallel_tool_calls", False),
                                              ("logit_bias", {"1": 2})])
def test_cohere_refusals_come_from_its_table(parameter, value):
    with pytest.raises(TranslationError, match=f"^{parameter}: Cohere models"):
        for_provider("cohere").prepare({**HI, parameter: value}, stream=False)
    assert for_provider("cohere").prepare({**HI, "stream_options": {"include_usage": True}}, stream=True) == HI


@pytest.mark.parametrize("effort", ["none", "minimal", "low", "medium", "high", "xhigh", "max"])
def test_mistral_takes_each_reasoning_effort_openai_defines(effort):
    """Mistral's `ReasoningEffort` (mistralai 3.7.0) names the same values as OpenAI's."""
    request = {**HI, "reasoning_effort": effort}
    assert for_provider("mistral").prepare(request, stream=True) == request


def test_mistral_on_vertex_refuses_reasoning_effort_whose_answers_it_would_relay_as_chunks():
    with pytest.raises(TranslationError, match="^reasoning_effort: Mistral on Vertex AI models have no equivalent"):
        for_provider("vertex_ai", "mistral-medium-3").prepare({**HI, "reasoning_effort": "low"}, stream=False)
    assert for_provider("vertex_ai", "mistral-medium-3").prepare({**HI, "reasoning_effort": "none"}, stream=False) == HI


CARRIED = {"role": "assistant", "content": None, "tool_calls": [
    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"},
     "extra_content": {"anthropic": {"thinking_blocks": [{"type": "thinking", "thinking": "t", "signature": "s"}]}}},
    {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}}]}
LOOP = {"messages": [{"role": "user", "content": "Hi"}, CARRIED,
                     {"role": "tool", "tool_call_id": "c1", "content": "x"}]}


@pytest.mark.parametrize("provider, model", [("mistral", ""), ("openai", ""), ("groq", ""), ("litellm", ""),
                                             ("vertex_ai", "mistral-medium-3"), ("vertex_ai", "meta/llama-4")])
def test_the_gateways_carry_data_never_reaches_a_provider_that_gets_messages_as_they_are(provider, model):
    """`extra_content` is the gateway's own (Claude's thinking, Gemini's signatures); Mistral answers 422
    `extra_forbidden` to it and OpenAI's tool call declares no such field."""
    sent = for_provider(provider, model).prepare(LOOP, stream=False)
    assert [call for call in sent["messages"][1]["tool_calls"] if "extra_content" in call] == []
    assert sent["messages"][1]["tool_calls"][0] == {"id": "c1", "type": "function",
                                                    "function": {"name": "f", "arguments": "{}"}}
    assert sent["messages"][0] is LOOP["messages"][0] and sent["messages"][2] is LOOP["messages"][2]
    assert "extra_content" in LOOP["messages"][1]["tool_calls"][0]


@pytest.mark.parametrize("provider, model", [("anthropic", ""), ("gemini", "gemini-3-pro-preview"),
                                             ("bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
                                             ("vertex_ai", "claude-sonnet-4-5@20250929")])
def test_translators_get_the_carry_data_they_read(provider, model):
    assert for_provider(provider, model).prepare(LOOP, stream=False) == LOOP
