"""Incremental decoder for AWS's binary event-stream framing (`application/vnd.amazon.eventstream`), in which
Bedrock sends ConverseStream and InvokeModelWithResponseStream answers.

A frame is: total length (uint32, big-endian) | headers length (uint32) | CRC32 of those 8 bytes |
headers | payload | CRC32 of everything before it. A header is a 1-byte name length, the name, a 1-byte
value type and the value. Network chunks split frames anywhere, so bytes are buffered until a frame is
whole; both checksums are verified, since a corrupt length would otherwise desynchronise the rest.
"""
from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass

import orjson

from providers.base import ProviderError

PRELUDE_LENGTH = 12
MIN_FRAME_LENGTH = PRELUDE_LENGTH + 4
# AWS caps a payload at 16 MiB and headers at 128 KiB; anything larger is a corrupt length, refused
# before it makes the decoder buffer without bound.
MAX_FRAME_LENGTH = 16 * 1024 * 1024 + 128 * 1024 + MIN_FRAME_LENGTH

_FIXED_TYPES = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}
# In-stream exceptions Bedrock may send after the HTTP 200: the status a client should see, and whether
# another attempt can succeed.
_EXCEPTIONS = {"throttlingException": (429, True), "validationException": (400, False),
               "serviceUnavailableException": (503, True)}


def malformed(detail: str) -> ProviderError:
    return ProviderError(502, f"Provider 'bedrock' sent a malformed event stream: {detail}.", retryable=True,
                         error_type="malformed_stream")


@dataclass(frozen=True)
class Message:
    headers: dict[str, object]
    payload: bytes


class EventStreamDecoder:
    """Feed raw bytes as they arrive; get back the frames they complete. `pending` tells how many bytes of
    an unfinished frame are buffered (non-zero at the end of a response means it was cut)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        messages = []
        while len(self._buffer) >= PRELUDE_LENGTH:
            total, headers_length, prelude_crc = struct.unpack_from(">III", self._buffer)
            if zlib.crc32(self._buffer[:8]) != prelude_crc:
                raise malformed("prelude checksum mismatch")
            if not MIN_FRAME_LENGTH <= total <= MAX_FRAME_LENGTH or headers_length > total - MIN_FRAME_LENGTH:
                raise malformed(f"impossible frame length {total}")
            if len(self._buffer) < total:
                break
            frame = bytes(self._buffer[:total])
            del self._buffer[:total]
            if zlib.crc32(frame[:-4]) != struct.unpack_from(">I", frame, total - 4)[0]:
                raise malformed("message checksum mismatch")
            end = PRELUDE_LENGTH + headers_length
            messages.append(Message(_headers(frame[PRELUDE_LENGTH:end]), frame[end:-4]))
        return messages


def _headers(data: bytes) -> dict[str, object]:
    headers: dict[str, object] = {}
    position = 0
    try:
        while position < len(data):
            name_length = data[position]
            name = data[position + 1:position + 1 + name_length].decode()
            position += 1 + name_length
            kind = data[position]
            position += 1
            if kind in (0, 1):
                value: object = kind == 0
            elif kind in _FIXED_TYPES:
                fmt = _FIXED_TYPES[kind]
                value = struct.unpack_from(fmt, data, position)[0]
                position += struct.calcsize(fmt)
            elif kind in (6, 7):
                (length,) = struct.unpack_from(">H", data, position)
                raw = data[position + 2:position + 2 + length]
                if len(raw) != length:
                    raise malformed("truncated header value")
                value = raw.decode() if kind == 7 else raw
                position += 2 + length
            elif kind == 9:
                value = uuid.UUID(bytes=data[position:position + 16])
                position += 16
            else:
                raise malformed(f"unknown header value type {kind}")
            headers[name] = value
    except (IndexError, struct.error, ValueError, UnicodeDecodeError):
        raise malformed("unreadable headers") from None
    return headers


def event_of(message: Message) -> tuple[str, dict]:
    """(event type, JSON payload) of an event frame; exception and error frames raise ProviderError with
    the status and retryability Bedrock's exception type implies."""
    kind = message.headers.get(":message-type")
    if kind == "event":
        try:
            payload = orjson.loads(message.payload) if message.payload else {}
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            raise malformed("an event payload is not a JSON object")
        return str(message.headers.get(":event-type", "")), payload
    if kind == "exception":
        name = str(message.headers.get(":exception-type", "exception"))
        try:
            detail = orjson.loads(message.payload).get("message") or ""
        except (orjson.JSONDecodeError, AttributeError):
            detail = message.payload[:300].decode("utf-8", "replace")
        status, retryable = _EXCEPTIONS.get(name, (502, True))
        raise ProviderError(status, f"Provider 'bedrock' stream error: {name}: {detail}", retryable=retryable,
                            error_type="upstream_stream_error")
    if kind == "error":
        raise ProviderError(502, f"Provider 'bedrock' stream error: {message.headers.get(':error-code')}: "
                                 f"{message.headers.get(':error-message')}", retryable=True,
                            error_type="upstream_stream_error")
    raise malformed(f"unknown message type {kind!r}")
