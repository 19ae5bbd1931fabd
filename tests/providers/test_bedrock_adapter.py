"""BedrockAdapter against a real HTTP fake of the Bedrock runtime on 127.0.0.1: Converse, event-stream
streaming, Titan embeddings, the Anthropic passthrough, and both auth modes on the wire."""
from __future__ import annotations

import json
import re

import httpx
import pytest

from providers.base import CallStats, ModelTarget, ProviderError, UnsupportedOperation
from providers.bedrock.adapter import BedrockAdapter
from providers.registry import adapter_class
from tests.fakes.anthropic import OUTPUT_TOKENS as CLAUDE_OUTPUT_TOKENS
from tests.fakes.anthropic import PROMPT_TOKENS as CLAUDE_PROMPT_TOKENS
from tests.fakes.base import Behaviour
from tests.fakes.bedrock import PROMPT_TOKENS, USAGE, FakeBedrock
from tests.fakes.openai import fake_embedding
from tests.providers.chat_stream import collect, text_of

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"
API_KEY = "bedrock-api-key-secret"
KEYS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "aws_session_token": "session-token-secret"}
HELLO = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]}
WITH_TOOLS = {"messages": [{"role": "user", "content": "Weather in Paris?"}],
              "tools": [{"type": "function", "function": {"name": "get_time"}},
                        {"type": "function", "function": {"name": "get_weather", "parameters": {
                            "type": "object", "properties": {"city": {"type": "string"}}}}}],
              "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}
AUTHORIZATION = re.compile(r"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/(?P<date>\d{8})/eu-west-3/bedrock/aws4_request, "
                           r"SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}")


@pytest.fixture(scope="module")
def upstream():
    with FakeBedrock() as fake:
        yield fake


def make_adapter(fake: FakeBedrock, client: httpx.AsyncClient, model: str = MODEL, credentials: dict | None = None,
                 **auth_config) -> BedrockAdapter:
    target = ModelTarget(id=1, name="bedrock", provider="bedrock", model_name=model,
                         credentials={"api_key": API_KEY} if credentials is None else credentials,
                         auth_config={"api_base": fake.url, **auth_config})
    return BedrockAdapter(target, client)


@pytest.fixture
def adapter(fake, client):
    return make_adapter(fake, client)


async def test_chat_sends_converse_body_and_translates_answer(adapter, fake):
    stats = CallStats()
    result = await adapter.chat(HELLO, stats)
    assert result["choices"][0]["message"] == {"role": "assistant", "content": "echo: Hello there"}
    assert result["choices"][0]["finish_reason"] == "stop"
    assert result["usage"] == {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": USAGE["outputTokens"],
                               "total_tokens": USAGE["totalTokens"],
                               "prompt_tokens_details": {"cached_tokens": USAGE["cacheReadInputTokens"]}}
    assert stats.upstream_seconds > 0
    [sent] = fake.requests
    assert (sent.method, sent.path) == ("POST", f"/model/{MODEL}/converse")
    assert fake.raw_paths == [b"/model/anthropic.claude-3-5-sonnet-20240620-v1:0/converse"]
    assert sent.json == {"system": [{"text": "Be brief."}], "messages": [{"role": "user", "content": [{"text": "Hello there"}]}]}


async def test_api_key_mode_sends_a_bearer_token(adapter, fake):
    await adapter.chat(HELLO, CallStats())
    [sent] = fake.requests
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert "x-amz-date" not in sent.headers


async def test_access_keys_mode_signs_exactly_what_is_sent(fake, client):
    fake.aws_keys = {KEYS["aws_access_key_id"]: (KEYS["aws_secret_access_key"], KEYS["aws_session_token"])}
    adapter = make_adapter(fake, client, credentials=KEYS, auth_mode="access_keys", aws_region_name="eu-west-3")
    await adapter.chat(HELLO, CallStats())
    [sent] = fake.requests
    match = AUTHORIZATION.fullmatch(sent.headers["authorization"])
    assert match and match["date"] == sent.headers["x-amz-date"][:8]
    assert sent.headers["x-amz-security-token"] == KEYS["aws_session_token"]
    # The fake re-derived the signature from the wire path, host and
    # body bytes with an independent SigV4 implementation, and accepted it.
    assert sent.raw_path.endswith("-v1:0/converse") and fake.signed_by == ["AKIDEXAMPLE"]


async def test_a_wrong_secret_key_is_refused_by_the_signature_check(fake, client):
    fake.aws_keys = {KEYS["aws_access_key_id"]: ("another-secret", KEYS["aws_session_token"])}
    adapter = make_adapter(fake, client, credentials=KEYS, auth_mode="access_keys")
    with pytest.raises(ProviderError) as caught:
        await adapter.chat(HELLO, CallStats())
    assert caught.value.upstream_status == 403 and "signature we calculated does not match" in caught.value.message


async def test_auth_mode_defaults_to_access_keys_when_they_are_given(fake, client):
    await make_adapter(fake, client, credentials=KEYS).chat(HELLO, CallStats())
    assert re.match(r"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\d{8}/us-east-1/bedrock/",
                    fake.requests[0].headers["authorization"])


async def test_rejected_credentials_are_the_gateways_fault(adapter, fake):
    fake.api_key = "another-key"
    with pytest.raises(ProviderError) as caught:
        await adapter.chat(HELLO, CallStats())
    assert (caught.value.status, caught.value.retryable, caught.value.upstream_status) == (502, False, 403)
    assert "Invalid API Key" in caught.value.message and API_KEY not in caught.value.message


async def test_chat_forced_tool_call(adapter, fake):
    result = await adapter.chat(WITH_TOOLS, CallStats())
    choice = result["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert (call["id"], call["function"]["name"]) == ("tooluse_fake01", "get_weather")
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert fake.requests[0].json["toolConfig"]["toolChoice"] == {"tool": {"name": "get_weather"}}


async def test_chat_sends_images_as_bytes(adapter, fake):
    await adapter.chat({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}, CallStats())
    assert fake.requests[0].json["messages"][0]["content"][1] == {
        "image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}


async def test_tool_result_round_trip(adapter, fake):
    result = await adapter.chat({**WITH_TOOLS, "messages": [
        *WITH_TOOLS["messages"],
        {"role": "assistant", "tool_calls": [{"id": "tooluse_fake01", "type": "function",
                                              "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "tooluse_fake01", "content": "18C"}], "tool_choice": "auto"}, CallStats())
    assert result["choices"][0]["message"]["content"] == "echo: "
    assert fake.requests[0].json["messages"][2] == {"role": "user", "content": [
        {"toolResult": {"toolUseId": "tooluse_fake01", "content": [{"text": "18C"}]}}]}


@pytest.mark.parametrize("split_size", [None, 1, 7, 64])
async def test_stream_reassembles_text(adapter, fake, split_size):
    fake.split_size = split_size
    chunks = await collect(adapter, HELLO)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert text_of(chunks) == "echo: Hello there"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]] \
        == ["stop"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == PROMPT_TOKENS
    [sent] = fake.requests
    assert sent.path == f"/model/{MODEL}/converse-stream"
    assert sent.headers["accept"] == "application/vnd.amazon.eventstream"


async def test_stream_tool_call_deltas(adapter):
    chunks = await collect(adapter, WITH_TOOLS)
    calls = [call for c in chunks if c["choices"] for call in c["choices"][0]["delta"].get("tool_calls", [])]
    assert {call["index"] for call in calls} == {0}
    assert (calls[0]["id"], calls[0]["function"]["name"]) == ("tooluse_fake01", "get_weather")
    assert json.loads("".join(call["function"]["arguments"] for call in calls)) == {"city": "Paris"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_stream_without_message_stop_is_incomplete(adapter, fake):
    fake.behave(MODEL, Behaviour(cut_after=3), times=1)
    chunks = []
    with pytest.raises(ProviderError) as caught:
        async for chunk in adapter.chat_stream(HELLO, CallStats()):
            chunks.append(chunk)
    assert text_of(chunks) == "echo: Hello"
    assert (caught.value.status, caught.value.retryable, caught.value.error_type) == (502, True, "incomplete_stream")


async def test_stream_cut_inside_a_frame_is_malformed(adapter, fake):
    fake.split_size = 10
    fake.behave(MODEL, Behaviour(cut_after=5), times=1)
    with pytest.raises(ProviderError) as caught:
        await collect(adapter, HELLO)
    assert "ended inside a frame" in caught.value.message


async def test_in_stream_exception(adapter, fake):
    fake.fail_mid_stream(MODEL, "throttlingException")
    chunks = []
    with pytest.raises(ProviderError) as caught:
        async for chunk in adapter.chat_stream(HELLO, CallStats()):
            chunks.append(chunk)
    assert text_of(chunks) == "echo:"
    assert (caught.value.status, caught.value.retryable) == (429, True)
    assert "throttlingException: Too many tokens" in caught.value.message


@pytest.mark.parametrize(("upstream_status", "status", "retryable"), [
    (429, 429, True), (500, 500, True), (503, 503, True), (400, 400, False), (403, 502, False),
])
async def test_upstream_errors_keep_status_and_retryability(adapter, fake, upstream_status, status, retryable):
    fake.fail(MODEL, upstream_status, headers={"retry-after": "3"})
    with pytest.raises(ProviderError) as caught:
        await adapter.chat(HELLO, CallStats())
    assert (caught.value.status, caught.value.retryable) == (status, retryable)
    assert "scripted failure" in caught.value.message and API_KEY not in caught.value.message
    assert caught.value.retry_after == 3.0


async def test_stream_upstream_error_raises_before_first_chunk(adapter, fake):
    fake.fail(MODEL, 429)
    with pytest.raises(ProviderError) as caught:
        await anext(adapter.chat_stream(HELLO, CallStats()))
    assert (caught.value.status, caught.value.retryable) == (429, True)


async def test_consumer_may_stop_early(adapter):
    stream = adapter.chat_stream(HELLO, CallStats())
    first = await anext(stream)
    await stream.aclose()
    assert first["choices"][0]["delta"]["role"] == "assistant"


async def test_untranslatable_request_is_not_sent(adapter, fake):
    with pytest.raises(ProviderError) as caught:
        await adapter.chat({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}, CallStats())
    assert (caught.value.status, caught.value.retryable) == (400, False)
    assert fake.requests == []


async def test_titan_embeddings_one_call_per_input_in_order(fake, client):
    adapter = make_adapter(fake, client, model=TITAN)
    inputs = [f"text number {i}" for i in range(11)]
    stats = CallStats()
    result = await adapter.embeddings({"input": inputs, "dimensions": 4}, stats)
    assert [item["embedding"] for item in result["data"]] == [fake_embedding(text, 4) for text in inputs]
    assert [item["index"] for item in result["data"]] == list(range(11))
    assert result["usage"] == {"prompt_tokens": 33, "total_tokens": 33}
    assert stats.upstream_seconds > 0
    assert len(fake.requests) == 11 and {r.path for r in fake.requests} == {f"/model/{TITAN}/invoke"}
    assert sorted(r.json["inputText"] for r in fake.requests) == sorted(inputs)


async def test_embeddings_fail_with_the_first_upstream_error(fake, client):
    fake.fail(TITAN, 429)
    with pytest.raises(ProviderError) as caught:
        await make_adapter(fake, client, model=TITAN).embeddings({"input": ["a", "b"]}, CallStats())
    assert caught.value.status == 429


async def test_embeddings_need_a_titan_model(adapter):
    with pytest.raises(UnsupportedOperation) as caught:
        await adapter.embeddings({"input": "x"}, CallStats())
    assert "amazon.titan-embed" in caught.value.message


async def test_anthropic_passthrough(adapter, fake):
    answer = await adapter.passthrough("anthropic-messages", {
        "model": "my-endpoint", "max_tokens": 20, "messages": [{"role": "user", "content": "Hi"}]},
        {"anthropic-version": "2023-06-01"}, CallStats(), stream=False)
    assert answer.body["content"] == [{"type": "text", "text": "echo: Hi"}]
    [sent] = fake.requests
    assert sent.path == f"/model/{MODEL}/invoke"
    assert sent.json == {"max_tokens": 20, "messages": [{"role": "user", "content": "Hi"}],
                         "anthropic_version": "bedrock-2023-05-31"}


@pytest.mark.parametrize("split_size", [None, 5])
async def test_anthropic_passthrough_stream_becomes_sse(adapter, fake, split_size):
    fake.split_size = split_size
    response = await adapter.passthrough("anthropic-messages", {
        "model": "my-endpoint", "stream": True, "max_tokens": 20, "messages": [{"role": "user", "content": "Hi you"}]},
        {}, CallStats(), stream=True)
    data = b"".join([chunk async for chunk in response.stream]).decode()
    events = [(block.split("\n")[0][7:], json.loads(block.split("\n")[1][6:])) for block in data.strip().split("\n\n")]
    assert [name for name, _ in events] == ["message_start", "content_block_start", "ping", "content_block_delta",
                                            "content_block_delta", "content_block_delta", "content_block_stop",
                                            "message_delta", "message_stop"]
    assert all(payload["type"] == name for name, payload in events)
    assert "".join(p["delta"]["text"] for n, p in events if n == "content_block_delta") == "echo: Hi you"
    assert events[0][1]["message"]["usage"]["input_tokens"] + 3 == CLAUDE_PROMPT_TOKENS
    assert events[-2][1]["usage"]["output_tokens"] == CLAUDE_OUTPUT_TOKENS
    assert fake.requests[0].path == f"/model/{MODEL}/invoke-with-response-stream"


async def test_passthrough_only_for_anthropic_models(fake, client):
    adapter = make_adapter(fake, client, model="meta.llama3-70b-instruct-v1:0")
    assert adapter.passthrough_apis == frozenset()
    with pytest.raises(UnsupportedOperation):
        await adapter.passthrough("anthropic-messages", {"messages": []}, {}, CallStats(), stream=False)


async def test_unreachable_upstream(client):
    target = ModelTarget(id=2, name="down", provider="bedrock", model_name=MODEL, credentials={"api_key": API_KEY},
                         auth_config={"api_base": "http://127.0.0.1:9"})
    with pytest.raises(ProviderError) as caught:
        await BedrockAdapter(target, client).chat(HELLO, CallStats())
    assert (caught.value.status, caught.value.retryable) == (502, True)


@pytest.mark.parametrize(("credentials", "auth_config", "message"), [
    ({}, {"auth_mode": "api_key"}, "needs the secret value 'api_key'"),
    ({"aws_access_key_id": "A"}, {}, "needs the secret values 'aws_access_key_id' and 'aws_secret_access_key'"),
    (KEYS, {"auth_mode": "iam_role"}, "auth_mode 'iam_role' is not supported"),
    ({"api_key": "k"}, {"aws_region_name": "us-east-1/../x"}, "is not an AWS region name"),
])
def test_configuration_problems_make_the_model_unusable(credentials, auth_config, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        BedrockAdapter(ModelTarget(id=3, name="b", provider="bedrock", model_name=MODEL, credentials=credentials,
                                   auth_config=auth_config))


def test_registry_and_default_endpoint():
    target = ModelTarget(id=4, name="b", provider="bedrock", model_name=MODEL, credentials={"api_key": "k"},
                         auth_config={"aws_region_name": "eu-central-1"})
    adapter = adapter_class("bedrock")(target)
    assert isinstance(adapter, BedrockAdapter)
    assert adapter.urls["converse"] == ("https://bedrock-runtime.eu-central-1.amazonaws.com/model/"
                                        "anthropic.claude-3-5-sonnet-20240620-v1:0/converse")
    assert adapter.passthrough_apis == {"anthropic-messages"}
