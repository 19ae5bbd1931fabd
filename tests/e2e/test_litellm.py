"""The optional litellm adapter through the real gateway with the official OpenAI SDK, against a fake OpenAI
upstream on 127.0.0.1. Runs in scripts/test.sh's `litellm` stage; skipped where the extra is missing."""
from __future__ import annotations

import openai
import pytest

pytest.importorskip("litellm")

from tests.e2e.harness import make_gateway  # noqa: E402


@pytest.fixture(scope="module")
def gateway(e2e_root, fake_openai):
    config = {"secrets": [{"name": "ll", "provider": "litellm", "values": {"api_key": "sk-litellm-upstream-0123"},
                           "auth_config": {"api_base": f"{fake_openai.url}/v1"}}],
              "models": [{"name": "ll-gpt", "provider": "litellm", "model_name": "openai/gpt-4o-mini", "secret": "ll"}],
              "endpoints": [{"name": "tail", "models": [{"model": "ll-gpt"}]}]}
    server = make_gateway(e2e_root, "litellm", config, env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    yield server
    server.stop()


def test_openai_sdk_through_litellm(gateway):
    client = openai.OpenAI(base_url=f"{gateway.url}/gateway/mlflow/v1", api_key=gateway.keys["default"], max_retries=0)
    answer = client.chat.completions.create(model="tail", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "echo: hi" and answer.usage.total_tokens > 0
    chunks = list(client.chat.completions.create(model="tail", messages=[{"role": "user", "content": "more"}],
                                                 stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: more"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
