"""Reading the unified (OpenAI) chat request for translators: the walk from messages to system text and
alternating turns that Anthropic Messages and Bedrock Converse share, and the field and content-part rules
several translators apply alike. Pure: no I/O, no Django."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from providers.base import TranslationError

JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object only, with no text before or after it."
TOOL_CHOICE_FORMS = "tool_choice must be 'none', 'auto', 'required' or {'type': 'function', 'function': {'name': ...}}."


def conversation(request: dict, provider: str, *, system: Callable[[object, str], list[dict]],
                 user: Callable[[object, str], Any], assistant: Callable[[dict, str], Any],
                 tool: Callable[[dict, str], dict], append: Callable[[list[dict], str, Any], None],
                 ) -> tuple[list[dict], list[dict]]:
    """(system blocks, turns) for a provider that answers with one choice and takes system text apart from
    the conversation.

    System and developer messages, wherever they appear, become system blocks; user and assistant messages
    become turns of their role, and a tool result travels in a user turn. The callables build the provider's
    blocks for each kind of message (`where` names the message in errors); `append` adds content to the
    turns, merging it into the last turn when the roles match, since these providers require user and
    assistant turns to alternate.
    """
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise TranslationError("messages must be a non-empty list.")
    system_blocks: list[dict] = []
    turns: list[dict] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise TranslationError(f"{where} must be an object.")
        role = message.get("role")
        if role in ("system", "developer"):
            system_blocks.extend(system(message.get("content"), where))
        elif role == "user":
            append(turns, "user", user(message.get("content"), where))
        elif role == "assistant":
            append(turns, "assistant", assistant(message, where))
        elif role == "tool":
            append(turns, "user", [tool(message, where)])
        else:
            raise TranslationError(f"{where}.role '{role}' is not supported for {provider} models.")
    return system_blocks, turns


# -- request fields ------------------------------------------------------------------------------

def max_tokens(request: dict) -> int | None:
    """`max_completion_tokens`, else the older `max_tokens`: a positive integer, or None when neither is set."""
    for field in ("max_completion_tokens", "max_tokens"):
        value = request.get(field)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TranslationError(f"{field} must be a positive integer.")
            return value
    return None


# OpenAI's reasoning effort as a thinking budget in tokens, for providers that take a budget and publish no
# mapping of their own (Claude, Cohere): at least Claude's minimum of 1024, and small enough to leave room
# for the answer within the smallest Claude output limit (32000 tokens). `none` switches thinking off.
REASONING_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 24576}


def reasoning_budget(request: dict, provider: str) -> int | None:
    """The thinking budget for `reasoning_effort`: None for `none`; a 400 for a value OpenAI does not define."""
    effort = request["reasoning_effort"]
    if effort == "none":
        return None
    if effort not in REASONING_BUDGETS:
        raise TranslationError(f"reasoning_effort must be one of none, {', '.join(REASONING_BUDGETS)} for {provider} "
                               "models.")
    return REASONING_BUDGETS[effort]


def unit_temperature(request: dict) -> float | None:
    """`temperature` from OpenAI's 0..2 scale onto the 0..1 scale of Anthropic models, so a model answers
    alike through any provider; None when not set."""
    temperature = request.get("temperature")
    if temperature is None:
        return None
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
        raise TranslationError("temperature must be a number between 0 and 2.")
    return temperature / 2


def stop_sequences(request: dict) -> list | None:
    """`stop` (one string or a list of them) as a list; None when not set."""
    stop = request.get("stop")
    if not stop:
        return None
    return [stop] if isinstance(stop, str) else list(stop)


def response_format_type(fmt: object) -> str:
    """`response_format.type`, one of the three OpenAI defines."""
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise TranslationError("response_format.type must be 'text', 'json_object' or 'json_schema'.")
    return kind


# -- content parts -------------------------------------------------------------------------------

def image_url(image: object, where: str) -> str:
    """The URL of an `image_url` part's value: an object with `url`, or the URL itself."""
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise TranslationError(f"{where}.image_url.url must be a string.")
    return url


def split_data_url(url: str) -> tuple[list[str], str] | None:
    """A `data:` URL's header fields (its media type, then parameters such as `base64`) and its payload;
    None when it has no comma, which every data URL needs."""
    header, comma, data = url[len("data:"):].partition(",")
    return (header.split(";"), data) if comma else None


def base64_data_url(url: str) -> tuple[str, str] | None:
    """(media type, payload) of a `data:<media type>;base64,<payload>` URL with no other parameter (the media
    type may be empty); None for any other data URL."""
    split = split_data_url(url)
    if split is None or split[0][1:] != ["base64"]:
        return None
    return split[0][0], split[1]


# -- tools ---------------------------------------------------------------------------------------

def function_tool(tool: object, index: int, provider: str) -> dict:
    """The `function` of `tools[index]`, which must be a function tool with a name."""
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(tool, dict) or tool.get("type", "function") != "function" or not isinstance(function, dict):
        raise TranslationError(f"tools[{index}]: only function tools are supported for {provider} models.")
    if not function.get("name"):
        raise TranslationError(f"tools[{index}].function.name is required.")
    return function


def tool_parameters(function: dict) -> dict:
    """The JSON Schema of a function's arguments; a function without one takes an empty object."""
    return function.get("parameters") or {"type": "object", "properties": {}}


def forced_function(choice: object) -> Any:
    """The function name a `{'type': 'function', 'function': {'name': ...}}` tool_choice forces; None for any
    other choice."""
    if isinstance(choice, dict) and choice.get("type") == "function":
        return (choice.get("function") or {}).get("name") or None
    return None


def refuse_forced_tool_without_tools(choice: object) -> None:
    """For a request that offers no tools: a tool_choice that demands a call cannot be honoured."""
    if choice == "required" or isinstance(choice, dict):
        raise TranslationError("tool_choice requires a tool, but the request offers no tools.")


def tool_arguments(function: dict) -> dict | None:
    """A tool call's `function.arguments` decoded: a JSON object encoded as a string, where no arguments at all
    mean a call without parameters. None when they are anything else."""
    raw = function.get("arguments") or ""
    try:
        arguments = orjson.loads(raw) if not isinstance(raw, str) or raw.strip() else {}
    except orjson.JSONDecodeError:
        return None
    return arguments if isinstance(arguments, dict) else None
