"""What the README's quick start promises: scripts/start.sh's `bootstrap_demo` leaves a `demo` endpoint and a
key that the README's curl example works with, and the standard DJANGO_SUPERUSER_* variables give an admin
login (through `createsuperuser --noinput` or `bootstrap_demo`)."""
from __future__ import annotations

import re
from io import StringIO

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from gateway.models import ApiKey, Endpoint
from gateway.config.snapshot import store


def bootstrap() -> str:
    out = StringIO()
    call_command("bootstrap_demo", stdout=out)
    return out.getvalue()


@pytest.fixture
def superuser_env(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "operator")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-admin-password")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "operator@example.com")


@pytest.mark.django_db(transaction=True)
async def test_the_demo_key_works_with_the_readmes_curl_example():
    from gateway_project.asgi import application

    printed = await sync_to_async(bootstrap)()
    key = re.search(r"export GATEWAY_API_KEY=(gw-\S+)", printed).group(1)
    await store.refresh()
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        # curl -d sends a form content type; the gateway reads the body as JSON all the same.
        response = await client.post(
            "/gateway/mlflow/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-www-form-urlencoded"},
            content=b'{"model": "demo", "messages": [{"role": "user", "content": "Hello!"}]}')
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "echo: Hello!"


def test_bootstrap_shows_the_key_once_and_changes_nothing_on_the_next_start(db):
    assert "export GATEWAY_API_KEY=gw-" in bootstrap()
    again = bootstrap()
    assert "gw-" not in again and "create_api_key" in again
    assert (Endpoint.objects.count(), ApiKey.objects.count()) == (1, 1)


def test_without_an_admin_bootstrap_says_how_to_make_one(db):
    assert "manage.py createsuperuser" in bootstrap()


@pytest.mark.parametrize("create", [
    lambda: call_command("createsuperuser", "--noinput", stdout=StringIO()),
    bootstrap,
], ids=["createsuperuser", "bootstrap_demo"])
def test_superuser_variables_give_an_admin_login(db, superuser_env, create):
    create()
    user = get_user_model().objects.get(username="operator")
    assert user.is_staff and user.is_superuser and user.email == "operator@example.com"
    client = Client()
    assert client.login(username="operator", password="a-long-admin-password")
    assert client.get("/admin/").status_code == 200
