"""An operator reads the request log in a real browser: from the endpoint list to one request's page,
with the guardrail's redaction applied and no key anywhere."""
from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
import yaml
from playwright.sync_api import Page, expect

from tests.browser.server import ROOT, GatewayServer, _server_env, gateway_server
from tests.browser.test_admin_browser import _log_in

pytestmark = pytest.mark.browser

EMAIL = "jane.doe@example.com"
CONFIG = {
    "models": [{"name": "echo", "provider": "fake", "model_name": "fake-echo"}],
    "guardrails": [{"name": "redact-pii", "kind": "pii", "stage": "before", "action": "sanitize"}],
    "endpoints": [{"name": "logged-chat", "log_payloads": True, "models": [{"model": "echo"}],
                   "guardrails": ["redact-pii"]}],
}


def manage(server: GatewayServer, *args: str) -> str:
    env = _server_env(server.database.parent, server.database, server.username, server.password)
    done = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout


def ask_until_served(server: GatewayServer, key: str) -> str:
    """Send one chat request once the new configuration reached the server (it polls every second)."""
    for _ in range(100):
        response = httpx.post(f"{server.url}/gateway/mlflow/v1/chat/completions",
                              headers={"Authorization": f"Bearer {key}", "X-Request-Id": "browser-log-1"},
                              json={"model": "logged-chat", "messages": [{"role": "user", "content": f"mail {EMAIL}"}]})
        if response.status_code not in (401, 404):  # the key or the endpoint not in the snapshot yet
            assert response.status_code == 200, response.text
            return response.headers["x-request-id"]
        time.sleep(0.1)
    raise AssertionError("the endpoint never appeared")


@pytest.fixture
def server(tmp_path):
    """A server of its own: the requests this test sends must not show in other tests' usage lists."""
    with gateway_server(tmp_path / "data") as running:
        yield running


def test_operator_reads_a_redacted_request_log(page: Page, server: GatewayServer, tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    manage(server, "gateway_apply", str(config))
    key = manage(server, "create_api_key", "browser-client").strip().splitlines()[-1].strip()
    request_id = ask_until_served(server, key)

    _log_in(page, server)
    page.goto(f"{server.url}/admin/gateway/endpoint/")
    page.click("#result_list tr:has-text('logged-chat') a:text-is('requests')")
    expect(page.locator("#result_list")).to_contain_text(request_id, timeout=10_000)
    page.click(f"#result_list tr:has-text('{request_id}') th a")
    expect(page.locator(".request-body")).to_contain_text("mail [EMAIL]")
    expect(page.locator(".response-body")).to_contain_text("[EMAIL]")
    expect(page.locator(".field-attempts_table")).to_contain_text("echo")
    expect(page.locator(".field-guardrail_table")).to_contain_text("redact-pii")
    expect(page.locator(".field-usage_record")).to_contain_text("tokens")
    html = page.content()
    assert EMAIL not in html and key not in html
