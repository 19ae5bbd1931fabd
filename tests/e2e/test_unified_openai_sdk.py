"""The unified OpenAI-compatible API, driven with the official `openai` SDK against the real server."""
from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from tests.e2e.conftest import endpoint, provider_config
from tests.e2e.harness import free_port, make_gateway

CHAT_ENDPOINTS = ["chat-openai", "chat-azure", "chat-groq", "chat-anthropic", "chat-gemini", "chat-fake"]
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather for a city",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
}


@pytest.fixture(scope="module")
def client(unified_gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{unified_gateway.url}/gateway/mlflow/v1",
                         api_key=unified_gateway.keys["default"], max_retries=0, timeout=20)


@pytest.mark.parametrize("name", CHAT_ENDPOINTS)
def test_chat_answers_in_openai_format_for_every_provider(client, name):
    completion = client.chat.completions.create(model=name, messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello gateway"}])
    assert completion.choices[0].message.content == "echo: hello gateway"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    assert completion.object == "chat.completion"


@pytest.mark.parametrize("name", CHAT_ENDPOINTS)
def test_streaming_chat_reassembles_for_every_provider(client, name):
    stream = client.chat.completions.create(model=name, stream=True,
                                            messages=[{"role": "user", "content": "stream me please"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: stream me please"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]


@pytest.mark.parametrize("name", ["chat-openai", "chat-anthropic", "chat-gemini"])
def test_stream_usage_is_delivered_when_asked(client, name):
    chunks = list(client.chat.completions.create(model=name, stream=True, stream_options={"include_usage": True},
                                                 messages=[{"role": "user", "content": "count me"}]))
    usage = [c.usage for c in chunks if c.usage]
    assert len(usage) == 1 and usage[0].prompt_tokens > 0 and usage[0].completion_tokens > 0


def test_stream_chunks_reach_the_client_as_the_provider_sends_them(unified_gateway, fake_openai):
    from tests.fakes.base import Behaviour
    fake_openai.behave("gpt-4o-mini", Behaviour(stall_after=3, stall_seconds=1.5), times=1)
    started = time.monotonic()
    with httpx.stream("POST", f"{unified_gateway.url}/gateway/mlflow/v1/chat/completions",
                      headers={"Authorization": f"Bearer {unified_gateway.keys['default']}"},
                      json={"model": "chat-openai", "stream": True,
                            "messages": [{"role": "user", "content": "one two three four"}]}) as response:
        # The timing headers measure to the first byte, so they cannot include the stall.
        overhead, duration = (float(response.headers[f"x-gateway-{name}-ms"]) for name in ("overhead", "duration"))
        assert 0 <= overhead <= duration < 1000
        events = (line for line in response.iter_lines() if line.startswith("data: "))
        first = json.loads(next(events)[6:])
        first_at = time.monotonic() - started
        last = list(events)[-1]
    assert first["choices"] and first_at < 1.0 <= 1.5 <= time.monotonic() - started
    assert last == "data: [DONE]"


def test_stream_without_include_usage_sends_no_usage_chunk(client):
    chunks = list(client.chat.completions.create(model="chat-openai", stream=True,
                                                 messages=[{"role": "user", "content": "x"}]))
    assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)


@pytest.mark.parametrize("name", ["chat-openai", "chat-anthropic", "chat-gemini"])
def test_tool_calls_come_back_as_openai_tool_calls(client, name):
    completion = client.chat.completions.create(model=name, tools=[WEATHER_TOOL],
                                                messages=[{"role": "user", "content": "weather in Paris?"}])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments), dict)


@pytest.mark.parametrize("name", ["chat-openai", "chat-anthropic", "chat-gemini"])
def test_streamed_tool_call_deltas_reassemble(client, name):
    stream = client.chat.completions.create(model=name, tools=[WEATHER_TOOL], stream=True,
                                            messages=[{"role": "user", "content": "weather in Paris?"}])
    names, arguments = [], ""
    for chunk in stream:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            if call.function and call.function.name:
                names.append(call.function.name)
            if call.function and call.function.arguments:
                arguments += call.function.arguments
    assert names == ["get_weather"]
    assert isinstance(json.loads(arguments), dict)


@pytest.mark.parametrize("name", ["embed-openai", "embed-gemini", "chat-fake"])
def test_embeddings(client, name):
    result = client.embeddings.create(model=name, input=["first text", "second text"])
    assert [d.index for d in result.data] == [0, 1]
    assert all(len(d.embedding) > 0 for d in result.data)
    assert result.data[0].embedding != result.data[1].embedding


def test_invocations_detects_chat_and_embeddings(unified_gateway):
    headers = {"Authorization": f"Bearer {unified_gateway.keys['default']}"}
    chat = httpx.post(f"{unified_gateway.url}/gateway/chat-openai/mlflow/invocations", headers=headers,
                      json={"messages": [{"role": "user", "content": "via invocations"}]})
    assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["content"] == "echo: via invocations"
    emb = httpx.post(f"{unified_gateway.url}/gateway/embed-openai/mlflow/invocations", headers=headers,
                     json={"input": "one"})
    assert emb.status_code == 200 and emb.json()["object"] == "list"
    bad = httpx.post(f"{unified_gateway.url}/gateway/chat-openai/mlflow/invocations", headers=headers,
                     json={"prompt": "neither"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"


def test_invocations_streams(unified_gateway):
    headers = {"Authorization": f"Bearer {unified_gateway.keys['default']}"}
    with httpx.stream("POST", f"{unified_gateway.url}/gateway/chat-anthropic/mlflow/invocations", headers=headers,
                      json={"stream": True, "messages": [{"role": "user", "content": "hi"}]}) as response:
        body = response.read().decode()
    assert response.headers["content-type"].startswith("text/event-stream")
    assert body.rstrip().endswith("data: [DONE]")


def test_models_lists_only_the_endpoints_a_key_may_use(unified_gateway, client):
    names = [m.id for m in client.models.list()]
    assert "chat-openai" in names and "chat-fake" in names and names == sorted(names)
    limited = openai.OpenAI(base_url=f"{unified_gateway.url}/gateway/mlflow/v1",
                            api_key=unified_gateway.keys["limited"], max_retries=0)
    assert [m.id for m in limited.models.list()] == ["chat-fake"]


def test_response_headers_name_model_attempts_and_timing(client):
    raw = client.chat.completions.with_raw_response.create(
        model="chat-openai", messages=[{"role": "user", "content": "headers"}])
    assert raw.headers["x-gateway-model"] == "gpt"
    assert raw.headers["x-gateway-attempts"] == "1"
    duration, overhead = float(raw.headers["x-gateway-duration-ms"]), float(raw.headers["x-gateway-overhead-ms"])
    assert 0 <= overhead <= duration


def test_unified_response_has_no_non_standard_fields(unified_gateway):
    response = httpx.post(f"{unified_gateway.url}/gateway/mlflow/v1/chat/completions",
                          headers={"Authorization": f"Bearer {unified_gateway.keys['default']}"},
                          json={"model": "chat-anthropic", "messages": [{"role": "user", "content": "x"}]})
    assert set(response.json()) <= {"id", "object", "created", "model", "choices", "usage", "system_fingerprint",
                                    "service_tier"}


def test_provider_receives_its_credentials_and_configured_model(client, fake_openai, fake_anthropic, fake_gemini):
    client.chat.completions.create(model="chat-openai", messages=[{"role": "user", "content": "a"}])
    client.chat.completions.create(model="chat-anthropic", messages=[{"role": "user", "content": "a"}])
    client.chat.completions.create(model="chat-gemini", messages=[{"role": "user", "content": "a"}])
    client.chat.completions.create(model="chat-azure", messages=[{"role": "user", "content": "a"}])
    openai_req = fake_openai.requests_for("gpt-4o-mini")[-1]
    assert openai_req.headers["authorization"] == "Bearer sk-upstream-openai-0123456789"
    assert openai_req.json["model"] == "gpt-4o-mini"
    azure_req = fake_openai.requests_for("my-deployment")[-1]
    assert azure_req.headers["api-key"] == "azure-upstream-0123456789" and "api-version=" in azure_req.query
    assert fake_anthropic.requests[-1].headers["x-api-key"] == "sk-ant-upstream-0123456789"
    assert fake_anthropic.requests[-1].json["model"] == "claude-haiku-4-5"
    assert fake_gemini.requests[-1].headers["x-goog-api-key"] == "AIza-upstream-0123456789"
    assert "gemini-2.5-flash" in fake_gemini.requests[-1].path
    for recorded in (openai_req, azure_req, fake_anthropic.requests[-1], fake_gemini.requests[-1]):
        assert "gw-" not in json.dumps(recorded.headers)


# -- authentication ----------------------------------------------------------------------------

def test_missing_and_unknown_keys_are_401(unified_gateway):
    for key in ("", "gw-not-a-real-key"):
        anonymous = openai.OpenAI(base_url=f"{unified_gateway.url}/gateway/mlflow/v1", api_key=key or "x",
                                  max_retries=0, default_headers={"Authorization": ""} if not key else None)
        with pytest.raises(openai.AuthenticationError):
            anonymous.chat.completions.create(model="chat-fake", messages=[{"role": "user", "content": "x"}])


def test_key_not_allowed_for_endpoint_is_403(unified_gateway):
    limited = openai.OpenAI(base_url=f"{unified_gateway.url}/gateway/mlflow/v1",
                            api_key=unified_gateway.keys["limited"], max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        limited.chat.completions.create(model="chat-openai", messages=[{"role": "user", "content": "x"}])
    assert limited.chat.completions.create(model="chat-fake", messages=[{"role": "user", "content": "x"}]).choices


@pytest.mark.parametrize("header", ["x-api-key", "x-goog-api-key"])
def test_other_sdk_key_headers_work(unified_gateway, header):
    response = httpx.post(f"{unified_gateway.url}/gateway/mlflow/v1/chat/completions",
                          headers={header: unified_gateway.keys["default"]},
                          json={"model": "chat-fake", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 200


def test_query_key_works(unified_gateway):
    response = httpx.post(f"{unified_gateway.url}/gateway/mlflow/v1/chat/completions",
                          params={"key": unified_gateway.keys["default"]},
                          json={"model": "chat-fake", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 200


# -- errors ------------------------------------------------------------------------------------

def test_invalid_json_is_400(unified_gateway):
    response = httpx.post(f"{unified_gateway.url}/gateway/mlflow/v1/chat/completions", content=b"{not json",
                          headers={"Authorization": f"Bearer {unified_gateway.keys['default']}"})
    assert response.status_code == 400
    assert "Invalid JSON" in response.json()["error"]["message"]


@pytest.mark.parametrize("payload,param", [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": "x"}], "temperature": 7}, "temperature"),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": "many"}, "max_tokens"),
])
def test_schema_errors_name_the_field(client, payload, param):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="chat-openai", **payload)
    assert info.value.body["param"] == param


def test_unknown_endpoint_is_404(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="no-such-endpoint", messages=[{"role": "user", "content": "x"}])
    assert "no-such-endpoint" in str(info.value)


def test_operation_the_provider_cannot_do_is_400(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="chat-anthropic", input="x")
    assert "embeddings" in str(info.value).lower()


@pytest.mark.parametrize("status,exc", [(500, openai.InternalServerError), (429, openai.RateLimitError),
                                        (400, openai.BadRequestError), (404, openai.NotFoundError)])
def test_upstream_errors_keep_their_status(client, fake_openai, status, exc):
    fake_openai.fail("gpt-4o-mini", status, times=2)  # a single-model endpoint retries 429/5xx once
    with pytest.raises(exc) as info:
        client.chat.completions.create(model="chat-openai", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == status


@pytest.mark.parametrize("status", [401, 403])
def test_upstream_auth_failures_become_502_without_credentials(client, fake_openai, status):
    fake_openai.fail("gpt-4o-mini", status, body={"error": {"message": "bad key sk-upstream-openai-0123456789"}})
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="chat-openai", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502
    assert "bad key [REDACTED]" in info.value.message
    assert "sk-upstream-openai-0123456789" not in info.value.response.text


def test_upstream_timeout_is_504_and_unreachable_is_502(e2e_root, fake_openai, fake_anthropic, fake_gemini):
    config = provider_config(fake_openai, fake_anthropic, fake_gemini)
    config["secrets"] += [
        {"name": "slow", "provider": "openai", "values": {"api_key": "k"},
         "auth_config": {"api_base": f"{fake_openai.url}/v1", "timeout": 0.5}},
        {"name": "dead", "provider": "openai", "values": {"api_key": "k"},
         "auth_config": {"api_base": f"http://127.0.0.1:{free_port()}/v1"}},
    ]
    config["models"] += [{"name": "gpt-slow", "provider": "openai", "model_name": "gpt-slow", "secret": "slow"},
                         {"name": "gpt-dead", "provider": "openai", "model_name": "gpt-dead", "secret": "dead"}]
    config["endpoints"] = [endpoint("slow", "gpt-slow"), endpoint("dead", "gpt-dead")]
    server = make_gateway(e2e_root, "timeouts", config)
    try:
        from tests.fakes.base import Behaviour
        fake_openai.behave("gpt-slow", Behaviour(delay=2.0))
        sdk = openai.OpenAI(base_url=f"{server.url}/gateway/mlflow/v1", api_key=server.keys["default"], max_retries=0)
        with pytest.raises(openai.APIStatusError) as info:
            sdk.chat.completions.create(model="slow", messages=[{"role": "user", "content": "x"}])
        assert info.value.status_code == 504
        with pytest.raises(openai.APIStatusError) as info:
            sdk.chat.completions.create(model="dead", messages=[{"role": "user", "content": "x"}])
        assert info.value.status_code == 502
    finally:
        server.stop()


def test_body_over_the_limit_is_413(unified_gateway):
    big = "x" * (11 * 1024 * 1024)
    response = httpx.post(f"{unified_gateway.url}/gateway/mlflow/v1/chat/completions",
                          headers={"Authorization": f"Bearer {unified_gateway.keys['default']}"},
                          json={"model": "chat-openai", "messages": [{"role": "user", "content": big}]}, timeout=30)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"


def test_stream_error_before_first_byte_is_a_real_http_error(client, fake_openai):
    fake_openai.fail("gpt-4o-mini", 429, times=2)  # a single-model endpoint retries once
    with pytest.raises(openai.RateLimitError):
        list(client.chat.completions.create(model="chat-openai", stream=True,
                                            messages=[{"role": "user", "content": "x"}]))


def test_stream_cut_after_first_byte_ends_with_error_event_and_no_done(unified_gateway, fake_openai):
    from tests.fakes.base import Behaviour
    fake_openai.behave("gpt-4o-mini", Behaviour(cut_after=2), times=1)
    with httpx.stream("POST", f"{unified_gateway.url}/gateway/mlflow/v1/chat/completions",
                      headers={"Authorization": f"Bearer {unified_gateway.keys['default']}"},
                      json={"model": "chat-openai", "stream": True,
                            "messages": [{"role": "user", "content": "one two three four"}]}) as response:
        assert response.status_code == 200
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert "data: [DONE]" not in events
    assert json.loads(events[-1][6:])["error"]["message"]


def test_stream_cut_raises_in_the_sdk(client, fake_openai):
    from tests.fakes.base import Behaviour
    fake_openai.behave("gpt-4o-mini", Behaviour(cut_after=2), times=1)
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="chat-openai", stream=True,
                                            messages=[{"role": "user", "content": "one two three"}]))


def test_fallback_serves_when_primary_fails(client, fake_openai):
    fake_openai.fail("gpt-4o-mini", 503)
    raw = client.chat.completions.with_raw_response.create(
        model="chat-fallback", messages=[{"role": "user", "content": "fallback please"}])
    assert raw.parse().choices[0].message.content == "echo: fallback please"
    assert raw.headers["x-gateway-model"] == "gpt-backup" and raw.headers["x-gateway-attempts"] == "2"


def test_fallback_is_not_used_for_client_errors(client, fake_openai):
    fake_openai.fail("gpt-4o-mini", 400)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="chat-fallback", messages=[{"role": "user", "content": "x"}])
    assert fake_openai.requests_for("gpt-4o-backup") == []


def test_error_answers_carry_the_gateway_headers(client, fake_openai):
    fake_openai.fail("gpt-4o-mini", 400)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="chat-openai", messages=[{"role": "user", "content": "x"}])
    headers = info.value.response.headers
    assert headers["x-gateway-model"] == "gpt" and headers["x-gateway-attempts"] == "1"
    assert float(headers["x-gateway-duration-ms"]) >= float(headers["x-gateway-overhead-ms"]) >= 0


def test_refused_requests_leave_usage_records_too(unified_gateway, client):
    from tests.e2e.db import wait_rows

    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="ghost-endpoint", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="chat-fake", messages=[{"role": "robot", "content": "x"}])
    stranger = openai.OpenAI(base_url=f"{unified_gateway.url}/gateway/mlflow/v1", api_key="gw-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.embeddings.create(model="chat-fake", input="x")
    expected = {("ghost-endpoint", "unified/chat", 404, "default"), ("chat-fake", "unified/chat", 400, "default"),
                ("", "unified/embeddings", 401, "")}
    found = wait_rows(unified_gateway, "SELECT endpoint_name, route, status_code, api_key_name FROM gateway_usagerecord "
                                       "WHERE status_code IN (400, 401, 404)",
                      expect=lambda rows: expected <= set(rows))
    assert expected <= set(found)
