"""Pure shapes for Vertex AI: where a model lives, how a Messages body is adapted for Claude on Vertex, and
the `:predict` embeddings API. Chat itself reuses the Gemini and Anthropic translations unchanged."""
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


def publisher_of(model_name: str) -> str:
    """Claude models are published by Anthropic on Vertex and speak the Messages API; the rest are Google's."""
    return "anthropic" if model_name.startswith("claude") else "google"


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
    if "/" in model_name:
        raise ValueError(f"'{model_name}' is not a Vertex AI publisher model id (such as gemini-2.5-flash or "
                         "claude-sonnet-4-5@20250929); tuned models and deployed endpoints are not supported.")
    host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
    root = str(config.get("api_base") or f"https://{host}/v1").rstrip("/")
    return (f"{root}/projects/{project}/locations/{location}/publishers/{publisher_of(model_name)}"
            f"/models/{quote(model_name, safe='@')}")


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
