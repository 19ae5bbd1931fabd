"""The OpenAI-compatible family by configuration: where each provider's API lives and how it authenticates."""
from __future__ import annotations

import pytest

from providers.openai import translate


@pytest.mark.parametrize("provider,auth_config,expected", [
    ("openai", {}, "https://api.openai.com/v1"),
    ("groq", {}, "https://api.groq.com/openai/v1"),
    ("deepseek", {}, "https://api.deepseek.com/v1"),
    ("xai", {}, "https://api.x.ai/v1"),
    ("openrouter", {}, "https://openrouter.ai/api/v1"),
    ("mistral", {}, "https://api.mistral.ai/v1"),
    ("together", {}, "https://api.together.xyz/v1"),
    ("fireworks", {}, "https://api.fireworks.ai/inference/v1"),
    ("ollama", {}, "http://localhost:11434/v1"),
    ("vllm", {"api_base": "http://gpu-box:8000/v1/"}, "http://gpu-box:8000/v1"),
    ("openai_compatible", {"api_base": "https://llm.internal/v1"}, "https://llm.internal/v1"),
    ("databricks", {"api_base": "https://dbc-1.cloud.databricks.com"},
     "https://dbc-1.cloud.databricks.com/serving-endpoints"),
    ("databricks", {"api_base": "https://dbc-1.cloud.databricks.com/serving-endpoints"},
     "https://dbc-1.cloud.databricks.com/serving-endpoints"),
])
def test_base_url_per_provider(provider, auth_config, expected):
    assert translate.base_url(provider, auth_config) == expected


@pytest.mark.parametrize("provider", ["openai_compatible", "databricks"])
def test_a_provider_without_a_default_needs_api_base(provider):
    with pytest.raises(ValueError, match="needs auth_config.api_base"):
        translate.base_url(provider, {})


@pytest.mark.parametrize("provider,credentials,auth_config,expected", [
    ("openai", {"api_key": "sk-1"}, {"organization": "org-1", "project": "p-1"},
     {"authorization": "Bearer sk-1", "openai-organization": "org-1", "openai-project": "p-1"}),
    ("databricks", {"api_key": "dapi-1"}, {}, {"authorization": "Bearer dapi-1"}),
    ("ollama", {}, {}, {}),
    ("azure", {"api_key": "az-1"}, {}, {"api-key": "az-1"}),
    ("azure", {"azure_ad_token": "ad-1"}, {}, {"authorization": "Bearer ad-1"}),
    ("portkey", {"api_key": "pk-1", "provider_api_key": "sk-2", "portkey_config": "cfg"},
     {"portkey_provider": "openai"},
     {"x-portkey-api-key": "pk-1", "authorization": "Bearer sk-2", "x-portkey-config": "cfg",
      "x-portkey-provider": "openai"}),
])
def test_auth_headers_per_provider(provider, credentials, auth_config, expected):
    headers = translate.auth_headers(provider, credentials, auth_config)
    assert {k: v for k, v in headers.items() if k not in ("content-type", "accept")} == expected


@pytest.mark.parametrize("api_base", ["https://res.openai.azure.com", "https://res.openai.azure.com/openai/"])
def test_azure_addresses_the_deployment(api_base):
    assert (translate.azure_url({"api_base": api_base}, "my-gpt", "chat/completions")
            == "https://res.openai.azure.com/openai/deployments/my-gpt/chat/completions")
