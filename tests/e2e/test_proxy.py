"""The raw proxy route against the real server: the OpenAI SDK's model listing, a multipart file upload and a
streamed file download through /gateway/proxy/<endpoint>/, with the gateway's credentials and headers; paths
outside the allow-list or with tricks refused; usage records, budgets and the body limit."""
from __future__ import annotations

import http.client
import json
import time

import httpx
import openai
import pytest
import yaml

from tests.e2e.conftest import endpoint, provider_config
from tests.e2e.db import wait_rows
from tests.fakes.openai import COMPLETION_TOKENS, FILE_LINES, PROMPT_TOKENS

pytestmark = pytest.mark.clock

BODY_LIMIT = 4096


@pytest.fixture(scope="module")
def gateway(e2e_root, fake_openai, fake_anthropic, fake_gemini):
    from tests.e2e.harness import make_gateway

    config = provider_config(fake_openai, fake_anthropic, fake_gemini)
    config["endpoints"] = [endpoint("proxy-openai", "gpt"), endpoint("proxy-budget", "gpt"),
                           endpoint("proxy-fake", "fake-echo"), endpoint("proxy-limited", "gpt")]
    config["rate_limits"] = [{"name": "proxy-rpm", "scope": "endpoint", "target": "proxy-limited",
                              "requests_per_minute": 2}]
    config["budgets"] = [{"name": "tiny", "scope": "endpoint", "target": "proxy-budget", "amount_usd": 0.000001,
                          "window": {"unit": "days", "value": 1}, "action": "reject"}]
    allowed = {"openai": ["models", "files", "batches", "chat/completions"]}
    server = make_gateway(e2e_root, "proxy", config, keys={"default": None, "limited": ["proxy-fake"]},
                          env={"GATEWAY_PROXY_ALLOWED_PATHS": json.dumps(allowed),
                               "GATEWAY_PROXY_MAX_REQUEST_BYTES": str(BODY_LIMIT)})
    yield server
    server.stop()


def sdk(server, name: str = "proxy-openai", key: str = "default") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/gateway/proxy/{name}", api_key=server.keys[key], max_retries=0,
                         timeout=30)


def test_model_listing_reaches_the_provider_with_its_credentials(gateway, fake_openai):
    raw = sdk(gateway).models.with_raw_response.list()
    assert [m.id for m in raw.parse().data] == ["gpt-4o-mini"]
    upstream = fake_openai.requests[-1]
    assert (upstream.method, upstream.path) == ("GET", "/v1/models")
    assert upstream.headers["authorization"] == "Bearer sk-upstream-openai-0123456789"
    # The gateway's own request id wins; the provider's comes along under x-upstream-.
    assert raw.headers["x-upstream-x-request-id"] == "upstream-req-1"
    assert raw.headers["x-request-id"] != "upstream-req-1"
    found = wait_rows(gateway, "SELECT status_code, model_name, input_tokens FROM gateway_usagerecord "
                               "WHERE route = 'proxy' AND request_id = ?", raw.headers["x-request-id"])
    assert found == [(200, "gpt", 0)]


def test_multipart_upload_is_streamed_to_the_provider(gateway, fake_openai):
    content = b'{"custom_id": "1"}\n' * 40
    created = sdk(gateway).files.create(file=("batch.jsonl", content), purpose="batch")
    assert (created.id, created.filename, created.purpose) == ("file-fake1", "batch.jsonl", "batch")
    upstream = fake_openai.requests[-1]
    assert upstream.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert content in upstream.body
    assert created.bytes == len(upstream.body)


def test_download_is_relayed_as_a_stream(gateway):
    with httpx.stream("GET", f"{gateway.url}/gateway/proxy/proxy-openai/files/file-fake1/content",
                      headers={"Authorization": f"Bearer {gateway.keys['default']}"}, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/octet-stream"
        pieces = list(response.iter_bytes())
    assert b"".join(pieces) == b"".join(f"line {i}\n".encode() for i in range(FILE_LINES))


def test_usage_block_in_the_answer_is_recorded(gateway):
    raw = sdk(gateway).chat.completions.with_raw_response.create(
        model="ignored-by-the-proxy", messages=[{"role": "user", "content": "hi"}])
    assert raw.parse().choices[0].message.content == "echo: hi"
    found = wait_rows(gateway, "SELECT input_tokens, output_tokens FROM gateway_usagerecord WHERE request_id = ?",
                      raw.headers["x-request-id"])
    assert found == [(PROMPT_TOKENS, COMPLETION_TOKENS)]


def test_paths_outside_the_allow_list_are_refused(gateway, fake_openai):
    with pytest.raises(openai.PermissionDeniedError) as refused:
        sdk(gateway).fine_tuning.jobs.list()
    assert refused.value.code == "path_not_allowed"
    assert not [r for r in fake_openai.requests if "fine_tuning" in r.path]


@pytest.mark.parametrize("path", ["files/../organization/users", "files/%2E%2E/organization", "files%2Forganization",
                                  "files//x", "./files", "files/%2e/x"])
def test_path_tricks_are_refused_before_matching(gateway, fake_openai, path):
    # http.client sends the path exactly as written (httpx would resolve the dot segments itself).
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        connection.request("GET", f"/gateway/proxy/proxy-openai/{path}",
                           headers={"Authorization": f"Bearer {gateway.keys['default']}"})
        response = connection.getresponse()
        status, body = response.status, json.loads(response.read())
    finally:
        connection.close()
    assert (status, body["error"]["code"]) == (400, "invalid_path")
    assert not fake_openai.requests


def test_keys_and_providers_are_checked(gateway):
    url = f"{gateway.url}/gateway/proxy/proxy-openai/models"
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).json()["error"]["code"] == "invalid_api_key"
    limited = httpx.get(url, headers={"Authorization": f"Bearer {gateway.keys['limited']}"})
    assert (limited.status_code, limited.json()["error"]["code"]) == (403, "endpoint_not_allowed")
    fake = httpx.get(f"{gateway.url}/gateway/proxy/proxy-fake/models",
                     headers={"Authorization": f"Bearer {gateway.keys['default']}"})
    assert (fake.status_code, fake.json()["error"]["code"]) == (400, "unsupported_api")


def test_request_body_limit(gateway, fake_openai):
    with pytest.raises(openai.APIStatusError) as refused:
        sdk(gateway).files.create(file=("big.jsonl", b"x" * (BODY_LIMIT * 2)), purpose="batch")
    assert refused.value.status_code == 413
    assert not fake_openai.requests


def test_spent_reject_budget_blocks_the_proxy(gateway):
    client = sdk(gateway, "proxy-budget")
    client.chat.completions.create(model="x", messages=[{"role": "user", "content": "spend"}])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the settlement lands off the request path
        try:
            client.models.list()
        except openai.RateLimitError as exc:
            assert exc.code == "budget_exceeded"
            return
        time.sleep(0.1)
    pytest.fail("the spent budget never blocked the proxy")


def test_rate_limits_count_proxied_requests(gateway):
    client = sdk(gateway, "proxy-limited")
    listed = client.models.with_raw_response.list()
    assert listed.headers["x-ratelimit-limit-requests"] == "2"
    client.models.list()
    with pytest.raises(openai.RateLimitError) as refused:
        client.models.list()
    assert "proxy-rpm" in refused.value.message
    assert int(refused.value.response.headers["retry-after"]) >= 1


def test_reserved_endpoint_names_are_refused_at_write_time(gateway, fake_openai, fake_anthropic, fake_gemini):
    config = provider_config(fake_openai, fake_anthropic, fake_gemini)
    config["endpoints"] = [endpoint("proxy", "gpt")]
    result = gateway.manage("gateway_apply", _write(gateway, config), check=False)
    assert result.returncode != 0
    assert "reserved" in (result.stdout + result.stderr)


def _write(server, config: dict) -> str:
    path = server.workdir / "reserved.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_server_sent_events_are_relayed_as_they_come(gateway):
    stream = sdk(gateway).chat.completions.create(
        model="ignored-by-the-proxy", messages=[{"role": "user", "content": "stream me"}], stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "echo: stream me"
