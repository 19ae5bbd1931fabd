"""Gemini translation rules, both ways, from tables and recorded JSON fixtures."""
from __future__ import annotations

import base64
import re
import struct

import pytest

from providers.base import ProviderError
from providers.gemini import translate
from tests.providers.recorded import recorded

fixture = recorded("gemini")
USER = [{"role": "user", "content": "Hi"}]
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}


def gemini_answer(parts: list[dict], finish: str | None = "STOP", **extra) -> dict:
    candidate = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "responseId": "resp-1", **extra}


# -- request ---------------------------------------------------------------------------------------------------

def test_full_tool_conversation_request_matches_recorded_body():
    case = fixture("request_tool_conversation.json")
    assert translate.build_generate_body(case["request"]) == case["body"]


@pytest.mark.parametrize("fields, config", [
    pytest.param({"stop": "END"}, {"stopSequences": ["END"]}, id="stop-string"),
    pytest.param({"stop": ["a", "b"]}, {"stopSequences": ["a", "b"]}, id="stop-list"),
    pytest.param({"n": 3}, {"candidateCount": 3}, id="n"),
    pytest.param({"max_tokens": 64}, {"maxOutputTokens": 64}, id="max-tokens"),
    pytest.param({"max_tokens": 64, "max_completion_tokens": 32}, {"maxOutputTokens": 32}, id="max-completion-wins"),
    pytest.param({"temperature": 0, "top_p": 0.5, "top_k": 40}, {"temperature": 0, "topP": 0.5, "topK": 40},
                 id="sampling"),
    pytest.param({"presence_penalty": 0.5, "frequency_penalty": -0.5, "seed": 42},
                 {"presencePenalty": 0.5, "frequencyPenalty": -0.5, "seed": 42}, id="penalties-seed"),
    pytest.param({"response_format": {"type": "json_object"}}, {"responseMimeType": "application/json"},
                 id="json-object"),
    pytest.param({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}},
                 {"responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}}, id="json-schema"),
    pytest.param({"response_format": {"type": "text"}, "temperature": None, "stop": None}, None, id="nothing-to-set"),
])
def test_generation_config(fields, config):
    assert translate.build_generate_body({"messages": USER, **fields}).get("generationConfig") == config


@pytest.mark.parametrize("choice, expected", [
    pytest.param("none", {"mode": "NONE"}, id="none"),
    pytest.param("auto", {"mode": "AUTO"}, id="auto"),
    pytest.param("required", {"mode": "ANY"}, id="required"),
    pytest.param({"type": "function", "function": {"name": "get_weather"}},
                 {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}, id="named-function"),
])
def test_tool_choice(choice, expected):
    body = translate.build_generate_body({"messages": USER, "tools": [WEATHER_TOOL], "tool_choice": choice})
    assert body["toolConfig"] == {"functionCallingConfig": expected}


def test_tool_choice_without_tools_is_not_sent():
    assert "toolConfig" not in translate.build_generate_body({"messages": USER, "tool_choice": "auto"})


@pytest.mark.parametrize("messages, contents, system", [
    pytest.param([{"role": "system", "content": "Be terse."}, *USER],
                 [{"role": "user", "parts": [{"text": "Hi"}]}], [{"text": "Be terse."}], id="system-string"),
    pytest.param([{"role": "system", "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]}, *USER],
                 [{"role": "user", "parts": [{"text": "Hi"}]}], [{"text": "A"}, {"text": "B"}], id="system-parts"),
    pytest.param([*USER, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}],
                 [{"role": "user", "parts": [{"text": "Hi"}]}, {"role": "model", "parts": [{"text": "Hello"}]},
                  {"role": "user", "parts": [{"text": "Bye"}]}], None, id="assistant-is-model"),
    pytest.param([*USER, {"role": "assistant", "content": ""}, {"role": "user", "content": "Again"}],
                 [{"role": "user", "parts": [{"text": "Hi"}]}, {"role": "user", "parts": [{"text": "Again"}]}], None,
                 id="empty-turn-dropped"),
    pytest.param([{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}]}],
                 [{"role": "user", "parts": [{"inlineData": {"mimeType": "audio/wav", "data": "UklG"}}]}], None,
                 id="audio"),
    pytest.param([*USER, {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "get_weather", "arguments": ""}}]},
                  {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "[1, 2]"}]}],
                 [{"role": "user", "parts": [{"text": "Hi"}]},
                  {"role": "model", "parts": [{"functionCall": {"id": "call_1", "name": "get_weather", "args": {}}}]},
                  {"role": "user", "parts": [{"functionResponse": {"id": "call_1", "name": "get_weather",
                                                                   "response": {"result": [1, 2]}}}]}],
                 None, id="tool-result-non-object"),
    pytest.param([*USER, {"role": "assistant", "tool_calls": [CALL]}, {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
                  {"role": "user", "content": "more"}, {"role": "assistant", "tool_calls": [{**CALL, "id": "call_2"}]},
                  {"role": "tool", "tool_call_id": "call_2", "content": "{\"a\": 1}"}],
                 [{"role": "user", "parts": [{"text": "Hi"}]},
                  {"role": "model", "parts": [{"functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}}}]},
                  {"role": "user", "parts": [{"functionResponse": {"id": "call_1", "name": "get_weather", "response": {"result": "ok"}}}]},
                  {"role": "user", "parts": [{"text": "more"}]},
                  {"role": "model", "parts": [{"functionCall": {"id": "call_2", "name": "get_weather", "args": {"city": "Paris"}}}]},
                  {"role": "user", "parts": [{"functionResponse": {"id": "call_2", "name": "get_weather", "response": {"a": 1}}}]}],
                 None, id="separate-tool-turns-stay-separate"),
])
def test_messages(messages, contents, system):
    body = translate.build_generate_body({"messages": messages})
    assert body["contents"] == contents
    assert body.get("systemInstruction") == ({"parts": system} if system else None)


@pytest.mark.parametrize("request_fields, fragment", [
    pytest.param({"messages": []}, "non-empty list", id="no-messages"),
    pytest.param({"messages": [{"role": "critic", "content": "x"}]}, "role 'critic'", id="unknown-role"),
    pytest.param({"messages": [*USER, {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "{oops"}}]}]},
                 "not valid JSON", id="invalid-arguments"),
    pytest.param({"messages": [*USER, {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "[1]"}}]}]},
                 "JSON object", id="arguments-not-object"),
    pytest.param({"messages": [*USER, {"role": "tool", "tool_call_id": "call_9", "content": "x"}]}, "call_9",
                 id="unknown-tool-call-id"),
    pytest.param({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}]},
                 "not supported here", id="image-in-system"),
    pytest.param({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/a.png"}}]}]},
                 "data URL or an http(s) URL", id="image-scheme"),
    pytest.param({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]},
                 "base64", id="data-url-not-base64"),
    pytest.param({"messages": USER, "tools": [{"type": "web_search"}]}, "type 'function'", id="non-function-tool"),
    pytest.param({"messages": USER, "tools": [WEATHER_TOOL], "tool_choice": "sometimes"}, "tool_choice", id="bad-tool-choice"),
    pytest.param({"messages": USER, "response_format": {"type": "yaml"}}, "response_format", id="bad-response-format"),
])
def test_invalid_requests_are_client_errors(request_fields, fragment):
    with pytest.raises(ProviderError) as caught:
        translate.build_generate_body(request_fields)
    error = caught.value
    assert (error.status, error.retryable, error.error_type) == (400, False, "invalid_request_error")
    assert fragment in error.message


# -- answers ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["response_thinking_parallel_calls.json", "response_cached_max_tokens.json",
                                  "response_prompt_blocked.json"])
def test_recorded_answers(name):
    case = fixture(name)
    completion = translate.chat_completion(case["response"], case["model"])
    assert isinstance(completion.pop("created"), int)
    assert completion == case["expected"]


@pytest.mark.parametrize("reason, has_calls, expected", [
    ("STOP", False, "stop"), ("STOP", True, "tool_calls"), ("MAX_TOKENS", True, "length"),
    ("SAFETY", False, "content_filter"), ("RECITATION", False, "content_filter"),
    ("BLOCKLIST", False, "content_filter"), ("PROHIBITED_CONTENT", False, "content_filter"),
    ("SPII", False, "content_filter"), ("IMAGE_SAFETY", False, "content_filter"),
    ("OTHER", False, "stop"), ("MALFORMED_FUNCTION_CALL", False, "stop"), ("FINISH_REASON_UNSPECIFIED", True, "tool_calls"),
    (None, False, None),
])
def test_finish_reasons(reason, has_calls, expected):
    assert translate.finish_reason(reason, has_calls) == expected


def test_answer_without_response_id_gets_a_fresh_id():
    first = translate.chat_completion({"candidates": []}, "m")["id"]
    second = translate.chat_completion({"candidates": []}, "m")["id"]
    assert re.fullmatch(r"chatcmpl-gemini-[0-9a-f]{32}", first) and first != second


def test_missing_call_ids_are_synthesized_deterministically_and_distinct():
    parts = [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}] * 2
    message = translate.chat_completion(gemini_answer(parts), "m")["choices"][0]["message"]
    again = translate.chat_completion(gemini_answer(parts), "m")["choices"][0]["message"]
    ids = [call["id"] for call in message["tool_calls"]]
    assert all(re.fullmatch(r"call_[0-9a-f]{24}", i) for i in ids)
    assert ids[0] != ids[1]
    assert ids == [call["id"] for call in again["tool_calls"]]


def test_streamed_and_whole_answers_synthesize_the_same_call_ids():
    call = {"functionCall": {"name": "get_time", "args": {}}}
    whole = translate.chat_completion(gemini_answer([call, call]), "m")["choices"][0]["message"]["tool_calls"]
    stream = translate.StreamTranslator("m")
    streamed = [tc for part in ([call], [call]) for chunk in stream.feed(gemini_answer(part, finish=None))
                for tc in chunk["choices"][0]["delta"].get("tool_calls", [])]
    assert [c["id"] for c in streamed] == [c["id"] for c in whole]
    assert [c["index"] for c in streamed] == [0, 1]


def test_usage_counts_thoughts_and_tool_prompts():
    metadata = {"promptTokenCount": 10, "toolUsePromptTokenCount": 5, "candidatesTokenCount": 3,
                "thoughtsTokenCount": 4, "totalTokenCount": 22, "cachedContentTokenCount": 6}
    assert translate.usage(metadata) == {
        "prompt_tokens": 15, "completion_tokens": 7, "total_tokens": 22,
        "prompt_tokens_details": {"cached_tokens": 6}, "completion_tokens_details": {"reasoning_tokens": 4},
    }
    assert translate.usage(None)["total_tokens"] == 0


# -- streams ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["stream_text.json", "stream_tool_calls.json", "stream_safety_stop.json"])
def test_recorded_streams(name):
    case = fixture(name)
    translator = translate.StreamTranslator(case["model"])
    chunks = [out for chunk in case["chunks"] for out in translator.feed(chunk)]
    assert [chunk["choices"] for chunk in chunks] == case["expected"]
    assert {(c["id"], c["object"], c["model"], c["created"]) for c in chunks} == {
        (case["id"], "chat.completion.chunk", case["model"], translator.created)}
    assert translator.finished
    final = translator.usage_chunk()
    assert (final["id"], final["choices"], final["usage"]) == (case["id"], [], case["usage"])


def test_stream_without_finish_reason_is_not_finished():
    case = fixture("stream_text.json")
    translator = translate.StreamTranslator(case["model"])
    for chunk in case["chunks"][:-1]:
        translator.feed(chunk)
    assert not translator.finished


def test_stream_finishes_only_when_every_candidate_has():
    translator = translate.StreamTranslator("m")
    both = {"candidates": [{"content": {"parts": [{"text": "a"}]}, "index": 0},
                           {"content": {"parts": [{"text": "b"}]}, "index": 1, "finishReason": "STOP"}]}
    translator.feed(both)
    assert not translator.finished
    translator.feed({"candidates": [{"content": {"parts": []}, "index": 0, "finishReason": "MAX_TOKENS"}]})
    assert translator.finished


def test_stream_blocked_prompt_finishes_with_content_filter():
    translator = translate.StreamTranslator("m")
    chunks = translator.feed({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5}})
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, "content_filter"]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert translator.finished and translator.usage_chunk()["usage"]["prompt_tokens"] == 5


# -- embeddings ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("request_fields, method, body", [
    pytest.param({"input": "hello"}, "embedContent", {"content": {"parts": [{"text": "hello"}]}}, id="single"),
    pytest.param({"input": "hello", "dimensions": 256}, "embedContent",
                 {"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 256}, id="single-dimensions"),
    pytest.param({"input": ["a", "b"], "encoding_format": "float"}, "batchEmbedContents",
                 {"requests": [{"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}},
                               {"model": "models/text-embedding-004", "content": {"parts": [{"text": "b"}]}}]}, id="batch"),
])
def test_embeddings_request(request_fields, method, body):
    assert translate.build_embeddings_call(request_fields, "models/text-embedding-004") == (method, body)


@pytest.mark.parametrize("request_fields", [
    pytest.param({"input": [[1, 2, 3]]}, id="token-arrays"),
    pytest.param({"input": []}, id="empty-list"),
    pytest.param({"input": "x", "encoding_format": "int8"}, id="encoding-format"),
])
def test_embeddings_request_errors(request_fields):
    with pytest.raises(ProviderError) as caught:
        translate.build_embeddings_call(request_fields, "models/m")
    assert caught.value.status == 400 and not caught.value.retryable


@pytest.mark.parametrize("response, vectors, tokens", [
    pytest.param({"embedding": {"values": [0.1, 0.2]}}, [[0.1, 0.2]], 0, id="single"),
    pytest.param({"embeddings": [{"values": [1.0]}, {"values": [2.0]}], "usageMetadata": {"promptTokenCount": 4}},
                 [[1.0], [2.0]], 4, id="batch-with-usage"),
])
def test_embeddings_response(response, vectors, tokens):
    result = translate.embeddings_response(response, "text-embedding-004")
    assert result == {"object": "list", "model": "text-embedding-004",
                      "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
                      "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def test_embeddings_base64_is_little_endian_float32():
    result = translate.embeddings_response({"embedding": {"values": [0.5, -2.0]}}, "m", "base64")
    assert struct.unpack("<2f", base64.b64decode(result["data"][0]["embedding"])) == (0.5, -2.0)


@pytest.mark.parametrize("name, resource", [("gemini-2.5-flash", "models/gemini-2.5-flash"),
                                            ("tunedModels/my-model", "tunedModels/my-model")])
def test_model_resource(name, resource):
    assert translate.model_resource(name) == resource


def test_thought_signature_of_a_function_call_goes_back_with_it_on_the_next_turn():
    """Gemini 3 refuses a tool loop's second turn ("Function call is missing a thought_signature") unless each
    signed call comes back with its signature: the client returns the assistant message as it got it."""
    case = fixture("response_thinking_parallel_calls.json")
    message = translate.chat_completion(case["response"], case["model"])["choices"][0]["message"]
    follow_up = {"messages": [{"role": "user", "content": "Weather?"}, message,
                              *({"role": "tool", "tool_call_id": call["id"], "content": "sunny"}
                                for call in message["tool_calls"])]}
    sent = translate.build_generate_body(follow_up)["contents"][1]["parts"]
    assert [part.get("thoughtSignature") for part in sent if "functionCall" in part] == [
        "CsoBAVSoXO4nY2x0cVd6QkR0Z3pTa0RvZ2xUY0p5", None]


def test_streamed_thought_signature_goes_back_too():
    case = fixture("stream_tool_calls.json")
    translator = translate.StreamTranslator(case["model"])
    calls = [call for chunk in case["chunks"] for out in translator.feed(chunk)
             for call in out["choices"][0]["delta"].get("tool_calls", [])]
    message = {"role": "assistant", "content": None, "tool_calls": [
        {key: value for key, value in call.items() if key != "index"} for call in calls]}
    sent = translate.build_generate_body({"messages": [{"role": "user", "content": "Hi"}, message]})
    assert sent["contents"][1]["parts"][0] == {
        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "fc_1"}, "thoughtSignature": "CiQB0e2Kb"}


@pytest.mark.parametrize("effort, budget", [("none", 0), ("minimal", 512), ("low", 1024), ("medium", 8192),
                                           ("high", 24576)])
def test_reasoning_effort_becomes_a_thinking_budget(effort, budget):
    body = translate.build_generate_body({"messages": [{"role": "user", "content": "Hi"}], "reasoning_effort": effort},
                                         "gemini-2.5-flash")
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": budget}


@pytest.mark.parametrize("model", ["gemini-3-pro-preview", "gemini-3.1-flash", "publishers/google/models/gemini-3-pro"])
@pytest.mark.parametrize("effort, level", [("none", "MINIMAL"), ("minimal", "MINIMAL"), ("low", "LOW"),
                                           ("medium", "MEDIUM"), ("high", "HIGH"), ("xhigh", "XHIGH")])
def test_gemini_3_takes_a_thinking_level(model, effort, level):
    """google-genai 3.6.1: `ThinkingConfig.thinking_level` (`ThinkingLevel` MINIMAL..XHIGH) for Gemini 3."""
    body = translate.build_generate_body({"messages": USER, "reasoning_effort": effort}, model)
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingLevel": level}


def test_an_effort_gemini_2_cannot_spend_is_refused_by_name():
    with pytest.raises(translate.TranslationError, match="^reasoning_effort must be one of none, minimal, low, medium"):
        translate.build_generate_body({"messages": USER, "reasoning_effort": "xhigh"}, "gemini-2.5-pro")


def test_logprobs_ask_gemini_for_response_logprobs():
    """google-genai 3.6.1: `GenerateContentConfig.response_logprobs` and `logprobs` (REST responseLogprobs,
    logprobs)."""
    body = translate.build_generate_body({"messages": USER, "logprobs": True, "top_logprobs": 2})
    assert body["generationConfig"] == {"responseLogprobs": True, "logprobs": 2}
    assert "generationConfig" not in translate.build_generate_body({"messages": USER, "logprobs": False})
    with pytest.raises(translate.TranslationError, match="^top_logprobs: requires logprobs"):
        translate.build_generate_body({"messages": USER, "top_logprobs": 2})


# A candidate's `logprobsResult` as google-genai 3.6.1 declares it (`LogprobsResult`: chosenCandidates and
# topCandidates of {token, tokenId, logProbability}).
LOGPROBS_RESULT = {
    "chosenCandidates": [{"token": "Hel", "tokenId": 7, "logProbability": -0.01},
                         {"token": "lo", "tokenId": 8, "logProbability": -0.2}],
    "topCandidates": [{"candidates": [{"token": "Hel", "tokenId": 7, "logProbability": -0.01},
                                      {"token": "Hi", "tokenId": 9, "logProbability": -4.5}]},
                      {"candidates": [{"token": "lo", "tokenId": 8, "logProbability": -0.2}]}],
    "logProbabilitySum": -0.21,
}
OPENAI_LOGPROBS = {"refusal": None, "content": [
    {"token": "Hel", "logprob": -0.01, "bytes": [72, 101, 108], "top_logprobs": [
        {"token": "Hel", "logprob": -0.01, "bytes": [72, 101, 108]}, {"token": "Hi", "logprob": -4.5, "bytes": [72, 105]}]},
    {"token": "lo", "logprob": -0.2, "bytes": [108, 111], "top_logprobs": [
        {"token": "lo", "logprob": -0.2, "bytes": [108, 111]}]}]}


def test_logprobs_result_becomes_openai_choice_logprobs_whole_and_streamed():
    answer = gemini_answer([{"text": "Hello"}])
    answer["candidates"][0]["logprobsResult"] = LOGPROBS_RESULT
    assert translate.chat_completion(answer, "gemini-2.5-flash")["choices"][0]["logprobs"] == OPENAI_LOGPROBS
    chunks = translate.StreamTranslator("gemini-2.5-flash").feed(answer)
    assert [c["choices"][0]["logprobs"] for c in chunks if c["choices"][0]["delta"].get("content")] == [OPENAI_LOGPROBS]
    assert translate.chat_completion(gemini_answer([{"text": "Hi"}]), "m")["choices"][0]["logprobs"] is None


def test_an_unknown_reasoning_effort_is_refused_by_name():
    with pytest.raises(translate.TranslationError, match="reasoning_effort"):
        translate.build_generate_body({"messages": [{"role": "user", "content": "Hi"}], "reasoning_effort": "extreme"})
