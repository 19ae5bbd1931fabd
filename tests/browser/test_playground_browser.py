"""The endpoint playground, the model catalog and the API reference in a real browser: the model form fills
list prices from the catalog, an endpoint's "Try it" page streams an answer and shows how the gateway served
it, and the reference page loads nothing from another host."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.server import GatewayServer, gateway_server
from tests.browser.test_admin_browser import _log_in, _save_and_expect_success

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """A server of this module's own: the playground records usage, which other pages' tests count."""
    with gateway_server(tmp_path_factory.mktemp("playground-data")) as running:
        yield running


def test_catalog_prices_fill_and_the_playground_streams_an_answer(page: Page, server: GatewayServer) -> None:
    external = []
    page.on("request", lambda request: external.append(request.url)
            if not request.url.startswith(server.url) else None)
    _log_in(page, server)

    page.goto(f"{server.url}/admin/gateway/modeldefinition/add/")
    page.select_option("#id_provider", "openai")
    page.fill("#id_model_name", "gpt-4o-mini")
    expect(page.locator("#id_input_cost_per_million")).to_have_value("0.15")
    expect(page.locator("#id_output_cost_per_million")).to_have_value("0.6")
    expect(page.locator("#catalog-model-info")).to_contain_text("context 128000 tokens")

    page.goto(f"{server.url}/admin/gateway/modeldefinition/add/")
    page.fill("#id_name", "echo")
    page.select_option("#id_provider", "fake")
    page.fill("#id_model_name", "fake-echo")
    page.fill("#id_input_cost_per_million", "1")
    page.fill("#id_output_cost_per_million", "2")
    _save_and_expect_success(page)

    page.goto(f"{server.url}/admin/gateway/endpoint/add/")
    page.fill("#id_name", "playground")
    page.select_option("#id_links-0-model", label="echo")
    page.select_option("#id_links-0-linkage", "primary")
    _save_and_expect_success(page)
    page.click("text=playground")
    page.click("a.try-it")

    expect(page.locator("#snippet-curl")).to_contain_text(f"{server.url}/gateway/mlflow/v1/chat/completions")
    expect(page.locator("#snippet-openai")).to_contain_text('model="playground"')
    page.fill("#playground-prompt", "stream me an echo")
    page.click("#playground-send")
    expect(page.locator("#playground-answer")).to_contain_text("stream me an echo")
    expect(page.locator('[data-fact="model"]')).to_have_text("echo")
    expect(page.locator('[data-fact="attempts"]')).to_have_text("1")
    expect(page.locator('[data-fact="cost_usd"]')).to_contain_text("$0.0000")
    expect(page.locator('[data-fact="overhead_ms"]')).to_contain_text("ms")
    assert page.locator("#playground-error").is_hidden()
    assert external == []


def test_the_api_reference_renders_from_this_server_alone(page: Page, server: GatewayServer) -> None:
    external = []
    page.on("request", lambda request: external.append(request.url)
            if not request.url.startswith(server.url) else None)
    _log_in(page, server)
    page.goto(f"{server.url}/gateway/admin/v1/docs")
    expect(page.locator(".swagger-ui .title")).to_contain_text("AI Gateway management API")
    expect(page.locator(".swagger-ui")).to_contain_text("/gateway/admin/v1/endpoints/{name}")
    assert external == []
