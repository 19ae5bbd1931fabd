"""The GenAI conventions' names for what the gateway knows."""
from __future__ import annotations

import pytest

from gateway.models import Provider
from gateway.observability import genai


@pytest.mark.parametrize("provider, name", [
    ("openai", "openai"), ("azure", "azure.ai.openai"), ("anthropic", "anthropic"), ("gemini", "gcp.gemini"),
    ("vertex_ai", "gcp.vertex_ai"), ("bedrock", "aws.bedrock"), ("mistral", "mistral_ai"), ("xai", "x_ai"),
    ("ollama", "ollama"),
])
def test_providers_take_the_well_known_names(provider, name):
    assert genai.provider_name(provider) == name


def test_every_provider_has_a_name():
    assert all(genai.provider_name(value) for value in Provider.values)


@pytest.mark.parametrize("body, expected", [
    ({"max_tokens": 10, "temperature": 0.5, "stop": "x"},
     {"gen_ai.request.max_tokens": 10, "gen_ai.request.temperature": 0.5, "gen_ai.request.stop_sequences": ["x"]}),
    ({"max_completion_tokens": 7, "top_p": 0.9, "seed": 3},
     {"gen_ai.request.max_tokens": 7, "gen_ai.request.top_p": 0.9, "gen_ai.request.seed": 3}),
    ({"generationConfig": {"maxOutputTokens": 5, "topK": 4, "stopSequences": ["END"]}},
     {"gen_ai.request.max_tokens": 5, "gen_ai.request.top_k": 4, "gen_ai.request.stop_sequences": ["END"]}),
    ({"temperature": "hot", "max_tokens": True}, {}),
    (None, {}),
])
def test_request_parameters_are_read_from_every_api(body, expected):
    assert genai.request_parameters(body) == expected


@pytest.mark.parametrize("answer, reasons", [
    ({"choices": [{"finish_reason": "stop"}, {"finish_reason": "length"}]}, ["stop", "length"]),
    ({"type": "message", "stop_reason": "end_turn"}, ["end_turn"]),
    ({"candidates": [{"finishReason": "STOP"}]}, ["STOP"]),
    ({"object": "response", "status": "completed"}, ["completed"]),
    ([], []),
])
def test_finish_reasons_in_every_shape(answer, reasons):
    assert genai.finish_reasons(answer) == reasons


def test_messages_keep_a_system_prompt_first():
    body = {"system": "be brief", "messages": [{"role": "user", "content": "hi"}]}
    assert genai.input_messages(body) == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert genai.input_messages({"input": "embed me"}) == [{"role": "user", "content": "embed me"}]
    assert genai.output_messages({"choices": [{"message": {"role": "assistant", "content": "ok"},
                                               "finish_reason": "stop"}]}) == [
        {"role": "assistant", "content": "ok", "finish_reason": "stop"}]
