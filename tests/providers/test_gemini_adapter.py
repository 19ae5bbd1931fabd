"""GeminiAdapter against FakeGemini over real sockets on 127.0.0.1."""
from __future__ import annotations

import httpx
import orjson
import pytest

from providers.base import CallStats, ModelTarget, ProviderError
from providers.gemini.adapter import GeminiAdapter
from tests.fakes.base import Behaviour, Recorded, Reply
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import fake_embedding
from tests.providers.chat_stream import collect, text_of

MODEL = "gemini-test"
API_KEY = "gm-secret-key-123"
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.",
                                             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


class ScriptedStreamGemini(FakeGemini):
    """Streams whatever `events` holds, to drive the adapter through upstream stream errors."""

    events: list[bytes] = []

    def respond(self, request: Recorded) -> Reply:
        return Reply(chunks=list(self.events), content_type="text/event-stream")


@pytest.fixture(scope="module")
def upstream():
    with FakeGemini() as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fake):
    fake.api_key = None


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=10) as http_client:
        yield http_client


def make_adapter(url: str, client: httpx.AsyncClient, model: str = MODEL) -> GeminiAdapter:
    target = ModelTarget(id=1, name="gem", provider="gemini", model_name=model,
                         credentials={"api_key": API_KEY}, auth_config={"api_base": f"{url}/v1beta"})
    return GeminiAdapter(target, client)


@pytest.fixture
def adapter(fake, client):
    return make_adapter(fake.url, client)


async def test_chat_echoes_and_reports_usage(adapter, fake):
    stats = CallStats()
    completion = await adapter.chat({"messages": [{"role": "system", "content": "Be brief."},
                                                  {"role": "user", "content": "hello there"}]}, stats)
    assert completion["object"] == "chat.completion" and completion["model"] == MODEL
    assert completion["id"].startswith("chatcmpl-gemini-")
    assert completion["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "echo: hello there"},
                                      "logprobs": None, "finish_reason": "stop"}]
    assert completion["usage"] == {"prompt_tokens": 11, "completion_tokens": 9, "total_tokens": 20,
                                   "prompt_tokens_details": {"cached_tokens": 3},
                                   "completion_tokens_details": {"reasoning_tokens": 2}}
    assert stats.upstream_seconds > 0
    [sent] = fake.requests
    assert sent.path == f"/v1beta/models/{MODEL}:generateContent"
    assert sent.headers["x-goog-api-key"] == API_KEY
    assert sent.json["systemInstruction"] == {"parts": [{"text": "Be brief."}]}


async def test_chat_with_several_candidates(adapter):
    completion = await adapter.chat({"messages": [{"role": "user", "content": "hi"}], "n": 2}, CallStats())
    assert [c["index"] for c in completion["choices"]] == [0, 1]


async def test_tool_call_round_trip(adapter, fake):
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    completion = await adapter.chat({"messages": messages, "tools": TOOLS}, CallStats())
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_") and call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    messages += [choice["message"], {"role": "tool", "tool_call_id": call["id"], "content": '{"temp_c": 18}'}]
    answer = await adapter.chat({"messages": messages, "tools": TOOLS}, CallStats())
    assert answer["choices"][0]["message"]["content"] == "echo: Weather in Paris?"
    assert fake.requests[-1].json["contents"][-1] == {"role": "user", "parts": [{"functionResponse": {
        "id": call["id"], "name": "get_weather", "response": {"temp_c": 18}}}]}


async def test_stream_reassembles_to_the_answer(adapter, fake):
    chunks = await collect(adapter, {"messages": [{"role": "user", "content": "one two three"}], "stream": True})
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert text_of(chunks) == "echo: one two three"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 20
    assert len({c["id"] for c in chunks}) == 1
    [sent] = fake.requests
    assert (sent.path, sent.query) == (f"/v1beta/models/{MODEL}:streamGenerateContent", "alt=sse")
    assert sent.headers["x-goog-api-key"] == API_KEY


async def test_stream_tool_call_arrives_complete(adapter):
    chunks = await collect(adapter, {"messages": [{"role": "user", "content": "Paris?"}], "tools": TOOLS})
    calls = [tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert len(calls) == 1
    assert calls[0]["index"] == 0 and calls[0]["id"].startswith("call_")
    assert calls[0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"


@pytest.mark.parametrize("request_fields, method, expected", [
    pytest.param({"input": "alpha"}, "embedContent", [fake_embedding("alpha")], id="single"),
    pytest.param({"input": ["alpha", "beta"], "dimensions": 4}, "batchEmbedContents",
                 [fake_embedding("alpha", 4), fake_embedding("beta", 4)], id="batch"),
])
async def test_embeddings(fake, client, request_fields, method, expected):
    adapter = make_adapter(fake.url, client, "text-embedding-004")
    result = await adapter.embeddings(request_fields, CallStats())
    assert [item["embedding"] for item in result["data"]] == expected
    assert result["model"] == "text-embedding-004" and result["usage"] == {"prompt_tokens": 0, "total_tokens": 0}
    assert fake.requests[-1].path == f"/v1beta/models/text-embedding-004:{method}"


@pytest.mark.parametrize("upstream_status, status, retryable, error_type", [
    pytest.param(429, 429, True, "rate_limit_error", id="rate-limited"),
    pytest.param(500, 500, True, "upstream_error", id="internal"),
    pytest.param(503, 503, True, "upstream_error", id="unavailable"),
    pytest.param(400, 400, False, "invalid_request_error", id="bad-request"),
    pytest.param(401, 502, False, "upstream_auth_error", id="unauthenticated"),
    pytest.param(403, 502, False, "upstream_auth_error", id="permission-denied"),
])
@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
async def test_upstream_errors_are_mapped(adapter, fake, upstream_status, status, retryable, error_type, streaming):
    fake.fail(MODEL, upstream_status)
    request = {"messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(ProviderError) as caught:
        if streaming:
            await collect(adapter, request)
        else:
            await adapter.chat(request, CallStats())
    error = caught.value
    assert (error.status, error.retryable, error.error_type, error.upstream_status) == (status, retryable, error_type, upstream_status)
    assert "scripted failure" in error.message and API_KEY not in error.message


async def test_rejected_api_key_is_the_gateways_fault(adapter, fake):
    fake.api_key = "another-key"
    with pytest.raises(ProviderError) as caught:
        await adapter.chat({"messages": [{"role": "user", "content": "hi"}]}, CallStats())
    assert (caught.value.status, caught.value.retryable, caught.value.error_type) == (502, False, "upstream_auth_error")
    assert API_KEY not in caught.value.message


async def test_accepted_api_key(adapter, fake):
    fake.api_key = API_KEY
    assert (await adapter.embeddings({"input": "x"}, CallStats()))["data"]


async def test_cut_stream_is_incomplete(adapter, fake):
    fake.behave(MODEL, Behaviour(cut_after=2), times=1)
    stream = adapter.chat_stream({"messages": [{"role": "user", "content": "a b c d"}]}, CallStats())
    received = []
    with pytest.raises(ProviderError) as caught:
        async for chunk in stream:
            received.append(chunk)
    assert (caught.value.status, caught.value.retryable, caught.value.error_type) == (502, True, "incomplete_stream")
    assert "finish reason" in caught.value.message
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in received) == "echo: a"


async def test_translation_error_surfaces_before_any_request(adapter, fake):
    stream = adapter.chat_stream({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}, CallStats())
    with pytest.raises(ProviderError) as caught:
        await anext(stream)
    assert caught.value.status == 400 and fake.requests == []


@pytest.mark.parametrize("events, fragment", [
    pytest.param([b'data: {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}\r\n\r\n'],
                 "stream error: overloaded", id="error-event"),
    pytest.param([b"data: {not json\r\n\r\n"], "malformed", id="malformed-event"),
])
async def test_stream_error_events(client, events, fragment):
    server = ScriptedStreamGemini()
    server.events = events
    with server, pytest.raises(ProviderError) as caught:
        await collect(make_adapter(server.url, client), {"messages": [{"role": "user", "content": "hi"}]})
    assert caught.value.status == 502 and caught.value.retryable and fragment in caught.value.message


async def test_fake_streams_a_json_array_without_alt_sse(fake, client):
    response = await client.post(f"{fake.url}/v1beta/models/{MODEL}:streamGenerateContent",
                                 json={"contents": [{"role": "user", "parts": [{"text": "x y"}]}]})
    events = orjson.loads(response.content)
    assert response.headers["content-type"] == "application/json"
    assert "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in events) == "echo: x y"
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_fake_error_envelope_is_googles(fake, client):
    fake.fail(MODEL, 429)
    response = await client.post(f"{fake.url}/v1beta/models/{MODEL}:generateContent", json={"contents": []})
    assert response.status_code == 429
    assert response.json() == {"error": {"code": 429, "message": "scripted failure", "status": "RESOURCE_EXHAUSTED"}}


async def test_fake_speaks_what_the_google_sdk_expects(fake):
    from google import genai
    from google.genai import types

    sdk = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=fake.url))
    answer = await sdk.aio.models.generate_content(model=MODEL, contents="ping")
    assert answer.text == "echo: ping" and answer.usage_metadata.cached_content_token_count == 3
    pieces = [chunk.text async for chunk in await sdk.aio.models.generate_content_stream(model=MODEL, contents="a b")]
    assert "".join(pieces) == "echo: a b"
    embedded = await sdk.aio.models.embed_content(model="text-embedding-004", contents=["one", "two"])
    assert [e.values for e in embedded.embeddings] == [fake_embedding("one"), fake_embedding("two")]
    assert fake.requests[0].headers["x-goog-api-key"] == API_KEY
