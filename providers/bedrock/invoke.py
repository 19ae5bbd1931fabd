"""Pure request and response shapes for Bedrock's InvokeModel API, used where Converse has no equivalent:
Titan text embeddings, and Anthropic Messages bodies passed through to Claude models."""
from __future__ import annotations

import base64
import binascii

import orjson

from providers.base import TranslationError
from providers.bedrock.eventstream import malformed
from providers.embeddings import check_encoding_format, embeddings_list

ANTHROPIC_VERSION = "bedrock-2023-05-31"


def is_anthropic_model(model_id: str) -> bool:
    """Base model ids (`anthropic.claude-...`), cross-region profiles (`us.anthropic.claude-...`) and ARNs
    that name either."""
    return "anthropic." in model_id


def is_titan_embedding_model(model_id: str) -> bool:
    return "amazon.titan-embed" in model_id


# -- embeddings ----------------------------------------------------------------------------------

def titan_bodies(request: dict) -> list[dict]:
    """One InvokeModel body per input: Titan embeds a single text per call."""
    check_encoding_format(request)
    inputs = request.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs or not all(isinstance(item, str) and item for item in inputs):
        raise TranslationError("Titan embeddings take 'input' as a non-empty string or a non-empty list of "
                               "non-empty strings (not token arrays).")
    extra = {"dimensions": request["dimensions"]} if request.get("dimensions") is not None else {}
    return [{"inputText": text, **extra} for text in inputs]


def embeddings_response(answers: list[dict], model: str, encoding_format: str | None = None) -> dict:
    """An OpenAI embeddings list from Titan answers given in input order."""
    tokens = sum(int(answer.get("inputTextTokenCount") or 0) for answer in answers)
    return embeddings_list([answer.get("embedding") or [] for answer in answers], model, tokens, encoding_format)


# -- Anthropic Messages passthrough ----------------------------------------------------------------

def anthropic_body(body: dict, headers: dict[str, str]) -> dict:
    """The InvokeModel body for a client's Messages body: the model is in the URL and streaming in the
    operation, so `model` and `stream` go; the version is Bedrock's; `anthropic-beta` flags, which Bedrock
    reads from the body rather than a header, move into `anthropic_beta`."""
    upstream = {key: value for key, value in body.items() if key not in ("model", "stream")}
    upstream["anthropic_version"] = ANTHROPIC_VERSION
    betas = [flag.strip() for flag in headers.get("anthropic-beta", "").split(",") if flag.strip()]
    if betas:
        upstream["anthropic_beta"] = sorted(set(betas) | set(upstream.get("anthropic_beta") or []))
    return upstream


def anthropic_sse(payload: dict) -> bytes:
    """One InvokeModelWithResponseStream `chunk` (a base64 Messages stream event) as the SSE event the
    Anthropic API itself would have sent; an in-stream `error` event is relayed like any other, as the
    Anthropic API does."""
    try:
        event = orjson.loads(base64.b64decode(payload.get("bytes") or "", validate=True))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise malformed("a chunk does not carry a base64 JSON event") from None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise malformed("a chunk event has no type")
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
