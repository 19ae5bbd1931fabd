"""The provider list the management API answers, derived from the providers package: which adapter serves a
provider and what it speaks (its class), and what a secret for it holds (providers/fields.py)."""
from __future__ import annotations

from typing import Any

from gateway.models import Provider
from gateway.passthrough import NATIVE_ROUTES
from providers.fields import FIELDS
from providers.registry import adapter_class

UNIFIED_ROUTES = {"chat": "/gateway/mlflow/v1/chat/completions", "chat_stream": "/gateway/mlflow/v1/chat/completions",
                  "embeddings": "/gateway/mlflow/v1/embeddings"}


def provider_description(name: str, label: str) -> dict[str, Any]:
    adapter = adapter_class(name)
    unified = sorted(adapter.unified_operations)
    native = sorted(adapter.passthrough_apis_for(name))
    return {
        "name": name, "label": label, **FIELDS[name].as_dict(),
        "operations": unified + native,
        "routes": sorted({UNIFIED_ROUTES[op] for op in unified} | {NATIVE_ROUTES[api] for api in native}),
    }


def provider_descriptions() -> list[dict[str, Any]]:
    return [provider_description(name, str(label)) for name, label in Provider.choices]
