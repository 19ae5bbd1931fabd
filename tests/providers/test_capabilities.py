"""The capability table (providers/capabilities.py): each OpenAI parameter is sent, renamed, translated,
dropped (only a usage flag the provider does not need) or refused with a 400 naming it, per provider."""
from __future__ import annotations

import pytest

from providers.capabilities import (PARAMETERS, TABLES, Dropped, Refused, UsageFlag, for_provider,
                                    for_vertex_publisher)
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
    ("anthropic", "reasoning_effort", "high"), ("bedrock", "parallel_tool_calls", False), ("bedrock", "seed", 1),
    ("gemini", "parallel_tool_calls", False), ("gemini", "logprobs", True), ("mistral", "logprobs", True),
    ("mistral", "reasoning_effort", "low"), ("vertex_ai", "logprobs", True),
])
def test_a_parameter_the_provider_cannot_honour_is_refused_by_name(provider, parameter, value):
    with pytest.raises(TranslationError, match=f"^{parameter}: ") as refused:
        for_provider(provider).prepare({**HI, parameter: value}, stream=False)
    assert refused.value.status == 400


@pytest.mark.parametrize("provider, parameter, value", [
    ("anthropic", "n", 1), ("anthropic", "logprobs", False), ("gemini", "parallel_tool_calls", True),
    ("bedrock", "parallel_tool_calls", True), ("anthropic", "seed", None),
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
def test_every_table_declares_every_parameter_and_drops_only_the_usage_flag(provider):
    rules = TABLES[provider].rules
    assert set(rules) == set(PARAMETERS)
    assert {name for name, rule in rules.items() if isinstance(rule, (Dropped, UsageFlag))} == {"stream_options"}
    assert all(rule.describe() for rule in rules.values())
    assert any(isinstance(rule, Refused) for rule in rules.values()) or provider == "fake"


def test_max_completion_tokens_wins_over_max_tokens_on_mistral_as_on_openai():
    sent = for_provider("mistral").prepare({**HI, "max_tokens": 500, "max_completion_tokens": 64}, stream=False)
    assert sent == {**HI, "max_tokens": 64}
