"""Translation tables for Bedrock: OpenAI chat request -> Converse body, Converse response -> chat
completion, ConverseStream events -> chunks; the event-stream frame decoder; InvokeModel bodies (Titan
embeddings, Anthropic Messages passthrough)."""
from __future__ import annotations

import base64
import copy
import json
import struct
import uuid
import zlib
import pytest

from providers.base import ProviderError
from providers.bedrock import invoke
from providers.bedrock.eventstream import EventStreamDecoder, Message, event_of
from providers.bedrock.translate import (StreamTranslator, TranslationError, chat_completion, chat_usage,
                                         converse_request, finish_reason)
from providers.chat_request import JSON_OBJECT_INSTRUCTION
from tests.fakes.bedrock import encode_frame, event_frame, exception_frame, split
from tests.providers.recorded import recorded

fixture = recorded("bedrock")
HI = [{"role": "user", "content": "Hi"}]
CONVERSE_HI = [{"role": "user", "content": [{"text": "Hi"}]}]
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
WEATHER_SPEC = {"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}
CALL = {"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
WITH_CALL = [*HI, {"role": "assistant", "content": None, "tool_calls": [CALL]},
             {"role": "tool", "tool_call_id": "t1", "content": "sunny"}]
SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": False}


def req(**fields) -> dict:
    return {"messages": HI, **fields}


def body(**fields) -> dict:
    return {"messages": CONVERSE_HI, **fields}


REQUEST_CASES = [
    pytest.param(req(), body(), id="minimal-no-inference-config"),
    pytest.param(req(max_completion_tokens=50, max_tokens=100), body(inferenceConfig={"maxTokens": 50}),
                 id="max_completion_tokens-wins"),
    pytest.param(req(temperature=2), body(inferenceConfig={"temperature": 1.0}), id="temperature-halved"),
    pytest.param(req(temperature=0), body(inferenceConfig={"temperature": 0.0}), id="temperature-zero"),
    pytest.param(req(stop="END"), body(inferenceConfig={"stopSequences": ["END"]}), id="stop-string"),
    pytest.param(req(n=1, top_k=5, seed=1, frequency_penalty=0.5, presence_penalty=0.1, logprobs=True, user="u",
                     metadata={"k": "v"}, parallel_tool_calls=False, stream=True, stream_options={"include_usage": True}),
                 body(), id="openai-only-fields-dropped"),
    pytest.param(req(reasoning_effort="medium"),
                 body(inferenceConfig={"maxTokens": 12288},
                      additionalModelRequestFields={"thinking": {"type": "enabled", "budget_tokens": 8192}}),
                 id="reasoning_effort-claude-thinking-in-additional-fields"),
    pytest.param(req(reasoning_effort="low", max_completion_tokens=3000),
                 body(inferenceConfig={"maxTokens": 3000},
                      additionalModelRequestFields={"thinking": {"type": "enabled", "budget_tokens": 1500}}),
                 id="reasoning_effort-within-the-clients-max_tokens"),
    pytest.param(req(tools=[WEATHER]), body(toolConfig={"tools": [WEATHER_SPEC]}), id="tools-without-choice"),
    pytest.param(req(tools=[WEATHER], tool_choice="required"),
                 body(toolConfig={"tools": [WEATHER_SPEC], "toolChoice": {"any": {}}}), id="tool_choice-required-any"),
    pytest.param(req(tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "get_weather"}}),
                 body(toolConfig={"tools": [WEATHER_SPEC], "toolChoice": {"tool": {"name": "get_weather"}}}),
                 id="tool_choice-function-tool"),
    pytest.param(req(tools=[WEATHER], tool_choice="none"), body(), id="tool_choice-none-leaves-tools-out"),
    pytest.param(req(tools=[{"type": "function", "function": {"name": "f", "description": "Does f.", "strict": True}}]),
                 body(toolConfig={"tools": [{"toolSpec": {"name": "f", "description": "Does f.", "strict": True,
                                                          "inputSchema": {"json": {"type": "object", "properties": {}}}}}]}),
                 id="tool-defaults-and-strict"),
    pytest.param(req(response_format={"type": "json_schema", "json_schema": {"name": "out", "description": "The answer.",
                                                                             "schema": SCHEMA, "strict": True}}),
                 body(outputConfig={"textFormat": {"type": "json_schema", "structure": {"jsonSchema": {
                     "schema": json.dumps(SCHEMA, separators=(",", ":")), "name": "out", "description": "The answer."}}}}),
                 id="json_schema-to-outputConfig"),
    pytest.param(req(response_format={"type": "json_object"}), body(system=[{"text": JSON_OBJECT_INSTRUCTION}]),
                 id="json_object-instruction"),
    pytest.param(req(response_format={"type": "text"}), body(), id="response_format-text"),
    pytest.param(req(messages=[*HI, {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
                               {"role": "user", "content": ""}, {"role": "user", "content": "Why?"}]),
                 body(messages=[*CONVERSE_HI, {"role": "assistant", "content": [{"text": "No."}]},
                                {"role": "user", "content": [{"text": "Why?"}]}]),
                 id="refusal-kept-as-text-empty-message-skipped"),
    pytest.param(req(messages=[{"role": "user", "content": [
                     {"type": "text", "text": "Long doc", "cache_control": {"type": "ephemeral"}},
                     {"type": "text", "text": "Question?"}]}]),
                 body(messages=[{"role": "user", "content": [{"text": "Long doc"}, {"cachePoint": {"type": "default"}},
                                                             {"text": "Question?"}]}]),
                 id="cache_control-becomes-cachePoint"),
    pytest.param(req(messages=[*HI, {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "f", "arguments": ""}}]}],
                     tools=[WEATHER]),
                 body(messages=[*CONVERSE_HI, {"role": "assistant", "content": [
                     {"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}}]}], toolConfig={"tools": [WEATHER_SPEC]}),
                 id="empty-arguments-mean-no-parameters"),
]


@pytest.mark.parametrize(("request_body", "expected"), REQUEST_CASES)
def test_converse_request(request_body, expected):
    assert converse_request(request_body) == expected


@pytest.mark.parametrize("name", ["request_multimodal.json", "request_tool_conversation.json"])
def test_recorded_requests(name):
    case = fixture(name)
    assert converse_request(case["request"]) == case["expected"]


def test_translation_does_not_mutate_the_request():
    case = fixture("request_tool_conversation.json")["request"]
    before = copy.deepcopy(case)
    converse_request(case)
    assert case == before


ERROR_CASES = [
    pytest.param({"messages": []}, "messages must be a non-empty list", id="no-messages"),
    pytest.param(req(messages=[{"role": "function", "content": "x"}]), "role 'function' is not supported", id="role"),
    pytest.param(req(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]}]),
                 "does not download image URLs", id="http-image-refused-not-dropped"),
    pytest.param(req(messages=[{"role": "user", "content": [
                     {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}]}]),
                 "image type 'image/bmp' is not supported", id="image-format"),
    pytest.param(req(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]),
                 "data URLs must be base64", id="data-url-not-base64"),
    pytest.param(req(messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]),
                 "content part type 'input_audio' is not supported", id="audio-part"),
    pytest.param(req(tool_choice="required"), "offers no tools", id="tool_choice-without-tools"),
    pytest.param(req(messages=WITH_CALL, tools=[WEATHER], tool_choice="none"), "tool_choice 'none' cannot be expressed",
                 id="tool_choice-none-with-tool-history"),
    pytest.param(req(tools=[WEATHER], tool_choice="sometimes"), "tool_choice must be", id="tool_choice-unknown"),
    pytest.param(req(tools=[{"type": "web_search"}]), "only function tools", id="non-function-tool"),
    pytest.param(req(tools=[{"type": "function", "function": {}}]), "function.name is required", id="tool-without-name"),
    pytest.param(req(messages=[*HI, {"role": "assistant", "tool_calls": [
                     {**CALL, "function": {"name": "f", "arguments": "[1]"}}]}]),
                 "must be a JSON object", id="arguments-not-object"),
    pytest.param(req(messages=[*HI, {"role": "tool", "content": "x"}]), "need a tool_call_id", id="tool-message-without-id"),
    pytest.param(req(temperature=3), "temperature must be", id="temperature-range"),
    pytest.param(req(max_tokens=0), "max_tokens must be a positive integer", id="max_tokens"),
    pytest.param(req(response_format={"type": "yaml"}), "response_format.type must be", id="response_format-type"),
    pytest.param(req(response_format={"type": "json_schema", "json_schema": {"name": "x"}}),
                 "json_schema.schema must be", id="json_schema-without-schema"),
]


@pytest.mark.parametrize(("request_body", "message"), ERROR_CASES)
def test_untranslatable_requests_are_client_errors(request_body, message):
    with pytest.raises(TranslationError) as caught:
        converse_request(request_body)
    assert (caught.value.status, caught.value.retryable) == (400, False)
    assert message in caught.value.message


# -- responses -----------------------------------------------------------------------------------

def test_recorded_tool_use_response_keeps_reasoning_out_of_the_text_and_on_the_first_call():
    case = fixture("response_tool_use.json")
    completion = chat_completion(case["response"], "bedrock-model", created=7)
    assert completion["id"].startswith("chatcmpl-bedrock-")
    assert (completion["object"], completion["created"], completion["model"]) == ("chat.completion", 7, "bedrock-model")
    assert {k: completion[k] for k in ("choices", "usage")} == case["expected"]


def test_empty_answer_has_null_content():
    completion = chat_completion({"output": {"message": {"role": "assistant", "content": []}},
                                  "stopReason": "end_turn", "usage": {}}, "m")
    assert completion["choices"][0]["message"] == {"role": "assistant", "content": None}
    assert completion["usage"]["total_tokens"] == 0


@pytest.mark.parametrize(("stop_reason", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("tool_use", "tool_calls"), ("max_tokens", "length"),
    ("model_context_window_exceeded", "length"), ("guardrail_intervened", "content_filter"),
    ("content_filtered", "content_filter"), ("malformed_model_output", "stop"), (None, "stop"),
])
def test_stop_reasons(stop_reason, finish):
    assert finish_reason(stop_reason) == finish


def test_usage_counts_cache_reads_and_writes_as_prompt():
    assert chat_usage({"inputTokens": 5, "outputTokens": 2, "cacheReadInputTokens": 100, "cacheWriteInputTokens": 20}) \
        == {"prompt_tokens": 125, "completion_tokens": 2, "total_tokens": 127, "prompt_tokens_details": {"cached_tokens": 100}}


# -- streams -------------------------------------------------------------------------------------

def run_stream(events: list[dict]) -> tuple[StreamTranslator, list[dict]]:
    state = StreamTranslator("bedrock-model", created=1)
    return state, [chunk for e in events for chunk in state.feed(e["event"], e["data"])]


def test_recorded_stream():
    case = fixture("stream_tool_use.json")
    state, chunks = run_stream(case["events"])
    assert state.finished
    assert [[c["choices"][0]["delta"], c["choices"][0]["finish_reason"]] for c in chunks] == case["expected"]["deltas"]
    assert {c["id"] for c in chunks} == {state.id} and {c["model"] for c in chunks} == {"bedrock-model"}
    closing = state.usage_chunk()
    assert (closing["choices"], closing["usage"]) == ([], case["expected"]["usage"])


def test_stream_cut_before_message_stop_is_not_finished():
    events = [e for e in fixture("stream_tool_use.json")["events"] if e["event"] != "messageStop"]
    state, _ = run_stream(events)
    assert not state.finished


def test_stream_ignores_unknown_events_and_reasoning():
    state, chunks = run_stream([{"event": "futureEvent", "data": {"x": 1}},
                                {"event": "contentBlockDelta", "data": {"contentBlockIndex": 0,
                                                                         "delta": {"reasoningContent": {"text": "hmm"}}}}])
    assert chunks == [] and not state.finished


# -- event-stream framing --------------------------------------------------------------------------

def frames() -> bytes:
    return b"".join([event_frame("messageStart", {"role": "assistant"}),
                     event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hé ✓"}}),
                     encode_frame({":message-type": "event", ":event-type": "empty"}, b""),
                     event_frame("messageStop", {"stopReason": "end_turn"})])


@pytest.mark.parametrize("size", [1, 2, 3, 7, 12, 13, 50, 10_000])
def test_decoder_reassembles_frames_split_anywhere(size):
    decoder = EventStreamDecoder()
    messages = [m for piece in split(frames(), size) for m in decoder.feed(piece)]
    assert decoder.pending == 0
    assert [event_of(m) for m in messages] == [
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hé ✓"}}),
        ("empty", {}), ("messageStop", {"stopReason": "end_turn"})]


def test_decoder_keeps_a_partial_frame_pending():
    data = frames()
    decoder = EventStreamDecoder()
    assert decoder.feed(data[:-5]) and decoder.pending > 0
    assert len(decoder.feed(data[-5:])) == 1 and decoder.pending == 0


def test_decoder_reads_every_header_type():
    raw = (b"\x04int8" + struct.pack(">Bb", 2, -3) + b"\x05int16" + struct.pack(">Bh", 3, 300)
           + b"\x02ts" + struct.pack(">Bq", 8, 1_700_000_000_000))
    frame = encode_frame({"yes": True, "no": False, "i32": -70000, "i64": 2**40, "blob": b"\x00\xff", "s": "text",
                          "id": uuid.UUID(int=42)}, b"{}", raw_headers=raw)
    [message] = EventStreamDecoder().feed(frame)
    assert message.headers == {"yes": True, "no": False, "i32": -70000, "i64": 2**40, "blob": b"\x00\xff",
                               "s": "text", "id": uuid.UUID(int=42), "int8": -3, "int16": 300, "ts": 1_700_000_000_000}


def corrupt(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1:]


@pytest.mark.parametrize(("data", "detail"), [
    pytest.param(corrupt(event_frame("a", {}), 2), "prelude checksum", id="prelude-crc"),
    pytest.param(corrupt(event_frame("a", {"k": "v"}), 20), "message checksum", id="message-crc"),
    pytest.param(struct.pack(">II", 4, 0) + struct.pack(">I", zlib.crc32(struct.pack(">II", 4, 0))),
                 "impossible frame length", id="too-short"),
    pytest.param(encode_frame({}, b"", raw_headers=b"\x01x\x0c"), "unknown header value type", id="header-type"),
    pytest.param(encode_frame({}, b"", raw_headers=b"\x01x\x07\x00\x09ab"), "truncated header value", id="header-length"),
])
def test_decoder_rejects_corrupt_frames(data, detail):
    with pytest.raises(ProviderError) as caught:
        EventStreamDecoder().feed(data)
    assert (caught.value.status, caught.value.retryable) == (502, True)
    assert detail in caught.value.message


@pytest.mark.parametrize(("exception_type", "status", "retryable"), [
    ("throttlingException", 429, True), ("validationException", 400, False),
    ("serviceUnavailableException", 503, True), ("modelStreamErrorException", 502, True),
    ("internalServerException", 502, True),
])
def test_exception_frames_raise_with_status(exception_type, status, retryable):
    [message] = EventStreamDecoder().feed(exception_frame(exception_type, "Too many requests"))
    with pytest.raises(ProviderError) as caught:
        event_of(message)
    assert (caught.value.status, caught.value.retryable) == (status, retryable)
    assert f"{exception_type}: Too many requests" in caught.value.message


def test_error_frames_and_bad_events():
    with pytest.raises(ProviderError, match="InternalFailure: boom"):
        event_of(Message({":message-type": "error", ":error-code": "InternalFailure", ":error-message": "boom"}, b""))
    with pytest.raises(ProviderError, match="not a JSON object"):
        event_of(Message({":message-type": "event", ":event-type": "x"}, b"[1]"))
    with pytest.raises(ProviderError, match="unknown message type"):
        event_of(Message({}, b"{}"))


# -- InvokeModel bodies -----------------------------------------------------------------------------

@pytest.mark.parametrize(("model_id", "anthropic", "titan"), [
    ("anthropic.claude-3-5-sonnet-20240620-v1:0", True, False),
    ("us.anthropic.claude-sonnet-4-20250514-v1:0", True, False),
    ("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0", True, False),
    ("amazon.titan-embed-text-v2:0", False, True),
    ("meta.llama3-70b-instruct-v1:0", False, False),
])
def test_model_families(model_id, anthropic, titan):
    assert (invoke.is_anthropic_model(model_id), invoke.is_titan_embedding_model(model_id)) == (anthropic, titan)


def test_anthropic_body_for_invoke():
    client_body = {"model": "my-endpoint", "stream": True, "max_tokens": 10, "messages": HI,
                   "anthropic_beta": ["a-1"]}
    assert invoke.anthropic_body(client_body, {"anthropic-beta": "b-2, a-1", "anthropic-version": "2023-06-01"}) == {
        "max_tokens": 10, "messages": HI, "anthropic_version": "bedrock-2023-05-31", "anthropic_beta": ["a-1", "b-2"]}
    assert "anthropic_beta" not in invoke.anthropic_body({"messages": HI}, {})


def test_anthropic_chunks_become_sse_events():
    event = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi\nthere"}}
    sse = invoke.anthropic_sse({"bytes": base64.b64encode(json.dumps(event).encode()).decode(), "p": "abc"})
    assert sse.startswith(b"event: content_block_delta\ndata: ") and sse.endswith(b"\n\n")
    assert json.loads(sse.split(b"data: ", 1)[1]) == event
    with pytest.raises(ProviderError, match="does not carry a base64 JSON event"):
        invoke.anthropic_sse({"bytes": "not base64!"})
    with pytest.raises(ProviderError, match="has no type"):
        invoke.anthropic_sse({"bytes": base64.b64encode(b"{}").decode()})


def test_titan_bodies_and_response():
    assert invoke.titan_bodies({"input": "a"}) == [{"inputText": "a"}]
    assert invoke.titan_bodies({"input": ["a", "b"], "dimensions": 256}) == [
        {"inputText": "a", "dimensions": 256}, {"inputText": "b", "dimensions": 256}]
    for bad in ({"input": [[1, 2]]}, {"input": []}, {"input": ""}, {"input": "a", "encoding_format": "int8"}):
        with pytest.raises(TranslationError):
            invoke.titan_bodies(bad)
    answers = [{"embedding": [0.5, 1.0], "inputTextTokenCount": 2}, {"embedding": [0.25], "inputTextTokenCount": 3}]
    result = invoke.embeddings_response(answers, "titan")
    assert result == {"object": "list", "model": "titan", "usage": {"prompt_tokens": 5, "total_tokens": 5}, "data": [
        {"object": "embedding", "index": 0, "embedding": [0.5, 1.0]},
        {"object": "embedding", "index": 1, "embedding": [0.25]}]}
    encoded = invoke.embeddings_response(answers, "titan", "base64")["data"][0]["embedding"]
    assert struct.unpack("<2f", base64.b64decode(encoded)) == (0.5, 1.0)


def test_streamed_tool_call_without_arguments_ends_with_an_empty_object():
    """ConverseStream sends a call without parameters as a contentBlockStart and a contentBlockStop with no
    input delta; OpenAI clients json.loads the joined arguments, so they must be "{}"."""
    _, chunks = run_stream([
        {"event": "messageStart", "data": {"role": "assistant"}},
        {"event": "contentBlockStart", "data": {"contentBlockIndex": 0, "start": {
            "toolUse": {"toolUseId": "tooluse_1", "name": "get_time"}}}},
        {"event": "contentBlockStop", "data": {"contentBlockIndex": 0}},
        {"event": "messageStop", "data": {"stopReason": "tool_use"}},
    ])
    joined = "".join(call["function"].get("arguments", "") for chunk in chunks
                     for call in chunk["choices"][0]["delta"].get("tool_calls") or [])
    assert joined == "{}"


def test_claudes_streamed_reasoning_rides_on_the_first_tool_call_and_goes_back_first():
    """Converse streams reasoning as `reasoningContent` deltas (botocore's `ReasoningContentBlockDelta`);
    Claude on Bedrock, as on Anthropic's API, refuses a tool loop's next turn without it."""
    stream = StreamTranslator("m", created=1)
    events = [("messageStart", {"role": "assistant"}),
              ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Sunny "}}}),
              ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "check."}}}),
              ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sig"}}}),
              ("contentBlockStop", {"contentBlockIndex": 0}),
              ("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t1",
                                                                                   "name": "get_weather"}}}),
              ("contentBlockStop", {"contentBlockIndex": 1})]
    calls = [call for event, data in events for chunk in stream.feed(event, data)
             for call in chunk["choices"][0]["delta"].get("tool_calls", [])]
    assert calls[0]["extra_content"] == {"anthropic": {"thinking_blocks": [
        {"type": "thinking", "thinking": "Sunny check.", "signature": "sig"}]}}
    sent = converse_request(req(messages=[*HI, {"role": "assistant", "content": None, "tool_calls": [
        {**CALL, "extra_content": calls[0]["extra_content"]}]}, {"role": "tool", "tool_call_id": "t1", "content": "ok"}],
        tools=[WEATHER]))
    assert sent["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "Sunny check.", "signature": "sig"}}},
        {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {}}}]
