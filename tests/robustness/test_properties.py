"""Property-based bodies for every route (hypothesis, derandomised so every run tries the same bodies):
whatever a client sends, the gateway answers below 500, and any error is in the route's own envelope."""
from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.robustness.routes import ROUTES, assert_error_envelope

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=20)
# Fields the gateway or the providers read, so the bodies reach past the first check often.
FIELDS = ["model", "messages", "input", "contents", "stream", "max_tokens", "n", "max_completion_tokens",
          "max_output_tokens", "generationConfig", "stream_options", "tools", "temperature", "role", "content"]


def bodies(route) -> st.SearchStrategy[dict]:
    base = st.just(route.body(f"{route.vendor}-ok", False))
    fields = st.dictionaries(st.sampled_from(FIELDS), values, max_size=4)
    return st.builds(lambda b, f: {**b, **f}, base, fields) | st.dictionaries(st.text(max_size=8), values,
                                                                              max_size=5)


@pytest.fixture(scope="module")
def client(gateway):
    with httpx.Client(base_url=gateway.url, timeout=30,
                      headers={"authorization": f"Bearer {gateway.keys['default']}"}) as http:
        yield http


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_no_client_body_gets_a_5xx_and_errors_come_in_the_routes_envelope(client, ledger, route):
    @settings(max_examples=40, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(body=bodies(route))
    def check(body: dict) -> None:
        endpoint = body.get("model") if isinstance(body.get("model"), str) else f"{route.vendor}-ok"
        content = json.dumps(body).encode()
        response = client.post(route.path(endpoint if route.family == "google" else f"{route.vendor}-ok", False),
                               content=content, headers={"content-type": "application/json"})
        assert response.status_code < 500, (body, response.text[:500])
        ledger.note(response.headers, failed=response.status_code >= 400)
        if response.status_code >= 400:
            assert_error_envelope(response.content, route.family)

    check()


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b"null", b'"text"', b"\xff\xfe", b'{"a": 1e999}',
                                 b'{"model": "\\ud800"}', b"{}" * 10])
def test_bodies_that_are_not_a_json_object_are_400(client, ledger, route, raw):
    response = client.post(route.path(f"{route.vendor}-ok", False), content=raw,
                           headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text[:300]
    ledger.note(response.headers, failed=True)
    assert_error_envelope(response.content, route.family)


@pytest.mark.parametrize("value", [1, "yes"])
@pytest.mark.parametrize("route", [r for r in ROUTES if "stream" in r.body("", True)], ids=lambda r: r.name)
def test_a_stream_flag_that_is_not_a_boolean_is_400_naming_it(client, ledger, route, value):
    # The gateway relays the answer by this flag; a provider reading `1` as true would stream to a client
    # the gateway handles as plain (it was a 502).
    response = client.post(route.path(f"{route.vendor}-ok", False),
                           json={**route.body(f"{route.vendor}-ok", False), "stream": value})
    assert response.status_code == 400, response.text[:300]
    ledger.note(response.headers, failed=True)
    assert "'stream'" in assert_error_envelope(response.content, route.family)
