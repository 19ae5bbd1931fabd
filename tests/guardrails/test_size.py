"""The `max_tokens` kind: token estimates, character limits, truncation, and one budget per stream."""
from __future__ import annotations

import pytest

from guardrails.kinds import build
from guardrails.kinds.base import GuardBlocked
from tests.guardrails.helpers import context


async def verdict(settings: dict, texts: list[str], sanitize: bool = False):
    return await build("max_tokens", settings, sanitize=sanitize).evaluate(texts, context())


@pytest.mark.parametrize("settings,texts,passed", [
    ({"max_tokens": 10}, ["x" * 40], True),
    ({"max_tokens": 10}, ["x" * 41], False),
    ({"max_tokens": 10}, ["x" * 20, "y" * 21], False),
    ({"max_tokens": 10, "chars_per_token": 2}, ["x" * 21], False),
    ({"max_chars": 5}, ["12345"], True),
    ({"max_chars": 5}, ["123456"], False),
    ({"max_chars": 100, "max_tokens": 2}, ["123456789"], False),
])
async def test_limits(settings, texts, passed):
    assert (await verdict(settings, texts)).passed is passed


async def test_reasons_give_sizes_not_content():
    assert (await verdict({"max_tokens": 10}, ["x" * 81])).reason == \
        "the text is about 21 tokens, over the limit of 10"
    assert (await verdict({"max_chars": 5}, ["abcdefgh"])).reason == "the text is 8 characters, over the limit of 5"


async def test_sanitize_keeps_the_first_characters_of_the_budget():
    result = await verdict({"max_chars": 6}, ["abcd", "efgh", "ijkl"], sanitize=True)
    assert result.texts == ["abcd", "ef", ""]


def test_stream_channels_share_one_budget():
    state = build("max_tokens", {"max_chars": 6}, sanitize=True).open_stream()
    first, second = state.channel(), state.channel()
    assert first.push("abcd") == "abcd"
    assert second.push("efgh") == "ef" and second.changed
    assert first.push("more") == ""


def test_stream_block_raises_once_over_budget():
    stage = build("max_tokens", {"max_chars": 6}, sanitize=False).open_stream().channel()
    assert stage.push("abc") == "abc"
    with pytest.raises(GuardBlocked):
        stage.push("defg")
