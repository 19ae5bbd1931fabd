"""Fake Anthropic upstream speaking the Messages wire format: POST /v1/messages (JSON or SSE stream) and
POST /v1/messages/count_tokens, with errors in Anthropic's envelope."""
from __future__ import annotations

from collections import defaultdict, deque

import orjson

from tests.fakes.base import FakeUpstream, Recorded, Reply, sse

INPUT_TOKENS = 8
CACHE_READ_TOKENS = 3
OUTPUT_TOKENS = 7
PROMPT_TOKENS = INPUT_TOKENS + CACHE_READ_TOKENS  # what the unified API reports as prompt_tokens

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}


def last_user_text(messages: list[dict]) -> str:
    """Text of the last user turn that has any: a turn of only tool_result blocks answers the question
    asked before it."""
    for message in reversed(messages or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        text = content if isinstance(content, str) else " ".join(
            b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text")
        if text:
            return text
    return ""


def thinking_problem(thinking: object, max_tokens: object, last_assistant_starts_with_thinking: bool = True
                     ) -> str | None:
    """Anthropic's rules for extended thinking (anthropic 2.17.0, `ThinkingConfigEnabledParam`): a budget of at
    least 1024 tokens, less than max_tokens; in a tool loop, the last assistant turn starts with its thinking."""
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None
    if not last_assistant_starts_with_thinking:
        return ("Expected `thinking` or `redacted_thinking`, but found `tool_use`. When `thinking` is enabled, a "
                "final `assistant` message must start with a thinking block.")
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget < 1024:
        return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    if not isinstance(max_tokens, int) or budget >= max_tokens:
        return "`max_tokens` must be greater than `thinking.budget_tokens`."
    return None


def _starts_with_thinking(body: dict) -> bool:
    """Whether the last assistant turn, when it called tools, starts with a thinking block."""
    turns = [m for m in body.get("messages") or [] if m.get("role") == "assistant"]
    content = turns[-1].get("content") if turns else None
    if not isinstance(content, list) or not any(block.get("type") == "tool_use" for block in content):
        return True
    return content[0].get("type") in ("thinking", "redacted_thinking")


class FakeAnthropic(FakeUpstream):
    """Answers `echo: <last user text>`; with tools offered (tool_choice not none) and a last turn of user
    text, calls the first tool with `tool_input` instead. With thinking enabled, a thinking block (and its
    signature) comes first, as Claude sends it."""

    tool_input = {"city": "Paris"}
    message_id = "msg_fake01"
    tool_use_id = "toolu_fake01"

    def __init__(self) -> None:
        super().__init__()
        self._stream_errors: dict[str, deque[dict]] = defaultdict(deque)

    def fail_mid_stream(self, model: str, error_type: str = "overloaded_error", message: str = "Overloaded") -> None:
        """The next stream for `model` sends an in-stream `error` event after its first text delta, as
        Anthropic does when it is overloaded after the response has started."""
        self._stream_errors[model].append({"type": error_type, "message": message})

    def reset(self) -> None:
        super().reset()
        self._stream_errors.clear()

    def respond(self, request: Recorded) -> Reply:
        body = request.json if isinstance(request.json, dict) else {}
        if request.method == "POST" and request.path.endswith("/messages/count_tokens"):
            return Reply(body={"input_tokens": PROMPT_TOKENS})
        if request.method == "POST" and request.path.endswith("/messages"):
            missing = [key for key in ("model", "max_tokens", "messages") if key not in body]
            if missing:
                return Reply(status=400, body=self.error_body(400, f"{missing[0]}: Field required"))
            problem = thinking_problem(body.get("thinking"), body.get("max_tokens"), _starts_with_thinking(body))
            if problem:
                return Reply(status=400, body=self.error_body(400, problem))
            return self.stream(body) if body.get("stream") else self.message(body)
        return Reply(status=404, body=self.error_body(404, f"no route {request.method} {request.path}"))

    def error_body(self, status: int, message: str) -> dict:
        return {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message}}

    def _calls_tool(self, body: dict) -> bool:
        messages = body.get("messages") or []
        if not body.get("tools") or (body.get("tool_choice") or {}).get("type") == "none" or not messages:
            return False
        last = messages[-1]
        content = last.get("content")
        blocks = content if isinstance(content, list) else [{"type": "text"}]
        return last.get("role") == "user" and all(b.get("type") != "tool_result" for b in blocks)

    def _usage(self, output_tokens: int) -> dict:
        return {"input_tokens": INPUT_TOKENS, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": CACHE_READ_TOKENS, "output_tokens": output_tokens}

    def message(self, body: dict) -> Reply:
        if self._calls_tool(body):
            content = [{"type": "tool_use", "id": self.tool_use_id, "name": body["tools"][0]["name"],
                        "input": self.tool_input}]
            stop_reason = "tool_use"
        else:
            content = [{"type": "text", "text": f"echo: {last_user_text(body['messages'])}"}]
            stop_reason = "end_turn"
        if (body.get("thinking") or {}).get("type") == "enabled":
            content.insert(0, {"type": "thinking", "thinking": "Thinking it over.", "signature": "sig_fake"})
        return Reply(body={"id": self.message_id, "type": "message", "role": "assistant", "model": body["model"],
                           "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                           "usage": self._usage(OUTPUT_TOKENS)})

    def stream(self, body: dict) -> Reply:
        start = {"id": self.message_id, "type": "message", "role": "assistant", "model": body["model"],
                 "content": [], "stop_reason": None, "stop_sequence": None, "usage": self._usage(1)}
        events = [("message_start", {"message": start})]
        if self._calls_tool(body):
            block = {"type": "tool_use", "id": self.tool_use_id, "name": body["tools"][0]["name"], "input": {}}
            arguments = orjson.dumps(self.tool_input).decode()
            half = len(arguments) // 2
            deltas = [{"type": "input_json_delta", "partial_json": part}
                      for part in ("", arguments[:half], arguments[half:])]
            stop_reason = "tool_use"
        else:
            block = {"type": "text", "text": ""}
            words = f"echo: {last_user_text(body['messages'])}".split(" ")
            deltas = [{"type": "text_delta", "text": word if i == 0 else " " + word} for i, word in enumerate(words)]
            stop_reason = "end_turn"
        index = 0
        if (body.get("thinking") or {}).get("type") == "enabled":
            events += [("content_block_start", {"index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
                       ("content_block_delta", {"index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm."}}),
                       ("content_block_delta", {"index": 0, "delta": {"type": "signature_delta", "signature": "sig"}}),
                       ("content_block_stop", {"index": 0})]
            index = 1
        events.append(("content_block_start", {"index": index, "content_block": block}))
        events.append(("ping", {}))
        events += [("content_block_delta", {"index": index, "delta": delta}) for delta in deltas]
        if self._stream_errors.get(body["model"]):
            events[4:] = [("error", {"error": self._stream_errors[body["model"]].popleft()})]
        events.append(("content_block_stop", {"index": index}))
        events.append(("message_delta", {"delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                         "usage": {"output_tokens": OUTPUT_TOKENS}}))
        events.append(("message_stop", {}))
        return Reply(chunks=[sse({"type": name, **data}, event=name) for name, data in events],
                     content_type="text/event-stream")
