"""Adapter for the long tail of providers through litellm (`pip install .[litellm]`): slower than the
gateway's own adapters (litellm builds its own request objects and clients, and its import alone takes
seconds), so it is for providers the gateway has no adapter of its own for.

`model_name` is litellm's model string (`<litellm provider>/<model>`, e.g. `cohere_chat/command-r`).
Credentials: `api_key` (optional). `auth_config`: `api_base`, `timeout`, and `litellm_params` (a mapping
passed to litellm as keyword arguments, e.g. `{"api_version": "..."}`).

litellm's cost map is read from the package (`LITELLM_LOCAL_MODEL_COST_MAP`), never downloaded; the gateway
prices calls itself. litellm retries nothing: the gateway's router does.
"""
from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping

import httpx

from providers.base import CallStats, ModelTarget, ProviderAdapter, ProviderError, is_retryable_status

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

try:
    import litellm
except ImportError:  # pragma: no cover - the error names the missing extra
    litellm = None

# Keyword arguments of the unified request that litellm takes as they are; `model`, `stream` and
# `stream_options` are the adapter's.
RESERVED = frozenset({"model", "stream", "stream_options"})


class LiteLLMAdapter(ProviderAdapter):
    provider = "litellm"

    def __init__(self, target: ModelTarget, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(target, client)
        if litellm is None:
            raise ValueError("Provider 'litellm' needs the litellm extra: pip install 'django-ai-gateway[litellm]'.")
        config = target.auth_config
        extra = config.get("litellm_params") or {}
        if not isinstance(extra, Mapping):
            raise ValueError("auth_config.litellm_params must be a mapping of litellm keyword arguments.")
        self.options: dict = {**extra, "num_retries": 0, "max_retries": 0}
        if target.credentials.get("api_key"):
            self.options["api_key"] = str(target.credentials["api_key"])
        if config.get("api_base"):
            self.options["api_base"] = str(config["api_base"])
        timeout = config.get("timeout")
        if isinstance(timeout, (int, float)):
            self.options["timeout"] = float(timeout)

    def _arguments(self, request: dict) -> dict:
        return {**{k: v for k, v in request.items() if k not in RESERVED and v is not None}, **self.options,
                "model": self.target.model_name}

    async def chat(self, request: dict, stats: CallStats) -> dict:
        stats.start()
        try:
            answer = await litellm.acompletion(**self._arguments(request))
        except Exception as exc:  # noqa: BLE001 - every litellm failure becomes the one adapter error
            raise _provider_error(exc) from None
        finally:
            stats.stop()
        return answer.model_dump(exclude_none=True)

    async def chat_stream(self, request: dict, stats: CallStats) -> AsyncIterator[dict]:
        stats.start()
        try:
            stream = await litellm.acompletion(**self._arguments(request), stream=True,
                                               stream_options={"include_usage": True})
        except Exception as exc:  # noqa: BLE001
            raise _provider_error(exc) from None
        finally:
            stats.stop()
        try:
            async for chunk in stream:
                yield chunk.model_dump(exclude_none=True)
        except Exception as exc:  # noqa: BLE001
            raise _provider_error(exc) from None

    async def embeddings(self, request: dict, stats: CallStats) -> dict:
        stats.start()
        try:
            answer = await litellm.aembedding(**self._arguments(request))
        except Exception as exc:  # noqa: BLE001
            raise _provider_error(exc) from None
        finally:
            stats.stop()
        return answer.model_dump(exclude_none=True)


def _provider_error(exc: Exception) -> ProviderError:
    """litellm's exceptions carry the upstream status (`status_code`); its message never holds the key."""
    if isinstance(exc, ProviderError):
        return exc
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) and 400 <= status < 600 else 502
    message = str(getattr(exc, "message", "") or exc)[:1000]
    client_status = 502 if status in (401, 403) else status
    return ProviderError(client_status, f"Provider 'litellm' failed: {message}", retryable=is_retryable_status(status),
                         upstream_status=status)
