"""Request checks for the unified (OpenAI-shaped) routes, and the `stream` flag the native routes relay by:
cheap, hand-written, naming the offending field.

Unknown fields pass through untouched so new OpenAI parameters work without a gateway release.
"""
from __future__ import annotations

from gateway.errors import BadRequest

CHAT_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
_NUMBER = (int, float)


def _fail(message: str, param: str) -> BadRequest:
    return BadRequest(message, param=param, code="invalid_value")


def _check_number(body: dict, name: str, low: float | None = None, high: float | None = None,
                  integer: bool = False) -> None:
    value = body.get(name)
    if value is None:
        return
    kinds = int if integer else _NUMBER
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise _fail(f"'{name}' must be {'an integer' if integer else 'a number'}.", name)
    if low is not None and value < low:
        raise _fail(f"'{name}' must be >= {low}.", name)
    if high is not None and value > high:
        raise _fail(f"'{name}' must be <= {high}.", name)


def endpoint_name_from(body: dict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required and must name a gateway endpoint.", param="model", code="missing_model")
    return model


def wants_stream(body: dict) -> bool:
    """Whether the body asks for a streamed answer. The gateway relays the answer by it, so a `stream` that
    is not a boolean (which a provider might read either way) is refused, naming the field."""
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _fail("'stream' must be a boolean.", "stream")
    return stream is True


def check_chat(body: dict) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _fail("'messages' must be a non-empty array.", "messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _fail(f"messages[{index}] must be an object.", f"messages[{index}]")
        role = message.get("role")
        if not isinstance(role, str) or role not in CHAT_ROLES:
            raise _fail(f"messages[{index}].role must be one of {sorted(CHAT_ROLES)}.", f"messages[{index}].role")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise _fail(f"messages[{index}].content must be a string or an array of parts.",
                        f"messages[{index}].content")
        for number, part in enumerate(content if isinstance(content, list) else ()):
            _check_part(part, f"messages[{index}].content[{number}]")
        tool_calls = message.get("tool_calls")
        if tool_calls is not None and not (isinstance(tool_calls, list)
                                           and all(isinstance(call, dict) for call in tool_calls)):
            raise _fail(f"messages[{index}].tool_calls must be an array of objects.", f"messages[{index}].tool_calls")
    wants_stream(body)
    stream_options = body.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise _fail("'stream_options' must be an object.", "stream_options")
    _check_number(body, "temperature", 0, 2)
    _check_number(body, "top_p", 0, 1)
    _check_number(body, "presence_penalty", -2, 2)
    _check_number(body, "frequency_penalty", -2, 2)
    _check_number(body, "max_tokens", 1, integer=True)
    _check_number(body, "max_completion_tokens", 1, integer=True)
    _check_number(body, "n", 1, integer=True)
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, (str, list)):
        raise _fail("'stop' must be a string or an array of strings.", "stop")
    tools = body.get("tools")
    if tools is not None and not (isinstance(tools, list) and all(isinstance(tool, dict) for tool in tools)):
        raise _fail("'tools' must be an array of objects.", "tools")


def _check_part(part: object, param: str) -> None:
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        raise _fail(f"{param} must be an object with a 'type'.", param)
    if part["type"] == "text" and not isinstance(part.get("text"), str):
        raise _fail(f"{param}.text must be a string.", f"{param}.text")


def check_embeddings(body: dict) -> None:
    value = body.get("input")
    ok = isinstance(value, str) or (
        isinstance(value, list) and value and (
            all(isinstance(v, str) for v in value)
            or all(isinstance(v, int) for v in value)
            or all(isinstance(v, list) and all(isinstance(t, int) for t in v) for v in value)
        )
    )
    if not ok:
        raise _fail("'input' must be a string, an array of strings, or token arrays.", "input")
