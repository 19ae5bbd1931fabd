"""The OpenTelemetry GenAI semantic conventions' vocabulary for what the gateway knows: operation names
per route, the well-known provider names, and the request parameters read from each API's body."""
from __future__ import annotations

# gen_ai.provider.name: the conventions' well-known values where one exists, else the gateway's own name.
PROVIDER_NAMES = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "mistral": "mistral_ai",
    "groq": "groq",
    "deepseek": "deepseek",
    "xai": "x_ai",
}

# gen_ai.operation.name by the gateway's route names (gateway/views/*.py).
OPERATIONS = {
    "unified/chat": "chat",
    "unified/embeddings": "embeddings",
    "passthrough/openai-chat": "chat",
    "passthrough/openai-embeddings": "embeddings",
    "passthrough/openai-responses": "chat",
    "passthrough/anthropic-messages": "chat",
    "passthrough/anthropic-count-tokens": "count_tokens",
    "passthrough/gemini-generate": "generate_content",
    "passthrough/gemini-stream": "generate_content",
}

# (attribute, body field) pairs; Gemini keeps them under generationConfig with its own names.
_PARAMETERS = (
    ("gen_ai.request.max_tokens", "max_tokens"),
    ("gen_ai.request.max_tokens", "max_completion_tokens"),
    ("gen_ai.request.max_tokens", "max_output_tokens"),
    ("gen_ai.request.temperature", "temperature"),
    ("gen_ai.request.top_p", "top_p"),
    ("gen_ai.request.top_k", "top_k"),
    ("gen_ai.request.frequency_penalty", "frequency_penalty"),
    ("gen_ai.request.presence_penalty", "presence_penalty"),
    ("gen_ai.request.seed", "seed"),
)
_GEMINI_PARAMETERS = (
    ("gen_ai.request.max_tokens", "maxOutputTokens"),
    ("gen_ai.request.temperature", "temperature"),
    ("gen_ai.request.top_p", "topP"),
    ("gen_ai.request.top_k", "topK"),
    ("gen_ai.request.seed", "seed"),
)


def provider_name(provider: str) -> str:
    return PROVIDER_NAMES.get(provider, provider)


def operation(route: str) -> str:
    return OPERATIONS.get(route, "chat")


def request_parameters(body: dict | None) -> dict:
    """gen_ai.request.* attributes from a request body of any of the gateway's APIs."""
    if not isinstance(body, dict):
        return {}
    source, pairs = body, _PARAMETERS
    if isinstance(body.get("generationConfig"), dict):
        source, pairs = body["generationConfig"], _GEMINI_PARAMETERS
    found = {}
    for attribute, name in pairs:
        value = source.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            found[attribute] = value
    stop = source.get("stop") or source.get("stop_sequences") or source.get("stopSequences")
    if isinstance(stop, str):
        stop = [stop]
    if isinstance(stop, list) and all(isinstance(item, str) for item in stop):
        found["gen_ai.request.stop_sequences"] = stop
    return found


def finish_reasons(answer: object) -> list[str]:
    """Why the answer ended, in OpenAI chat, Anthropic Messages or Gemini shape (empty when unknown)."""
    if not isinstance(answer, dict):
        return []
    reasons = [choice.get("finish_reason") for choice in answer.get("choices") or () if isinstance(choice, dict)]
    if not reasons and answer.get("stop_reason"):
        reasons = [answer["stop_reason"]]
    if not reasons:
        reasons = [c.get("finishReason") for c in answer.get("candidates") or () if isinstance(c, dict)]
    if not reasons and answer.get("status") and answer.get("object") == "response":
        reasons = [answer["status"]]
    return [str(reason) for reason in reasons if reason]


def input_messages(body: object) -> list | None:
    """The request's messages as its API wrote them (OpenAI/Anthropic `messages`, Gemini `contents`,
    Responses or embeddings `input`), with a system prompt kept apart by the API put first."""
    if not isinstance(body, dict):
        return None
    messages = body.get("messages") or body.get("contents") or body.get("input")
    if messages is None:
        return None
    if not isinstance(messages, list):
        messages = [{"role": "user", "content": messages}]
    system = body.get("system") or body.get("systemInstruction") or body.get("instructions")
    return [{"role": "system", "content": system}, *messages] if system else messages


def output_messages(answer: object) -> list | None:
    """The answer's messages: OpenAI choices, an Anthropic message, Gemini candidates or Responses output."""
    if not isinstance(answer, dict):
        return None
    if answer.get("choices"):
        return [{**(choice.get("message") or {}), "finish_reason": choice.get("finish_reason")}
                for choice in answer["choices"] if isinstance(choice, dict)]
    if answer.get("type") == "message":
        return [{"role": answer.get("role", "assistant"), "content": answer.get("content"),
                 "finish_reason": answer.get("stop_reason")}]
    if answer.get("candidates"):
        return [candidate.get("content") for candidate in answer["candidates"] if isinstance(candidate, dict)]
    if answer.get("object") == "response":
        return answer.get("output")
    return None
