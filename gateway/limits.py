"""Limits every client body must respect before any work is done for it: how deeply its JSON nests and the
range of the token and choice counts that size the answer (and the budget estimate).

A body the JSON parser accepts can still be one the gateway cannot handle: orjson parses 1,024 levels but
serialises only 254, and a count of 2**63 overflows the budget counters. Refusing both here, with a 400
naming what is wrong, keeps such bodies from ever reaching a provider or a counter.
"""
from __future__ import annotations

from gateway.errors import BadRequest

# Deep enough for any real request (JSON schemas for structured output and tool parameters nest a few dozen
# levels at most), shallow enough that the gateway's own wrapping of a body stays far under orjson's 254.
MAX_JSON_DEPTH = 128

# Providers count tokens and choices in 32-bit integers; anything above cannot be a real request.
MAX_COUNT = 2**31 - 1

# The counts that size an answer, top level (OpenAI, Anthropic) and in Gemini's generation config.
COUNT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens", "n")
GEMINI_COUNT_FIELDS = ("maxOutputTokens", "max_output_tokens", "candidateCount", "candidate_count")
GEMINI_CONFIGS = ("generationConfig", "generation_config")


def check_body(body: object) -> None:
    """Raise BadRequest when `body` nests deeper than MAX_JSON_DEPTH or carries an out-of-range count."""
    check_depth(body)
    if isinstance(body, dict):
        _check_counts(body, COUNT_FIELDS, "")
        for name in GEMINI_CONFIGS:
            config = body.get(name)
            if isinstance(config, dict):
                _check_counts(config, GEMINI_COUNT_FIELDS, f"{name}.")


def check_depth(body: object) -> None:
    """Containers nested more than MAX_JSON_DEPTH levels deep are refused. Iterative (no recursion limit to
    hit), and only containers are pushed, so a chat body costs a few dozen steps."""
    stack: list[tuple[object, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise BadRequest(f"The request body nests JSON more than {MAX_JSON_DEPTH} levels deep.",
                             code="json_too_deep")
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def _check_counts(body: dict, names: tuple[str, ...], prefix: str) -> None:
    for name in names:
        value = body.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not 0 <= value <= MAX_COUNT:
            raise BadRequest(f"'{prefix}{name}' must be between 0 and {MAX_COUNT}.", param=f"{prefix}{name}",
                             code="invalid_value")
