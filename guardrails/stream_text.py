"""Where the text is in each streaming wire format, and how to add text to it or end it (the error event
that ends a blocked stream is gateway/envelopes.py's). One small class per format; `StreamFilter` does the
rest the same way for all of them.

Channels are keyed by tuples whose first element is what a closing event closes (a choice index, an
output item, a content block), so "everything of choice 0" is the prefix `(0,)`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from guardrails.text import Slot, canonical, dicts
from providers.wire import Api

Released = Callable[[tuple], "str | None"]


@dataclass(slots=True)
class Piece:
    key: tuple
    slot: Slot


class StreamFormat:
    terminal_types: ClassVar[frozenset[str]] = frozenset()

    def pieces(self, event: dict) -> list[Piece]:
        """The text deltas in this event, in order."""
        raise NotImplementedError

    def closing(self, event: dict) -> list[tuple]:
        """Key prefixes of the channels this event ends (their held text must be released before it)."""
        return []

    def tail_event(self, key: tuple, text: str, template: dict) -> dict:
        """A new event carrying `text` on channel `key`; `template` is the channel's first event."""
        raise NotImplementedError

    def is_terminal(self, event: dict) -> bool:
        """The event that tells the client the stream is complete, held until the whole-text verdicts."""
        return event.get("type") in self.terminal_types

    def finalize(self, event: dict, released: Released) -> None:
        """Last touches on an event about to be sent (summaries repeating the full text)."""


class OpenAIChatStream(StreamFormat):
    """`chat.completion.chunk`s. The `data: [DONE]` terminator is not an event here: relays send it after
    `finish`."""

    def pieces(self, event: dict) -> list[Piece]:
        found = []
        choices = event.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                continue
            index = choice.get("index", 0)
            if isinstance(delta.get("content"), str):
                found.append(Piece((index, "content"), Slot(delta, "content")))
            if "tool_calls" not in delta:
                continue
            for call in dicts(delta["tool_calls"]):
                function = call.get("function")
                if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                    found.append(Piece((index, "tool", call.get("index", 0)), Slot(function, "arguments")))
        return found

    def closing(self, event: dict) -> list[tuple]:
        return [(c.get("index", 0),) for c in dicts(event.get("choices")) if c.get("finish_reason")]

    def tail_event(self, key: tuple, text: str, template: dict) -> dict:
        delta: dict[str, Any] = {"content": text}
        if key[1] == "tool":
            delta = {"tool_calls": [{"index": key[2], "function": {"arguments": text}}]}
        base = {k: template[k] for k in ("id", "object", "created", "model", "system_fingerprint") if k in template}
        return {**base, "choices": [{"index": key[0], "delta": delta, "finish_reason": None}]}


class OpenAIResponsesStream(StreamFormat):
    """Responses API events. Its `.done` events and `response.completed` repeat the full text, so they are
    rewritten with what was actually sent; sequence numbers are renumbered for inserted events."""

    terminal_types = frozenset({"response.completed", "response.incomplete"})

    def __init__(self) -> None:
        self.sequence = 0

    def pieces(self, event: dict) -> list[Piece]:
        kind = event.get("type")
        if kind == "response.output_text.delta" and isinstance(event.get("delta"), str):
            return [Piece((event.get("output_index", 0), event.get("content_index", 0)), Slot(event, "delta"))]
        if kind == "response.function_call_arguments.delta" and isinstance(event.get("delta"), str):
            return [Piece((event.get("output_index", 0), "arguments"), Slot(event, "delta"))]
        return []

    def closing(self, event: dict) -> list[tuple]:
        kind = event.get("type")
        if kind == "response.output_text.done":
            return [(event.get("output_index", 0), event.get("content_index", 0))]
        if kind == "response.function_call_arguments.done":
            return [(event.get("output_index", 0), "arguments")]
        return []

    def tail_event(self, key: tuple, text: str, template: dict) -> dict:
        # `sequence_number` is set by `finalize`, which renumbers every event sent.
        if key[1] == "arguments":
            return {"type": "response.function_call_arguments.delta", "sequence_number": 0,
                    "item_id": template.get("item_id"), "output_index": key[0], "delta": text}
        return {"type": "response.output_text.delta", "sequence_number": 0, "item_id": template.get("item_id"),
                "output_index": key[0], "content_index": key[1], "delta": text}

    def _item(self, item: Any, index: int, released: Released) -> None:
        if not isinstance(item, dict):
            return
        for position, part in enumerate(dicts(item.get("content"))):
            text = released((index, position))
            if text is not None and part.get("type") == "output_text":
                part["text"] = text
        arguments = released((index, "arguments"))
        if arguments is not None and "arguments" in item:
            item["arguments"] = arguments

    def finalize(self, event: dict, released: Released) -> None:
        if "sequence_number" in event:
            event["sequence_number"] = self.sequence
            self.sequence += 1
        kind = event.get("type")
        index = event.get("output_index", 0)
        if kind == "response.output_text.done":
            text = released((index, event.get("content_index", 0)))
            if text is not None:
                event["text"] = text
        elif kind == "response.function_call_arguments.done":
            text = released((index, "arguments"))
            if text is not None:
                event["arguments"] = text
        elif kind == "response.content_part.done" and isinstance(event.get("part"), dict):
            text = released((index, event.get("content_index", 0)))
            if text is not None and event["part"].get("type") == "output_text":
                event["part"]["text"] = text
        elif kind == "response.output_item.done":
            self._item(event.get("item"), index, released)
        elif kind in self.terminal_types and isinstance(event.get("response"), dict):
            for position, item in enumerate(dicts(event["response"].get("output"))):
                self._item(item, position, released)


class AnthropicStream(StreamFormat):
    terminal_types = frozenset({"message_stop"})

    def pieces(self, event: dict) -> list[Piece]:
        if event.get("type") != "content_block_delta" or not isinstance(event.get("delta"), dict):
            return []
        delta, index = event["delta"], event.get("index", 0)
        if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
            return [Piece((index, "text"), Slot(delta, "text"))]
        if delta.get("type") == "input_json_delta" and isinstance(delta.get("partial_json"), str):
            return [Piece((index, "json"), Slot(delta, "partial_json"))]
        return []

    def closing(self, event: dict) -> list[tuple]:
        return [(event.get("index", 0),)] if event.get("type") == "content_block_stop" else []

    def tail_event(self, key: tuple, text: str, template: dict) -> dict:
        delta = {"type": "input_json_delta", "partial_json": text} if key[1] == "json" else \
            {"type": "text_delta", "text": text}
        return {"type": "content_block_delta", "index": key[0], "delta": delta}


class GeminiStream(StreamFormat):
    """`GenerateContentResponse` chunks; the stream has no terminator of its own."""

    def pieces(self, event: dict) -> list[Piece]:
        found = []
        for candidate in dicts(event.get("candidates")):
            content = candidate.get("content")
            parts = content.get("parts") if isinstance(content, dict) else None
            for part in dicts(parts):
                if isinstance(part.get("text"), str):
                    found.append(Piece((candidate.get("index", 0),), Slot(part, "text")))
        return found

    def closing(self, event: dict) -> list[tuple]:
        return [(c.get("index", 0),) for c in dicts(event.get("candidates")) if c.get("finishReason")]

    def tail_event(self, key: tuple, text: str, template: dict) -> dict:
        event = {k: template[k] for k in ("modelVersion", "responseId") if k in template}
        return {"candidates": [{"index": key[0], "content": {"role": "model", "parts": [{"text": text}]}}], **event}


class OpenAIRealtimeStream(StreamFormat):
    """One realtime response's server events: text and audio-transcript deltas are the text (the audio
    itself is not inspected); their `.done` events and `response.done` repeat it, so they are rewritten
    with what was sent. Channels are keyed (item id, content index); `response.done` is the terminal."""

    DELTAS = frozenset({"response.text.delta", "response.output_text.delta", "response.audio_transcript.delta",
                        "response.output_audio_transcript.delta"})
    DONES = {"response.text.done": "text", "response.output_text.done": "text",
             "response.audio_transcript.done": "transcript", "response.output_audio_transcript.done": "transcript"}
    terminal_types = frozenset({"response.done"})

    @staticmethod
    def _key(event: dict) -> tuple:
        return (str(event.get("item_id", "")), event.get("content_index", 0))

    def pieces(self, event: dict) -> list[Piece]:
        if event.get("type") in self.DELTAS and isinstance(event.get("delta"), str):
            return [Piece(self._key(event), Slot(event, "delta"))]
        return []

    def closing(self, event: dict) -> list[tuple]:
        if event.get("type") in self.DONES:
            return [self._key(event)]
        return []

    def tail_event(self, key: tuple, text: str, template: dict) -> dict:
        fields = ("type", "response_id", "item_id", "output_index", "content_index")
        return {**{k: template[k] for k in fields if k in template}, "delta": text}

    def finalize(self, event: dict, released: Released) -> None:
        field = self.DONES.get(event.get("type"))
        if field and isinstance(event.get(field), str):
            sent = released(self._key(event))
            if sent is not None:
                event[field] = sent
        elif event.get("type") == "response.done":
            response = event.get("response")
            for item in dicts(response.get("output")) if isinstance(response, dict) else ():
                for index, part in enumerate(dicts(item.get("content"))):
                    sent = released((str(item.get("id", "")), index))
                    for name in ("text", "transcript"):
                        if sent is not None and isinstance(part.get(name), str):
                            part[name] = sent


_BY_NAME: dict[str, type[StreamFormat]] = {
    Api.OPENAI_CHAT: OpenAIChatStream, Api.OPENAI_RESPONSES: OpenAIResponsesStream,
    Api.ANTHROPIC_MESSAGES: AnthropicStream, Api.GEMINI_GENERATE: GeminiStream,
    Api.OPENAI_REALTIME: OpenAIRealtimeStream,
}


def stream_format(fmt: str) -> StreamFormat:
    """A fresh per-stream instance (some formats keep counters)."""
    cls = _BY_NAME.get(canonical(fmt))
    if cls is None:
        raise ValueError(f"format '{fmt}' has no streaming form")
    return cls()
