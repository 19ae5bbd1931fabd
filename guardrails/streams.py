"""After-stage guardrails on a streamed response, event by event.

Each text channel of the stream (a choice's content, a tool call's arguments, a content block) flows
through the endpoint's after-stage guardrails in their configured order. Deterministic kinds see the text
incrementally and hold back only a short tail, so a match split across chunks is still caught: redacted
in flight, or the stream is ended with the format's error event. Whole-text kinds (llm_judge) rule in
`finish`, on what the client was sent, before the stream's terminator is released.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from guardrails.compiled import CompiledGuardrail, Run
from guardrails.kinds.base import GuardBlocked, StreamStage, StreamState
from guardrails.stream_text import StreamFormat, stream_format
from guardrails.text import Slot

if TYPE_CHECKING:
    from gateway.errors import GatewayError
    from gateway.context import RequestContext

SUBJECT = "response"


class _GuardRun:
    """One guardrail over one stream: its per-stream state and its run bookkeeping."""

    def __init__(self, compiled: CompiledGuardrail, ctx: "RequestContext") -> None:
        self.run = Run(compiled, ctx)
        self.state: StreamState | None = None
        try:
            self.state = compiled.ready().open_stream()
        except Exception as exc:  # noqa: BLE001 - an unusable guardrail is handled by its fail mode
            self.raise_failure(exc)

    def raise_failure(self, exc: Exception) -> None:
        error = self.run.failed(exc)
        if error is not None:
            raise error from None

    def call(self, stage: StreamStage, text: str, *, flush: bool = False) -> str:
        """Text through one stage; a block or a closed-mode failure raises the client-facing error."""
        if self.run.disabled:
            return text
        started = time.perf_counter()
        try:
            released = stage.push(text) if text else ""
            if flush:
                released += stage.flush()
        except GuardBlocked as blocked:
            raise self.run.blocked(blocked.reason, SUBJECT) from None
        except Exception as exc:  # noqa: BLE001 - fail open or closed, as configured
            self.raise_failure(exc)
            return text
        finally:
            self.run.clock(started)
        if stage.changed and self.run.result["action"] == "none":
            self.run.sanitized()
        return released


@dataclass
class _Channel:
    template: dict
    stages: list[tuple[_GuardRun, StreamStage]]
    released: list[str] = field(default_factory=list)
    closed: bool = False

    def push(self, text: str, *, flush: bool = False) -> str:
        for guard_run, stage in self.stages:
            text = guard_run.call(stage, text, flush=flush)
        self.released.append(text)
        return text


class StreamFilter:
    """Feed it every event of the stream, in order, then call `finish` once the upstream has ended.
    Both return the events to send; both raise GatewayError (GuardrailBlocked, ServiceUnavailable) when
    the stream must end with the API's error event (gateway/envelopes.py) instead, without the terminator."""

    def __init__(self, ctx: "RequestContext", guardrails: tuple[CompiledGuardrail, ...], fmt: str) -> None:
        self.ctx = ctx
        self.format: StreamFormat = stream_format(fmt)
        self.runs = [_GuardRun(compiled, ctx) for compiled in guardrails]
        self.channels: dict[tuple, _Channel] = {}
        self.held_terminal: dict | None = None

    def _channel(self, key: tuple, event: dict) -> _Channel:
        channel = self.channels.get(key)
        if channel is None:
            stages = [(r, r.state.channel()) for r in self.runs if r.state is not None and not r.run.disabled]
            channel = self.channels[key] = _Channel(event, stages)
        return channel

    def feed(self, event: dict) -> list[dict]:
        out: list[dict] = []
        last_piece: dict[tuple, Slot] = {}
        for piece in self.format.pieces(event):
            channel = self._channel(piece.key, event)
            channel.closed = False
            piece.slot.set(channel.push(piece.slot.text))
            last_piece[piece.key] = piece.slot
        for prefix in self.format.closing(event):
            for key, channel in self.channels.items():
                if key[: len(prefix)] == prefix and not channel.closed:
                    out.extend(self._close(key, channel, last_piece.get(key)))
        if self.format.is_terminal(event):
            self.held_terminal = event
            return self._finalized(out)
        out.append(event)
        return self._finalized(out)

    def _close(self, key: tuple, channel: _Channel, slot: Slot | None) -> list[dict]:
        """Release the channel's held tail: into the event's own text for this channel if it has one,
        else as an extra event just before."""
        channel.closed = True
        tail = channel.push("", flush=True)
        if not tail:
            return []
        if slot is not None:
            slot.set(slot.text + tail)
            return []
        return [self.format.tail_event(key, tail, channel.template)]

    async def finish(self) -> list[dict]:
        out: list[dict] = []
        for key, channel in self.channels.items():
            if not channel.closed:
                out.extend(self._close(key, channel, None))
        for guard_run in self.runs:
            if guard_run.state is None or guard_run.run.disabled:
                continue
            started = time.perf_counter()
            try:
                verdict = await guard_run.state.verdict(self.ctx)
            except Exception as exc:  # noqa: BLE001 - fail open or closed, as configured
                guard_run.raise_failure(exc)
                continue
            finally:
                guard_run.run.clock(started)
            if verdict is not None and not verdict.passed:
                # Text already sent cannot be rewritten: a failing whole-text verdict ends the stream.
                raise guard_run.run.blocked(verdict.reason, SUBJECT)
        if self.held_terminal is not None:
            out.append(self.held_terminal)
            self.held_terminal = None
        return self._finalized(out)

    def released_text(self, key: tuple) -> str | None:
        """Everything the client was sent on one channel (None: no such channel)."""
        channel = self.channels.get(key)
        return "".join(channel.released) if channel is not None else None

    def _finalized(self, events: list[dict]) -> list[dict]:
        for event in events:
            self.format.finalize(event, self.released_text)
        return events
