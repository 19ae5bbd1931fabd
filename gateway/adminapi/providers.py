"""The provider list the management API answers, derived from the providers package: which adapter serves a
provider and what it speaks (its class), and what a secret for it holds (providers/fields.py)."""
from __future__ import annotations

from typing import Any

from gateway.models import Provider
from providers.wire import Api
from providers.fields import FIELDS
from providers.registry import adapter_class

UNIFIED_ROUTES = {"chat": "/gateway/mlflow/v1/chat/completions", "chat_stream": "/gateway/mlflow/v1/chat/completions",
                  "embeddings": "/gateway/mlflow/v1/embeddings"}
# The native route each vendor API is served on: relayed untouched to a provider that speaks it, translated
# through unified chat (gateway/translated.py) for any other chat provider.
NATIVE_ROUTES = {
    Api.OPENAI_CHAT: "/gateway/openai/v1/chat/completions",
    Api.OPENAI_EMBEDDINGS: "/gateway/openai/v1/embeddings",
    Api.OPENAI_RESPONSES: "/gateway/openai/v1/responses",
    Api.ANTHROPIC_MESSAGES: "/gateway/anthropic/v1/messages",
    Api.ANTHROPIC_COUNT_TOKENS: "/gateway/anthropic/v1/messages/count_tokens",
    Api.GEMINI_GENERATE: "/gateway/gemini/v1beta/models/<endpoint>:generateContent",
    Api.GEMINI_STREAM: "/gateway/gemini/v1beta/models/<endpoint>:streamGenerateContent",
}
TRANSLATED_FROM_CHAT = frozenset(api for api in NATIVE_ROUTES if api != Api.OPENAI_EMBEDDINGS)


def provider_description(name: str, label: str) -> dict[str, Any]:
    adapter = adapter_class(name)
    unified = sorted(adapter.unified_operations)
    native = sorted(adapter.passthrough_apis_for(name))
    translated = TRANSLATED_FROM_CHAT - set(native) if "chat" in unified else frozenset()
    served = {UNIFIED_ROUTES[op] for op in unified} | {NATIVE_ROUTES[api] for api in (*native, *translated)}
    if "embeddings" in unified:
        served.add(NATIVE_ROUTES[Api.OPENAI_EMBEDDINGS])
    return {
        "name": name, "label": label, **FIELDS[name].as_dict(),
        "operations": unified + native,
        "routes": sorted(served),
        "passthrough_routes": sorted(NATIVE_ROUTES[api] for api in native),
    }


def provider_descriptions() -> list[dict[str, Any]]:
    return [provider_description(name, str(label)) for name, label in Provider.choices]
