"""Native routes driven with each vendor's official SDK: OpenAI, Anthropic and Google GenAI."""
from __future__ import annotations

import time

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.e2e.conftest import endpoint, provider_config
from tests.e2e.harness import make_gateway
from tests.fakes.base import Behaviour


@pytest.fixture(scope="module")
def gateway(e2e_root, fake_openai, fake_anthropic, fake_gemini):
    config = provider_config(fake_openai, fake_anthropic, fake_gemini)
    config["endpoints"] = [
        endpoint("gpt", "gpt"), endpoint("claude", "claude"), endpoint("gemini-chat", "gemini-flash"),
        endpoint("embed", "embedder"), endpoint("azure", "azure-gpt"), endpoint("demo", "fake-echo"),
        {"name": "claude-fallback", "models": [{"model": "claude"}, {"model": "claude", "linkage": "fallback"}]},
    ]
    server = make_gateway(e2e_root, "passthrough", config, keys={"default": None, "limited": ["demo"]})
    yield server
    server.stop()


@pytest.fixture
def oai(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/gateway/openai/v1", api_key=gateway.keys["default"], max_retries=0)


@pytest.fixture
def claude(gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=f"{gateway.url}/gateway/anthropic", api_key=gateway.keys["default"],
                               max_retries=0)


@pytest.fixture
def gem(gateway) -> genai.Client:
    return genai.Client(api_key=gateway.keys["default"], http_options=genai_types.HttpOptions(
        base_url=f"{gateway.url}/gateway/gemini", api_version="v1beta", retry_options=None))


def usage_rows(gateway, route: str, expect=lambda rows: bool(rows)) -> list[tuple]:
    """Usage rows for a route, read from the server's database once the writer has flushed what `expect`
    waits for (or after 5 s)."""
    import sqlite3

    db = gateway.env["DATABASE_URL"].removeprefix("sqlite:///")
    deadline = time.monotonic() + 5
    while True:
        with sqlite3.connect(db) as conn:
            rows = conn.execute("select input_tokens, output_tokens, cached_tokens, status_code, streaming from "
                                "gateway_usagerecord where route = ? order by id", (route,)).fetchall()
        if expect(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


# -- OpenAI ------------------------------------------------------------------------------------

def test_openai_chat_body_reaches_provider_unchanged_but_model(gateway, fake_openai):
    body = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.3,
            "some_future_parameter": {"nested": [1, 2]}, "metadata": {"team": "a"}}
    response = httpx.post(f"{gateway.url}/gateway/openai/v1/chat/completions", json=body,
                          headers={"Authorization": f"Bearer {gateway.keys['default']}", "Cookie": "session=abc",
                                   "X-Forwarded-For": "10.0.0.1", "OpenAI-Beta": "assistants=v2"})
    assert response.status_code == 200
    received = fake_openai.requests_for("gpt-4o-mini")[-1]
    assert received.json == {**body, "model": "gpt-4o-mini"}
    assert received.headers["authorization"] == "Bearer sk-upstream-openai-0123456789"
    assert received.headers.get("openai-beta") == "assistants=v2"
    assert "cookie" not in received.headers and "x-forwarded-for" not in received.headers
    assert gateway.keys["default"] not in str(received.headers)


def test_openai_sdk_chat_stream_and_usage(oai, gateway):
    text = "".join(c.choices[0].delta.content or "" for c in oai.chat.completions.create(
        model="gpt", stream=True, messages=[{"role": "user", "content": "stream it"}]) if c.choices)
    assert text == "echo: stream it"
    rows = usage_rows(gateway, "passthrough/openai-chat", lambda rows: any(r[4] for r in rows))
    assert (11, 7, 3, 200, 1) in rows


def test_native_stream_bytes_reach_the_client_as_the_provider_sends_them(gateway, fake_anthropic):
    fake_anthropic.behave("claude-haiku-4-5", Behaviour(stall_after=3, stall_seconds=1.5), times=1)
    started = time.monotonic()
    with httpx.stream("POST", f"{gateway.url}/gateway/anthropic/v1/messages",
                      headers={"x-api-key": gateway.keys["default"]},
                      json={"model": "claude", "max_tokens": 64, "stream": True,
                            "messages": [{"role": "user", "content": "one two three four"}]}) as response:
        lines = response.iter_lines()
        assert next(lines) == "event: message_start"
        first_at = time.monotonic() - started
        rest = list(lines)
    assert first_at < 1.0 <= 1.5 <= time.monotonic() - started
    assert "event: message_stop" in rest


def test_openai_sdk_embeddings(oai):
    result = oai.embeddings.create(model="embed", input=["a", "b"])
    assert len(result.data) == 2


def test_openai_sdk_responses_plain_and_streaming(oai, gateway, fake_openai):
    response = oai.responses.create(model="gpt", input="tell me", extra_body={"brand_new_flag": True})
    assert response.output_text == "echo: tell me"
    assert fake_openai.requests_for("gpt-4o-mini")[-1].json["brand_new_flag"] is True
    events = list(oai.responses.create(model="gpt", input="stream me", stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "echo: stream me" and events[-1].type == "response.completed"
    assert (11, 7, 3, 200, 1) in usage_rows(gateway, "passthrough/openai-responses", lambda rows: any(r[4] for r in rows))


def test_openai_upstream_error_keeps_status(oai, fake_openai):
    fake_openai.fail("gpt-4o-mini", 429, times=2)  # a single-model endpoint retries once
    with pytest.raises(openai.RateLimitError):
        oai.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "x"}])


def test_openai_stream_cut_is_an_error_in_the_sdk(oai, fake_openai):
    fake_openai.behave("gpt-4o-mini", Behaviour(cut_after=2), times=1)
    with pytest.raises(openai.APIError):
        list(oai.chat.completions.create(model="gpt", stream=True, messages=[{"role": "user", "content": "a b c"}]))


def test_openai_native_route_on_the_fake_provider(oai):
    assert oai.chat.completions.create(model="demo", messages=[{"role": "user", "content": "hi"}]).choices


def test_passthrough_auth_errors(gateway):
    anonymous = openai.OpenAI(base_url=f"{gateway.url}/gateway/openai/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        anonymous.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "x"}])
    limited = openai.OpenAI(base_url=f"{gateway.url}/gateway/openai/v1", api_key=gateway.keys["limited"],
                            max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        limited.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "x"}])


# -- Anthropic ---------------------------------------------------------------------------------

def test_anthropic_sdk_messages(claude, fake_anthropic):
    message = claude.messages.create(model="claude", max_tokens=64, messages=[{"role": "user", "content": "bonjour"}],
                                     extra_body={"future_option": "on"}, extra_headers={"anthropic-beta": "x-2025"})
    assert message.content[0].text == "echo: bonjour"
    received = fake_anthropic.requests[-1]
    assert received.json["model"] == "claude-haiku-4-5" and received.json["future_option"] == "on"
    assert received.headers["x-api-key"] == "sk-ant-upstream-0123456789"
    assert received.headers["anthropic-beta"] == "x-2025"


def test_anthropic_sdk_stream_and_usage(claude, gateway):
    with claude.messages.stream(model="claude", max_tokens=64,
                                messages=[{"role": "user", "content": "stream please"}]) as stream:
        text = stream.get_final_text()
    assert text == "echo: stream please"
    rows = usage_rows(gateway, "passthrough/anthropic-messages", lambda rows: any(r[4] for r in rows))
    assert any(r[4] == 1 and r[0] > 0 and r[1] > 0 for r in rows)


def test_anthropic_count_tokens(claude):
    result = claude.messages.count_tokens(model="claude", messages=[{"role": "user", "content": "count"}])
    assert result.input_tokens > 0


def test_anthropic_errors_use_anthropic_envelope(claude, fake_anthropic):
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.BadRequestError) as info:  # what an OpenAI model cannot be asked for
        claude.messages.create(model="gpt", max_tokens=5, messages=[{"role": "user", "content": "x"}],
                               tools=[{"type": "web_search_20250305", "name": "web_search"}])
    assert info.value.body["type"] == "error" and "web_search" in info.value.body["error"]["message"]
    fake_anthropic.fail("claude-haiku-4-5", 429, times=2)  # a single-model endpoint retries once
    with pytest.raises(anthropic.RateLimitError):
        claude.messages.create(model="claude", max_tokens=5, messages=[{"role": "user", "content": "x"}])


def test_anthropic_upstream_auth_failure_is_502_and_never_echoes_the_key(claude, fake_anthropic):
    fake_anthropic.fail("claude-haiku-4-5", 401, body={"type": "error", "error": {
        "type": "authentication_error", "message": "invalid x-api-key: sk-ant-upstream-0123456789"}})
    with pytest.raises(anthropic.InternalServerError) as info:
        claude.messages.create(model="claude", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502 and "[REDACTED]" in info.value.message
    assert "sk-ant-upstream-0123456789" not in info.value.response.text


def test_anthropic_stream_cut_raises_in_sdk(claude, fake_anthropic):
    fake_anthropic.behave("claude-haiku-4-5", Behaviour(cut_after=3), times=1)
    with pytest.raises(anthropic.APIStatusError):
        with claude.messages.stream(model="claude", max_tokens=64,
                                    messages=[{"role": "user", "content": "one two three four"}]) as stream:
            stream.get_final_text()


def test_anthropic_fallback_before_first_byte(claude, fake_anthropic):
    fake_anthropic.fail("claude-haiku-4-5", 529)
    with claude.messages.stream(model="claude-fallback", max_tokens=64,
                                messages=[{"role": "user", "content": "again"}]) as stream:
        assert stream.get_final_text() == "echo: again"


# -- Gemini ------------------------------------------------------------------------------------

def test_gemini_sdk_generate_content(gem, fake_gemini):
    response = gem.models.generate_content(model="gemini-chat", contents="hola",
                                           config=genai_types.GenerateContentConfig(temperature=0.2))
    assert response.text == "echo: hola"
    received = fake_gemini.requests[-1]
    assert "gemini-2.5-flash:generateContent" in received.path
    assert received.headers["x-goog-api-key"] == "AIza-upstream-0123456789"
    assert received.json["generationConfig"]["temperature"] == 0.2


def test_gemini_sdk_stream_and_usage(gem, gateway):
    text = "".join(chunk.text or "" for chunk in gem.models.generate_content_stream(model="gemini-chat",
                                                                                  contents="stream me"))
    assert text == "echo: stream me"
    rows = usage_rows(gateway, "passthrough/gemini-stream")
    assert any(r[4] == 1 and r[0] > 0 and r[1] > 0 for r in rows)


def test_gemini_json_array_stream_form(gateway):
    response = httpx.post(f"{gateway.url}/gateway/gemini/v1beta/models/gemini-chat:streamGenerateContent",
                          headers={"x-goog-api-key": gateway.keys["default"]},
                          json={"contents": [{"role": "user", "parts": [{"text": "array"}]}]})
    chunks = response.json()
    assert isinstance(chunks, list) and chunks
    assert "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"]) == "echo: array"


def test_gemini_errors_use_google_envelope(gem, fake_gemini):
    with pytest.raises(genai_errors.ClientError) as info:
        gem.models.generate_content(model="missing-endpoint", contents="x")
    assert info.value.code == 404 and info.value.status == "NOT_FOUND"
    fake_gemini.fail("gemini-2.5-flash", 503, times=2)  # a single-model endpoint retries once
    with pytest.raises(genai_errors.ServerError) as info:
        gem.models.generate_content(model="gemini-chat", contents="x")
    assert info.value.code == 503
    with pytest.raises(genai_errors.ClientError) as info:  # what an OpenAI model cannot be asked for
        gem.models.generate_content(model="gpt", contents="x", config=genai_types.GenerateContentConfig(
            tools=[genai_types.Tool(google_search=genai_types.GoogleSearch())]))
    assert info.value.code == 400 and info.value.status == "INVALID_ARGUMENT"


def test_gemini_stream_cut_raises_in_sdk(gem, fake_gemini):
    fake_gemini.behave("gemini-2.5-flash", Behaviour(cut_after=1), times=1)
    with pytest.raises(genai_errors.ServerError) as info:
        list(gem.models.generate_content_stream(model="gemini-chat", contents="one two three"))
    assert info.value.code == 502


def test_gemini_json_array_stream_cut_ends_with_a_google_error(gateway, fake_gemini):
    fake_gemini.behave("gemini-2.5-flash", Behaviour(cut_after=1), times=1)
    response = httpx.post(f"{gateway.url}/gateway/gemini/v1beta/models/gemini-chat:streamGenerateContent",
                          headers={"x-goog-api-key": gateway.keys["default"]},
                          json={"contents": [{"role": "user", "parts": [{"text": "one two three"}]}]})
    items = response.json()
    assert "candidates" in items[0]
    assert items[-1]["error"]["code"] == 502 and items[-1]["error"]["status"] == "UNAVAILABLE"


def test_background_responses_are_refused_because_they_escape_accounting(oai, fake_openai):
    with pytest.raises(openai.BadRequestError) as info:
        oai.responses.create(model="gpt", input="later", background=True)
    assert info.value.body["param"] == "background"
    assert fake_openai.requests_for("gpt-4o-mini") == []
