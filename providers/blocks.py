"""The walk over a unified (OpenAI chat) chunk stream that the native stream writers share: which content
block (a run of text, or one tool call) opens, grows and closes as the chunks arrive. Anthropic's message
events and the Responses events are two renderings of these steps; each writer owns only its events.
Pure: no I/O, no Django."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Block:
    """One content block: `number` counts the stream's blocks from 0; a tool block carries the OpenAI
    tool-call `call_index` and the `call_id` and `name` of the chunk that opened it (the id as sent, so
    None when the provider sent none: each API names such a call its own way)."""
    number: int
    kind: Literal["text", "tool"]
    call_index: Any = None
    call_id: str | None = None
    name: str = ""


@dataclass(frozen=True)
class Start:
    """The first chunk arrived: its `id` and `model` as sent."""
    id: Any
    model: Any


@dataclass(frozen=True)
class Opened:
    block: Block


@dataclass(frozen=True)
class Delta:
    """A piece of a block's text or of a tool call's arguments. `late` is a piece of a tool call whose
    block another block has already closed (parallel calls whose pieces interleave)."""
    block: Block
    text: str
    late: bool = False


@dataclass(frozen=True)
class Closed:
    block: Block


Step = Start | Opened | Delta | Closed


class BlockWalk:
    """Steps for each chunk of a stream, in order. Only the first choice is read, since both APIs answer
    with one message. A text piece after anything but text opens a text block; a tool call seen for the
    first time opens a tool block; opening a block closes the open one, so at most one is open.
    `usage` and `finish_reason` hold the latest the stream has sent."""

    def __init__(self) -> None:
        self.started = False
        self.open: Block | None = None
        self.count = 0
        self.tools: dict[Any, Block] = {}
        self.usage: dict | None = None
        self.finish_reason: str | None = None

    def feed(self, chunk: dict) -> list[Step]:
        steps: list[Step] = []
        if not self.started:
            self.started = True
            steps.append(Start(chunk.get("id"), chunk.get("model")))
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                if self.open is None or self.open.kind != "text":
                    steps += self._open("text")
                steps.append(Delta(self.open, delta["content"]))
            for call in delta.get("tool_calls") or ():
                steps += self._call(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return steps

    def end(self) -> list[Step]:
        """The close of the block still open, if any."""
        return self._close()

    def _call(self, call: dict) -> list[Step]:
        index, function = call.get("index", 0), call.get("function") or {}
        steps: list[Step] = []
        if index not in self.tools:
            steps += self._open("tool", index, call.get("id"), function.get("name") or "")
            self.tools[index] = self.open
        if function.get("arguments"):
            block = self.tools[index]
            steps.append(Delta(block, function["arguments"], late=block is not self.open))
        return steps

    def _open(self, kind: Literal["text", "tool"], *call: Any) -> list[Step]:
        steps = self._close()
        self.open = Block(self.count, kind, *call)
        self.count += 1
        return steps + [Opened(self.open)]

    def _close(self) -> list[Step]:
        block, self.open = self.open, None
        return [Closed(block)] if block is not None else []
