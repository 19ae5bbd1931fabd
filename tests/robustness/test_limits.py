"""Client bodies at and past the gateway's limits: size (GATEWAY_MAX_REQUEST_BYTES, 4 MiB here), JSON
nesting depth and the range of token and choice counts. Each route answers in its own envelope, never 500."""
from __future__ import annotations

import json

import httpx
import pytest

from gateway.limits import MAX_COUNT, MAX_JSON_DEPTH
from tests.robustness.routes import ROUTES, assert_error_envelope

MIB = 1024 * 1024


def post(gateway, route, body: dict | bytes, endpoint: str = "") -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()  # any int, unlike orjson
    return httpx.post(gateway.url + route.path(endpoint or f"{route.vendor}-ok", False), content=content,
                      headers={"authorization": f"Bearer {gateway.keys['default']}",
                               "content-type": "application/json"}, timeout=60)


def padded(route, size: int) -> dict:
    """The route's ordinary body grown to about `size` bytes by one long text."""
    body = route.body(f"{route.vendor}-ok", False)
    text = "word " * (size // 5)
    if "messages" in body:
        body["messages"] = [{"role": "user", "content": text}]
    elif "contents" in body:
        body["contents"][0]["parts"][0]["text"] = text
    else:
        body["input"] = text
    return body


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_bodies_between_djangos_limit_and_the_gateways_are_served(gateway, ledger, route):
    response = post(gateway, route, padded(route, 3 * MIB))  # above Django's 2.5 MiB, under the gateway's 4
    assert response.status_code == 200, response.text[:500]
    ledger.note(response.headers, failed=False)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_bodies_above_the_gateways_limit_are_413_in_the_routes_envelope(gateway, ledger, route):
    response = post(gateway, route, padded(route, 5 * MIB))
    assert response.status_code == 413
    ledger.note(response.headers, failed=True)
    assert "larger than the limit" in assert_error_envelope(response.content, route.family)


def with_nesting(body: dict, depth: int) -> bytes:
    """`body` with a `metadata` field whose value nests arrays so the body is `depth` levels deep."""
    inner = depth - 1
    return json.dumps({**body, "metadata": "@"}).replace('"@"', "[" * inner + '"leaf"' + "]" * inner).encode()


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 300, 1000])
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_excessive_nesting_is_400_in_the_routes_envelope_before_any_upstream_call(gateway, chaos, ledger, route,
                                                                                 depth):
    before = len(chaos.requests)
    response = post(gateway, route, with_nesting(route.body(f"{route.vendor}-ok", False), depth))
    assert response.status_code == 400, response.text[:300]
    ledger.note(response.headers, failed=True)
    assert "levels deep" in assert_error_envelope(response.content, route.family)
    assert len(chaos.requests) == before


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_nesting_up_to_the_limit_is_accepted(gateway, route):
    body = with_nesting(route.body(f"{route.vendor}-ok", False), MAX_JSON_DEPTH)
    assert post(gateway, route, body).status_code == 200


HUGE = [2**63, 2**64, -1, MAX_COUNT + 1, 1e30]
COUNTS = [  # (route name, field, where it goes)
    ("unified-chat", "max_tokens", ()), ("unified-chat", "n", ()), ("unified-chat", "max_completion_tokens", ()),
    ("openai-chat", "max_tokens", ()), ("openai-chat", "n", ()), ("openai-responses", "max_output_tokens", ()),
    ("anthropic-messages", "max_tokens", ()), ("gemini-sse", "maxOutputTokens", ("generationConfig",)),
    ("gemini-sse", "candidateCount", ("generationConfig",)), ("anthropic-on-openai", "max_tokens", ()),
    ("gemini-on-anthropic", "maxOutputTokens", ("generationConfig",)), ("responses-on-groq", "max_output_tokens", ()),
]


@pytest.mark.parametrize("value", HUGE, ids=str)
@pytest.mark.parametrize("route_name,field,parent", COUNTS)
def test_out_of_range_counts_are_400_naming_the_field_on_a_budgeted_endpoint(gateway, ledger, route_name, field,
                                                                           parent, value):
    route = next(r for r in ROUTES if r.name == route_name)
    endpoint = "budgeted" if route.vendor == "openai" else f"{route.vendor}-ok"
    body = route.body(endpoint, False)
    (body.setdefault(parent[0], {}) if parent else body)[field] = value
    response = post(gateway, route, body, endpoint)
    assert response.status_code == 400, response.text[:300]
    ledger.note(response.headers, failed=True)
    assert field in assert_error_envelope(response.content, route.family)
