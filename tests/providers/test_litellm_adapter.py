"""The optional litellm adapter against a fake OpenAI upstream on 127.0.0.1 (litellm's `openai/` route with
an api_base): chat, streaming with usage, embeddings and errors in the adapter's one error type. Runs in
scripts/test.sh's `litellm` stage, where the extra is installed; skipped elsewhere."""
from __future__ import annotations

import pytest

pytest.importorskip("litellm")

from providers.base import CallStats, ModelTarget, ProviderError  # noqa: E402
from providers.registry import adapter_class  # noqa: E402
from tests.fakes.openai import COMPLETION_TOKENS, PROMPT_TOKENS, FakeOpenAI  # noqa: E402
from tests.providers.chat_stream import collect, text_of  # noqa: E402

HELLO = {"messages": [{"role": "user", "content": "Hello there"}]}


@pytest.fixture(scope="module")
def upstream():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def adapter(fake):
    return adapter_class("litellm")(ModelTarget(id=1, name="ll", provider="litellm", model_name="openai/gpt-4o-mini",
                                                credentials={"api_key": "sk-litellm-upstream-0123"},
                                                auth_config={"api_base": f"{fake.url}/v1"}))


async def test_chat(adapter, fake):
    stats = CallStats()
    answer = await adapter.chat({**HELLO, "temperature": 0.2}, stats)
    assert answer["choices"][0]["message"]["content"] == "echo: Hello there"
    assert answer["usage"]["prompt_tokens"] == PROMPT_TOKENS and stats.upstream_seconds > 0
    [sent] = fake.requests
    assert sent.path == "/v1/chat/completions" and sent.json["model"] == "gpt-4o-mini"
    assert sent.json["temperature"] == 0.2 and sent.headers["authorization"] == "Bearer sk-litellm-upstream-0123"


async def test_stream_ends_with_usage(adapter):
    chunks = await collect(adapter, HELLO)
    assert text_of(chunks) == "echo: Hello there"
    usage = [c["usage"] for c in chunks if c.get("usage")]
    assert usage and usage[-1]["completion_tokens"] == COMPLETION_TOKENS


async def test_embeddings(adapter):
    answer = await adapter.embeddings({"input": ["a", "b"]}, CallStats())
    assert [item["index"] for item in answer["data"]] == [0, 1]


async def test_upstream_errors_keep_their_status(adapter, fake):
    fake.fail("gpt-4o-mini", 429)
    with pytest.raises(ProviderError) as caught:
        await adapter.chat(HELLO, CallStats())
    assert caught.value.status == 429 and caught.value.retryable
    assert len(fake.requests) == 1  # litellm itself retries nothing
