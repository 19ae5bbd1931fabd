"""The usage-record list at a 1,400 px wide screen: tokens, cost and latency are visible without scrolling
sideways, even with long endpoint, model and key names."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest
from playwright.sync_api import Page, expect

from tests.browser.server import GatewayServer
from tests.browser.test_admin_browser import _log_in

pytestmark = pytest.mark.browser

WIDTH = 1400


def _write_usage(server: GatewayServer) -> None:
    """Rows as the gateway writes them (the server process reads them from the same SQLite file)."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    rows = [(now, f"req-{i}", "customer-support-chat-production", "claude-sonnet-4-5-fallback-eu", "anthropic",
             "team-analytics-batch-jobs", "anthropic/messages", i % 2, 200, "", 1, 123456, 7890, 0, "0.0123456789",
             1234.5678901, 1.23456789, "[]", 0) for i in range(3)]
    with sqlite3.connect(server.database) as db:
        db.executemany(
            "INSERT INTO gateway_usagerecord (created_at, request_id, endpoint_name, model_name, provider, "
            "api_key_name, route, streaming, status_code, error_type, attempts, input_tokens, output_tokens, "
            "cached_tokens, cost_usd, latency_ms, overhead_ms, guardrails, usage_estimated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def test_usage_list_fits_1400_px_with_tokens_cost_and_latency_in_view(page: Page, server: GatewayServer):
    _write_usage(server)
    page.set_viewport_size({"width": WIDTH, "height": 900})
    _log_in(page, server)
    page.goto(f"{server.url}/admin/gateway/usagerecord/")
    expect(page.locator("#result_list tbody tr")).to_have_count(3)
    page.screenshot(path=str(server.database.parent / "usage-list-1400.png"), full_page=True)

    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    scroller = page.locator(".results")
    assert scroller.evaluate("el => el.scrollWidth <= el.clientWidth")
    row = page.locator("#result_list tbody tr").first
    for column, text in (("tokens", "123,456 / 7,890"), ("cost", "$0.0123456789"), ("latency", "1,234.57 ms")):
        cell = row.locator(f"td.field-{column}")
        expect(cell).to_have_text(text)
        box = cell.bounding_box()
        assert box is not None and box["x"] + box["width"] <= WIDTH, column
