"""What one realtime response used and cost: read from its `response.done` event's `usage`, text and audio
apart, because audio tokens have their own (much higher) prices. Pure functions, no I/O."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from providers.wire import TokenUsage
from providers.base import Prices

MILLION = Decimal(1_000_000)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass(frozen=True)
class RealtimeUsage:
    text_input: int = 0
    audio_input: int = 0
    cached_text: int = 0
    cached_audio: int = 0
    text_output: int = 0
    audio_output: int = 0

    @classmethod
    def from_response_done(cls, event: dict) -> RealtimeUsage:
        """`response.usage` of a `response.done` event. Totals without details count as text; cached tokens
        without their own split are taken from text first."""
        response = event.get("response")
        usage = response.get("usage") if isinstance(response, dict) else None
        if not isinstance(usage, dict):
            return cls()
        details_in = usage.get("input_token_details") if isinstance(usage.get("input_token_details"), dict) else {}
        details_out = usage.get("output_token_details") if isinstance(usage.get("output_token_details"), dict) else {}
        audio_in, audio_out = _int(details_in.get("audio_tokens")), _int(details_out.get("audio_tokens"))
        text_in = _int(details_in.get("text_tokens")) if "text_tokens" in details_in else max(
            _int(usage.get("input_tokens")) - audio_in, 0)
        text_out = _int(details_out.get("text_tokens")) if "text_tokens" in details_out else max(
            _int(usage.get("output_tokens")) - audio_out, 0)
        cached = _int(details_in.get("cached_tokens"))
        split = details_in.get("cached_tokens_details")
        if isinstance(split, dict):
            cached_text, cached_audio = _int(split.get("text_tokens")), _int(split.get("audio_tokens"))
        else:
            cached_text = min(cached, text_in)
            cached_audio = min(cached - cached_text, audio_in)
        return cls(text_in, audio_in, cached_text, cached_audio, text_out, audio_out)

    def __add__(self, other: RealtimeUsage) -> RealtimeUsage:
        return RealtimeUsage(*(a + b for a, b in zip(self.astuple(), other.astuple())))

    def astuple(self) -> tuple[int, ...]:
        return (self.text_input, self.audio_input, self.cached_text, self.cached_audio, self.text_output,
                self.audio_output)

    def tokens(self) -> TokenUsage:
        """The usage record's columns: every input token, every output token, the cached ones."""
        return TokenUsage(self.text_input + self.audio_input, self.text_output + self.audio_output,
                          self.cached_text + self.cached_audio)


def realtime_cost(usage: RealtimeUsage, prices: Prices) -> Decimal | None:
    """USD, or None when a price the usage needs is unknown (audio tokens without audio prices included):
    an unknown cost is never recorded as zero. Cached tokens bill at the cached price where there is one."""
    if prices.input is None or prices.output is None:
        return None
    if (usage.audio_input and prices.audio_input is None) or (usage.audio_output and prices.audio_output is None):
        return None
    cached_price = prices.cached_input if prices.cached_input is not None else prices.input
    audio_in_price = prices.audio_input or Decimal(0)
    total = (max(usage.text_input - usage.cached_text, 0) * prices.input
             + max(usage.audio_input - usage.cached_audio, 0) * audio_in_price
             + (usage.cached_text + usage.cached_audio) * cached_price
             + usage.text_output * prices.output
             + usage.audio_output * (prices.audio_output or Decimal(0)))
    return total / MILLION
