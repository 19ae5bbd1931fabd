"""`max_tokens`: refuse (or, with `sanitize`, truncate) text above a size budget.

Settings: `max_tokens` (estimated as characters / `chars_per_token`, default 4) and/or `max_chars`; at
least one is required, and when both are set the smaller budget applies. The budget covers all texts
together (every message of a request, every choice of a response, all channels of a stream); `sanitize`
keeps the first characters up to the budget and drops the rest.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from guardrails.kinds.base import Guard, GuardBlocked, SettingsError, StreamStage, StreamState, Verdict
from guardrails.kinds.settings import Reader

if TYPE_CHECKING:
    from gateway.context import RequestContext


class SizeGuard(Guard):
    kind = "max_tokens"

    def __init__(self, settings: dict, *, sanitize: bool) -> None:
        super().__init__(settings, sanitize=sanitize)
        read = Reader(settings, {"max_tokens", "max_chars", "chars_per_token"})
        self.max_tokens = read.integer("max_tokens", None, minimum=1, maximum=10**9)
        self.max_chars = read.integer("max_chars", None, minimum=1, maximum=10**10)
        self.chars_per_token = read.number("chars_per_token", 4.0, minimum=0.5, maximum=32)
        read.done()
        if self.max_tokens is None and self.max_chars is None:
            raise SettingsError("max_tokens or max_chars: at least one is required")
        budgets = [b for b in (self.max_chars, self.max_tokens and int(self.max_tokens * self.chars_per_token)) if b]
        self.limit = min(budgets)

    def reason(self, size: int) -> str:
        if self.max_tokens is not None and (self.max_chars is None or self.limit < self.max_chars):
            tokens = math.ceil(size / self.chars_per_token)
            return f"the text is about {tokens} tokens, over the limit of {self.max_tokens}"
        return f"the text is {size} characters, over the limit of {self.max_chars}"

    async def evaluate(self, texts: Sequence[str], ctx: "RequestContext") -> Verdict:
        size = sum(len(t) for t in texts)
        if size <= self.limit:
            return Verdict(True)
        if not self.sanitize:
            return Verdict(False, self.reason(size))
        budget = self.limit
        kept = []
        for text in texts:
            kept.append(text[:budget])
            budget -= len(kept[-1])
        return Verdict(False, self.reason(size), kept)

    def open_stream(self) -> StreamState:
        return _SizeStreamState(self)


class _SizeStreamState(StreamState):
    def __init__(self, guard: SizeGuard) -> None:
        self.guard = guard
        self.used = 0

    def channel(self) -> StreamStage:
        return _SizeStage(self)


class _SizeStage(StreamStage):
    """Channels of one stream share one budget."""

    def __init__(self, state: _SizeStreamState) -> None:
        self.state = state

    def push(self, text: str) -> str:
        state, guard = self.state, self.state.guard
        remaining = guard.limit - state.used
        if len(text) <= remaining:
            state.used += len(text)
            return text
        if not guard.sanitize:
            raise GuardBlocked(guard.reason(state.used + len(text)))
        state.used = guard.limit
        self.changed = True
        return text[:max(remaining, 0)]
