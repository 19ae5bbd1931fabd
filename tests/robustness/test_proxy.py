"""The raw proxy (`/gateway/proxy/<endpoint>/<path>`) against the chaos upstream and hostile clients: what the
provider answers is relayed as it came, however broken; a provider that breaks off or dawdles past the
endpoint's total timeout ends the answer there; bodies past GATEWAY_PROXY_MAX_REQUEST_BYTES are 413 and
path tricks 400 before the provider is called, in OpenAI's envelope; every call leaves its usage record."""
from __future__ import annotations

import http.client
import json
import re
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.e2e.db import wait_rows
from tests.robustness.conftest import PROXY_MAX_BYTES, TOTAL_TIMEOUT
from tests.robustness.routes import HELLO, assert_error_envelope
from tests.robustness.test_properties import FIELDS, values

WITHIN = TOTAL_TIMEOUT + 3  # the endpoint's total timeout, and a loaded machine on top of it
CHAT = "chat/completions"


def proxied(gateway, path: str, *, endpoint: str = "openai-ok", method: str = "POST", **kwargs) -> httpx.Response:
    headers = {"authorization": f"Bearer {gateway.keys['default']}", **kwargs.pop("headers", {})}
    return httpx.request(method, f"{gateway.url}/gateway/proxy/{endpoint}/{path}", headers=headers, timeout=30,
                         **kwargs)


def raw_request(gateway, target: str, headers: dict | None = None) -> tuple[int, dict, dict]:
    """`GET target` exactly as written (httpx would resolve dot segments itself): status, headers, JSON."""
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        connection.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
        for name, value in {"host": f"127.0.0.1:{gateway.port}", "authorization": f"Bearer {gateway.keys['default']}",
                            **(headers or {})}.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(response.read())
    finally:
        connection.close()


def same_answer(body: bytes) -> bytes:
    return re.sub(rb'"created":\s*\d+', b'"created":0', body)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("mode", ["html", "array", "error200", "partial", "invalid", "malformed", "ok"])
def test_what_the_provider_answers_is_relayed_as_it_came(gateway, chaos, ledger, mode, stream):
    body = {"model": f"chaos-{mode}", "messages": HELLO, "stream": stream}
    direct = httpx.post(f"{chaos.url}/v1/{CHAT}", json=body, timeout=30)
    response = proxied(gateway, CHAT, json=body)
    ledger.note(response.headers, failed=direct.status_code >= 400)
    assert response.status_code == direct.status_code
    assert response.headers["content-type"] == direct.headers["content-type"]
    assert same_answer(response.content) == same_answer(direct.content)


def test_usage_of_each_vendors_shape_is_recorded(gateway, ledger):
    calls = {"openai": (CHAT, {"model": "chaos-ok", "messages": HELLO}),
             "anthropic": ("messages", {"model": "chaos-ok", "messages": HELLO, "max_tokens": 64}),
             "gemini": ("models/chaos-ok:generateContent", {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})}
    ids = []
    for vendor, (path, body) in calls.items():
        response = proxied(gateway, path, endpoint=f"{vendor}-ok", json=body)
        assert response.status_code == 200, response.text
        ledger.note(response.headers, failed=False)
        ids.append(response.headers["x-request-id"])
    found = wait_rows(gateway, "SELECT input_tokens > 0 AND output_tokens > 0 FROM gateway_usagerecord WHERE "
                               "request_id IN (?, ?, ?)", *ids, expect=lambda rows: len(rows) == 3)
    assert found == [(1,)] * 3


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_an_answer_broken_off_midway_ends_the_clients_answer_there(gateway, ledger, stream):
    started = time.monotonic()
    with httpx.stream("POST", f"{gateway.url}/gateway/proxy/openai-ok/{CHAT}", timeout=30,
                      json={"model": "chaos-reset", "messages": HELLO, "stream": stream},
                      headers={"authorization": f"Bearer {gateway.keys['default']}"}) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            response.read()
    assert time.monotonic() - started < WITHIN
    ledger.note(response.headers, failed=True)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_an_answer_trickling_past_the_total_timeout_is_cut_there(gateway, ledger, stream):
    started = time.monotonic()
    # Through the endpoint of the slow model (it has the total timeout), as a client of it would come.
    with httpx.stream("POST", f"{gateway.url}/gateway/proxy/openai-slow/{CHAT}", timeout=30,
                      json={"model": "chaos-slow", "messages": HELLO, "stream": stream},
                      headers={"authorization": f"Bearer {gateway.keys['default']}"}) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            response.read()
    assert time.monotonic() - started < WITHIN
    found = wait_rows(gateway, "SELECT status_code, error_type FROM gateway_usagerecord WHERE request_id = ?",
                      response.headers["x-request-id"])
    assert found == [(504, "timeout")]


def test_a_provider_that_never_answers_is_a_504_at_the_total_timeout(gateway, ledger):
    started = time.monotonic()
    response = proxied(gateway, "models", endpoint="silent", method="GET")
    assert time.monotonic() - started < WITHIN
    assert response.status_code == 504
    assert "total timeout" in assert_error_envelope(response.content, "openai")
    ledger.note(response.headers, failed=True)


def test_a_body_declared_past_the_limit_is_413_before_the_provider(gateway, chaos, ledger):
    before = len(chaos.requests)
    response = proxied(gateway, CHAT, content=b"x" * (PROXY_MAX_BYTES + 1), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "GATEWAY_PROXY_MAX_REQUEST_BYTES" in assert_error_envelope(response.content, "openai")
    assert len(chaos.requests) == before
    ledger.note(response.headers, failed=True)


def test_a_chunked_body_growing_past_the_limit_is_413(gateway, ledger):
    def pieces():
        for _ in range(PROXY_MAX_BYTES // 65536 + 2):
            yield b"x" * 65536

    response = proxied(gateway, CHAT, content=pieces(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "GATEWAY_PROXY_MAX_REQUEST_BYTES" in assert_error_envelope(response.content, "openai")
    ledger.note(response.headers, failed=True)


def test_a_body_at_the_limit_is_forwarded(gateway, ledger):
    body = {"model": "chaos-ok", "messages": [{"role": "user", "content": ""}]}
    padding = PROXY_MAX_BYTES - len(json.dumps(body))
    body["messages"][0]["content"] = "x" * padding
    content = json.dumps(body).encode()
    assert len(content) == PROXY_MAX_BYTES
    response = proxied(gateway, CHAT, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text[:300]
    ledger.note(response.headers, failed=False)


def nested(depth: int) -> bytes:
    return b'{"model": "chaos-ok", "messages": ' + b"[" * depth + b"1" + b"]" * depth + b"}"


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b"null", b"\xff\xfe", b'{"model": 5, "messages": "hi"}',
                                 nested(300), nested(1000)], ids=repr)
def test_bodies_the_provider_refuses_come_back_with_its_own_answer(gateway, chaos, ledger, raw):
    direct = httpx.post(f"{chaos.url}/v1/{CHAT}", content=raw, headers={"content-type": "application/json"})
    response = proxied(gateway, CHAT, content=raw, headers={"content-type": "application/json"})
    assert (response.status_code, response.content) == (direct.status_code, direct.content)
    assert response.status_code == 400
    ledger.note(response.headers, failed=True)


def test_no_body_gets_a_5xx_from_the_gateway(gateway, ledger):
    @settings(max_examples=40, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(body=st.dictionaries(st.sampled_from(FIELDS), values, max_size=5))
    def check(body: dict) -> None:
        response = proxied(gateway, CHAT, content=json.dumps(body).encode(),
                           headers={"content-type": "application/json"})
        assert response.status_code < 500, (body, response.text[:300])
        ledger.note(response.headers, failed=response.status_code >= 400)

    check()


TRICKS = ["models/../chat/completions", "models/%2e%2e/chat/completions", "models/%2E/x", "models%2Fx",
          "models%2fx", "models%5c..%5cx", "models//x", "./models", "models/.", "models/%00", "",
          "//evil.example/models", "http://evil.example/v1/models", "http:%2F%2Fevil.example/models"]


@pytest.mark.parametrize("path", TRICKS)
def test_path_tricks_are_400_before_the_provider(gateway, chaos, ledger, path):
    before = len(chaos.requests)
    status, headers, body = raw_request(gateway, f"/gateway/proxy/openai-ok/{path}")
    assert (status, body["error"]["code"]) == (400, "invalid_path"), body
    assert len(chaos.requests) == before
    ledger.note(headers, failed=True)


@pytest.mark.parametrize("path", ["models@evil.example", "models:443@evil.example", "organization/users"])
def test_paths_off_the_allow_list_are_403(gateway, chaos, ledger, path):
    before = len(chaos.requests)
    status, headers, body = raw_request(gateway, f"/gateway/proxy/openai-ok/{path}")
    assert (status, body["error"]["code"]) == (403, "path_not_allowed"), body
    assert len(chaos.requests) == before
    ledger.note(headers, failed=True)


def test_a_backslash_in_the_path_is_refused(gateway, chaos, ledger):
    before = len(chaos.requests)
    status, headers, body = raw_request(gateway, "/gateway/proxy/openai-ok/models\\..\\files")
    assert status == 400 and body["error"]["code"] == "invalid_path"
    assert len(chaos.requests) == before
    ledger.note(headers, failed=True)


def test_another_host_in_the_request_is_never_where_it_goes(gateway, chaos):
    status, _, body = raw_request(gateway, "/gateway/proxy/openai-ok/models", {"host": "evil.example"})
    assert status == 400 and "evil.example" in body["error"]["message"]
    before = len(chaos.requests)
    status, _, body = raw_request(gateway, "http://evil.example/gateway/proxy/openai-ok/models")
    assert status == 200, body
    assert [(r.method, r.path) for r in chaos.requests[before:]] == [("GET", "/v1/models")]
