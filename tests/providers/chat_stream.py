"""Reading an adapter's unified chat stream in adapter tests."""
from __future__ import annotations

from providers.base import CallStats, ProviderAdapter


async def collect(adapter: ProviderAdapter, request: dict) -> list[dict]:
    return [chunk async for chunk in adapter.chat_stream(request, CallStats())]


def text_of(chunks: list[dict]) -> str:
    """The answer text the chunks carry, the closing usage chunk (no choices) left out."""
    return "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
