"""Mistral's answers in OpenAI's shape (providers/mistral/): a reasoning answer's content chunks (mistralai
3.7.0 `ThinkChunk`, `TextChunk`) become the content string, the thinking left out, plain and streamed, on the
unified route (dicts) and the native route (the SSE bytes relayed)."""
from __future__ import annotations

import asyncio

import orjson
import pytest

from providers.mistral import content
from providers.mistral.adapter import relay

THINKING = {"type": "thinking", "thinking": [{"type": "text", "text": "The user greets me."}]}
USAGE = {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}


def completion(message_content) -> dict:
    return {"id": "c", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": message_content}, "finish_reason": "stop"}],
        "usage": USAGE}


@pytest.mark.parametrize("given, expected", [
    ([THINKING, {"type": "text", "text": "Hello"}, {"type": "text", "text": " there"}], "Hello there"),
    ([THINKING], None),
    ("plain", "plain"),
    (None, None),
])
def test_a_completions_content_is_its_text_without_the_thinking(given, expected):
    answer = content.completion(completion(given))
    assert answer["choices"][0]["message"]["content"] == expected
    assert answer["usage"] == USAGE


def test_a_streamed_delta_with_chunks_becomes_text_and_a_thinking_only_delta_carries_none():
    first = content.chunk({"choices": [{"index": 0, "delta": {"role": "assistant", "content": [THINKING]}}]})
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": None}
    text = content.chunk({"choices": [{"index": 0, "delta": {"content": [{"type": "text", "text": "Hi"}]}}]})
    assert text["choices"][0]["delta"] == {"content": "Hi"}
    usage = {"choices": [], "usage": USAGE}
    assert content.chunk(dict(usage)) == usage


async def _bytes(parts: list[bytes]):
    for part in parts:
        yield part


def _relayed(parts: list[bytes]) -> bytes:
    async def run() -> bytes:
        return b"".join([piece async for piece in relay(_bytes(parts))])
    return asyncio.run(run())


def test_the_native_stream_is_rewritten_only_where_content_is_a_list():
    chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": [THINKING]}}]},
              {"choices": [{"index": 0, "delta": {"content": [{"type": "text", "text": "Hello"}]}}]},
              {"choices": [{"index": 0, "delta": {"content": " there"}, "finish_reason": "stop"}], "usage": USAGE}]
    wire = b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks) + b": keep-alive\n\ndata: [DONE]\n\n"
    # Events split across reads, as the network delivers them.
    out = _relayed([wire[:37], wire[37:120], wire[120:]])
    events = [block for block in out.split(b"\n\n") if block]
    assert events[2] == b"data: " + orjson.dumps(chunks[2])
    assert events[3:] == [b": keep-alive", b"data: [DONE]"]
    decoded = [orjson.loads(block.removeprefix(b"data: ")) for block in events[:3]]
    assert [chunk["choices"][0]["delta"].get("content") for chunk in decoded] == [None, "Hello", " there"]
    assert decoded[2]["usage"] == USAGE


def test_a_stream_cut_mid_event_is_relayed_as_it_came_unterminated():
    """The native relay then drops the cut event and reports the stream incomplete, as for any provider."""
    assert _relayed([b'data: {"choices": [{"delta": {"content": [']) == b'data: {"choices": [{"delta": {"content": ['
    assert _relayed([b"data: [DONE]"]) == b"data: [DONE]"
