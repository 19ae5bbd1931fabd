"""Cohere, Databricks (OAuth machine-to-machine) and Azure AI Foundry through the real gateway with the
official OpenAI SDK: chat, streaming with usage, tool calls and embeddings, against fakes speaking each
vendor's wire format on 127.0.0.1 (Cohere's replaying its recorded answers); and usage recorded from each
vendor's own usage block."""
from __future__ import annotations

import json

import openai
import pytest

from tests.e2e.harness import make_gateway
from tests.fakes.azure_ai import FakeAzureAI
from tests.fakes.cohere import RECORDED, FakeCohere, recorded_text
from tests.fakes.databricks import FakeDatabricks

WEATHER = {"type": "function", "function": {"name": "get_weather",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


@pytest.fixture(scope="module")
def fakes():
    with FakeCohere() as cohere, FakeDatabricks() as databricks, FakeAzureAI() as azure_ai:
        yield {"cohere": cohere, "databricks": databricks, "azure_ai": azure_ai}


@pytest.fixture(scope="module")
def gateway(e2e_root, fakes):
    cohere, databricks, azure_ai = fakes["cohere"], fakes["databricks"], fakes["azure_ai"]
    config = {
        "secrets": [
            {"name": "cohere", "provider": "cohere", "values": {"api_key": cohere.api_key},
             "auth_config": {"api_base": f"{cohere.url}/v2"}},
            {"name": "dbx-sp", "provider": "databricks",
             "values": {"client_id": databricks.client_id, "client_secret": databricks.client_secret},
             "auth_config": {"api_base": databricks.url}},
            {"name": "foundry", "provider": "azure_ai", "values": {"api_key": azure_ai.api_key},
             "auth_config": {"api_base": azure_ai.url}},
        ],
        "models": [
            {"name": "command", "provider": "cohere", "model_name": "command-a-03-2025", "secret": "cohere",
             "input_cost_per_million": 2.5, "output_cost_per_million": 10},
            {"name": "cohere-embed", "provider": "cohere", "model_name": "embed-v4.0", "secret": "cohere"},
            {"name": "dbx", "provider": "databricks", "model_name": "databricks-meta-llama-3-3-70b-instruct",
             "secret": "dbx-sp"},
            {"name": "phi", "provider": "azure_ai", "model_name": "Phi-4", "secret": "foundry"},
        ],
        "endpoints": [{"name": name, "models": [{"model": model}]} for name, model in
                      (("cohere", "command"), ("cohere-embed", "cohere-embed"), ("databricks", "dbx"),
                       ("foundry", "phi"))],
    }
    server = make_gateway(e2e_root, "more-providers", config)
    yield server
    server.stop()


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=f"{gateway.url}/gateway/mlflow/v1", api_key=gateway.keys["default"], max_retries=0)


ECHO = {"databricks": ("echo: hi", "echo: more"), "foundry": ("echo: hi", "echo: more"),
        "cohere": (RECORDED["chat"]["message"]["content"][0]["text"], recorded_text(RECORDED["chat_stream"]))}


@pytest.mark.parametrize("endpoint", ["cohere", "databricks", "foundry"])
def test_chat_and_stream(client, endpoint):
    plain, streamed = ECHO[endpoint]
    answer = client.chat.completions.create(model=endpoint, messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == plain and answer.usage.total_tokens > 0
    chunks = list(client.chat.completions.create(model=endpoint, messages=[{"role": "user", "content": "more"}],
                                                 stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == streamed
    assert chunks[-1].usage.total_tokens > 0


def test_cohere_usage_is_its_billed_units(client):
    answer = client.chat.completions.create(model="cohere", messages=[{"role": "user", "content": "hi"}])
    billed = RECORDED["chat"]["usage"]["billed_units"]
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (
        billed["input_tokens"], billed["output_tokens"])


@pytest.mark.parametrize("stream", [False, True])
def test_cohere_tool_calls(client, stream):
    request = {"model": "cohere", "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [WEATHER]}
    if stream:
        chunks = list(client.chat.completions.create(**request, stream=True))
        deltas = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
        calls = [(delta.function.name, json.loads("".join(d.function.arguments or "" for d in deltas
                                                          if d.index == delta.index)))
                 for delta in deltas if delta.id]
    else:
        calls = [(call.function.name, json.loads(call.function.arguments))
                 for call in client.chat.completions.create(**request).choices[0].message.tool_calls]
    # The recorded answers call two tools, whichever were offered.
    assert calls == [("query_daily_sales_report", {"day": "2023-09-29"}),
                     ("query_product_catalog", {"category": "Electronics"})]


def test_cohere_refusal_is_a_400_naming_the_parameter(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="cohere", messages=[{"role": "user", "content": "hi"}], logprobs=True)
    assert "logprobs" in refused.value.message


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_effort_becomes_cohere_thinking(client, fakes, stream):
    answer = client.chat.completions.create(model="cohere", messages=[{"role": "user", "content": "hi"}],
                                            reasoning_effort="low", stream=stream)
    text = ("".join(c.choices[0].delta.content or "" for c in answer if c.choices) if stream
            else answer.choices[0].message.content)
    assert text == ECHO["cohere"][1 if stream else 0]
    assert fakes["cohere"].requests[-1].json["thinking"] == {"type": "enabled", "token_budget": 2048}


def test_cohere_embeddings(client):
    answer = client.embeddings.create(model="cohere-embed", input=["a", "b"], encoding_format="float")
    assert [item.embedding for item in answer.data] == RECORDED["embed"]["embeddings"]["float"]
    assert answer.usage.prompt_tokens == RECORDED["embed"]["meta"]["billed_units"]["input_tokens"]


def test_databricks_oauth_token_is_fetched_once(client, fakes):
    databricks = fakes["databricks"]
    for _ in range(3):
        client.chat.completions.create(model="databricks", messages=[{"role": "user", "content": "hi"}])
    assert len(databricks.token_requests) == 1


def test_native_openai_route_on_foundry(gateway):
    native = openai.OpenAI(base_url=f"{gateway.url}/gateway/openai/v1", api_key=gateway.keys["default"], max_retries=0)
    answer = native.chat.completions.create(model="foundry", messages=[{"role": "user", "content": "native"}])
    assert answer.choices[0].message.content == "echo: native"
