"""The content-block walk over unified chunk streams (providers/blocks.py) that Anthropic's and the Responses
stream writers both render: which block opens, grows and closes as the chunks arrive."""
from __future__ import annotations

from providers.blocks import Block, BlockWalk, Closed, Delta, Opened, Start


def chunk(*, content=None, calls=None, finish=None, index=0, usage=None, id="chatcmpl-1") -> dict:
    delta = {}
    if content is not None:
        delta["content"] = content
    if calls is not None:
        delta["tool_calls"] = calls
    body = {"id": id, "model": "m", "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        body["usage"] = usage
    return body


def call(index, arguments=None, id=None, name=None) -> dict:
    function = {key: value for key, value in (("name", name), ("arguments", arguments)) if value is not None}
    return {"index": index, **({"id": id} if id else {}), "function": function}


def walk(*chunks: dict) -> tuple[BlockWalk, list]:
    walker = BlockWalk()
    return walker, [step for body in chunks for step in walker.feed(body)] + walker.end()


def test_text_then_tool_calls_each_get_one_block_closed_when_the_next_opens():
    _, steps = walk(chunk(content="Let me "), chunk(content="check."),
                    chunk(calls=[call(0, id="call_a", name="lookup", arguments='{"q":')]),
                    chunk(calls=[call(0, arguments='"x"}')]),
                    chunk(calls=[call(1, id="call_b", name="time")]))
    text, first = Block(0, "text"), Block(1, "tool", 0, "call_a", "lookup")
    second = Block(2, "tool", 1, "call_b", "time")
    assert steps == [Start("chatcmpl-1", "m"), Opened(text), Delta(text, "Let me "), Delta(text, "check."),
                     Closed(text), Opened(first), Delta(first, '{"q":'), Delta(first, '"x"}'), Closed(first),
                     Opened(second), Closed(second)]


def test_text_after_a_tool_call_opens_a_new_text_block():
    _, steps = walk(chunk(content="a"), chunk(calls=[call(0, id="c", name="f")]), chunk(content="b"))
    assert [(type(step).__name__, step.block.number, step.block.kind) for step in steps[1:]] == [
        ("Opened", 0, "text"), ("Delta", 0, "text"), ("Closed", 0, "text"), ("Opened", 1, "tool"),
        ("Closed", 1, "tool"), ("Opened", 2, "text"), ("Delta", 2, "text"), ("Closed", 2, "text")]


def test_a_late_piece_of_a_closed_tool_call_is_marked_late_and_opens_nothing():
    _, steps = walk(chunk(calls=[call(0, id="c0", name="f", arguments="{"), call(1, id="c1", name="g")]),
                    chunk(calls=[call(0, arguments="}")]))
    first, second = Block(0, "tool", 0, "c0", "f"), Block(1, "tool", 1, "c1", "g")
    assert steps[1:] == [Opened(first), Delta(first, "{"), Closed(first), Opened(second),
                         Delta(first, "}", late=True), Closed(second)]


def test_only_the_first_choice_is_walked():
    _, steps = walk(chunk(content="zero"), chunk(content="one", index=1), chunk(calls=[call(0, name="f")], index=1))
    assert [step for step in steps if isinstance(step, Delta)] == [Delta(Block(0, "text"), "zero")]
    assert sum(isinstance(step, Opened) for step in steps) == 1


def test_empty_pieces_open_nothing_and_start_comes_once():
    _, steps = walk(chunk(content="", id="first"), chunk(calls=[], id="second"), chunk(content=None))
    assert steps == [Start("first", "m")]


def test_a_call_without_id_or_name_keeps_none_and_empty_name_for_the_writer_to_fill():
    _, steps = walk(chunk(calls=[{"function": {"arguments": "{}"}}]))
    block = Block(0, "tool", 0, None, "")
    assert steps[1:] == [Opened(block), Delta(block, "{}"), Closed(block)]


def test_usage_and_finish_reason_hold_the_latest_sent():
    walker, _ = walk(chunk(content="a", finish="length"), chunk(finish="stop"),
                     {"id": "x", "choices": [], "usage": {"prompt_tokens": 3}}, {"id": "x", "choices": []})
    assert walker.finish_reason == "stop"
    assert walker.usage == {"prompt_tokens": 3}


def test_end_closes_nothing_when_no_block_is_open():
    walker = BlockWalk()
    assert walker.end() == []
    walker.feed(chunk(content="a"))
    assert walker.end() == [Closed(Block(0, "text"))]
    assert walker.end() == []
