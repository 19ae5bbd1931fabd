"""Each vendor's official SDK against endpoints on the other provider families: the native routes served
by translation through the unified model (gateway/translated.py), streaming, tools, usage and errors in the
route's own envelope."""
from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.e2e.conftest import endpoint, provider_config
from tests.e2e.harness import make_gateway
from tests.e2e.test_passthrough_sdks import usage_rows
from tests.fakes.base import Behaviour
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.vertex import FakeVertex

WEATHER_TOOL = {"name": "get_weather", "description": "Weather in a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.fixture(scope="module")
def fake_bedrock():
    with FakeBedrock() as server:
        yield server


@pytest.fixture(scope="module")
def fake_vertex():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with FakeVertex() as server:
        server.public_key = key.public_key()
        server.private_key = key
        yield server


def vertex_account(fake: FakeVertex) -> dict:
    pem = fake.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
    return {"type": "service_account", "project_id": "my-project", "private_key_id": "k1",
            "private_key": pem.decode(), "client_email": "gateway@my-project.iam.gserviceaccount.com",
            "client_id": "1234567890", "token_uri": f"{fake.url}/token"}


@pytest.fixture(scope="module")
def gateway(e2e_root, fake_openai, fake_anthropic, fake_gemini, fake_bedrock, fake_vertex):
    config = provider_config(fake_openai, fake_anthropic, fake_gemini)
    config["secrets"].append({"name": "vertex-key", "provider": "vertex_ai",
                              "values": {"vertex_credentials": vertex_account(fake_vertex)},
                              "auth_config": {"vertex_project": "my-project", "api_base": f"{fake_vertex.url}/v1"}})
    config["models"] += [
        {"name": "vertex-gemini", "provider": "vertex_ai", "model_name": "gemini-2.5-flash", "secret": "vertex-key"},
        {"name": "vertex-claude", "provider": "vertex_ai", "model_name": "claude-sonnet-4-5", "secret": "vertex-key"},
    ]
    config["secrets"].append({"name": "bedrock-key", "provider": "bedrock", "values": {"api_key": "bedrock-0123456789"},
                              "auth_config": {"api_base": fake_bedrock.url}})
    config["models"].append({"name": "nova", "provider": "bedrock", "model_name": "amazon.nova-lite-v1:0",
                             "secret": "bedrock-key", "input_cost_per_million": 1, "output_cost_per_million": 2})
    config["endpoints"] = [
        endpoint("on-openai", "gpt"), endpoint("on-gemini", "gemini-flash"), endpoint("on-bedrock", "nova"),
        endpoint("on-groq", "groq-llama"), endpoint("on-anthropic", "claude"), endpoint("embed-gemini", "gemini-embed"),
        endpoint("on-vertex-gemini", "vertex-gemini"), endpoint("on-vertex-claude", "vertex-claude"),
        {"name": "gpt-then-gemini", "models": [{"model": "gpt"}, {"model": "gemini-flash", "linkage": "fallback"}]},
        {"name": "claude-then-gpt", "models": [{"model": "claude"}, {"model": "gpt", "linkage": "fallback"}]},
        endpoint("guarded", "gpt", guardrails=["redact-pii", "banned-words"]),
        endpoint("redacting", "gpt", guardrails=["redact-words"]), endpoint("broke", "gpt"),
    ]
    config["guardrails"] = [
        {"name": "redact-pii", "kind": "pii", "stage": "before", "action": "sanitize"},
        {"name": "banned-words", "kind": "keywords", "stage": "after", "action": "block",
         "settings": {"words": ["forbidden-term"]}},
        {"name": "redact-words", "kind": "keywords", "stage": "after", "action": "sanitize",
         "settings": {"words": ["secret plan"]}},
    ]
    config["budgets"] = [{"name": "broke-zero", "scope": "endpoint", "target": "broke", "amount_usd": 0,
                          "window": {"unit": "days", "value": 1}, "action": "reject"}]
    for item in config["endpoints"]:
        item["circuit_breaker"] = {"threshold": 0}
    server = make_gateway(e2e_root, "translated", config, keys={"default": None})
    yield server
    server.stop()


@pytest.fixture
def claude(gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=f"{gateway.url}/gateway/anthropic", api_key=gateway.keys["default"],
                               max_retries=0)


NOT_ANTHROPIC = ["on-openai", "on-gemini", "on-bedrock", "on-groq", "on-vertex-gemini"]


# -- Anthropic Messages on other providers -------------------------------------------------------------

@pytest.mark.parametrize("name", NOT_ANTHROPIC)
def test_anthropic_sdk_message_on_any_provider(claude, name):
    message = claude.messages.create(model=name, max_tokens=64, system="Be brief.",
                                     messages=[{"role": "user", "content": "bonjour"}])
    assert message.content[0].type == "text" and message.content[0].text == "echo: bonjour"
    assert message.stop_reason == "end_turn" and message.role == "assistant"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


@pytest.mark.parametrize("name", NOT_ANTHROPIC)
def test_anthropic_sdk_stream_on_any_provider(claude, name):
    with claude.messages.stream(model=name, max_tokens=64,
                                messages=[{"role": "user", "content": "stream please"}]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert final.content[0].text == "echo: stream please"
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "content_block_stop" in kinds and "message_delta" in kinds
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0 and final.usage.input_tokens > 0


@pytest.mark.parametrize("name", NOT_ANTHROPIC)
@pytest.mark.parametrize("streaming", [False, True])
def test_anthropic_sdk_tool_loop_on_any_provider(claude, name, streaming):
    ask = [{"role": "user", "content": "weather in Paris?"}]
    if streaming:
        with claude.messages.stream(model=name, max_tokens=64, tools=[WEATHER_TOOL], messages=ask) as stream:
            first = stream.get_final_message()
    else:
        first = claude.messages.create(model=name, max_tokens=64, tools=[WEATHER_TOOL], messages=ask)
    [call] = [block for block in first.content if block.type == "tool_use"]
    assert first.stop_reason == "tool_use" and call.name == "get_weather" and call.input == {"city": "Paris"}
    answer = claude.messages.create(model=name, max_tokens=64, tools=[WEATHER_TOOL], messages=[
        *ask, {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]}])
    assert answer.stop_reason == "end_turn" and answer.content[0].text.startswith("echo:")


def test_anthropic_sdk_image_and_stop_sequences_reach_an_openai_model(claude, fake_openai):
    claude.messages.create(model="on-openai", max_tokens=10, stop_sequences=["END"], extra_body={"temperature": 0.5},
                           messages=[
        {"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "text", "text": "what is it?"}]}])
    sent = fake_openai.requests_for("gpt-4o-mini")[-1].json
    assert sent["stop"] == ["END"] and sent["temperature"] == 1.0 and sent["max_tokens"] == 10
    assert sent["messages"][0]["content"][0] == {"type": "image_url",
                                                 "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


def test_anthropic_count_tokens_is_estimated_without_a_provider_call(claude, fake_openai):
    result = claude.messages.count_tokens(model="on-openai", messages=[{"role": "user", "content": "x" * 400}])
    assert 100 <= result.input_tokens < 120
    assert fake_openai.requests_for("gpt-4o-mini") == []


def test_anthropic_endpoint_keeps_the_untouched_passthrough(claude, fake_anthropic):
    claude.messages.create(model="on-anthropic", max_tokens=64, messages=[{"role": "user", "content": "hi"}],
                           extra_body={"future_option": "on"})
    assert fake_anthropic.requests[-1].json["future_option"] == "on"


def test_anthropic_usage_is_recorded_as_on_the_unified_route(claude, gateway):
    with claude.messages.stream(model="on-openai", max_tokens=64,
                                messages=[{"role": "user", "content": "count me"}]) as stream:
        stream.get_final_message()
    rows = usage_rows(gateway, "passthrough/anthropic-messages", lambda rows: any(r[4] for r in rows))
    assert (11, 7, 3, 200, 1) in rows  # the fake OpenAI's usage: 11 in (3 cached), 7 out


def test_anthropic_fallback_crosses_providers(claude, fake_openai, fake_gemini):
    fake_openai.fail("gpt-4o-mini", 503, times=2)
    message = claude.messages.create(model="gpt-then-gemini", max_tokens=64,
                                     messages=[{"role": "user", "content": "anyone?"}])
    assert message.content[0].text == "echo: anyone?"
    assert fake_gemini.requests


def test_anthropic_route_falls_back_from_claude_to_gpt_within_one_stream(claude, fake_anthropic, fake_openai):
    fake_anthropic.fail("claude-haiku-4-5", 529)
    with claude.messages.stream(model="claude-then-gpt", max_tokens=64,
                                messages=[{"role": "user", "content": "who answers?"}]) as stream:
        assert stream.get_final_text() == "echo: who answers?"
    assert len(fake_anthropic.requests) == 1 and fake_openai.requests_for("gpt-4o-mini")


def test_anthropic_errors_keep_anthropic_envelope(claude, fake_openai):
    fake_openai.fail("gpt-4o-mini", 429, times=2)
    with pytest.raises(anthropic.RateLimitError):
        claude.messages.create(model="on-openai", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.messages.create(model="on-openai", max_tokens=5, messages=[{"role": "user", "content": "x"}],
                               tools=[{"type": "web_search_20250305", "name": "web_search"}])
    assert info.value.body["type"] == "error" and "web_search" in info.value.body["error"]["message"]


def test_anthropic_stream_cut_ends_with_an_anthropic_error_event(claude, fake_openai):
    fake_openai.behave("gpt-4o-mini", Behaviour(cut_after=2), times=1)
    with pytest.raises(anthropic.APIStatusError):
        with claude.messages.stream(model="on-openai", max_tokens=64,
                                    messages=[{"role": "user", "content": "one two three four"}]) as stream:
            stream.get_final_text()


# -- Gemini API on other providers ---------------------------------------------------------------------

NOT_GEMINI = ["on-openai", "on-anthropic", "on-bedrock", "on-groq", "on-vertex-claude"]


@pytest.fixture
def gem(gateway) -> genai.Client:
    return genai.Client(api_key=gateway.keys["default"], http_options=genai_types.HttpOptions(
        base_url=f"{gateway.url}/gateway/gemini", api_version="v1beta", retry_options=None))


def weather(city: str) -> str:
    """Weather in a city."""
    return "sunny"


@pytest.mark.parametrize("name", NOT_GEMINI)
def test_gemini_sdk_generate_on_any_provider(gem, name):
    response = gem.models.generate_content(model=name, contents="hola", config=genai_types.GenerateContentConfig(
        system_instruction="Be brief.", temperature=0.2, max_output_tokens=50))
    assert response.text == "echo: hola"
    assert response.candidates[0].finish_reason == genai_types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage.prompt_token_count > 0 and usage.candidates_token_count > 0
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count


@pytest.mark.parametrize("name", NOT_GEMINI)
def test_gemini_sdk_stream_on_any_provider(gem, name):
    chunks = list(gem.models.generate_content_stream(model=name, contents="stream me"))
    assert "".join(chunk.text or "" for chunk in chunks) == "echo: stream me"
    assert chunks[-1].candidates[0].finish_reason == genai_types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count > 0


@pytest.mark.parametrize("name", NOT_GEMINI)
@pytest.mark.parametrize("streaming", [False, True])
def test_gemini_sdk_function_call_loop_on_any_provider(gem, name, streaming):
    config = genai_types.GenerateContentConfig(
        tools=[weather], automatic_function_calling=genai_types.AutomaticFunctionCallingConfig(disable=True))
    if streaming:
        calls = [c for chunk in gem.models.generate_content_stream(model=name, contents="weather in Paris?",
                                                                   config=config) for c in chunk.function_calls or ()]
    else:
        calls = gem.models.generate_content(model=name, contents="weather in Paris?", config=config).function_calls
    [call] = calls
    assert call.name == "weather" and call.args == {"city": "Paris"}
    turns = [genai_types.Content(role="user", parts=[genai_types.Part(text="weather in Paris?")]),
             genai_types.Content(role="model", parts=[genai_types.Part(function_call=call)]),
             genai_types.Content(role="user", parts=[genai_types.Part.from_function_response(
                 name="weather", response={"result": "sunny"})])]
    answer = gem.models.generate_content(model=name, contents=turns, config=config)
    assert answer.text.startswith("echo:")


def test_gemini_json_array_stream_on_an_openai_model(gateway):
    response = httpx.post(f"{gateway.url}/gateway/gemini/v1beta/models/on-openai:streamGenerateContent",
                          headers={"x-goog-api-key": gateway.keys["default"]},
                          json={"contents": [{"role": "user", "parts": [{"text": "array"}]}]})
    chunks = response.json()
    assert isinstance(chunks, list) and chunks[-1]["usageMetadata"]["promptTokenCount"] == 11
    assert "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"]) == "echo: array"


def test_gemini_json_array_stream_cut_ends_with_a_google_error(gateway, fake_openai):
    fake_openai.behave("gpt-4o-mini", Behaviour(cut_after=2), times=1)
    response = httpx.post(f"{gateway.url}/gateway/gemini/v1beta/models/on-openai:streamGenerateContent",
                          headers={"x-goog-api-key": gateway.keys["default"]},
                          json={"contents": [{"role": "user", "parts": [{"text": "one two three"}]}]})
    items = response.json()
    assert "candidates" in items[0]
    assert items[-1]["error"]["code"] == 502 and items[-1]["error"]["status"] == "UNAVAILABLE"


def test_gemini_errors_keep_google_envelope(gem, fake_openai):
    fake_openai.fail("gpt-4o-mini", 503, times=2)
    with pytest.raises(genai_errors.ServerError) as info:
        gem.models.generate_content(model="on-openai", contents="x")
    assert info.value.code == 503 and info.value.status == "UNAVAILABLE"
    with pytest.raises(genai_errors.ClientError) as info:
        gem.models.generate_content(model="on-openai", contents="x", config=genai_types.GenerateContentConfig(
            tools=[genai_types.Tool(google_search=genai_types.GoogleSearch())]))
    assert info.value.code == 400 and "googleSearch" in info.value.message


def test_gemini_stream_cut_raises_in_sdk(gem, fake_openai):
    fake_openai.behave("gpt-4o-mini", Behaviour(cut_after=2), times=1)
    with pytest.raises(genai_errors.APIError):
        list(gem.models.generate_content_stream(model="on-openai", contents="one two three"))


# -- OpenAI Responses API on chat-only providers ---------------------------------------------------------

CHAT_ONLY = ["on-anthropic", "on-gemini", "on-bedrock", "on-groq", "on-vertex-gemini", "on-vertex-claude"]
RESPONSE_TOOL = {"type": "function", "name": "get_weather", "description": "Weather in a city",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.fixture
def oai(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/gateway/openai/v1", api_key=gateway.keys["default"], max_retries=0)


@pytest.mark.parametrize("name", CHAT_ONLY)
def test_openai_sdk_responses_on_chat_only_providers(oai, name):
    response = oai.responses.create(model=name, input="tell me", instructions="Be brief.", max_output_tokens=50)
    assert response.output_text == "echo: tell me" and response.status == "completed"
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0


@pytest.mark.parametrize("name", CHAT_ONLY)
def test_openai_sdk_responses_stream_on_chat_only_providers(oai, name):
    events = list(oai.responses.create(model=name, input="stream me", stream=True))
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "echo: stream me"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].response.output_text == "echo: stream me" and events[-1].response.usage.output_tokens > 0
    with oai.responses.stream(model=name, input="helper too") as stream:
        assert stream.get_final_response().output_text == "echo: helper too"


@pytest.mark.parametrize("name", CHAT_ONLY)
@pytest.mark.parametrize("streaming", [False, True])
def test_openai_sdk_responses_tool_loop_on_chat_only_providers(oai, name, streaming):
    ask = [{"role": "user", "content": "weather in Paris?"}]
    if streaming:
        with oai.responses.stream(model=name, input=ask, tools=[RESPONSE_TOOL]) as stream:
            first = stream.get_final_response()
    else:
        first = oai.responses.create(model=name, input=ask, tools=[RESPONSE_TOOL])
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    answer = oai.responses.create(model=name, tools=[RESPONSE_TOOL], input=[
        *ask, {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert answer.output_text.startswith("echo:")


def test_openai_responses_stateful_features_are_refused(oai, fake_anthropic):
    for extra in ({"previous_response_id": "resp_123"}, {"store": True}, {"background": True}):
        with pytest.raises(openai.BadRequestError) as info:
            oai.responses.create(model="on-anthropic", input="x", **extra)
        assert next(iter(extra)) in info.value.message
    assert fake_anthropic.requests == []


def test_openai_responses_usage_and_errors_on_a_gemini_model(oai, gateway, fake_gemini):
    fake_gemini.fail("gemini-2.5-flash", 429, times=2)
    with pytest.raises(openai.RateLimitError):
        oai.responses.create(model="on-gemini", input="x")
    fake_gemini.behave("gemini-2.5-flash", Behaviour(cut_after=2), times=1)
    events = list(oai.responses.create(model="on-gemini", input="one two three", stream=True))
    assert events[-1].type == "error" and events[-1].code == "incomplete_stream"  # the SDK yields it, as OpenAI's
    rows = usage_rows(gateway, "passthrough/openai-responses", lambda rows: any(r[3] == 429 for r in rows))
    assert any(r[3] == 429 for r in rows)


def test_openai_responses_on_openai_keeps_the_untouched_passthrough(oai, fake_openai):
    oai.responses.create(model="on-openai", input="hi", extra_body={"brand_new_flag": True})
    assert fake_openai.requests_for("gpt-4o-mini")[-1].path.endswith("/responses")


# -- OpenAI chat and embeddings on the other providers ---------------------------------------------------

@pytest.mark.parametrize("name", ["on-anthropic", "on-gemini", "on-bedrock"])
def test_openai_sdk_native_chat_on_other_providers(oai, name):
    answer = oai.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "echo: hi"
    chunks = list(oai.chat.completions.create(model=name, stream=True, stream_options={"include_usage": True},
                                              messages=[{"role": "user", "content": "stream it"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: stream it"
    assert chunks[-1].usage.completion_tokens > 0


def test_openai_sdk_native_embeddings_on_gemini(gateway, oai):
    result = oai.embeddings.create(model="embed-gemini", input=["a", "b"])
    assert len(result.data) == 2 and result.usage.prompt_tokens >= 0


# -- guardrails and budgets on translated routes, in each route's envelope ---------------------------------

EMAIL = "jane.doe@example.org"


def test_guardrails_on_translated_anthropic_route(claude, fake_openai):
    message = claude.messages.create(model="guarded", max_tokens=64,
                                     messages=[{"role": "user", "content": f"reach {EMAIL}"}])
    assert message.content[0].text == "echo: reach [EMAIL]"
    assert EMAIL not in str(fake_openai.requests_for("gpt-4o-mini")[-1].json)
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model="guarded", max_tokens=64,
                               messages=[{"role": "user", "content": "forbidden-term"}])
    assert caught.value.body["type"] == "error" and "banned-words" in caught.value.body["error"]["message"]
    with claude.messages.stream(model="redacting", max_tokens=64,
                                messages=[{"role": "user", "content": "our secret plan"}]) as stream:
        assert stream.get_final_text() == "echo: our [REDACTED]"


def test_guardrails_on_translated_gemini_and_responses_streams(gem, oai):
    chunks = gem.models.generate_content_stream(model="redacting", contents="the secret plan")
    assert "".join(c.text or "" for c in chunks) == "echo: the [REDACTED]"
    events = list(oai.responses.create(model="guarded", input="say forbidden-term", stream=True))
    assert events[-1].type == "error" and "banned-words" in events[-1].message


def test_budgets_refuse_translated_routes_in_their_envelopes(claude, gem, oai, fake_openai):
    with pytest.raises(anthropic.RateLimitError, match="broke-zero"):
        claude.messages.create(model="broke", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.RateLimitError, match="broke-zero"):
        with claude.messages.stream(model="broke", max_tokens=10, messages=[{"role": "user", "content": "hi"}]):
            pass
    with pytest.raises(genai_errors.ClientError) as caught:
        list(gem.models.generate_content_stream(model="broke", contents="hi"))
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    with pytest.raises(openai.RateLimitError, match="broke-zero"):
        oai.responses.create(model="broke", input="hi")
    assert fake_openai.requests_for("gpt-4o-mini") == []
