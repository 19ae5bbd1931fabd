"""A normal run prints no warnings: the admin's static files under ASGI, and `manage.py check --deploy`
with the production variables the README documents."""
from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from django.core.asgi import get_asgi_application

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_ENV = {
    "DJANGO_ALLOWED_HOSTS": "gw.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://gw.example.com",
    "DJANGO_SECURE_SSL_REDIRECT": "true",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "DJANGO_SECURE_HSTS_PRELOAD": "true",
    "DJANGO_SESSION_COOKIE_SECURE": "true",
    "DJANGO_CSRF_COOKIE_SECURE": "true",
    "DJANGO_SECURE_PROXY_SSL_HEADER": "true",
}


async def _get(app, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    messages = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict:
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # the client stays connected; Django cancels this wait when it is done

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
    await app(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], {name.lower(): value for name, value in start["headers"]}, body


async def test_admin_static_files_are_served_under_asgi_without_a_warning():
    expected = (Path(__import__("django").__file__).parent / "contrib/admin/static/admin/css/base.css").read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        status, headers, body = await _get(get_asgi_application(), "/static/admin/css/base.css")
    assert status == 200
    assert body == expected
    assert headers[b"content-type"].startswith(b"text/css")


def _check_deploy(extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "GATEWAY_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "gateway_project.settings", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
                "GATEWAY_KEK_PASSPHRASE": "deploy-check-passphrase", "DATABASE_URL": "sqlite:///:memory:", **extra})
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


def test_check_deploy_is_clean_with_the_documented_production_variables():
    result = _check_deploy(PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_names_what_is_missing_without_them():
    result = _check_deploy({})
    assert result.returncode != 0
    assert "SECURE_HSTS_SECONDS" in result.stderr


def test_every_production_variable_is_documented():
    readme = (ROOT / "README.md").read_text()
    for name in PRODUCTION_ENV:
        assert f"`{name}`" in readme, name


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
def test_health_readiness_and_metrics_are_never_redirected_to_https(path: str, settings):
    from django.middleware.security import SecurityMiddleware
    from django.test import RequestFactory

    settings.SECURE_SSL_REDIRECT = True
    middleware = SecurityMiddleware(lambda request: None)
    assert middleware.process_request(RequestFactory().get(path)) is None
    assert middleware.process_request(RequestFactory().get("/admin/")).status_code == 301
