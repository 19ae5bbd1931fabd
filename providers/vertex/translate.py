"""Pure shapes for Vertex AI: where a model lives, how a Messages body is adapted for Claude on Vertex, the
OpenAI-format bodies of the Mistral and Llama families, and the `:predict` embeddings API. Chat itself
reuses the Gemini, Anthropic and OpenAI translations unchanged.

Partner models, as Google's "Mistral AI models" and "Llama models" / "Call MaaS APIs for open models" pages
document them (checked against those pages; tests/fixtures/conformance/vertex.json cites them):
- Mistral AI (`mistral-*`, `codestral-*`, `ministral-*`): Mistral's chat body POSTed to
  `publishers/mistralai/models/<model>:rawPredict` (`:streamRawPredict` with `"stream": true` for SSE); the
  URL names the model with its `@version`, the body's `model` without it. Like Mistral's own API it refuses
  `stream_options` and always ends a stream with a usage block.
- Meta Llama (`llama-*`, or `meta/llama-*`; MaaS ids such as `llama-3.3-70b-instruct-maas`): Vertex's
  OpenAI-compatible Chat Completions API at `endpoints/openapi/chat/completions`, `model` being
  `meta/<model>`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

from providers.base import TranslationError
from providers.embeddings import check_encoding_format
from providers.gemini import translate as gemini

DEFAULT_LOCATION = "global"
ANTHROPIC_VERSION = "vertex-2023-10-16"
# gemini-embedding models take one text per :predict call; the older text-embedding models up to 250.
BATCH_LIMITS = {"gemini-embedding": 1}
DEFAULT_BATCH_LIMIT = 250


MISTRAL_PREFIXES = ("mistral", "codestral", "ministral")
# Publishers whose models speak OpenAI's chat format on Vertex.
OPENAI_FORMAT = frozenset({"mistralai", "meta"})


def publisher_of(model_name: str) -> str:
    """Claude models are published by Anthropic on Vertex and speak the Messages API; Mistral's and Meta's
    speak OpenAI's chat format; the rest are Google's."""
    if model_name.startswith("claude"):
        return "anthropic"
    if model_name.startswith(MISTRAL_PREFIXES):
        return "mistralai"
    if model_name.startswith(("llama", "meta/")):
        return "meta"
    return "google"


def _bare(model_name: str) -> str:
    return model_name.removeprefix("meta/")


def model_url(config: Mapping, model_name: str) -> str:
    """`{root}/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}`, where the root
    is `api_base` or the location's host (`global` has no regional prefix). Raises ValueError for a missing
    project or a value that would change the URL's shape."""
    project = str(config.get("vertex_project") or "")
    location = str(config.get("vertex_location") or DEFAULT_LOCATION)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.:_-]*", project):
        raise ValueError("Vertex AI needs auth_config 'vertex_project' (the Google Cloud project id).")
    if not re.fullmatch(r"[a-z0-9-]+", location):
        raise ValueError(f"vertex_location '{location}' is not a Google Cloud location name.")
    if "/" in _bare(model_name):
        raise ValueError(f"'{model_name}' is not a Vertex AI publisher model id (such as gemini-2.5-flash or "
                         "claude-sonnet-4-5@20250929); tuned models and deployed endpoints are not supported.")
    host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
    root = str(config.get("api_base") or f"https://{host}/v1").rstrip("/")
    return (f"{root}/projects/{project}/locations/{location}/publishers/{publisher_of(model_name)}"
            f"/models/{quote(_bare(model_name), safe='@')}")


def openai_format_urls(model_url: str, model_name: str) -> tuple[str, str]:
    """(plain, streaming) chat URLs of a Mistral or Llama model, from its `model_url`."""
    if publisher_of(model_name) == "mistralai":
        return f"{model_url}:rawPredict", f"{model_url}:streamRawPredict"
    location_root = model_url.partition("/publishers/")[0]
    url = f"{location_root}/endpoints/openapi/chat/completions"
    return url, url


def openai_format_model(model_name: str) -> str:
    """The body's `model`: Mistral's own id without the `@version` of the URL, or `meta/<id>` on the
    OpenAI-compatible endpoint."""
    if publisher_of(model_name) == "mistralai":
        return model_name.partition("@")[0]
    return f"meta/{_bare(model_name)}"


def openai_format_body(body: dict, model_name: str, *, stream: bool) -> dict:
    """An OpenAI chat body as the model's Vertex endpoint takes it. Mistral refuses `stream_options` (it
    reports usage at the end of every stream unasked); the OpenAI-compatible endpoint is asked for it."""
    upstream = {key: value for key, value in body.items() if value is not None and key not in ("model", "stream")}
    upstream["model"] = openai_format_model(model_name)
    if stream:
        upstream["stream"] = True
        if publisher_of(model_name) == "mistralai":
            upstream.pop("stream_options", None)
        else:
            upstream["stream_options"] = {**(upstream.get("stream_options") or {}), "include_usage": True}
    else:
        upstream.pop("stream_options", None)
    return upstream


def claude_body(body: dict, *, stream: bool) -> dict:
    """A Messages body as Vertex takes it: the model is in the URL, the API version in the body."""
    upstream = {key: value for key, value in body.items() if key not in ("model", "stream")}
    upstream["anthropic_version"] = ANTHROPIC_VERSION
    if stream:
        upstream["stream"] = True
    return upstream


def predict_bodies(request: dict, model_name: str) -> list[dict]:
    """The `:predict` bodies for an OpenAI embeddings request, inputs batched as the model allows."""
    check_encoding_format(request)
    inputs = request.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs or not all(isinstance(item, str) for item in inputs):
        raise TranslationError("Vertex AI embeddings take 'input' as a string or a non-empty list of strings "
                               "(not token arrays).")
    limit = next((n for prefix, n in BATCH_LIMITS.items() if model_name.startswith(prefix)), DEFAULT_BATCH_LIMIT)
    parameters = {"outputDimensionality": request["dimensions"]} if request.get("dimensions") is not None else {}
    return [{"instances": [{"content": text} for text in inputs[start:start + limit]],
             **({"parameters": parameters} if parameters else {})}
            for start in range(0, len(inputs), limit)]


def embeddings_response(answers: list[dict], model_name: str, encoding_format: str | None = None) -> dict:
    """An OpenAI embeddings list from `:predict` answers in request order, through the Gemini embeddings
    translation (same vectors, same encodings); token counts come from each prediction's statistics."""
    predictions = [p.get("embeddings") or {} for answer in answers for p in answer.get("predictions") or []]
    tokens = sum(int((p.get("statistics") or {}).get("token_count") or 0) for p in predictions)
    reshaped = {"embeddings": [{"values": p.get("values") or []} for p in predictions],
                "usageMetadata": {"promptTokenCount": tokens}}
    return gemini.embeddings_response(reshaped, model_name, encoding_format)
