"""Azure AI Foundry's model inference API through the OpenAI adapter, against a fake on 127.0.0.1: the
/models path, api-version, api-key or Entra bearer auth, and the deployment as the body's model."""
from __future__ import annotations

import pytest

from providers.base import CallStats, ModelTarget
from providers.openai.adapter import OpenAIAdapter
from providers.registry import adapter_class
from tests.fakes.azure_ai import FakeAzureAI
from tests.providers.chat_stream import collect, text_of

HELLO = {"messages": [{"role": "user", "content": "Hello there"}]}


@pytest.fixture(scope="module")
def upstream():
    with FakeAzureAI() as fake:
        yield fake


def make(fake, client, values: dict, **auth_config) -> OpenAIAdapter:
    return adapter_class("azure_ai")(ModelTarget(id=1, name="foundry", provider="azure_ai", model_name="Phi-4",
                                                 credentials=values, auth_config={"api_base": fake.url, **auth_config}),
                                     client)


async def test_chat_stream_and_embeddings_with_an_api_key(fake, client):
    adapter = make(fake, client, {"api_key": fake.api_key})
    answer = await adapter.chat(HELLO, CallStats())
    assert answer["choices"][0]["message"]["content"] == "echo: Hello there"
    assert text_of(await collect(adapter, HELLO)) == "echo: Hello there"
    embedded = await adapter.embeddings({"input": ["a"]}, CallStats())
    assert len(embedded["data"]) == 1
    for sent in fake.requests:
        assert sent.query == "api-version=2024-05-01-preview" and sent.headers["api-key"] == fake.api_key
        assert sent.json["model"] == "Phi-4"
    assert [r.path for r in fake.requests] == ["/models/chat/completions"] * 2 + ["/models/embeddings"]


async def test_entra_token_and_a_chosen_api_version(fake, client):
    adapter = make(fake, client, {"azure_ad_token": fake.api_key}, api_base=f"{fake.url}/models/", api_version="2025-04-01")
    await adapter.chat(HELLO, CallStats())
    [sent] = fake.requests
    assert sent.path == "/models/chat/completions" and sent.query == "api-version=2025-04-01"
    assert sent.headers["authorization"] == f"Bearer {fake.api_key}" and "api-key" not in sent.headers
    assert adapter.passthrough_apis == {"openai-chat", "openai-embeddings"}
