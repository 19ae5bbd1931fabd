"""Every route against every way an upstream can break (tests/fakes/chaos.py), plainly and streaming:
the client always gets a well-formed answer in its own format, an error within the endpoint's total
timeout when the upstream is broken, and never a 500."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.fakes.chaos import MODES
from tests.robustness.conftest import TOTAL_TIMEOUT
from tests.robustness.routes import (ROUTES, Route, assert_error_envelope, ended_complete, ended_with_error,
                                     stream_items)

BROKEN = [mode for mode in MODES if mode not in ("ok", "malformed")]
PLAIN_BROKEN = [mode for mode in BROKEN if mode != "invalid"]  # a plain answer has no events to spoil
# Modes the gateway sees before the first byte of a stream: the client gets a whole error answer.
BEFORE_FIRST_BYTE = {"html", "array", "error200"}
# The slow upstream is cut by the total timeout; allow for a loaded machine on top of it.
WITHIN = TOTAL_TIMEOUT + 3


def ask(gateway, route: Route, mode: str, stream: bool) -> tuple[httpx.Response, float]:
    endpoint = f"{route.vendor}-{mode}"
    started = time.monotonic()
    response = httpx.post(gateway.url + route.path(endpoint, stream), json=route.body(endpoint, stream),
                          headers={"authorization": f"Bearer {gateway.keys['default']}"}, timeout=30)
    return response, time.monotonic() - started


@pytest.fixture(scope="module")
def slow_answers(gateway) -> dict[tuple[str, bool], tuple[httpx.Response, float]]:
    """Every route's call to the slow upstream, plainly and streaming, asked for all at once: each waits out
    the endpoint's total timeout, which one after another would cost more than half a minute."""
    jobs = [(route, stream) for route in ROUTES for stream in (False, True) if route.streams or not stream]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {(route.name, stream): pool.submit(ask, gateway, route, "slow", stream) for route, stream in jobs}
    return {key: future.result() for key, future in futures.items()}


def call(request, route: Route, mode: str, stream: bool) -> tuple[httpx.Response, float]:
    if mode == "slow":
        return request.getfixturevalue("slow_answers")[(route.name, stream)]
    return ask(request.getfixturevalue("gateway"), route, mode, stream)


@pytest.mark.parametrize("mode", PLAIN_BROKEN)
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_a_broken_upstream_is_a_clean_error_in_the_routes_format(request, ledger, route, mode):
    response, took = call(request, route, mode, stream=False)
    ledger.note(response.headers, failed=True)
    assert response.status_code in (502, 504), response.text
    message = assert_error_envelope(response.content, route.family)
    assert took < WITHIN
    if mode == "error200":
        assert "quota is exhausted" in message


@pytest.mark.parametrize("mode", BROKEN)
@pytest.mark.parametrize("route", [r for r in ROUTES if r.streams], ids=lambda r: r.name)
def test_a_broken_stream_ends_with_the_apis_own_error_event(request, ledger, route, mode):
    response, took = call(request, route, mode, stream=True)
    ledger.note(response.headers, failed=True)
    assert took < WITHIN
    if mode in BEFORE_FIRST_BYTE:
        assert response.status_code == 502, response.text
        assert_error_envelope(response.content, route.family)
        return
    assert response.status_code == 200, response.text
    message = ended_with_error(route, stream_items(route, response.content))
    if mode == "slow":
        assert "total timeout" in message


@pytest.mark.parametrize("route", [r for r in ROUTES if r.streams], ids=lambda r: r.name)
def test_an_event_of_the_wrong_shape_is_relayed_and_the_rest_of_the_stream_still_flows(request, ledger, route):
    response, _ = call(request, route, "malformed", stream=True)
    ledger.note(response.headers, failed=False)
    assert response.status_code == 200, response.text
    ended_complete(route, stream_items(route, response.content))


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_a_healthy_upstream_still_answers_every_route(request, ledger, route):
    response, _ = call(request, route, "ok", stream=False)
    assert response.status_code == 200, response.text
    ledger.note(response.headers, failed=False)
    if route.streams:
        response, _ = call(request, route, "ok", stream=True)
        assert response.status_code == 200, response.text
        ledger.note(response.headers, failed=False)
        ended_complete(route, stream_items(route, response.content))


def test_unified_chat_answers_502_with_the_upstreams_message_for_an_error_sent_with_200(request):
    response, _ = call(request, ROUTES[0], "error200", stream=False)
    assert response.status_code == 502
    assert "chaos: the quota is exhausted" in response.json()["error"]["message"]
    response, _ = call(request, ROUTES[0], "array", stream=False)
    assert response.status_code == 502 and "not a JSON object" in response.json()["error"]["message"]
