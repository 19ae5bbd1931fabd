"""Mistral's chat answers in OpenAI's shape. Pure: no I/O, no Django.

A Mistral reasoning answer's `message.content` (and a streamed `delta.content`) is a list of chunks rather
than the string OpenAI clients read (mistralai 3.7.0, `mistralai/client/models/assistantmessage.py` and
`deltamessage.py`: `Union[str, List[ContentChunk]]`): `{"type": "thinking", "thinking": [<TextChunk>...]}`
(`thinkchunk.py`) and `{"type": "text", "text": ...}` (`textchunk.py`). The content becomes the text
chunks joined; the thinking stays out of it, as Claude's and Gemini's do on the unified route (OpenAI's chat
message has no field for it). Usage is left as Mistral reports it: thinking tokens are completion tokens.
"""
from __future__ import annotations

from typing import Any


def text_of(content: list) -> str | None:
    """The text chunks of a content list joined; None when it has none (only thinking)."""
    texts = [chunk.get("text") or "" for chunk in content if isinstance(chunk, dict) and chunk.get("type") == "text"]
    return "".join(texts) if texts else None


def _normalise(choices: Any, field: str) -> None:
    for choice in choices if isinstance(choices, list) else ():
        message = choice.get(field) if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), list):
            message["content"] = text_of(message["content"])


def completion(answer: dict) -> dict:
    """A chat completion with each choice's `message.content` a string (or None), changed in place."""
    _normalise(answer.get("choices"), "message")
    return answer


def chunk(event: dict) -> dict:
    """A `chat.completion.chunk` with each choice's `delta.content` a string (or None), changed in place."""
    _normalise(event.get("choices"), "delta")
    return event
