"""The endpoint playground in the admin: a staff user's chat streams through the gateway's pipeline
(guardrails apply, usage is recorded under the user's name), and the page offers client snippets that
carry this gateway's URL and the endpoint's name but never a key."""
from __future__ import annotations

import json
import re

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client

from gateway.apikeys import api_key_create
from gateway.config.apply import apply_config
from gateway.config.snapshot import store
from gateway.models import Endpoint, UsageRecord
from gateway.usage import records as usage

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]

CONFIG = {
    "models": [{"name": "echo", "provider": "fake", "model_name": "fake-echo",
                "input_cost_per_million": 1, "output_cost_per_million": 2}],
    "guardrails": [{"name": "no-secrets", "kind": "keywords", "settings": {"words": ["password"]}}],
    "endpoints": [{"name": "chat", "models": [{"model": "echo"}], "guardrails": ["no-secrets"]}],
}


def sse_events(text: str) -> list[tuple[str, str]]:
    events = []
    for block in text.strip().split("\n\n"):
        name = re.search(r"^event: (.*)$", block, re.M)
        data = re.search(r"^data: (.*)$", block, re.M)
        events.append((name.group(1) if name else "message", data.group(1) if data else ""))
    return events


async def staff_client(username: str = "ada", **flags) -> tuple[httpx.AsyncClient, int]:
    from gateway_project.asgi import application

    await sync_to_async(apply_config)(CONFIG)
    user = await sync_to_async(get_user_model().objects.create_user)(username, password="pw-0123456789",
                                                                       is_staff=True, **flags)
    session = Client()
    await sync_to_async(session.force_login)(user)
    await store.refresh()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://testserver")
    client.cookies.set("sessionid", session.cookies["sessionid"].value)
    pk = await sync_to_async(lambda: Endpoint.objects.get(name="chat").pk)()
    return client, pk


async def send(client: httpx.AsyncClient, pk: int, prompt: str) -> httpx.Response:
    page = await client.get(f"/admin/gateway/endpoint/{pk}/try/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return await client.post(f"/admin/gateway/endpoint/{pk}/try/chat", headers={"X-CSRFToken": token},
                             json={"messages": [{"role": "user", "content": prompt}]})


async def test_a_staff_chat_streams_through_the_gateway_and_is_recorded_under_the_users_name():
    client, pk = await staff_client(is_superuser=True)
    async with client:
        answer = await send(client, pk, "hello there")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
    assert answer.headers["x-gateway-model"] == "echo"
    events = sse_events(answer.text)
    text = "".join(choice["delta"].get("content") or "" for name, data in events
                   if name == "message" and data.startswith("{") for choice in json.loads(data)["choices"])
    assert "hello there" in text
    name, data = events[-1]
    summary = json.loads(data)
    assert name == "gateway" and summary["model"] == "echo" and summary["attempts"] == 1
    assert summary["input_tokens"] > 0 and summary["output_tokens"] > 0 and summary["cost_usd"] is not None
    assert summary["overhead_ms"] >= 0
    await usage.writer.flush()
    record = await UsageRecord.objects.aget(request_id=summary["request_id"])
    assert (record.user_name, record.api_key_name, record.route) == ("ada", "", "playground/chat")


async def test_guardrails_apply_to_the_playground_too():
    client, pk = await staff_client(is_superuser=True)
    async with client:
        refused = await send(client, pk, "my password is hunter2")
    assert refused.status_code == 400 and refused.json()["error"]["type"] == "guardrail_blocked"
    await usage.writer.flush()
    assert await UsageRecord.objects.filter(user_name="ada", status_code=400).aexists()


async def test_a_post_without_the_csrf_token_or_without_permission_is_refused():
    client, pk = await staff_client()
    async with client:
        body = {"messages": [{"role": "user", "content": "hi"}]}
        assert (await client.post(f"/admin/gateway/endpoint/{pk}/try/chat", json=body)).status_code == 403
        assert (await client.get(f"/admin/gateway/endpoint/{pk}/try/")).status_code == 403


def test_the_page_offers_snippets_with_this_gateway_and_the_endpoint_but_no_key():
    apply_config(CONFIG)
    _, raw_key = api_key_create(name="existing")
    user = get_user_model().objects.create_superuser("root", password="pw-0123456789")
    browser = Client()
    browser.force_login(user)
    endpoint = Endpoint.objects.get(name="chat")
    change = browser.get(f"/admin/gateway/endpoint/{endpoint.pk}/change/").content.decode()
    assert f'href="/admin/gateway/endpoint/{endpoint.pk}/try/"' in change
    page = browser.get(f"/admin/gateway/endpoint/{endpoint.pk}/try/").content.decode()
    for expected in ("http://testserver/gateway/mlflow/v1/chat/completions", "http://testserver/gateway/anthropic",
                     "http://testserver/gateway/gemini", "GATEWAY_API_KEY", "&quot;chat&quot;"):
        assert expected in page
    assert raw_key not in page and "gw-" not in page
    # The fake provider speaks neither Anthropic's nor Gemini's API: the page says so.
    assert page.count("do not speak this API") == 2
    assert not re.search(r'<script[^>]+src="(https?:)?//', page)
