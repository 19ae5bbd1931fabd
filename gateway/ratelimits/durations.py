"""OpenAI's duration format for x-ratelimit-reset-*: `20ms`, `1s`, `1.5s`, `6m0s`, `1h2m3s`."""
from __future__ import annotations

import math


def openai_duration(ms: float) -> str:
    if ms < 1000:
        return f"{max(0, math.ceil(ms))}ms"
    seconds = math.ceil(ms / 10) / 100  # two decimals, rounded up: a client waiting that long is never early
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{seconds:.2f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text
