"""Fake Amazon Bedrock runtime speaking the real wire format: Converse (JSON), ConverseStream and
InvokeModelWithResponseStream (binary AWS event-stream frames), InvokeModel for Titan embeddings and Claude
Messages bodies, with errors in Bedrock's `{"message"}` envelope. Requests without an `Authorization` header
(bearer API key or SigV4) get Bedrock's 403."""
from __future__ import annotations

import base64
import re
import struct
import uuid
import zlib
from collections import defaultdict, deque
from datetime import datetime
from urllib.parse import unquote

import orjson

from tests.fakes.anthropic import FakeAnthropic, thinking_problem
from tests.fakes.base import FakeUpstream, Recorded, Reply
from tests.fakes.openai import fake_embedding
from tests.fakes.sigv4 import AwsCredentials, sign

CREDENTIAL_SCOPE = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                              r"SignedHeaders=([^,]+), Signature=[0-9a-f]{64}")
# Bedrock's answer to a signature it cannot verify (AWS's common SignatureDoesNotMatch error).
BAD_SIGNATURE = ("The request signature we calculated does not match the signature you provided. Check your AWS "
                 "Secret Access Key and signing method. Consult the service documentation for details.")

EVENT_STREAM = "application/vnd.amazon.eventstream"
USAGE = {"inputTokens": 8, "outputTokens": 7, "cacheReadInputTokens": 3, "cacheWriteInputTokens": 2,
         "totalTokens": 20}
PROMPT_TOKENS = 13  # inputTokens + cache reads + cache writes, as the unified API reports it
ERROR_TYPES = {400: "ValidationException", 403: "AccessDeniedException", 404: "ResourceNotFoundException",
               429: "ThrottlingException", 500: "InternalServerException", 503: "ServiceUnavailableException"}
PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"  # Bedrock pads event payloads with a "p" field


def encode_header(name: str, value: object) -> bytes:
    """One event-stream header; the value type follows the Python type (int is int32, or int64 if large)."""
    raw = name.encode()
    prefix = struct.pack(">B", len(raw)) + raw
    if isinstance(value, bool):
        return prefix + struct.pack(">B", 0 if value else 1)
    if isinstance(value, int):
        if -2**31 <= value < 2**31:
            return prefix + struct.pack(">Bi", 4, value)
        return prefix + struct.pack(">Bq", 5, value)
    if isinstance(value, uuid.UUID):
        return prefix + struct.pack(">B", 9) + value.bytes
    data = value if isinstance(value, bytes) else str(value).encode()
    return prefix + struct.pack(">BH", 6 if isinstance(value, bytes) else 7, len(data)) + data


def encode_frame(headers: dict[str, object], payload: bytes, raw_headers: bytes = b"") -> bytes:
    """A complete frame with correct checksums; `raw_headers` appends pre-encoded headers."""
    encoded = b"".join(encode_header(name, value) for name, value in headers.items()) + raw_headers
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event_frame(event_type: str, payload: dict) -> bytes:
    return encode_frame({":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
                        orjson.dumps(payload))


def exception_frame(exception_type: str, message: str) -> bytes:
    return encode_frame({":exception-type": exception_type, ":content-type": "application/json",
                         ":message-type": "exception"}, orjson.dumps({"message": message}))


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


class FakeBedrock(FakeUpstream):
    """Answers `echo: <last user text>`; with tools offered and a user text turn last, calls the tool that
    toolChoice names (else the first) with `tool_input`. `split_size` re-cuts streamed bytes into pieces of
    that many bytes, so frames arrive split at arbitrary boundaries. With `api_key` set, bearer requests
    must carry it. With `aws_keys` set (access key id -> (secret key, session token or None)), SigV4 requests
    must be signed by one of those keys, checked by recomputing the signature; `signed_by` lists who signed."""

    tool_input = {"city": "Paris"}
    tool_use_id = "tooluse_fake01"
    split_size: int | None = None
    api_key: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self.aws_keys: dict[str, tuple[str, str | None]] = {}
        self.signed_by: list[str] = []
        self.raw_paths: list[bytes] = []
        self._claude = FakeAnthropic()
        self._stream_errors: dict[str, deque[str]] = defaultdict(deque)

    def fail_mid_stream(self, model: str, exception_type: str = "throttlingException") -> None:
        """The next stream for `model` sends an exception frame after its first content event."""
        self._stream_errors[model].append(exception_type)

    def reset(self) -> None:
        super().reset()
        self.raw_paths.clear()
        self._stream_errors.clear()
        self.split_size = None
        self.api_key = None
        self.aws_keys = {}
        self.signed_by.clear()

    async def app(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            self.raw_paths.append(scope.get("raw_path") or scope["path"].encode())
        await super().app(scope, receive, send)

    def model_of(self, request: Recorded) -> str:
        return unquote(request.path.partition("/model/")[2].rpartition("/")[0])

    def error_body(self, status: int, message: str) -> dict:
        return {"message": message}

    def _error(self, status: int, message: str) -> Reply:
        return Reply(status=status, body={"message": message},
                     headers={"x-amzn-errortype": ERROR_TYPES.get(status, "InternalServerException")})

    def respond(self, request: Recorded) -> Reply:
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith(("Bearer ", "AWS4-HMAC-SHA256 ")):
            return self._error(403, "Missing Authentication Token")
        if self.api_key is not None and authorization.startswith("Bearer ") and authorization[7:] != self.api_key:
            return self._error(403, "Invalid API Key format: Must start with pre-defined prefix")
        if self.aws_keys and authorization.startswith("AWS4-HMAC-SHA256 "):
            problem = self._signature_problem(request, authorization)
            if problem:
                return self._error(403, problem)
        body = request.json if isinstance(request.json, dict) else None
        if request.method != "POST" or body is None:
            return self._error(400, "Malformed input request, please reformat your input and try again.")
        model = self.model_of(request)
        operation = request.path.rpartition("/")[2]
        if operation in ("converse", "converse-stream"):
            problem = self._problem(body)
            if problem:
                return self._error(400, problem)
            content, stop_reason = self._answer(body)
            if ((body.get("additionalModelRequestFields") or {}).get("thinking") or {}).get("type") == "enabled":
                content.insert(0, {"reasoningContent": {"reasoningText": {"text": "Hmm.", "signature": "sig"}}})
            if operation == "converse":
                return self._converse(content, stop_reason)
            return self._converse_stream(model, content, stop_reason)
        if operation == "invoke" and "titan-embed" in model:
            return self._embed(body)
        if operation in ("invoke", "invoke-with-response-stream") and "anthropic." in model:
            if body.get("anthropic_version") != "bedrock-2023-05-31" or "model" in body or "stream" in body:
                return self._error(400, "Malformed input request: #: extraneous key [model] is not permitted")
            if operation == "invoke":
                return Reply(body=self._claude.message({**body, "model": model}).body)
            return self._anthropic_stream({**body, "model": model})
        return self._error(404, f"no operation {operation} for model {model}")

    def _signature_problem(self, request: Recorded, authorization: str) -> str | None:
        match = CREDENTIAL_SCOPE.fullmatch(authorization)
        if match is None:
            return "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters."
        key_id, _, region, service, signed = match.groups()
        if key_id not in self.aws_keys:
            return "The security token included in the request is invalid."
        secret, token = self.aws_keys[key_id]
        if request.headers.get("x-amz-security-token") != token:
            return "The security token included in the request is invalid."
        when = datetime.strptime(request.headers.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ")
        headers = {name: request.headers.get(name, "") for name in signed.split(";")
                   if name not in ("x-amz-date", "x-amz-security-token")}
        expected = sign(request.method, request.raw_path, request.query, headers, request.body,
                        AwsCredentials(key_id, secret, token), region, service, when)
        if expected["authorization"] != authorization:
            return BAD_SIGNATURE
        self.signed_by.append(key_id)
        return None

    # -- Converse ---------------------------------------------------------------------------------
    @staticmethod
    def _problem(body: dict) -> str | None:
        """The checks Bedrock makes that a translation bug would trip."""
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "The model returned the following errors: messages: at least one message is required"
        thinking = (body.get("additionalModelRequestFields") or {}).get("thinking")
        said = [m["content"] for m in messages if m.get("role") == "assistant" and m.get("content")]
        called = bool(said) and any("toolUse" in block for block in said[-1])
        problem = thinking_problem(thinking, (body.get("inferenceConfig") or {}).get("maxTokens"),
                                   not called or "reasoningContent" in said[-1][0])
        if problem:
            return f"The model returned the following errors: {problem}"
        if messages[0].get("role") != "user":
            return "A conversation must start with a user message."
        for i, message in enumerate(messages):
            if i and message.get("role") == messages[i - 1].get("role"):
                return "A conversation must alternate between user and assistant roles."
            if not message.get("content"):
                return f"The content field in the Message object at messages.{i} is empty."
            for block in message["content"]:
                if "text" in block and not block["text"].strip():
                    return "The text field in the ContentBlock object is blank."
                if ("toolUse" in block or "toolResult" in block) and "toolConfig" not in body:
                    return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        return None

    def _answer(self, body: dict) -> tuple[list[dict], str]:
        tools = (body.get("toolConfig") or {}).get("tools") or []
        last = body["messages"][-1]
        if tools and last["role"] == "user" and any("text" in block for block in last["content"]):
            choice = (body["toolConfig"].get("toolChoice") or {}).get("tool") or {}
            name = choice.get("name") or tools[0]["toolSpec"]["name"]
            return [{"toolUse": {"toolUseId": self.tool_use_id, "name": name, "input": self.tool_input}}], "tool_use"
        texts = [block["text"] for block in last["content"] if "text" in block]
        return [{"text": f"echo: {' '.join(texts)}"}], "end_turn"

    def _converse(self, content: list[dict], stop_reason: str) -> Reply:
        return Reply(body={"output": {"message": {"role": "assistant", "content": content}},
                           "stopReason": stop_reason, "usage": USAGE, "metrics": {"latencyMs": 12}})

    def _converse_stream(self, model: str, content: list[dict], stop_reason: str) -> Reply:
        frames = [event_frame("messageStart", {"role": "assistant", "p": PADDING})]
        index = 0
        if "reasoningContent" in content[0]:
            reasoning = content.pop(0)["reasoningContent"]["reasoningText"]
            frames += [event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": delta}})
                       for delta in ({"text": reasoning["text"]}, {"signature": reasoning["signature"]})]
            frames.append(event_frame("contentBlockStop", {"contentBlockIndex": 0}))
            index = 1
        block = content[0]
        if "toolUse" in block:
            use = block["toolUse"]
            frames.append(event_frame("contentBlockStart", {"contentBlockIndex": index, "start": {
                "toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}, "p": PADDING}))
            arguments = orjson.dumps(use["input"]).decode()
            half = len(arguments) // 2
            deltas = [{"toolUse": {"input": part}} for part in (arguments[:half], arguments[half:])]
        else:
            words = block["text"].split(" ")
            deltas = [{"text": word if i == 0 else " " + word} for i, word in enumerate(words)]
        frames += [event_frame("contentBlockDelta", {"contentBlockIndex": index, "delta": delta, "p": PADDING})
                   for delta in deltas]
        if self._stream_errors.get(model):
            del frames[2:]
            frames.append(exception_frame(self._stream_errors[model].popleft(), "Too many tokens, please wait."))
        frames.append(event_frame("contentBlockStop", {"contentBlockIndex": index, "p": PADDING}))
        frames.append(event_frame("messageStop", {"stopReason": stop_reason, "p": PADDING}))
        frames.append(event_frame("metadata", {"usage": USAGE, "metrics": {"latencyMs": 12}, "p": PADDING}))
        return self._stream_reply(frames)

    def _stream_reply(self, frames: list[bytes]) -> Reply:
        chunks = split(b"".join(frames), self.split_size) if self.split_size else frames
        return Reply(chunks=chunks, content_type=EVENT_STREAM)

    # -- InvokeModel --------------------------------------------------------------------------------
    def _embed(self, body: dict) -> Reply:
        text = body.get("inputText")
        if not isinstance(text, str) or not text:
            return self._error(400, "Malformed input request: #: required key [inputText] not found")
        return Reply(body={"embedding": fake_embedding(text, body.get("dimensions") or 8),
                           "inputTextTokenCount": len(text.split())})

    def _anthropic_stream(self, body: dict) -> Reply:
        """The Messages SSE events of the fake Anthropic API, each wrapped as Bedrock does: a `chunk` event
        whose payload carries the event JSON base64-encoded in `bytes`."""
        frames = []
        for sse_chunk in self._claude.stream(body).chunks:
            data = next(line[6:] for line in sse_chunk.decode().splitlines() if line.startswith("data: "))
            frames.append(event_frame("chunk", {"bytes": base64.b64encode(data.encode()).decode(), "p": PADDING}))
        return self._stream_reply(frames)
