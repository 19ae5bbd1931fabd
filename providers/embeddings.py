"""The unified (OpenAI) embeddings API for translators: the encodings a client may ask for, and the
embeddings list they build from a provider's vectors. Pure: no I/O, no Django."""
from __future__ import annotations

import base64
import struct

from providers.base import TranslationError


def check_encoding_format(request: dict) -> None:
    """The vectors go back as floats or as base64 (`encode_vector`), nothing else."""
    if request.get("encoding_format") not in (None, "float", "base64"):
        raise TranslationError("encoding_format must be 'float' or 'base64'.")


def embeddings_list(vectors: list[list[float]], model: str, tokens: int, encoding_format: str | None = None) -> dict:
    """An OpenAI embeddings list of `vectors` in input order; `tokens` is the whole input's count."""
    data = [{"object": "embedding", "index": i, "embedding": encode_vector(vector, encoding_format)}
            for i, vector in enumerate(vectors)]
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def encode_vector(vector: list[float], encoding_format: str | None) -> list[float] | str:
    # OpenAI's base64 form is the little-endian float32 array; its SDK asks for it by default.
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector
