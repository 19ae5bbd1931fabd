"""Realtime usage from `response.done` and its price: text and audio apart, unknown (never zero) without an
audio price."""
from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.realtime.usage import RealtimeUsage, realtime_cost
from providers.wire import TokenUsage
from providers.base import Prices

TEXT = Prices(Decimal(4), Decimal(16), Decimal("0.4"))
AUDIO = Prices(Decimal(4), Decimal(16), Decimal("0.4"), Decimal(32), Decimal(64))


def done(usage: dict) -> dict:
    return {"type": "response.done", "response": {"id": "resp_1", "usage": usage}}


@pytest.mark.parametrize("usage, expected", [
    ({"input_tokens": 30, "output_tokens": 25,
      "input_token_details": {"text_tokens": 10, "audio_tokens": 20, "cached_tokens": 4},
      "output_token_details": {"text_tokens": 5, "audio_tokens": 20}},
     RealtimeUsage(text_input=10, audio_input=20, cached_text=4, cached_audio=0, text_output=5, audio_output=20)),
    ({"input_tokens": 12, "output_tokens": 3},  # totals only: text
     RealtimeUsage(text_input=12, text_output=3)),
    ({"input_tokens": 30, "output_tokens": 0,
      "input_token_details": {"text_tokens": 10, "audio_tokens": 20, "cached_tokens": 15,
                              "cached_tokens_details": {"text_tokens": 5, "audio_tokens": 10}}},
     RealtimeUsage(text_input=10, audio_input=20, cached_text=5, cached_audio=10)),
    ({"input_tokens": "many"}, RealtimeUsage()),
])
def test_usage_read_from_response_done(usage, expected):
    assert RealtimeUsage.from_response_done(done(usage)) == expected


def test_missing_usage_counts_nothing():
    assert RealtimeUsage.from_response_done({"type": "response.done", "response": {}}) == RealtimeUsage()


def test_record_columns_add_text_and_audio():
    used = RealtimeUsage(text_input=10, audio_input=20, cached_text=4, cached_audio=1, text_output=5, audio_output=20)
    assert used.tokens() == TokenUsage(30, 25, 5)


def test_audio_priced_at_audio_prices():
    used = RealtimeUsage(text_input=10, audio_input=20, cached_text=4, text_output=5, audio_output=20)
    expected = (6 * 4 + 4 * Decimal("0.4") + 20 * 32 + 5 * 16 + 20 * 64) / Decimal(1_000_000)
    assert realtime_cost(used, AUDIO) == expected


@pytest.mark.parametrize("used", [RealtimeUsage(text_input=10, audio_input=1), RealtimeUsage(audio_output=1)])
def test_audio_without_audio_price_is_unknown_not_zero(used):
    assert realtime_cost(used, TEXT) is None


def test_text_only_needs_no_audio_price():
    assert realtime_cost(RealtimeUsage(text_input=1_000_000, text_output=1_000_000), TEXT) == Decimal(20)


def test_no_price_at_all_is_unknown():
    assert realtime_cost(RealtimeUsage(text_input=1), Prices()) is None
