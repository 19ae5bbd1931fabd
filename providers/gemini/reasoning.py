"""OpenAI's `reasoning_effort` and `logprobs` in Gemini's terms, both ways: the `generationConfig` fields a
request sets, and the `logprobsResult` of an answer as OpenAI's `choices[].logprobs`. Pure, no I/O.

Field names follow the official SDK (google-genai 3.6.1, `types.ThinkingConfig`, `types.ThinkingLevel`,
`GenerateContentConfig.response_logprobs` / `logprobs`, `types.LogprobsResult`), in their REST spelling.
"""
from __future__ import annotations

import re
from typing import Any

from providers.base import TranslationError

# Gemini 2.5 and earlier take a budget in tokens (0 switches thinking off). low, medium and high are the
# budgets Google's OpenAI-compatible endpoint documents (https://ai.google.dev/gemini-api/docs/openai#thinking);
# minimal is the gateway's own, half of low.
THINKING_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
# Gemini 3 and later take a level instead. Their thinking cannot be switched off: `none` asks for the least.
THINKING_LEVELS = {"none": "MINIMAL", "minimal": "MINIMAL", "low": "LOW", "medium": "MEDIUM", "high": "HIGH",
                   "xhigh": "XHIGH"}
_GENERATION = re.compile(r"(?:.*/)?gemini-(\d+)")


def thinking_config(effort: Any, model_name: str) -> dict:
    """`generationConfig.thinkingConfig` for a reasoning effort on this model."""
    generation = _GENERATION.match(model_name)
    levels = generation is not None and int(generation.group(1)) >= 3
    choices = THINKING_LEVELS if levels else THINKING_BUDGETS
    if effort not in choices:
        raise TranslationError(f"reasoning_effort must be one of {', '.join(choices)} for {model_name or 'Gemini'} "
                               "models.")
    return {"thinkingLevel": choices[effort]} if levels else {"thinkingBudget": choices[effort]}


def logprobs_config(request: dict) -> dict:
    """`responseLogprobs` for `logprobs: true`, and `logprobs` (how many alternatives per token) for
    `top_logprobs`, which OpenAI takes only together with `logprobs`."""
    if not request.get("logprobs"):
        if request.get("top_logprobs"):
            raise TranslationError("top_logprobs: requires logprobs to be true.")
        return {}
    config: dict[str, Any] = {"responseLogprobs": True}
    if request.get("top_logprobs") is not None:
        config["logprobs"] = request["top_logprobs"]
    return config


def _token(candidate: dict) -> dict:
    token = candidate.get("token") or ""
    return {"token": token, "logprob": candidate.get("logProbability", 0.0), "bytes": list(token.encode())}


def choice_logprobs(candidate: dict) -> dict | None:
    """OpenAI's `{"content": [...], "refusal": None}` for a candidate's `logprobsResult`: one entry per chosen
    token, with the alternatives Gemini reports at that step as `top_logprobs`; None without a result."""
    result = candidate.get("logprobsResult")
    if not isinstance(result, dict):
        return None
    tops = result.get("topCandidates") or []
    content = []
    for position, chosen in enumerate(result.get("chosenCandidates") or []):
        alternatives = (tops[position].get("candidates") or []) if position < len(tops) else []
        content.append({**_token(chosen), "top_logprobs": [_token(other) for other in alternatives]})
    return {"content": content, "refusal": None}
