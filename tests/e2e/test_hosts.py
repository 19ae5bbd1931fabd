"""DJANGO_ALLOWED_HOSTS holds for every route: a request naming another host gets a 400 in its route's own
error format (the admin's included) and one log line, while /health answers whatever the Host."""
from __future__ import annotations

import httpx
import pytest

from tests.e2e.harness import make_gateway

ALLOWED = "gw.example.com,.example.org"


@pytest.fixture(scope="module")
def gateway(e2e_root):
    config = {"models": [{"name": "echo", "provider": "fake", "model_name": "echo"}],
              "endpoints": [{"name": "chat", "models": [{"model": "echo"}]}]}
    # The harness polls /health on 127.0.0.1, which must pass although that name is not allowed.
    server = make_gateway(e2e_root, "hosts", config, env={"DJANGO_ALLOWED_HOSTS": ALLOWED})
    yield server
    server.stop()


def get(gateway, path: str, host: str, **kwargs) -> httpx.Response:
    headers = {"Host": host, "Authorization": f"Bearer {gateway.keys['default']}", **kwargs.pop("headers", {})}
    return httpx.request(kwargs.pop("method", "GET"), f"{gateway.url}{path}", headers=headers, timeout=10, **kwargs)


CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("host", ["gw.example.com", "gw.example.com:8443", "example.org", "api.example.org"])
def test_allowed_hosts_are_served(gateway, host):
    response = get(gateway, "/gateway/mlflow/v1/models", host)
    assert response.status_code == 200
    assert [m["id"] for m in response.json()["data"]] == ["chat"]


def test_other_hosts_get_a_400_in_each_routes_own_envelope(gateway):
    host = "evil.example.net"
    openai_body = get(gateway, "/gateway/mlflow/v1/models", host)
    assert openai_body.status_code == 400 and openai_body.json()["error"]["code"] == "disallowed_host"
    native = get(gateway, "/gateway/openai/v1/chat/completions", host, method="POST", json=CHAT)
    assert native.status_code == 400 and native.json()["error"]["type"] == "invalid_request_error"
    claude = get(gateway, "/gateway/anthropic/v1/messages", host, method="POST", json={**CHAT, "max_tokens": 5})
    assert claude.status_code == 400
    assert claude.json()["type"] == "error" and claude.json()["error"]["type"] == "invalid_request_error"
    gemini = get(gateway, "/gateway/gemini/v1beta/models/chat:generateContent", host, method="POST",
                 json={"contents": [{"parts": [{"text": "hi"}]}]})
    assert gemini.status_code == 400 and gemini.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "DJANGO_ALLOWED_HOSTS" in gemini.json()["error"]["message"]


def test_the_admin_refuses_too_with_one_log_line_and_no_traceback(gateway):
    host = "admin-probe.example.net"
    assert get(gateway, "/admin/login/", host).status_code == 400
    assert get(gateway, "/gateway/mlflow/v1/models", host).status_code == 400
    log = gateway.log()
    assert len([line for line in log.splitlines() if "admin-probe.example.net" in line]) == 2
    assert "Traceback" not in log and "DisallowedHost" not in log


@pytest.mark.parametrize("host", ["10.0.0.8", "evil.example.net", ""])
def test_health_answers_whatever_the_host(gateway, host):
    assert get(gateway, "/health", host).status_code == 200


def test_the_exempt_paths_are_one_list_and_skip_the_https_redirect(settings, client):
    assert set(settings.GATEWAY_HOST_CHECK_EXEMPT_PATHS) >= {"/health", "/ready", "/metrics"}
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/admin/login/").status_code == 301
    assert client.get("/ready").status_code != 301
    assert client.get("/metrics").status_code != 301
