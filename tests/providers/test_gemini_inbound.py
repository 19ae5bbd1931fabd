"""Gemini API clients on any chat provider (providers/gemini/inbound.py): generateContent bodies into unified
chat requests, unified answers and chunks back into GenerateContentResponse objects.

The recorded fixtures of tests/fixtures/gemini/ drive both directions: a recorded generateContent body taken
in and sent out again by translate.py must come back unchanged, and a recorded stream translated to unified
chunks and back must carry the same text, calls, finish reason and usage."""
from __future__ import annotations

import orjson
import pytest

from providers.base import TranslationError
from providers.gemini import translate
from providers.gemini.inbound import GenerateChunks, chat_to_generate, generate_to_chat, json_schema
from providers.wire import gemini_usage, openai_usage
from tests.providers.recorded import recorded

fixture = recorded("gemini")
HI = [{"role": "user", "parts": [{"text": "Hi"}]}]


def test_recorded_generate_body_survives_the_round_trip():
    body = fixture("request_tool_conversation.json")["body"]
    assert translate.build_generate_body(generate_to_chat(body)) == body


def test_function_responses_without_ids_answer_the_oldest_call_of_that_name():
    chat = generate_to_chat({"contents": [
        {"role": "user", "parts": [{"text": "two cities"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "w", "args": {"c": "A"}}},
                                    {"functionCall": {"name": "w", "args": {"c": "B"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "w", "response": {"t": 1}}},
                                   {"functionResponse": {"name": "w", "response": {"t": 2}}}]}]})
    calls = chat["messages"][1]["tool_calls"]
    assert [m["tool_call_id"] for m in chat["messages"][2:]] == [calls[0]["id"], calls[1]["id"]]
    assert calls[0]["id"] != calls[1]["id"]


def test_generation_config_and_tool_config_map_to_unified_fields():
    chat = generate_to_chat({
        "contents": HI, "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}],
        "generationConfig": {"temperature": 1.5, "topK": 3, "maxOutputTokens": 9, "candidateCount": 2,
                             "stopSequences": ["x"], "responseMimeType": "application/json",
                             "thinkingConfig": {"thinkingBudget": 0}},
        "tools": [{"functionDeclarations": [{"name": "f", "parameters": {
            "type": "OBJECT", "properties": {"a": {"type": "STRING", "nullable": True}}, "propertyOrdering": ["a"]}}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}}})
    assert chat == {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "temperature": 1.5, "top_k": 3, "n": 2, "max_tokens": 9, "stop": ["x"],
        "response_format": {"type": "json_object"},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "properties": {"a": {"type": ["string", "null"]}}}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}}}


def test_gemini_schemas_become_json_schema():
    assert json_schema({"type": "ARRAY", "items": {"type": "INTEGER", "format": "int32"}}) == {
        "type": "array", "items": {"type": "integer", "format": "int32"}}


@pytest.mark.parametrize("body, named", [
    pytest.param({"contents": HI, "tools": [{"googleSearch": {}}]}, "googleSearch", id="built-in-tool"),
    pytest.param({"contents": HI, "cachedContent": "cachedContents/1"}, "cachedContent", id="cached-content"),
    pytest.param({"contents": HI, "generationConfig": {"responseModalities": ["IMAGE"]}}, "responseModalities",
                 id="image-output"),
    pytest.param({"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "audio/wav", "data": "AA"}}]}]},
                 "images", id="audio-input"),
    pytest.param({"contents": [{"role": "user", "parts": [{"functionResponse": {"name": "w", "response": {}}}]}]},
                 "functionCall", id="answer-without-call"),
    pytest.param({"contents": []}, "contents", id="no-contents"),
])
def test_what_cannot_be_expressed_is_refused_naming_the_field(body, named):
    with pytest.raises(TranslationError) as caught:
        generate_to_chat(body)
    assert named in caught.value.message


def test_answer_with_choices_calls_and_usage():
    answer = chat_to_generate({"id": "c1", "model": "gpt-4o", "usage": {
        "prompt_tokens": 20, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 8}}, "choices": [
        {"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Hi"}},
        {"index": 1, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "now", "arguments": ""}}]}}]})
    assert answer["candidates"] == [
        {"content": {"role": "model", "parts": [{"text": "Hi"}]}, "index": 0, "finishReason": "MAX_TOKENS"},
        {"content": {"role": "model", "parts": [{"functionCall": {"id": "call_1", "name": "now", "args": {}}}]},
         "index": 1, "finishReason": "STOP"}]
    assert answer["usageMetadata"] == {"promptTokenCount": 20, "candidatesTokenCount": 5, "totalTokenCount": 25,
                                       "cachedContentTokenCount": 8}
    assert gemini_usage(answer["usageMetadata"]) == openai_usage(
        {"prompt_tokens": 20, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 8}})


@pytest.mark.parametrize("name", ["stream_text.json", "stream_tool_calls.json", "stream_safety_stop.json"])
def test_recorded_stream_round_trip_carries_the_same_answer(name):
    case = fixture(name)
    there = translate.StreamTranslator(case["model"])
    chunks = [out for chunk in case["chunks"] for out in there.feed(chunk)] + [there.usage_chunk()]
    events = GenerateChunks()
    gemini = [data for chunk in chunks for _, data in events.feed(chunk)] + [data for _, data in events.end()]
    back = translate.StreamTranslator(case["model"])
    again = [out for chunk in gemini for out in back.feed(chunk)]
    assert back.finished and _story(again) == _story(chunks)
    assert gemini_usage(gemini[-1]["usageMetadata"]) == openai_usage(case["usage"])


def _story(chunks: list[dict]) -> tuple:
    """What a client assembles from chunks: the text, the calls (name, arguments) and the finish reasons."""
    text, calls, finishes = "", {}, []
    for chunk in chunks:
        for choice in chunk["choices"]:
            text += choice["delta"].get("content") or ""
            for call in choice["delta"].get("tool_calls") or ():
                held = calls.setdefault(call["index"], ["", ""])
                held[0] += call["function"].get("name") or ""
                held[1] += call["function"].get("arguments") or ""
            if choice["finish_reason"]:
                finishes.append(choice["finish_reason"])
    return text, [(n, orjson.loads(a or "{}")) for n, a in calls.values()], finishes
