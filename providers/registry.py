"""Which adapter class serves which provider name."""
from __future__ import annotations

import importlib

from providers.base import ProviderAdapter

_OPENAI = "providers.openai.adapter:OpenAIAdapter"
ADAPTERS: dict[str, str] = {
    "openai": _OPENAI, "azure": _OPENAI, "groq": _OPENAI, "deepseek": _OPENAI, "xai": _OPENAI,
    "openrouter": _OPENAI, "ollama": _OPENAI, "together": _OPENAI, "fireworks": _OPENAI, "vllm": _OPENAI,
    "portkey": _OPENAI, "openai_compatible": _OPENAI, "azure_ai": _OPENAI,
    "mistral": "providers.mistral.adapter:MistralAdapter",
    "anthropic": "providers.anthropic.adapter:AnthropicAdapter",
    "gemini": "providers.gemini.adapter:GeminiAdapter",
    "bedrock": "providers.bedrock.adapter:BedrockAdapter",
    "vertex_ai": "providers.vertex.adapter:VertexAdapter",
    "cohere": "providers.cohere.adapter:CohereAdapter",
    "databricks": "providers.databricks.adapter:DatabricksAdapter",
    "litellm": "providers.litellm.adapter:LiteLLMAdapter",
    "fake": "providers.fake.adapter:FakeAdapter",
}

# The credential modes (`auth_config.auth_mode`) of providers that have several; `gateway_apply` and the
# adapters check a secret's mode against this one list.
AUTH_MODES: dict[str, tuple[str, ...]] = {
    "bedrock": ("api_key", "access_keys", "default_chain"),
    "vertex_ai": ("service_account", "adc"),
}


def adapter_class(provider: str) -> type[ProviderAdapter]:
    """Imported on first use so a provider's module loads only where it is configured."""
    try:
        path = ADAPTERS[provider]
    except KeyError:
        raise LookupError(f"No adapter for provider '{provider}'.") from None
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
