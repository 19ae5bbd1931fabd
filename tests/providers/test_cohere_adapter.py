"""CohereAdapter against a fake Cohere v2 API on 127.0.0.1 replaying Cohere's recorded answers: chat,
streaming, tool calls both ways, embeddings, usage from billed units, and what Cohere cannot express refused
before any call."""
from __future__ import annotations

import json

import pytest

from providers.base import CallStats, ModelTarget, ProviderError, TranslationError
from providers.cohere.adapter import CohereAdapter
from providers.registry import adapter_class
from tests.fakes.cohere import RECORDED, FakeCohere, recorded_text
from tests.providers.chat_stream import collect, text_of

MODEL = "command-a-03-2025"
HELLO = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}],
         "max_completion_tokens": 50, "top_p": 0.9, "stop": "END"}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
BILLED = RECORDED["chat"]["usage"]["billed_units"]
TEXT = RECORDED["chat"]["message"]["content"][0]["text"]
# The recorded tool-call answers (plain and streamed) call these two tools with these arguments.
CALLS = [("query_daily_sales_report", {"day": "2023-09-29"}), ("query_product_catalog", {"category": "Electronics"})]


@pytest.fixture(scope="module")
def upstream():
    with FakeCohere() as fake:
        yield fake


@pytest.fixture
def adapter(fake, client):
    return CohereAdapter(ModelTarget(id=1, name="co", provider="cohere", model_name=MODEL,
                                     credentials={"api_key": fake.api_key},
                                     auth_config={"api_base": f"{fake.url}/v2"}), client)


async def test_chat_translates_both_ways(adapter, fake):
    answer = await adapter.chat(HELLO, CallStats())
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": TEXT}
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"] == {"prompt_tokens": BILLED["input_tokens"], "completion_tokens": BILLED["output_tokens"],
                               "total_tokens": BILLED["input_tokens"] + BILLED["output_tokens"],
                               "prompt_tokens_details": {"cached_tokens": 0}}
    [sent] = fake.requests
    assert sent.path == "/v2/chat" and sent.headers["authorization"] == f"Bearer {fake.api_key}"
    assert sent.json == {"model": MODEL, "messages": [{"role": "system", "content": "Be brief."},
                                                      {"role": "user", "content": "Hello there"}],
                         "max_tokens": 50, "p": 0.9, "stop_sequences": ["END"]}


async def test_stream_with_usage_at_the_end(adapter):
    chunks = await collect(adapter, HELLO)
    assert text_of(chunks) == recorded_text(RECORDED["chat_stream"])
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    end = RECORDED["chat_stream"][-1]["data"]["delta"]["usage"]["billed_units"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == end["input_tokens"]


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_call_round_trip(adapter, fake, stream):
    request = {"messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [WEATHER],
               "tool_choice": "required"}
    if stream:
        chunks = await collect(adapter, request)
        deltas = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks
                  if c["choices"] and "tool_calls" in c["choices"][0]["delta"]]
        calls = [(delta["function"]["name"], json.loads("".join(d["function"].get("arguments", "") for d in deltas
                                                                if d["index"] == delta["index"])))
                 for delta in deltas if delta.get("id")]
        assert deltas[0]["id"] == "query_daily_sales_report_j3f0adww9pmr"
        assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    else:
        answer = await adapter.chat(request, CallStats())
        calls = [(call["function"]["name"], json.loads(call["function"]["arguments"]))
                 for call in answer["choices"][0]["message"]["tool_calls"]]
        assert answer["choices"][0]["finish_reason"] == "tool_calls"
    assert calls == CALLS
    sent = fake.requests[0].json
    assert sent["tool_choice"] == "REQUIRED"
    assert sent["tools"] == [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                                               "parameters": WEATHER["function"]["parameters"]}}]
    follow_up = {"messages": [*request["messages"],
                              {"role": "assistant", "content": None, "tool_calls": [
                                  {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]},
                              {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "Sunny"}]},
                              {"role": "user", "content": "Thanks"}], "tools": [WEATHER]}
    await adapter.chat(follow_up, CallStats())
    assert fake.requests[-1].json["messages"][1:3] == [
        {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                                              "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"}]


async def test_a_streamed_call_without_arguments_ends_with_an_empty_object(adapter, fake):
    fake.drop_arguments = True
    try:
        chunks = await collect(adapter, {"messages": [{"role": "user", "content": "time?"}], "tools": [WEATHER]})
    finally:
        fake.drop_arguments = False
    deltas = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks
              if c["choices"] and "tool_calls" in c["choices"][0]["delta"]]
    arguments = ["".join(d["function"].get("arguments", "") for d in deltas if d["index"] == index) for index in (0, 1)]
    assert arguments == ["{}", "{}"]


@pytest.mark.parametrize("event", ["{not json", "[1, 2]"])
async def test_an_unreadable_stream_event_is_a_retryable_upstream_failure(adapter, fake, event):
    fake.broken_event = event
    try:
        with pytest.raises(ProviderError) as caught:
            await collect(adapter, HELLO)
    finally:
        fake.broken_event = None
    assert (caught.value.status, caught.value.retryable) == (502, True)
    assert "malformed stream event" in caught.value.message


async def test_embeddings(adapter, fake):
    answer = await adapter.embeddings({"input": ["a b", "c"], "dimensions": 4, "input_type": "search_query"},
                                      CallStats())
    assert [item["embedding"] for item in answer["data"]] == RECORDED["embed"]["embeddings"]["float"]
    billed = RECORDED["embed"]["meta"]["billed_units"]["input_tokens"]
    assert answer["usage"] == {"prompt_tokens": billed, "total_tokens": billed}
    assert fake.requests[0].json == {"model": MODEL, "texts": ["a b", "c"], "input_type": "search_query",
                                     "embedding_types": ["float"], "output_dimension": 4}


@pytest.mark.parametrize(("extra", "message"), [
    ({"logprobs": True}, "^logprobs: Cohere models have no equivalent"),
    ({"n": 2}, "^n: Cohere models"),
    ({"parallel_tool_calls": False, "tools": [WEATHER]}, "^parallel_tool_calls: Cohere models"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
     "cannot be forced to call one named tool"),
    ({"reasoning_effort": "extreme"}, "^reasoning_effort must be one of none, minimal"),
])
async def test_what_cohere_cannot_express_is_refused_before_any_call(adapter, fake, extra, message):
    """As the pipeline calls it: through Cohere's capability table, then the adapter."""
    with pytest.raises(TranslationError, match=message):
        await adapter.chat(adapter.capabilities.prepare({**HELLO, **extra}, stream=False), CallStats())
    assert not fake.requests


async def test_upstream_errors_keep_cohere_message(fake, client):
    adapter = CohereAdapter(ModelTarget(id=1, name="co", provider="cohere", model_name=MODEL,
                                        credentials={"api_key": "wrong"}, auth_config={"api_base": f"{fake.url}/v2"}),
                            client)
    with pytest.raises(ProviderError) as caught:
        await adapter.chat(HELLO, CallStats())
    assert caught.value.upstream_status == 401 and "invalid api token" in caught.value.message


def test_registry_and_missing_key():
    assert adapter_class("cohere") is CohereAdapter
    with pytest.raises(ValueError, match="api_key"):
        CohereAdapter(ModelTarget(id=1, name="co", provider="cohere", model_name=MODEL))
