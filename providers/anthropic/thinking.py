"""Claude's extended thinking for the unified API: OpenAI's `reasoning_effort` as a `thinking` config, and the
thinking blocks of an answer carried across a tool loop. Shared by Anthropic's Messages API (also on Vertex
AI) and Bedrock's Converse API for Claude. Pure: no I/O, no Django.

OpenAI's chat message has no field for thinking, so it stays out of the answer's text. Claude, however,
refuses the next turn of a tool loop unless the thinking blocks that preceded its tool calls come back
with them. They travel where Gemini's thought signatures do (providers/gemini/translate.py): on the first
tool call, as `extra_content.anthropic.thinking_blocks`, in the Messages API's block shape (`thinking` with
its `signature`, or `redacted_thinking` with its `data`), which the OpenAI SDKs keep on a message sent back.
"""
from __future__ import annotations

from typing import Any

from providers import chat_request
from providers.errors import TranslationError

DEFAULT_MAX_TOKENS = 8192
# Anthropic takes `budget_tokens` >= 1024 and below `max_tokens` (thinking counts towards it; anthropic
# 2.17.0, `ThinkingConfigEnabledParam`); the budgets are `chat_request.REASONING_BUDGETS`.
MIN_THINKING_BUDGET = 1024
THINKING_ANSWER_TOKENS = 4096
THINKING_TYPES = ("thinking", "redacted_thinking")


def thinking(request: dict, max_tokens: int | None) -> tuple[dict, int]:
    """(the `thinking` config, the max_tokens to send) for `reasoning_effort`.

    Without a client limit the gateway raises max_tokens to the budget plus room for the answer. A client's
    max_completion_tokens bounds thinking and answer together, as OpenAI's does, so it is kept and the budget
    is at most half of it; below what the smallest budget needs, the request is refused. Claude cannot think
    with a changed temperature or top_k, nor when a tool call is forced, so those are refused by name."""
    budget = chat_request.reasoning_budget(request, "Claude")
    if budget is None:
        return {"type": "disabled"}, DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
    for field, refused in (("temperature", request.get("temperature") not in (None, 2)),
                           ("top_k", request.get("top_k") is not None),
                           ("tool_choice", request.get("tool_choice") == "required"
                            or chat_request.forced_function(request.get("tool_choice")) is not None)):
        if refused:
            raise TranslationError(f"{field}: Claude models cannot think (reasoning_effort) with this {field}; "
                                   "remove one of the two.")
    if max_tokens is None:
        return {"type": "enabled", "budget_tokens": budget}, max(DEFAULT_MAX_TOKENS, budget + THINKING_ANSWER_TOKENS)
    if max_tokens <= MIN_THINKING_BUDGET:
        raise TranslationError(f"reasoning_effort: Claude models think with at least {MIN_THINKING_BUDGET} tokens, "
                               f"which must be less than max_completion_tokens ({max_tokens}); raise it or leave "
                               "reasoning_effort out.")
    return {"type": "enabled", "budget_tokens": max(MIN_THINKING_BUDGET, min(budget, max_tokens // 2))}, max_tokens


def carry_thinking(call: dict, blocks: list[dict]) -> dict:
    """`call` (an OpenAI tool call or its first stream delta) carrying the thinking blocks before it."""
    if blocks:
        call["extra_content"] = {"anthropic": {"thinking_blocks": blocks}}
    return call


def returned_thinking(calls: list[Any]) -> list[dict]:
    """The thinking blocks a client sent back on an assistant message's tool calls (see `carry_thinking`)."""
    for call in calls:
        extra = call.get("extra_content") if isinstance(call, dict) else None
        anthropic = extra.get("anthropic") if isinstance(extra, dict) else None
        blocks = anthropic.get("thinking_blocks") if isinstance(anthropic, dict) else None
        if isinstance(blocks, list):
            return [block for block in blocks if isinstance(block, dict) and block.get("type") in THINKING_TYPES]
    return []


class ThinkingBlocks:
    """The thinking blocks of one streamed answer, rebuilt from their start and delta events (in Messages
    API terms; Bedrock's translator feeds its reasoning deltas in the same terms)."""

    def __init__(self) -> None:
        self._blocks: dict[Any, dict] = {}
        self._carried = False

    def start(self, index: Any, block: dict) -> None:
        """A text field of the wrong type in a provider's event reads as empty, as in `delta`."""
        if block.get("type") == "thinking":
            self._blocks[index] = {"type": "thinking", "thinking": _text(block.get("thinking")),
                                   "signature": _text(block.get("signature"))}
        elif block.get("type") == "redacted_thinking":
            self._blocks[index] = {"type": "redacted_thinking", "data": _text(block.get("data"))}

    def start_once(self, index: Any, block: dict) -> None:
        """`start`, unless the block at `index` has started already."""
        if index not in self._blocks:
            self.start(index, block)

    def delta(self, index: Any, delta: dict) -> None:
        block = self._blocks.get(index)
        if block is None:
            return
        if delta.get("type") == "thinking_delta":
            block["thinking"] += _text(delta.get("thinking"))
        elif delta.get("type") == "signature_delta":
            block["signature"] += _text(delta.get("signature"))

    def take(self) -> list[dict]:
        """The blocks so far, once: for the first tool call of the answer."""
        if self._carried:
            return []
        self._carried = True
        return list(self._blocks.values())


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
