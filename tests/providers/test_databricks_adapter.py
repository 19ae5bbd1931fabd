"""DatabricksAdapter against a fake workspace on 127.0.0.1: serving endpoints with a personal access token,
and OAuth machine-to-machine tokens fetched once, shared, and renewed ahead of expiry without making a
request wait."""
from __future__ import annotations

import asyncio

import pytest

from providers import oauth
from providers.base import CallStats, ModelTarget, ProviderError
from providers.databricks.adapter import DatabricksAdapter
from providers.registry import adapter_class
from tests.fakes.databricks import FakeDatabricks
from tests.providers.chat_stream import collect, text_of

HELLO = {"messages": [{"role": "user", "content": "Hello there"}]}


@pytest.fixture(scope="module")
def upstream():
    with FakeDatabricks() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fresh_token_cache(monkeypatch):
    monkeypatch.setattr(oauth, "_tokens", {})


def make(fake, client, values: dict) -> DatabricksAdapter:
    return DatabricksAdapter(ModelTarget(id=1, name="dbx", provider="databricks", model_name="databricks-claude",
                                         credentials=values, auth_config={"api_base": fake.url}), client)


def service_principal(fake) -> dict:
    return {"client_id": fake.client_id, "client_secret": fake.client_secret}


async def test_personal_access_token(fake, client):
    answer = await make(fake, client, {"api_key": fake.pat}).chat(HELLO, CallStats())
    assert answer["choices"][0]["message"]["content"] == "echo: Hello there"
    [sent] = fake.requests
    assert sent.path == "/serving-endpoints/chat/completions" and sent.json["model"] == "databricks-claude"


async def test_oauth_token_fetched_once_for_concurrent_requests_and_models(fake, client):
    first, second = make(fake, client, service_principal(fake)), make(fake, client, service_principal(fake))
    answers = await asyncio.gather(*(adapter.chat(HELLO, CallStats()) for adapter in (first, second, first)))
    assert all(a["choices"][0]["message"]["content"] == "echo: Hello there" for a in answers)
    assert len(fake.token_requests) == 1
    assert {r.headers["authorization"] for r in fake.requests if r.path != "/oidc/v1/token"} == \
        {f"Bearer {fake.issued[0]}"}
    chunks = await collect(first, HELLO)
    assert text_of(chunks) == "echo: Hello there" and len(fake.token_requests) == 1


async def test_token_renewed_in_the_background_before_it_expires(fake, client):
    adapter = make(fake, client, service_principal(fake))
    now = [1000.0]
    adapter.oauth.clock = lambda: now[0]
    await adapter.chat(HELLO, CallStats())
    now[0] += 3600 - oauth.REFRESH_AHEAD + 1  # inside the renewal window, still valid
    await adapter.chat(HELLO, CallStats())
    assert fake.requests[-1].headers["authorization"] == f"Bearer {fake.issued[0]}"  # did not wait
    await adapter.oauth._refreshing
    await adapter.chat(HELLO, CallStats())
    assert len(fake.issued) == 2 and fake.requests[-1].headers["authorization"] == f"Bearer {fake.issued[1]}"


async def test_wrong_client_secret_is_a_clear_non_retryable_error(fake, client):
    adapter = make(fake, client, {"client_id": fake.client_id, "client_secret": "wrong"})
    with pytest.raises(ProviderError) as caught:
        await adapter.chat(HELLO, CallStats())
    assert not caught.value.retryable and "refused the OAuth client credentials" in caught.value.message
    assert "wrong" not in caught.value.message and len(fake.requests) == 1


@pytest.mark.parametrize("values", [{}, {"client_id": "only-id"}])
def test_missing_credentials_make_the_model_unusable(fake, values):
    with pytest.raises(ValueError, match="Databricks"):
        make(fake, None, values)


def test_registry():
    assert adapter_class("databricks") is DatabricksAdapter
