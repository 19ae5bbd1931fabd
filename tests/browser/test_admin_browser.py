"""The operator's first session in a real browser: log in, add a secret, two models and an endpoint that
links both, then find the secret shown only in masked form; the model catalog filling a realtime model's
prices, audio included."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.server import GatewayServer

pytestmark = pytest.mark.browser

RAW_VALUE = "sk-test-SUPERSECRET-1234567890abcdef"
MASKED = "sk-...cdef"


def _log_in(page: Page, server: GatewayServer) -> None:
    page.goto(f"{server.url}/admin/login/")
    page.fill("#id_username", server.username)
    page.fill("#id_password", server.password)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_contain_text("AI Gateway administration")


def _save_and_expect_success(page: Page) -> None:
    page.click("input[name=_save]")
    expect(page.locator(".messagelist .success").first).to_be_visible()


def _add_secret(page: Page, url: str) -> None:
    page.goto(f"{url}/admin/gateway/secret/add/")
    page.fill("#id_name", "openai-main")
    page.select_option("#id_provider", "openai")
    page.fill("#id_values", RAW_VALUE)
    page.fill("#id_auth_config", '{"api_base": "https://api.openai.com/v1"}')
    _save_and_expect_success(page)


def _add_model(page: Page, url: str, name: str, model_name: str) -> None:
    page.goto(f"{url}/admin/gateway/modeldefinition/add/")
    page.fill("#id_name", name)
    page.select_option("#id_provider", "openai")
    page.fill("#id_model_name", model_name)
    page.select_option("#id_secret", label="openai-main")
    _save_and_expect_success(page)


def _add_endpoint_with_two_models(page: Page, url: str) -> None:
    page.goto(f"{url}/admin/gateway/endpoint/add/")
    page.fill("#id_name", "chat")
    page.select_option("#id_links-0-model", label="gpt4o-mini")
    page.select_option("#id_links-0-linkage", "primary")
    page.click("#links-group .add-row a")
    page.select_option("#id_links-1-model", label="gpt4o")
    page.select_option("#id_links-1-linkage", "fallback")
    page.fill("#id_links-1-order", "1")
    _save_and_expect_success(page)
    expect(page.locator("#result_list")).to_contain_text("gpt4o-mini (primary), gpt4o (fallback)")


def test_operator_sets_up_an_endpoint_and_sees_the_secret_only_masked(page: Page, server: GatewayServer):
    _log_in(page, server)
    _add_secret(page, server.url)
    assert RAW_VALUE not in page.content()
    _add_model(page, server.url, "gpt4o-mini", "gpt-4o-mini")
    _add_model(page, server.url, "gpt4o", "gpt-4o")
    _add_endpoint_with_two_models(page, server.url)

    page.goto(f"{server.url}/admin/gateway/secret/")
    expect(page.locator("#result_list")).to_contain_text(MASKED)
    page.click("#result_list a:text-is('openai-main')")
    expect(page).to_have_url(re.compile(r"/admin/gateway/secret/\d+/change/$"))
    expect(page.locator(".field-masked .readonly")).to_have_text(f"api_key: {MASKED}")
    expect(page.locator("#id_values")).to_have_value("")
    assert RAW_VALUE not in page.content()

    stored = server.database_bytes()
    assert b"gpt-4o-mini" in stored
    assert RAW_VALUE.encode() not in stored


def test_choosing_a_realtime_model_from_the_catalog_fills_its_audio_prices(page: Page, server: GatewayServer):
    _log_in(page, server)
    page.goto(f"{server.url}/admin/gateway/modeldefinition/add/")
    page.select_option("#id_provider", "openai")
    page.fill("#id_audio_output_cost_per_million", "50")  # a price already set is kept
    page.fill("#id_model_name", "gpt-realtime")
    expect(page.locator("#id_audio_input_cost_per_million")).to_have_value("32")
    expect(page.locator("#id_audio_output_cost_per_million")).to_have_value("50")
    expect(page.locator("#id_input_cost_per_million")).to_have_value("4")
