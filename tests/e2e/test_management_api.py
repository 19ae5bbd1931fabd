"""Automating a running gateway through its management API: what an API call creates answers clients within
2 seconds, on every worker, and neither secrets nor client keys open the door to it."""
from __future__ import annotations

import time

import httpx
import openai
import pytest

from tests.e2e.harness import make_gateway

UPSTREAM_KEY = "sk-upstream-openai-API-ONLY-0123456789"


@pytest.fixture(scope="module")
def gateway(e2e_root):
    server = make_gateway(e2e_root, "management-api", keys={"client": None}, start=False)
    server.create_key("automation", admin=True)
    server.start(workers=2)
    yield server
    server.stop()


def test_an_endpoint_created_through_the_api_answers_within_two_seconds(gateway, fake_openai):
    api = httpx.Client(base_url=f"{gateway.url}/gateway/admin/v1",
                       headers={"Authorization": f"Bearer {gateway.keys['automation']}"})
    answers = [
        api.post("/secrets", json={"name": "openai", "provider": "openai", "values": {"api_key": UPSTREAM_KEY},
                                   "auth_config": {"api_base": f"{fake_openai.url}/v1"}}),
        api.post("/models", json={"name": "gpt", "provider": "openai", "model_name": "gpt-4o-mini",
                                  "secret": "openai"}),
        api.post("/endpoints", json={"name": "automated", "models": [{"model": "gpt"}]}),
        api.post("/api-keys", json={"name": "team", "endpoints": ["automated"]}),
    ]
    created = time.monotonic()
    assert [answer.status_code for answer in answers] == [201, 201, 201, 201]
    raw_key = answers[-1].json()["key"]
    client = openai.OpenAI(base_url=f"{gateway.url}/gateway/mlflow/v1", api_key=raw_key, max_retries=0)

    def answers_chat() -> bool:
        # Fresh connections land on both workers; every one of them must already know the endpoint.
        try:
            return all(client.chat.completions.create(model="automated", messages=[
                {"role": "user", "content": "hello"}]).choices[0].message.content for _ in range(4))
        except (openai.NotFoundError, openai.AuthenticationError):
            return False

    gateway.wait_for_config(answers_chat, timeout=5)
    assert time.monotonic() - created < 2.0
    assert fake_openai.requests[-1].headers["authorization"] == f"Bearer {UPSTREAM_KEY}"

    reads = [api.get(path) for path in ("/secrets", "/secrets/openai", "/models", "/endpoints", "/api-keys")]
    assert all(read.status_code == 200 for read in reads)
    assert not any(UPSTREAM_KEY in answer.text for answer in answers + reads)
    assert not any(raw_key in read.text for read in reads)


def test_a_client_key_is_refused_and_no_key_is_unauthenticated(gateway):
    url = f"{gateway.url}/gateway/admin/v1/endpoints"
    refused = httpx.get(url, headers={"Authorization": f"Bearer {gateway.keys['client']}"})
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error"
    assert httpx.get(url).status_code == 401
    assert httpx.post(url, json={"name": "x"}).status_code == 401
