"""Translation tables for Anthropic: OpenAI chat request -> Messages body, Messages response -> chat
completion, and Messages SSE events -> chat completion chunks."""
from __future__ import annotations

import pytest

from providers.anthropic.translate import (
    JSON_OBJECT_INSTRUCTION,
    StreamTranslator,
    TranslationError,
    anthropic_response_to_chat,
    chat_request_to_anthropic,
)
from providers.base import ProviderError
from tests.providers.recorded import recorded

fixture = recorded("anthropic")
MODEL = "claude-test"
HI = [{"role": "user", "content": "Hi"}]
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
ANTHROPIC_WEATHER_TOOL = {"name": "get_weather", "input_schema": {"type": "object"}}


def req(**fields) -> dict:
    return {"messages": HI, **fields}


def body(**fields) -> dict:
    return {"model": MODEL, "max_tokens": 8192, "messages": HI, **fields}


def closed(properties: dict, **extra) -> dict:
    return {"type": "object", "properties": properties, "additionalProperties": False, **extra}


REQUEST_CASES = [
    pytest.param(req(), body(), id="max_tokens-defaults-to-8192"),
    pytest.param(req(max_tokens=100), body(max_tokens=100), id="max_tokens"),
    pytest.param(req(max_completion_tokens=50, max_tokens=100), body(max_tokens=50), id="max_completion_tokens-wins"),
    pytest.param(req(n=1), body(), id="n-1-accepted"),
    pytest.param(req(temperature=1.0), body(temperature=0.5), id="temperature-halved"),
    pytest.param(req(temperature=2), body(temperature=1.0), id="temperature-max"),
    pytest.param(req(temperature=0), body(temperature=0.0), id="temperature-zero"),
    pytest.param(req(top_p=0.9, top_k=40), body(top_p=0.9, top_k=40), id="top_p-top_k"),
    pytest.param(req(stop="END"), body(stop_sequences=["END"]), id="stop-string"),
    pytest.param(req(stop=["a", "b"]), body(stop_sequences=["a", "b"]), id="stop-list"),
    pytest.param(req(user="u-42"), body(metadata={"user_id": "u-42"}), id="user-to-metadata"),
    pytest.param(req(safety_identifier="h-1"), body(metadata={"user_id": "h-1"}), id="safety_identifier-to-metadata"),
    pytest.param(req(frequency_penalty=0.5, presence_penalty=0.1, logit_bias={"1": 2}, logprobs=True, top_logprobs=2,
                     seed=7, store=True, metadata={"k": "v"}, modalities=["text"],
                     stream_options={"include_usage": True}, stream=True),
                 body(), id="fields-the-table-refused-or-dropped-are-not-sent"),
    pytest.param(req(service_tier="standard_only"), body(service_tier="standard_only"), id="service_tier-mapped"),
    pytest.param(req(reasoning_effort="low"),
                 body(max_tokens=8192, thinking={"type": "enabled", "budget_tokens": 2048}),
                 id="reasoning_effort-low-thinks-within-the-default-max_tokens"),
    pytest.param(req(reasoning_effort="high"),
                 body(max_tokens=20480, thinking={"type": "enabled", "budget_tokens": 16384}),
                 id="reasoning_effort-high-raises-the-default-max_tokens"),
    pytest.param(req(reasoning_effort="high", max_completion_tokens=6000),
                 body(max_tokens=6000, thinking={"type": "enabled", "budget_tokens": 3000}),
                 id="reasoning_effort-keeps-the-clients-max_tokens-and-halves-it-for-thinking"),
    pytest.param(req(reasoning_effort="minimal", max_tokens=1500),
                 body(max_tokens=1500, thinking={"type": "enabled", "budget_tokens": 1024}),
                 id="reasoning_effort-never-below-anthropics-minimum-budget"),
    pytest.param(req(reasoning_effort="none", max_tokens=100), body(max_tokens=100, thinking={"type": "disabled"}),
                 id="reasoning_effort-none-disables-thinking"),
    pytest.param(req(reasoning_effort="medium", temperature=2), body(temperature=1.0, max_tokens=12288,
                                                                     thinking={"type": "enabled", "budget_tokens": 8192}),
                 id="reasoning_effort-with-anthropics-temperature-1"),
    pytest.param(req(messages=[{"role": "system", "content": "Be kind."}, *HI]), body(system="Be kind."),
                 id="system-string"),
    pytest.param(req(messages=[{"role": "system", "content": "A"}, *HI, {"role": "system", "content": "B"}]),
                 body(system="A\nB"), id="several-system-messages"),
    pytest.param(req(messages=[{"role": "system", "content": [
                     {"type": "text", "text": "Long policy", "cache_control": {"type": "ephemeral"}}]}, *HI]),
                 body(system=[{"type": "text", "text": "Long policy", "cache_control": {"type": "ephemeral"}}]),
                 id="system-cache_control-keeps-blocks"),
    pytest.param(req(messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]),
                 body(messages=[{"role": "user", "content": [{"type": "text", "text": "a"},
                                                             {"type": "text", "text": "b"}]}]),
                 id="consecutive-user-turns-merged"),
    pytest.param(req(messages=[*HI, {"role": "assistant", "content": ""}, {"role": "user", "content": "again"}]),
                 body(messages=[{"role": "user", "content": [{"type": "text", "text": "Hi"},
                                                             {"type": "text", "text": "again"}]}]),
                 id="empty-assistant-turn-skipped"),
    pytest.param(req(messages=[*HI, {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]}]),
                 body(messages=[*HI, {"role": "assistant", "content": [{"type": "text", "text": "No."}]}]),
                 id="assistant-refusal-part-kept-as-text"),
    pytest.param(req(messages=[*HI, {"role": "assistant", "tool_calls": [
                     {"id": "c1", "type": "function", "function": {"name": "now", "arguments": ""}}]}]),
                 body(messages=[*HI, {"role": "assistant", "content": [
                     {"type": "tool_use", "id": "c1", "name": "now", "input": {}}]}]),
                 id="tool-call-without-arguments"),
    pytest.param(req(tools=[{"type": "function", "function": {"name": "f", "description": "d", "strict": True,
                                                               "parameters": {"type": "object", "properties": {}}}}]),
                 body(tools=[{"name": "f", "description": "d", "strict": True,
                              "input_schema": {"type": "object", "properties": {}}}]),
                 id="tool-definition"),
    pytest.param(req(tools=[{"type": "function", "function": {"name": "f"}}]),
                 body(tools=[{"name": "f", "input_schema": {"type": "object", "properties": {}}}]),
                 id="tool-without-parameters"),
    pytest.param(req(tools=[WEATHER_TOOL], tool_choice="none"),
                 body(tools=[ANTHROPIC_WEATHER_TOOL], tool_choice={"type": "none"}), id="tool_choice-none"),
    pytest.param(req(tools=[WEATHER_TOOL], tool_choice="auto"),
                 body(tools=[ANTHROPIC_WEATHER_TOOL], tool_choice={"type": "auto"}), id="tool_choice-auto"),
    pytest.param(req(tools=[WEATHER_TOOL], tool_choice="required"),
                 body(tools=[ANTHROPIC_WEATHER_TOOL], tool_choice={"type": "any"}), id="tool_choice-required"),
    pytest.param(req(tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "get_weather"}}),
                 body(tools=[ANTHROPIC_WEATHER_TOOL], tool_choice={"type": "tool", "name": "get_weather"}),
                 id="tool_choice-function"),
    pytest.param(req(tools=[WEATHER_TOOL], parallel_tool_calls=False),
                 body(tools=[ANTHROPIC_WEATHER_TOOL], tool_choice={"type": "auto", "disable_parallel_tool_use": True}),
                 id="parallel_tool_calls-false-alone"),
    pytest.param(req(tools=[WEATHER_TOOL], tool_choice="required", parallel_tool_calls=False),
                 body(tools=[ANTHROPIC_WEATHER_TOOL], tool_choice={"type": "any", "disable_parallel_tool_use": True}),
                 id="parallel_tool_calls-false-with-required"),
    pytest.param(req(tools=[WEATHER_TOOL], tool_choice="none", parallel_tool_calls=False),
                 body(tools=[ANTHROPIC_WEATHER_TOOL], tool_choice={"type": "none"}),
                 id="parallel_tool_calls-irrelevant-with-none"),
    pytest.param(req(tools=[WEATHER_TOOL], parallel_tool_calls=True), body(tools=[ANTHROPIC_WEATHER_TOOL]),
                 id="parallel_tool_calls-true-is-default"),
    pytest.param(req(tool_choice="auto", parallel_tool_calls=False), body(), id="tool_choice-auto-without-tools"),
    pytest.param(req(response_format={"type": "text"}), body(), id="response_format-text"),
    pytest.param(req(response_format={"type": "json_object"}), body(system=JSON_OBJECT_INSTRUCTION),
                 id="response_format-json_object"),
    pytest.param(req(messages=[{"role": "system", "content": "Be terse."}, *HI],
                     response_format={"type": "json_object"}),
                 body(system=f"Be terse.\n{JSON_OBJECT_INSTRUCTION}"), id="response_format-json_object-appends"),
    pytest.param(req(response_format={"type": "json_schema", "json_schema": {"name": "p", "strict": True, "schema": {
                     "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}),
                 body(output_config={"format": {"type": "json_schema", "schema": closed(
                     {"name": {"type": "string"}}, required=["name"])}}),
                 id="response_format-json_schema-closes-objects"),
]


@pytest.mark.parametrize(("request_body", "expected"), REQUEST_CASES)
def test_chat_request_to_anthropic(request_body, expected):
    assert chat_request_to_anthropic(request_body, MODEL) == expected


@pytest.mark.parametrize("name", ["request_tool_conversation.json", "request_multimodal.json",
                                  "request_json_schema.json"])
def test_recorded_requests(name):
    case = fixture(name)
    assert chat_request_to_anthropic(case["request"], MODEL) == case["expected"]


def test_translation_does_not_mutate_the_request():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    request = req(response_format={"type": "json_schema", "json_schema": {"schema": schema}})
    chat_request_to_anthropic(request, MODEL)
    assert "additionalProperties" not in schema


BAD_TOOL_CALL = {"id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": "{not json"}}
REQUEST_ERRORS = [
    pytest.param(req(messages=[]), "messages must be a non-empty list", id="no-messages"),
    pytest.param(req(temperature=2.5), "temperature must be a number between 0 and 2", id="temperature-too-high"),
    pytest.param(req(temperature="hot"), "temperature must be a number", id="temperature-not-number"),
    pytest.param(req(max_tokens=0), "max_tokens must be a positive integer", id="max_tokens-zero"),
    pytest.param(req(max_completion_tokens="10"), "max_completion_tokens must be a positive integer",
                 id="max_completion_tokens-string"),
    pytest.param(req(messages=[{"role": "function", "content": "x"}]), "messages[0].role 'function'",
                 id="unknown-role"),
    pytest.param(req(messages=[*HI, {"role": "assistant", "tool_calls": [BAD_TOOL_CALL]}]),
                 "messages[1].tool_calls[0] (tool call 'call_9', function 'lookup')", id="tool-arguments-not-json"),
    pytest.param(req(messages=[*HI, {"role": "assistant", "tool_calls": [
                     {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1, 2]"}}]}]),
                 "must be a JSON object", id="tool-arguments-not-object"),
    pytest.param(req(messages=[*HI, {"role": "assistant", "tool_calls": [{"id": "c", "function": {}}]}]),
                 "needs an id and a function.name", id="tool-call-without-name"),
    pytest.param(req(messages=[*HI, {"role": "tool", "content": "x"}]), "tool messages need a tool_call_id",
                 id="tool-message-without-id"),
    pytest.param(req(messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]),
                 "content part type 'input_audio' is not supported", id="unsupported-part"),
    pytest.param(req(messages=[{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]),
                 "messages[0].content[0] must be a text part", id="system-image-part"),
    pytest.param(req(messages=[{"role": "user", "content": [
                     {"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}]}]),
                 "data URLs must be base64", id="image-data-url-not-base64"),
    pytest.param(req(messages=[{"role": "user", "content": [
                     {"type": "image_url", "image_url": {"url": "ftp://example.com/a.png"}}]}]),
                 "must be an http(s) URL or a base64 data URL", id="image-ftp-url"),
    pytest.param(req(tools=[{"type": "web_search"}]), "tools[0]: only function tools", id="non-function-tool"),
    pytest.param(req(tools=[WEATHER_TOOL], tool_choice="sometimes"), "tool_choice must be", id="bad-tool_choice"),
    pytest.param(req(tool_choice="required"), "offers no tools", id="tool_choice-required-without-tools"),
    pytest.param(req(response_format={"type": "json_schema", "json_schema": {"name": "x"}}),
                 "json_schema.schema must be a JSON Schema object", id="json_schema-missing-schema"),
    pytest.param(req(response_format={"type": "json_schema", "json_schema": {"schema": {
                     "type": "object", "properties": {"meta": {"type": "object", "additionalProperties": True}}}}}),
                 "the object at $.properties.meta allows arbitrary keys", id="json_schema-free-form-object"),
    pytest.param(req(response_format={"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}),
                 "the object at $ allows arbitrary keys", id="json_schema-object-without-properties"),
    pytest.param(req(response_format={"type": "yaml"}), "response_format.type must be", id="unknown-response_format"),
    pytest.param(req(reasoning_effort="low", max_completion_tokens=1024), "reasoning_effort: Claude models think with "
                 "at least 1024 tokens, which must be less than max_completion_tokens (1024)", id="thinking-no-room"),
    pytest.param(req(reasoning_effort="extreme"), "reasoning_effort must be one of none, minimal, low, medium, high, "
                 "xhigh", id="thinking-unknown-effort"),
    pytest.param(req(reasoning_effort="low", temperature=0.2), "temperature: Claude models cannot think",
                 id="thinking-with-temperature"),
    pytest.param(req(reasoning_effort="low", tools=[WEATHER_TOOL], tool_choice="required"),
                 "tool_choice: Claude models cannot think", id="thinking-with-forced-tool"),
]


@pytest.mark.parametrize(("request_body", "message"), REQUEST_ERRORS)
def test_untranslatable_requests_are_client_errors(request_body, message):
    with pytest.raises(TranslationError) as caught:
        chat_request_to_anthropic(request_body, MODEL)
    assert message in caught.value.message
    assert (caught.value.status, caught.value.retryable, caught.value.error_type) == (400, False,
                                                                                       "invalid_request_error")


def message(content: list, stop_reason: str = "end_turn", usage: dict | None = None, **extra) -> dict:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": content,
            "stop_reason": stop_reason, "usage": usage or {"input_tokens": 5, "output_tokens": 2}, **extra}


RESPONSE_CASES = [
    pytest.param(message([{"type": "text", "text": "Hello"}]),
                 {"message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}, id="text"),
    pytest.param(message([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]),
                 {"message": {"role": "assistant", "content": "ab"}, "finish_reason": "stop"}, id="texts-joined"),
    pytest.param(message([], stop_reason="max_tokens"),
                 {"message": {"role": "assistant", "content": None}, "finish_reason": "length"}, id="no-content"),
    pytest.param(message([{"type": "tool_use", "id": "t1", "name": "f", "input": {}}], stop_reason="tool_use"),
                 {"message": {"role": "assistant", "content": None, "tool_calls": [
                     {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                  "finish_reason": "tool_calls"}, id="tool-use-only"),
]


@pytest.mark.parametrize(("anthropic_body", "choice"), RESPONSE_CASES)
def test_anthropic_response_to_chat(anthropic_body, choice):
    result = anthropic_response_to_chat(anthropic_body, MODEL, created=1)
    assert result["choices"] == [{"index": 0, "logprobs": None, **choice}]
    assert (result["id"], result["object"], result["created"], result["model"]) == ("msg_1", "chat.completion", 1,
                                                                                    "claude-x")


@pytest.mark.parametrize(("stop_reason", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("model_context_window_exceeded", "length"), ("tool_use", "tool_calls"), ("refusal", "content_filter"),
    ("pause_turn", "stop"), (None, "stop"),
])
def test_stop_reasons(stop_reason, finish):
    result = anthropic_response_to_chat(message([{"type": "text", "text": "x"}], stop_reason), MODEL)
    assert result["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize(("usage", "expected"), [
    ({"input_tokens": 5, "output_tokens": 2},
     {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7, "prompt_tokens_details": {"cached_tokens": 0}}),
    ({"input_tokens": 5, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20, "output_tokens": 2},
     {"prompt_tokens": 125, "completion_tokens": 2, "total_tokens": 127,
      "prompt_tokens_details": {"cached_tokens": 100}}),
    ({"input_tokens": 5, "cache_read_input_tokens": None, "cache_creation_input_tokens": None, "output_tokens": 2},
     {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7, "prompt_tokens_details": {"cached_tokens": 0}}),
])
def test_usage_counts_cached_input_as_prompt(usage, expected):
    assert anthropic_response_to_chat(message([], usage=usage), MODEL)["usage"] == expected


def test_recorded_tool_use_response_keeps_thinking_out_of_the_text_and_on_the_first_call():
    case = fixture("response_tool_use.json")
    assert anthropic_response_to_chat(case["body"], MODEL, created=1700000000) == case["expected"]


def test_thinking_blocks_stay_out_of_the_answer_streamed_or_not():
    """Claude's thinking (asked for with reasoning_effort) has no OpenAI chat field: the text and usage come
    through, the thinking and its signature do not (Messages API thinking events, anthropic 2.17.0
    `ThinkingDelta` / `SignatureDelta`)."""
    answer = anthropic_response_to_chat({"id": "msg_1", "model": MODEL, "stop_reason": "end_turn", "content": [
        {"type": "thinking", "thinking": "Let me think.", "signature": "sig"}, {"type": "text", "text": "42"}],
        "usage": {"input_tokens": 5, "output_tokens": 30}}, MODEL, created=1)
    assert answer["choices"][0]["message"]["content"] == "42" and answer["usage"]["completion_tokens"] == 30
    stream = StreamTranslator(MODEL, created=1)
    events = [("message_start", {"message": {"id": "msg_1", "usage": {"input_tokens": 5}}}),
              ("content_block_start", {"index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
              ("content_block_delta", {"index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm."}}),
              ("content_block_delta", {"index": 0, "delta": {"type": "signature_delta", "signature": "sig"}}),
              ("content_block_stop", {"index": 0}),
              ("content_block_start", {"index": 1, "content_block": {"type": "text", "text": ""}}),
              ("content_block_delta", {"index": 1, "delta": {"type": "text_delta", "text": "42"}}),
              ("content_block_stop", {"index": 1}),
              ("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 30}}),
              ("message_stop", {})]
    chunks = [chunk for event, data in events for chunk in stream.feed(event, data)]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "42"
    assert all(set(c["choices"][0]["delta"]) <= {"role", "content"} for c in chunks if c["choices"])


def test_response_without_model_reports_configured_model():
    anthropic_body = message([{"type": "text", "text": "x"}])
    del anthropic_body["model"]
    assert anthropic_response_to_chat(anthropic_body, MODEL)["model"] == MODEL


def run_stream(events: list[dict]) -> tuple[StreamTranslator, list[dict]]:
    state = StreamTranslator(MODEL, created=42)
    chunks = [chunk for event in events for chunk in state.feed(event["event"], event["data"])]
    return state, chunks


@pytest.mark.parametrize("name", ["stream_text.json", "stream_tool_use.json"])
def test_recorded_streams(name):
    case = fixture(name)
    state, chunks = run_stream(case["events"])
    expected = case["expected"]
    assert state.finished
    assert [[c["choices"][0]["delta"], c["choices"][0]["finish_reason"]] for c in chunks[:-1]] == expected["deltas"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == expected["usage"]
    assert {(c["id"], c["object"], c["created"], c["model"]) for c in chunks} == {
        (expected["id"], "chat.completion.chunk", 42, expected["model"])}


def test_stream_cut_before_message_stop_is_not_finished():
    state, chunks = run_stream(fixture("stream_text.json")["events"][:-2])
    assert not state.finished
    assert all(c["choices"] for c in chunks)


def test_stream_error_event_raises_retryable_upstream_error():
    events = fixture("stream_text.json")["events"][:4]
    events.append({"event": "error", "data": {"type": "error", "error": {"type": "overloaded_error",
                                                                          "message": "Overloaded"}}})
    with pytest.raises(ProviderError) as caught:
        run_stream(events)
    assert (caught.value.status, caught.value.retryable) == (502, True)
    assert "overloaded_error: Overloaded" in caught.value.message


def test_stream_ignores_unknown_events():
    state, chunks = run_stream([{"event": "future_event", "data": {"type": "future_event"}},
                                {"event": "ping", "data": {"type": "ping"}}])
    assert chunks == [] and not state.finished


def test_stream_usage_is_cumulative_and_finish_sent_once():
    events = fixture("stream_text.json")["events"]
    events.insert(-1, {"event": "message_delta", "data": {"type": "message_delta", "delta": {},
                                                          "usage": {"output_tokens": 30, "input_tokens": 14}}})
    _, chunks = run_stream(events)
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]].count("stop") == 1
    assert chunks[-1]["usage"] == {"prompt_tokens": 134, "completion_tokens": 30, "total_tokens": 164,
                                   "prompt_tokens_details": {"cached_tokens": 100}}


def test_stream_without_stop_reason_still_finishes():
    events = [e for e in fixture("stream_text.json")["events"] if e["event"] != "message_delta"]
    _, chunks = run_stream(events)
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert chunks[-1]["choices"] == []


def arguments_by_call(chunks: list[dict]) -> dict[int, str]:
    """What an OpenAI client gets for each tool call once it joins the streamed argument fragments."""
    joined: dict[int, str] = {}
    for chunk in chunks:
        for call in (chunk["choices"][0]["delta"].get("tool_calls") or [] if chunk["choices"] else []):
            joined[call["index"]] = joined.get(call["index"], "") + call["function"].get("arguments", "")
    return joined


def test_streamed_tool_call_without_arguments_ends_with_an_empty_object():
    """A function without parameters streams as a tool_use block with an empty (or no) input_json_delta;
    OpenAI clients json.loads the joined arguments, so they must be "{}" as on the non-streaming path."""
    events = [
        {"event": "message_start", "data": {"type": "message_start", "message": {
            "id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 10, "output_tokens": 1}}}},
        {"event": "content_block_start", "data": {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}}}},
        {"event": "content_block_delta", "data": {"type": "content_block_delta", "index": 0,
                                                  "delta": {"type": "input_json_delta", "partial_json": ""}}},
        {"event": "content_block_stop", "data": {"type": "content_block_stop", "index": 0}},
        {"event": "content_block_start", "data": {"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}}}},
        {"event": "content_block_delta", "data": {"type": "content_block_delta", "index": 1,
                                                  "delta": {"type": "input_json_delta", "partial_json": "{\"city\": \"Paris\"}"}}},
        {"event": "content_block_stop", "data": {"type": "content_block_stop", "index": 1}},
        {"event": "message_delta", "data": {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                                            "usage": {"output_tokens": 12}}},
        {"event": "message_stop", "data": {"type": "message_stop"}},
    ]
    _, chunks = run_stream(events)
    assert arguments_by_call(chunks) == {0: "{}", 1: "{\"city\": \"Paris\"}"}


def test_stream_events_of_the_wrong_shape_yield_what_can_be_read():
    events = fixture("stream_text.json")["events"]
    events.insert(2, {"event": "message_delta", "data": {"type": "message_delta", "delta": "x", "usage": "none"}})
    events.insert(2, {"event": "content_block_delta", "data": {"type": "content_block_delta", "index": [0],
                                                               "delta": {"type": "text_delta", "text": 5}}})
    events.insert(2, {"event": "message_start", "data": {"type": "message_start", "message": ["not", "one"]}})
    events.insert(2, {"event": "content_block_delta", "data": {"type": "content_block_delta", "index": 9,
                                                               "delta": {"type": "thinking_delta", "thinking": 5}}})
    events.insert(2, {"event": "content_block_start", "data": {"type": "content_block_start", "index": 9,
                                                               "content_block": {"type": "thinking", "thinking": ""}}})
    state, chunks = run_stream(events)
    _, expected = run_stream(fixture("stream_text.json")["events"])
    assert state.finished
    assert [c["choices"] for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")] == \
        [c["choices"] for c in expected if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert chunks[-1]["usage"] == expected[-1]["usage"]


def test_thinking_carried_on_a_tool_call_goes_back_first_in_the_assistant_turn():
    """Claude refuses a tool loop's next turn unless the thinking that preceded the calls comes back first."""
    streamed = StreamTranslator(MODEL, created=1)
    events = [("message_start", {"message": {"id": "msg_1"}}),
              ("content_block_start", {"index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
              ("content_block_delta", {"index": 0, "delta": {"type": "thinking_delta", "thinking": "Paris, "}}),
              ("content_block_delta", {"index": 0, "delta": {"type": "thinking_delta", "thinking": "then."}}),
              ("content_block_delta", {"index": 0, "delta": {"type": "signature_delta", "signature": "sig-1"}}),
              ("content_block_stop", {"index": 0}),
              ("content_block_start", {"index": 1, "content_block": {"type": "redacted_thinking", "data": "opaque"}}),
              ("content_block_stop", {"index": 1}),
              ("content_block_start", {"index": 2, "content_block": {"type": "tool_use", "id": "toolu_1",
                                                                     "name": "get_weather", "input": {}}}),
              ("content_block_delta", {"index": 2, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
              ("content_block_stop", {"index": 2})]
    calls = [call for event, data in events for chunk in streamed.feed(event, data)
             for call in chunk["choices"][0]["delta"].get("tool_calls", [])]
    thought = [{"type": "thinking", "thinking": "Paris, then.", "signature": "sig-1"},
               {"type": "redacted_thinking", "data": "opaque"}]
    assert calls[0]["extra_content"] == {"anthropic": {"thinking_blocks": thought}}
    message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"},
         "extra_content": calls[0]["extra_content"]}]}
    sent = chat_request_to_anthropic(req(messages=[*HI, message, {"role": "tool", "tool_call_id": "toolu_1",
                                                                  "content": "sunny"}], tools=[WEATHER_TOOL]), MODEL)
    assert sent["messages"][1]["content"] == [*thought, {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                                         "input": {}}]
