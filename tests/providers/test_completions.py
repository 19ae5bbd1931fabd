"""The unified chunk as the stream translators read it (providers/completions.readable_chunk): parts of an
unexpected type are left out, well-formed ones pass unchanged."""
from __future__ import annotations

import pytest

from providers.anthropic.inbound import MessageEvents
from providers.completions import readable_chunk
from providers.gemini.inbound import GenerateChunks
from providers.openai.responses_inbound import ResponseEvents

WELL_FORMED = {"id": "c1", "model": "m", "usage": {"prompt_tokens": 1},
               "choices": [{"index": 0, "finish_reason": None, "delta": {"content": "hi", "tool_calls": [
                   {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{}"}}]}}]}


def test_a_well_formed_chunk_reads_the_same():
    assert readable_chunk(WELL_FORMED) == WELL_FORMED


@pytest.mark.parametrize("chunk, readable", [
    ("text", {}),
    ({"id": 5, "choices": "not-a-list", "usage": 7}, {"choices": []}),
    ({"choices": [None, 3, {"index": "0", "delta": "x", "finish_reason": 1}]},
     {"choices": [{"index": 0, "delta": {}, "finish_reason": None}]}),
    ({"choices": [{"delta": {"content": ["x"], "tool_calls": [7, {"index": None, "function": "f", "id": 3}]}}]},
     {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {}}]}, "finish_reason": None}]}),
])
def test_parts_of_the_wrong_type_are_left_out(chunk, readable):
    assert readable_chunk(chunk) == readable


@pytest.mark.parametrize("translator", [MessageEvents, GenerateChunks, lambda: ResponseEvents({})])
@pytest.mark.parametrize("chunk", ["text", {"choices": "not-a-list", "usage": 7},
                                   {"choices": [{"delta": {"tool_calls": [{"function": "f"}]}, "finish_reason": 5}]}])
def test_every_translator_reads_an_ill_shaped_chunk_without_failing(translator, chunk):
    events = translator()
    events.feed(readable_chunk(chunk))
    assert events.end()
