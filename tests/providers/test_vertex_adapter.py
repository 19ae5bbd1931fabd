"""VertexAdapter against a fake Vertex AI and a fake Google token endpoint on 127.0.0.1, with a throwaway
service-account key: Gemini and Claude model families, embeddings, passthrough, and the token cache."""
from __future__ import annotations

import asyncio
import json
import uuid

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from providers.base import CallStats, ModelTarget, ProviderError, UnsupportedOperation
from providers.registry import adapter_class
from providers.vertex.adapter import VertexAdapter
from providers.vertex import auth
from providers.vertex.auth import MIN_VALIDITY, REFRESH_AHEAD
from tests.fakes.anthropic import OUTPUT_TOKENS, PROMPT_TOKENS
from tests.fakes.base import Behaviour
from tests.fakes.openai import fake_embedding
from tests.fakes.vertex import FakeVertex
from tests.providers.chat_stream import collect, text_of

GEMINI = "gemini-test"
CLAUDE = "claude-sonnet-4@20250514"
HELLO = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]}
PREFIX = "/v1/projects/my-project/locations/global/publishers"


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def upstream(private_key):
    fake = FakeVertex()
    fake.public_key = private_key.public_key()
    with fake:
        yield fake


def service_account(fake: FakeVertex, key: rsa.RSAPrivateKey) -> dict:
    """A fresh key id per call, so each test gets its own token cache."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return {"type": "service_account", "project_id": "my-project", "private_key_id": uuid.uuid4().hex,
            "private_key": pem.decode(), "client_email": "gateway@my-project.iam.gserviceaccount.com",
            "client_id": "1234567890", "token_uri": f"{fake.url}/token"}


@pytest.fixture
def make(fake, client, private_key):
    def make_adapter(model: str = GEMINI, credentials: object = None, **auth_config) -> VertexAdapter:
        target = ModelTarget(id=1, name="vertex", provider="vertex_ai", model_name=model,
                             credentials={"vertex_credentials": credentials or service_account(fake, private_key)},
                             auth_config={"vertex_project": "my-project", "api_base": f"{fake.url}/v1", **auth_config})
        return VertexAdapter(target, client)
    return make_adapter


async def test_gemini_chat_with_an_oauth_token(make, fake):
    stats = CallStats()
    result = await make().chat(HELLO, stats)
    assert result["choices"][0]["message"] == {"role": "assistant", "content": "echo: Hello there"}
    assert result["model"] == GEMINI and stats.upstream_seconds > 0
    [token_request] = fake.token_requests
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    [sent] = fake.api_requests
    assert sent.path == f"{PREFIX}/google/models/{GEMINI}:generateContent"
    assert sent.headers["authorization"] == "Bearer ya29.fake-1"
    assert "x-goog-api-key" not in sent.headers
    assert sent.json["systemInstruction"] == {"parts": [{"text": "Be brief."}]}


async def test_gemini_stream(make, fake):
    chunks = await collect(make(), HELLO)
    assert text_of(chunks) == "echo: Hello there"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 11
    [sent] = fake.api_requests
    assert (sent.path, sent.query) == (f"{PREFIX}/google/models/{GEMINI}:streamGenerateContent", "alt=sse")


async def test_token_is_fetched_once_for_many_calls(make, fake):
    adapter = make()
    await asyncio.gather(*(adapter.chat(HELLO, CallStats()) for _ in range(10)))
    await adapter.chat(HELLO, CallStats())
    await collect(adapter, HELLO)
    assert len(fake.token_requests) == 1
    assert {r.headers["authorization"] for r in fake.api_requests} == {"Bearer ya29.fake-1"}
    assert len(fake.api_requests) == 12


async def test_token_is_refreshed_before_it_expires(make, fake):
    adapter = make()
    now = [1000.0]
    adapter.tokens.clock = lambda: now[0]
    await adapter.chat(HELLO, CallStats())
    now[0] += 3600 - REFRESH_AHEAD + 10  # inside the refresh window, still valid: served at once, renewed aside
    await adapter.chat(HELLO, CallStats())
    await adapter.tokens._refreshing
    await adapter.chat(HELLO, CallStats())
    now[0] += 3600 - MIN_VALIDITY + 1  # nearly expired: the request waits for a new token
    await adapter.chat(HELLO, CallStats())
    assert [r.headers["authorization"][7:] for r in fake.api_requests] == [
        "ya29.fake-1", "ya29.fake-1", "ya29.fake-2", "ya29.fake-3"]
    assert len(fake.token_requests) == 3


async def test_refresh_runs_off_the_event_loop(make, fake):
    fake.behave("", Behaviour(delay=0.4), times=1)  # the token endpoint is slow
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.get_running_loop().create_task(tick())
    try:
        await make().chat(HELLO, CallStats())
    finally:
        ticker.cancel()
    assert ticks >= 15  # the loop kept running while the token was fetched


async def test_rejected_key_is_a_non_retryable_auth_error(make, fake, private_key):
    fake.public_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    try:
        with pytest.raises(ProviderError) as caught:
            await make().chat(HELLO, CallStats())
    finally:
        fake.public_key = private_key.public_key()
    assert (caught.value.status, caught.value.retryable, caught.value.error_type) == (502, False, "upstream_auth_error")
    assert "invalid_grant" in caught.value.message
    assert fake.api_requests == []


async def test_token_refused_by_the_api_is_the_gateways_fault(make, fake):
    adapter = make()
    await adapter.chat(HELLO, CallStats())
    fake.issued.clear()
    with pytest.raises(ProviderError) as caught:
        await adapter.chat(HELLO, CallStats())
    assert (caught.value.status, caught.value.retryable, caught.value.upstream_status) == (502, False, 401)


async def test_credentials_may_be_the_key_file_text(make, fake, private_key):
    adapter = make(credentials=json.dumps(service_account(fake, private_key)))
    assert (await adapter.chat(HELLO, CallStats()))["choices"][0]["message"]["content"] == "echo: Hello there"


async def test_claude_chat_uses_raw_predict(make, fake):
    result = await make(CLAUDE).chat(HELLO, CallStats())
    assert result["choices"][0]["message"] == {"role": "assistant", "content": "echo: Hello there"}
    assert result["usage"]["prompt_tokens"] == PROMPT_TOKENS
    [sent] = fake.api_requests
    assert sent.path == f"{PREFIX}/anthropic/models/{CLAUDE}:rawPredict"
    assert sent.json == {"anthropic_version": "vertex-2023-10-16", "max_tokens": 8192, "system": "Be brief.",
                         "messages": [{"role": "user", "content": "Hello there"}]}


async def test_claude_stream_uses_stream_raw_predict(make, fake):
    chunks = await collect(make(CLAUDE), HELLO)
    assert text_of(chunks) == "echo: Hello there"
    assert chunks[-1]["usage"]["completion_tokens"] == OUTPUT_TOKENS
    [sent] = fake.api_requests
    assert sent.path.endswith(":streamRawPredict") and sent.json["stream"] is True
    assert sent.headers["accept"] == "text/event-stream"


async def test_claude_stream_cut_is_incomplete(make, fake):
    fake.behave(CLAUDE, Behaviour(cut_after=5), times=1)
    with pytest.raises(ProviderError) as caught:
        await collect(make(CLAUDE), HELLO)
    assert caught.value.error_type == "incomplete_stream"


@pytest.mark.parametrize(("model", "calls"), [("text-embedding-005", 1), ("gemini-embedding-001", 3)])
async def test_embeddings_through_predict(make, fake, model, calls):
    stats = CallStats()
    result = await make(model).embeddings({"input": ["one", "two words", "three more words"], "dimensions": 4}, stats)
    assert [item["embedding"] for item in result["data"]] == [fake_embedding(t, 4) for t in ("one", "two words",
                                                                                             "three more words")]
    assert result["usage"] == {"prompt_tokens": 6, "total_tokens": 6} and stats.upstream_seconds > 0
    assert len(fake.api_requests) == calls
    assert {r.path for r in fake.api_requests} == {f"{PREFIX}/google/models/{model}:predict"}
    assert all(r.json["parameters"] == {"outputDimensionality": 4} for r in fake.api_requests)


async def test_claude_has_no_embeddings(make):
    with pytest.raises(UnsupportedOperation):
        await make(CLAUDE).embeddings({"input": "x"}, CallStats())


async def test_gemini_passthrough(make, fake):
    adapter = make()
    body = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}
    answer = await adapter.passthrough("gemini-generate", body, {}, CallStats(), stream=False)
    assert answer.body["candidates"][0]["content"]["parts"] == [{"text": "echo: Hi"}]
    response = await adapter.passthrough("gemini-stream", body, {"traceparent": "00-abc-def-01"}, CallStats(), stream=True)
    raw = b"".join([chunk async for chunk in response.stream])
    assert b'"finishReason":"STOP"' in raw
    first, second = fake.api_requests
    assert first.json == body and second.path.endswith(":streamGenerateContent")
    assert second.headers["traceparent"] == "00-abc-def-01" and second.headers["authorization"].startswith("Bearer ya29.")


async def test_claude_passthrough(make, fake):
    adapter = make(CLAUDE)
    body = {"model": "my-endpoint", "max_tokens": 20, "messages": [{"role": "user", "content": "Hi"}]}
    headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "tools-2024"}
    answer = await adapter.passthrough("anthropic-messages", body, headers, CallStats(), stream=False)
    assert answer.body["content"] == [{"type": "text", "text": "echo: Hi"}]
    response = await adapter.passthrough("anthropic-messages", {**body, "stream": True}, headers, CallStats(), stream=True)
    events = b"".join([chunk async for chunk in response.stream]).decode()
    assert events.count("event: content_block_delta") == 2 and "event: message_stop" in events
    first, second = fake.api_requests
    assert first.path.endswith(":rawPredict") and second.path.endswith(":streamRawPredict")
    assert first.json == {"max_tokens": 20, "messages": [{"role": "user", "content": "Hi"}],
                          "anthropic_version": "vertex-2023-10-16"}
    assert second.json["stream"] is True
    assert first.headers["anthropic-beta"] == "tools-2024" and "anthropic-version" not in first.headers


@pytest.mark.parametrize(("model", "api", "apis"), [
    (GEMINI, "anthropic-messages", {"gemini-generate", "gemini-stream"}),
    (CLAUDE, "gemini-generate", {"anthropic-messages"}),
])
async def test_passthrough_follows_the_model_family(make, model, api, apis):
    adapter = make(model)
    assert adapter.passthrough_apis == apis
    with pytest.raises(UnsupportedOperation):
        await adapter.passthrough(api, {}, {}, CallStats(), stream=False)


@pytest.mark.parametrize(("credentials", "auth_config", "message"), [
    (None, {"vertex_project": "p", "auth_mode": "service_account"}, "needs the secret value 'vertex_credentials'"),
    (None, {"vertex_project": "p", "auth_mode": "workload"}, "auth_mode 'workload' is not supported"),
    ("{not json", {"vertex_project": "p"}, "not valid JSON"),
    ({"type": "service_account", "client_email": "x@y"}, {"vertex_project": "p"}, "missing: private_key, token_uri"),
    ({"type": "service_account", "client_email": "x@y", "private_key": "nope", "token_uri": "http://127.0.0.1:9/t"},
     {"vertex_project": "p"}, "cannot be used"),
    ({}, {}, "needs auth_config 'vertex_project'"),
    ({"type": "service_account", "client_email": "x@y", "private_key": "k", "token_uri": "http://169.254.169.254/t"},
     {"vertex_project": "p"}, "token_uri of vertex_credentials is blocked by the outbound policy"),
])
def test_configuration_problems_make_the_model_unusable(credentials, auth_config, message):
    target = ModelTarget(id=2, name="v", provider="vertex_ai", model_name=GEMINI,
                         credentials={} if credentials is None else {"vertex_credentials": credentials},
                         auth_config=auth_config)
    with pytest.raises(ValueError, match=message):
        VertexAdapter(target)


def test_registry_and_default_endpoint(fake, private_key):
    target = ModelTarget(id=3, name="v", provider="vertex_ai", model_name=GEMINI,
                         credentials={"vertex_credentials": orjson.dumps(service_account(fake, private_key)).decode()},
                         auth_config={"vertex_project": "my-project", "vertex_location": "europe-west4"})
    adapter = adapter_class("vertex_ai")(target)
    assert isinstance(adapter, VertexAdapter)
    assert adapter.model_url == ("https://europe-west4-aiplatform.googleapis.com/v1/projects/my-project/locations/"
                                 "europe-west4/publishers/google/models/gemini-test")


async def test_application_default_credentials_from_a_key_file(fake, client, private_key, tmp_path, monkeypatch):
    """No secret values: google.auth.default finds GOOGLE_APPLICATION_CREDENTIALS, whose key names the
    fake token endpoint; the token is fetched once for every model using ADC."""
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(service_account(fake, private_key)))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    monkeypatch.setattr(auth, "_sources", {})
    adapters = [VertexAdapter(ModelTarget(id=n, name="v", provider="vertex_ai", model_name=model, credentials={},
                                          auth_config={"vertex_project": "my-project", "api_base": f"{fake.url}/v1"}),
                              client) for n, model in enumerate((GEMINI, CLAUDE))]
    answers = await asyncio.gather(*(adapter.chat(HELLO, CallStats()) for adapter in adapters))
    assert [a["choices"][0]["message"]["content"] for a in answers] == ["echo: Hello there"] * 2
    assert len(fake.token_requests) == 1
    assert {r.headers["authorization"] for r in fake.api_requests} == {"Bearer ya29.fake-1"}


async def test_no_application_default_credentials_is_a_clear_error(fake, client, tmp_path, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    monkeypatch.setattr(auth, "_sources", {})
    adapter = VertexAdapter(ModelTarget(id=1, name="v", provider="vertex_ai", model_name=GEMINI, credentials={},
                                        auth_config={"vertex_project": "p", "api_base": f"{fake.url}/v1"}), client)
    with pytest.raises(ProviderError) as caught:
        await adapter.chat(HELLO, CallStats())
    assert "No Google Application Default Credentials" in caught.value.message and not fake.api_requests


def test_a_metadata_override_to_another_link_local_address_makes_the_model_unusable(monkeypatch):
    monkeypatch.setenv("GCE_METADATA_HOST", "169.254.8.8")
    with pytest.raises(ValueError, match="GCE_METADATA_HOST is blocked by the outbound policy"):
        VertexAdapter(ModelTarget(id=1, name="v", provider="vertex_ai", model_name=GEMINI, credentials={},
                                  auth_config={"vertex_project": "p", "auth_mode": "adc"}))


@pytest.mark.parametrize(("model", "path", "stream_path", "sent_model"), [
    ("mistral-small-2503", f"{PREFIX}/mistralai/models/mistral-small-2503:rawPredict",
     f"{PREFIX}/mistralai/models/mistral-small-2503:streamRawPredict", "mistral-small-2503"),
    ("mistral-medium-3@001", f"{PREFIX}/mistralai/models/mistral-medium-3@001:rawPredict",
     f"{PREFIX}/mistralai/models/mistral-medium-3@001:streamRawPredict", "mistral-medium-3"),
    ("meta/llama-3.3-70b-instruct-maas", "/v1/projects/my-project/locations/global/endpoints/openapi/chat/completions",
     "/v1/projects/my-project/locations/global/endpoints/openapi/chat/completions", "meta/llama-3.3-70b-instruct-maas"),
    ("llama-4-maverick-17b-128e-instruct-maas", "/v1/projects/my-project/locations/global/endpoints/openapi/chat/completions",
     "/v1/projects/my-project/locations/global/endpoints/openapi/chat/completions",
     "meta/llama-4-maverick-17b-128e-instruct-maas"),
])
async def test_partner_models_speak_openai_chat_at_their_vertex_urls(make, fake, model, path, stream_path, sent_model):
    adapter = make(model)
    answer = await adapter.chat(HELLO, CallStats())
    assert answer["choices"][0]["message"]["content"] == "echo: Hello there" and answer["usage"]["total_tokens"] > 0
    chunks = await collect(adapter, HELLO)
    assert text_of(chunks) == "echo: Hello there" and chunks[-1]["usage"]["total_tokens"] > 0
    plain, streamed = fake.api_requests
    assert (plain.path, streamed.path) == (path, stream_path)
    assert plain.json["model"] == streamed.json["model"] == sent_model and streamed.json["stream"] is True
    assert plain.headers["authorization"].startswith("Bearer ya29.fake-")
    assert adapter.passthrough_apis == {"openai-chat"}


async def test_mistral_streams_never_carry_stream_options(make, fake):
    """Mistral refuses stream_options with a 422; its streams report usage unasked."""
    chunks = await collect(make("mistral-small-2503"), {**HELLO, "stream_options": {"include_usage": True}})
    assert "stream_options" not in fake.api_requests[0].json and chunks[-1]["usage"]["prompt_tokens"] > 0


async def test_partner_models_have_no_embeddings(make):
    with pytest.raises(UnsupportedOperation, match="has no embeddings API on Vertex AI"):
        await make("mistral-small-2503").embeddings({"input": "x"}, CallStats())


def test_an_adc_key_whose_token_uri_breaks_the_outbound_policy_makes_the_model_unusable(tmp_path, monkeypatch):
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps({"type": "service_account", "token_uri": "http://169.254.169.254/token"}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    with pytest.raises(ValueError, match="token_uri of GOOGLE_APPLICATION_CREDENTIALS is blocked"):
        VertexAdapter(ModelTarget(id=1, name="v", provider="vertex_ai", model_name=GEMINI, credentials={},
                                  auth_config={"vertex_project": "p"}))
