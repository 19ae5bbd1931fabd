"""AnthropicAdapter against a real HTTP fake of the Messages API on 127.0.0.1."""
from __future__ import annotations

import json

import httpx
import pytest

from providers.anthropic.adapter import AnthropicAdapter
from providers.base import CallStats, ModelTarget, ProviderError, UnsupportedOperation
from tests.fakes.anthropic import CACHE_READ_TOKENS, OUTPUT_TOKENS, PROMPT_TOKENS, FakeAnthropic
from tests.fakes.base import Behaviour
from tests.providers.chat_stream import collect, text_of

MODEL = "claude-test"
API_KEY = "sk-ant-test-secret"
HELLO = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]}
WITH_TOOLS = {"messages": [{"role": "user", "content": "Weather in Paris?"}],
              "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {
                  "type": "object", "properties": {"city": {"type": "string"}}}}}]}


@pytest.fixture(scope="module")
def upstream():
    with FakeAnthropic() as fake:
        yield fake


def make_adapter(fake: FakeAnthropic, client: httpx.AsyncClient, **auth_config) -> AnthropicAdapter:
    target = ModelTarget(id=1, name="claude", provider="anthropic", model_name=MODEL,
                         credentials={"api_key": API_KEY}, auth_config={"api_base": f"{fake.url}/v1", **auth_config})
    return AnthropicAdapter(target, client)


@pytest.fixture
def adapter(fake, client):
    return make_adapter(fake, client)


async def test_chat_sends_messages_body_and_translates_answer(adapter, fake):
    stats = CallStats()
    result = await adapter.chat(HELLO, stats)
    assert result["choices"][0]["message"] == {"role": "assistant", "content": "echo: Hello there"}
    assert result["choices"][0]["finish_reason"] == "stop"
    assert result["usage"] == {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": OUTPUT_TOKENS,
                               "total_tokens": PROMPT_TOKENS + OUTPUT_TOKENS,
                               "prompt_tokens_details": {"cached_tokens": CACHE_READ_TOKENS}}
    assert stats.upstream_seconds > 0
    [sent] = fake.requests
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.json == {"model": MODEL, "max_tokens": 8192, "system": "Be brief.",
                         "messages": [{"role": "user", "content": "Hello there"}]}


async def test_credentials_and_version_headers(adapter, fake, client):
    await adapter.chat(HELLO, CallStats())
    await make_adapter(fake, client, version="2099-01-01").chat(HELLO, CallStats())
    first, second = fake.requests
    assert first.headers["x-api-key"] == API_KEY
    assert "authorization" not in first.headers
    assert first.headers["anthropic-version"] == "2023-06-01"
    assert first.headers["content-type"] == "application/json"
    assert second.headers["anthropic-version"] == "2099-01-01"


async def test_chat_tool_call(adapter):
    result = await adapter.chat(WITH_TOOLS, CallStats())
    choice = result["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert (call["id"], call["function"]["name"]) == ("toolu_fake01", "get_weather")
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}


async def test_stream_reassembles_text(adapter, fake):
    chunks = await collect(adapter, HELLO)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert text_of(chunks) == "echo: Hello there"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]] \
        == ["stop"]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == PROMPT_TOKENS
    assert chunks[-1]["usage"]["completion_tokens"] == OUTPUT_TOKENS
    assert fake.requests[0].json["stream"] is True
    assert fake.requests[0].headers["accept"] == "text/event-stream"


async def test_stream_tool_call_deltas(adapter):
    chunks = await collect(adapter, WITH_TOOLS)
    calls = [call for c in chunks if c["choices"] for call in c["choices"][0]["delta"].get("tool_calls", [])]
    assert {call["index"] for call in calls} == {0}
    assert (calls[0]["id"], calls[0]["function"]["name"]) == ("toolu_fake01", "get_weather")
    arguments = "".join(call["function"]["arguments"] for call in calls)
    assert json.loads(arguments) == {"city": "Paris"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(("upstream_status", "status", "retryable"), [
    (429, 429, True), (500, 500, True), (529, 529, True), (400, 400, False), (401, 502, False), (403, 502, False),
])
async def test_upstream_errors_keep_status_and_retryability(adapter, fake, upstream_status, status, retryable):
    fake.fail(MODEL, upstream_status)
    with pytest.raises(ProviderError) as caught:
        await adapter.chat(HELLO, CallStats())
    assert (caught.value.status, caught.value.retryable) == (status, retryable)
    assert "scripted failure" in caught.value.message
    assert API_KEY not in caught.value.message


async def test_rate_limit_carries_retry_after(adapter, fake):
    fake.fail(MODEL, 429, headers={"retry-after": "7"})
    with pytest.raises(ProviderError) as caught:
        await adapter.chat(HELLO, CallStats())
    assert (caught.value.retry_after, caught.value.error_type) == (7.0, "rate_limit_error")


async def test_stream_upstream_error_raises_before_first_chunk(adapter, fake):
    fake.fail(MODEL, 429)
    stream = adapter.chat_stream(HELLO, CallStats())
    with pytest.raises(ProviderError) as caught:
        await anext(stream)
    assert (caught.value.status, caught.value.retryable) == (429, True)


async def test_cut_stream_is_an_incomplete_stream_error(adapter, fake):
    fake.behave(MODEL, Behaviour(cut_after=5), times=1)
    chunks = []
    with pytest.raises(ProviderError) as caught:
        async for chunk in adapter.chat_stream(HELLO, CallStats()):
            chunks.append(chunk)
    assert chunks and all(c["choices"] for c in chunks)
    assert (caught.value.status, caught.value.retryable, caught.value.error_type) == (502, True, "incomplete_stream")
    assert "before message_stop" in caught.value.message


async def test_in_stream_error_event(adapter, fake):
    fake.fail_mid_stream(MODEL, "overloaded_error", "Overloaded")
    chunks = []
    with pytest.raises(ProviderError) as caught:
        async for chunk in adapter.chat_stream(HELLO, CallStats()):
            chunks.append(chunk)
    assert len(chunks) == 2  # role, then the first text delta
    assert (caught.value.status, caught.value.retryable) == (502, True)
    assert "Overloaded" in caught.value.message


async def test_consumer_may_stop_early(adapter):
    stream = adapter.chat_stream(HELLO, CallStats())
    first = await anext(stream)
    await stream.aclose()
    assert first["choices"][0]["delta"]["role"] == "assistant"


async def test_untranslatable_request_is_not_sent(adapter, fake):
    with pytest.raises(ProviderError) as caught:
        await adapter.chat({**HELLO, "tool_choice": "required"}, CallStats())
    assert (caught.value.status, caught.value.retryable) == (400, False)
    assert fake.requests == []


async def test_unreachable_upstream(client):
    target = ModelTarget(id=2, name="down", provider="anthropic", model_name=MODEL,
                         auth_config={"api_base": "http://127.0.0.1:9/v1"})
    with pytest.raises(ProviderError) as caught:
        await AnthropicAdapter(target, client).chat(HELLO, CallStats())
    assert (caught.value.status, caught.value.retryable) == (502, True)


async def test_embeddings_are_unsupported(adapter):
    with pytest.raises(UnsupportedOperation) as caught:
        await adapter.embeddings({"input": "x"}, CallStats())
    assert caught.value.status == 400
    assert "Anthropic has no embeddings API" in caught.value.message


def test_default_base_url_and_passthrough_apis():
    adapter = AnthropicAdapter(ModelTarget(id=3, name="c", provider="anthropic", model_name=MODEL))
    assert adapter.messages_url == "https://api.anthropic.com/v1/messages"
    assert "x-api-key" not in adapter.headers
    assert adapter.passthrough_apis == {"anthropic-messages", "anthropic-count-tokens"}


async def test_fake_counts_tokens_and_uses_anthropic_error_envelope(fake, client):
    counted = await client.post(f"{fake.url}/v1/messages/count_tokens", json={"model": MODEL, **HELLO})
    assert counted.json() == {"input_tokens": PROMPT_TOKENS}
    invalid = await client.post(f"{fake.url}/v1/messages", json={"model": MODEL, **HELLO})
    assert invalid.status_code == 400
    assert invalid.json() == {"type": "error", "error": {"type": "invalid_request_error",
                                                         "message": "max_tokens: Field required"}}
