"""Pure functions for the OpenAI-compatible family: the unified API is OpenAI's, so translation is mostly
putting the configured model in and keeping what the provider sends back."""
from __future__ import annotations

DEFAULT_BASES = {
    "openai": "https://api.openai.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "xai": "https://api.x.ai/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "ollama": "http://localhost:11434/v1",
    "mistral": "https://api.mistral.ai/v1",
    "together": "https://api.together.xyz/v1",
    "fireworks": "https://api.fireworks.ai/inference/v1",
    "vllm": "http://localhost:8000/v1",
    "portkey": "https://api.portkey.ai/v1",
}


# Where a provider serves the OpenAI-compatible API under its api_base: Databricks under /serving-endpoints,
# Azure AI Foundry's model inference API under /models.
BASE_SUFFIXES = {"databricks": "/serving-endpoints", "azure_ai": "/models"}
AZURE_AI_API_VERSION = "2024-05-01-preview"


def base_url(provider: str, auth_config: dict) -> str:
    """Where the provider's OpenAI-compatible API lives."""
    base = (auth_config.get("api_base") or DEFAULT_BASES.get(provider) or "").rstrip("/")
    suffix = BASE_SUFFIXES.get(provider)
    if suffix and base and not base.endswith(suffix):
        base += suffix
    if not base:
        raise ValueError(f"Provider '{provider}' needs auth_config.api_base.")
    return base


def auth_headers(provider: str, credentials: dict, auth_config: dict) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": "application/json"}
    api_key = credentials.get("api_key")
    if provider in ("azure", "azure_ai"):
        if api_key:
            headers["api-key"] = api_key
        elif credentials.get("azure_ad_token"):
            headers["authorization"] = f"Bearer {credentials['azure_ad_token']}"
        return headers
    if provider == "portkey":
        if api_key:
            headers["x-portkey-api-key"] = api_key
        if credentials.get("provider_api_key"):
            headers["authorization"] = f"Bearer {credentials['provider_api_key']}"
        if credentials.get("portkey_config"):
            headers["x-portkey-config"] = str(credentials["portkey_config"])
        if auth_config.get("portkey_provider"):
            headers["x-portkey-provider"] = str(auth_config["portkey_provider"])
        return headers
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    if auth_config.get("organization"):
        headers["openai-organization"] = str(auth_config["organization"])
    if auth_config.get("project"):
        headers["openai-project"] = str(auth_config["project"])
    return headers


def azure_url(auth_config: dict, deployment: str, operation: str) -> str:
    """Azure addresses a deployment in the path; `operation` is e.g. 'chat/completions'."""
    base = (auth_config.get("api_base") or "").rstrip("/")
    if not base:
        raise ValueError("Azure OpenAI needs auth_config.api_base (https://<resource>.openai.azure.com).")
    if base.endswith("/openai"):
        base = base[: -len("/openai")]
    return f"{base}/openai/deployments/{deployment}/{operation}"


def azure_realtime_url(auth_config: dict) -> str:
    """Azure serves realtime per resource, the deployment named in the query (`?deployment=`)."""
    base = (auth_config.get("api_base") or "").rstrip("/")
    if not base:
        raise ValueError("Azure OpenAI needs auth_config.api_base (https://<resource>.openai.azure.com).")
    return f"{base.removesuffix('/openai')}/openai/realtime"


def websocket_url(url: str) -> str:
    """The same address with its scheme turned to ws/wss."""
    if url.startswith("https://"):
        return "wss://" + url[len("https://"):]
    if url.startswith("http://"):
        return "ws://" + url[len("http://"):]
    return url


def build_chat_body(request: dict, model_name: str, *, stream: bool, include_model: bool = True) -> dict:
    """The upstream chat body: the client's fields (None dropped, parameters already prepared by the
    provider's capability table, which asks for the closing usage chunk where the provider needs asking)
    and the configured model."""
    body = _with_model(request, model_name, include_model)
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    return body


def build_embeddings_body(request: dict, model_name: str, *, include_model: bool = True) -> dict:
    return _with_model(request, model_name, include_model)


def _with_model(request: dict, model_name: str, include_model: bool) -> dict:
    """The client's fields, None dropped, with the configured model in place of the client's (Azure names the
    deployment in the URL instead)."""
    body = {k: v for k, v in request.items() if v is not None and k != "model"}
    if include_model:
        body["model"] = model_name
    return body
