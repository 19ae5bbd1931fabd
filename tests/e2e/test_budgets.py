"""Budgets against the real server: concurrent requests never overspend (one process, two processes on one
database, two processes on one Redis), refusals in each SDK's own envelope on every unified and native route,
spend counted on an endpoint that keeps no usage records, policy changes within 2 s, alerts once per window,
and a fresh window after the reset."""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.clock import clear_of_window_end
from tests.e2e.conftest import endpoint, provider_config
from tests.e2e.db import rows, wait_rows
from tests.e2e.harness import GatewayServer, make_gateway
from tests.redis_server import redis_server

pytestmark = pytest.mark.clock

# The fake OpenAI upstream always reports 11 prompt (3 of them cached) and 7 completion tokens. With these
# prices (no cached price: cached tokens bill as input) a request costs $0.0081, and the gateway's worst-case
# estimate for BODY is the same: 44 bytes of text = 11 tokens, max_tokens 7.
PRICED = {"name": "priced-gpt", "provider": "openai", "model_name": "gpt-budget", "secret": "openai-key",
          "input_cost_per_million": 100, "output_cost_per_million": 1000}
COST = Decimal("0.0081")
BODY = {"messages": [{"role": "user", "content": "x" * 44}], "max_tokens": 7}


def budget(name: str, target: str, amount, *, unit: str = "days", value: int = 1, action: str = "reject",
           webhook_url: str = "") -> dict:
    spec = {"name": name, "scope": "endpoint", "target": target, "amount_usd": float(amount),
            "window": {"unit": unit, "value": value}, "action": action}
    return {**spec, "webhook_url": webhook_url} if webhook_url else spec


def config(fake_openai, fake_anthropic, fake_gemini, endpoints: list[dict], budgets: list[dict]) -> dict:
    base = provider_config(fake_openai, fake_anthropic, fake_gemini)
    return {**base, "models": [*base["models"], PRICED], "endpoints": endpoints, "budgets": budgets}


def client(server: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/gateway/mlflow/v1", api_key=server.keys["default"], max_retries=0,
                         timeout=30)


def fire(clients: list[openai.OpenAI], model: str, count: int) -> tuple[int, list[openai.RateLimitError]]:
    """`count` concurrent chat requests, spread over `clients`; returns (successes, refusals)."""
    def one(index: int):
        try:
            clients[index % len(clients)].chat.completions.create(model=model, **BODY)
            return None
        except openai.RateLimitError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=count) as pool:
        outcomes = list(pool.map(one, range(count)))
    return sum(o is None for o in outcomes), [o for o in outcomes if o is not None]


def recorded_spend(server: GatewayServer, endpoint_name: str, expected_rows: int) -> Decimal:
    found = wait_rows(server, "SELECT cost_usd FROM gateway_usagerecord WHERE endpoint_name = ?", endpoint_name,
                      expect=lambda r: len(r) >= expected_rows)
    assert len(found) == expected_rows
    return sum((Decimal(str(cost)) for (cost,) in found if cost is not None), Decimal(0))


@pytest.fixture(autouse=True)
def clear_of_midnight():
    """The daily budgets here are spent and then checked: keep each test inside one UTC day."""
    clear_of_window_end("days", 1, 60)

@pytest.fixture(scope="module")
def gateway(e2e_root, fake_openai, fake_anthropic, fake_gemini):
    endpoints = [endpoint(name, "priced-gpt") for name in ("capped", "late", "minutely", "alerted")]
    endpoints += [endpoint("pt-claude", "claude"), endpoint("pt-gpt", "priced-gpt"),
                  endpoint("pt-gemini", "gemini-flash"), endpoint("untracked", "priced-gpt", usage_tracking=False)]
    server = make_gateway(e2e_root, "budgets", config(fake_openai, fake_anthropic, fake_gemini, endpoints, [
        budget("capped-daily", "capped", COST * 10),
        budget("minutely", "minutely", COST, unit="minutes"),
        budget("pt-claude-zero", "pt-claude", 0),
        budget("pt-gpt-zero", "pt-gpt", 0),
        budget("pt-gemini-zero", "pt-gemini", 0),
        budget("untracked-daily", "untracked", COST * Decimal("1.5")),
    ]))
    yield server
    server.stop()


def test_forty_concurrent_requests_against_a_budget_for_ten(gateway):
    successes, refusals = fire([client(gateway)], "capped", 40)
    assert successes == 10 and len(refusals) == 30
    refusal = refusals[0]
    assert refusal.status_code == 429 and refusal.body["type"] == "budget_exceeded"
    assert "Budget 'capped-daily' (endpoint 'capped') allows $0.081" in refusal.message
    assert 0 < int(refusal.response.headers["retry-after"]) <= 86400
    assert recorded_spend(gateway, "capped", 40) <= COST * 10
    assert wait_rows(gateway, "SELECT status_code, COUNT(*) FROM gateway_usagerecord WHERE endpoint_name = 'capped' "
                              "GROUP BY status_code ORDER BY status_code") == [(200, 10), (429, 30)]
    [(spent, reserved)] = wait_rows(gateway, "SELECT spent_nanos, reserved_nanos FROM gateway_budgetwindow w JOIN "
                                             "gateway_budgetpolicy p ON p.id = w.policy_id WHERE p.name = 'capped-daily'",
                                    expect=lambda r: r and r[0][1] == 0)
    assert (spent, reserved) == (81_000_000, 0)


@pytest.mark.parametrize("store", ["database", "redis"])
def test_two_processes_sharing_one_store_never_overspend(e2e_root, fake_openai, fake_anthropic, fake_gemini, store):
    with redis_server() if store == "redis" else contextlib.nullcontext() as redis_url:
        env = {"REDIS_URL": redis_url} if redis_url else {}
        first = make_gateway(e2e_root, f"two-{store}", config(fake_openai, fake_anthropic, fake_gemini,
                                                               [endpoint("shared", "priced-gpt")],
                                                               [budget("shared-daily", "shared", COST * 10)]), env=env)
        second = GatewayServer(workdir=first.workdir, env=first.env, keys=first.keys).start()
        try:
            successes, refusals = fire([client(first), client(second)], "shared", 40)
            assert successes == 10 and len(refusals) == 30
            assert recorded_spend(first, "shared", 40) <= COST * 10
        finally:
            second.stop()
            first.stop()


def test_native_routes_are_held_to_budgets_too(gateway):
    claude = anthropic.Anthropic(base_url=f"{gateway.url}/gateway/anthropic", api_key=gateway.keys["default"],
                                 max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as refused:
        claude.messages.create(model="pt-claude", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert refused.value.body["error"]["type"] == "rate_limit_error"
    assert "Budget 'pt-claude-zero'" in refused.value.body["error"]["message"]
    with pytest.raises(anthropic.RateLimitError, match="pt-claude-zero"):
        with claude.messages.stream(model="pt-claude", max_tokens=10, messages=[{"role": "user", "content": "hi"}]):
            pass
    # Counting tokens costs nothing, so a spent budget does not refuse it.
    assert claude.messages.count_tokens(model="pt-claude", messages=[{"role": "user", "content": "hi"}]).input_tokens
    native = openai.OpenAI(base_url=f"{gateway.url}/gateway/openai/v1", api_key=gateway.keys["default"], max_retries=0)
    with pytest.raises(openai.RateLimitError, match="pt-gpt-zero"):
        native.chat.completions.create(model="pt-gpt", stream=True, **BODY)
    with pytest.raises(openai.RateLimitError, match="pt-gpt-zero"):
        native.chat.completions.create(model="pt-gpt", **BODY)
    with pytest.raises(openai.RateLimitError, match="pt-gpt-zero"):
        native.responses.create(model="pt-gpt", input="hi")
    with pytest.raises(openai.RateLimitError, match="pt-gpt-zero"):
        native.responses.create(model="pt-gpt", input="hi", stream=True)
    with pytest.raises(openai.RateLimitError, match="pt-gpt-zero"):
        native.embeddings.create(model="pt-gpt", input="hi")
    gem = genai.Client(api_key=gateway.keys["default"], http_options=genai_types.HttpOptions(
        base_url=f"{gateway.url}/gateway/gemini", api_version="v1beta", retry_options=None))
    for call in (gem.models.generate_content, lambda **kw: list(gem.models.generate_content_stream(**kw))):
        with pytest.raises(genai_errors.ClientError) as refused:
            call(model="pt-gemini", contents="hi")
        assert refused.value.code == 429 and "pt-gemini-zero" in refused.value.message


def test_unified_embeddings_and_invocations_are_held_to_budgets_too(gateway):
    with pytest.raises(openai.RateLimitError, match="pt-gpt-zero"):
        client(gateway).embeddings.create(model="pt-gpt", input="hi")
    for body in (BODY, {"input": "hi"}):
        refused = httpx.post(f"{gateway.url}/gateway/pt-gpt/mlflow/invocations", json=body,
                             headers={"Authorization": f"Bearer {gateway.keys['default']}"})
        assert refused.status_code == 429 and "pt-gpt-zero" in refused.json()["error"]["message"]


def test_an_endpoint_with_usage_tracking_off_is_still_charged_and_its_spend_kept(gateway):
    gpt = client(gateway)
    gpt.chat.completions.create(model="untracked", **BODY)
    time.sleep(1)  # the spend reaches the shared window once this process's allowance closes
    with pytest.raises(openai.RateLimitError, match="untracked-daily"):
        gpt.chat.completions.create(model="untracked", **BODY)
    # Only the budgeted, charged request is recorded: windows are re-seeded from these rows after a restart.
    assert wait_rows(gateway, "SELECT status_code, COUNT(*) FROM gateway_usagerecord WHERE endpoint_name = 'untracked' "
                              "GROUP BY status_code") == [(200, 1)]


def test_a_new_policy_applies_within_two_seconds(gateway, fake_openai, fake_anthropic, fake_gemini):
    gpt = client(gateway)
    gpt.chat.completions.create(model="late", **BODY)
    gateway.apply({"budgets": [budget("late-zero", "late", 0)]})

    def refused() -> bool:
        try:
            gpt.chat.completions.create(model="late", **BODY)
            return False
        except openai.RateLimitError:
            return True

    assert gateway.wait_for_config(refused, timeout=5) <= 2.0


def test_the_next_window_has_room_again(gateway):
    gpt = client(gateway)
    if dt.datetime.now(dt.timezone.utc).second >= 55:
        time.sleep(6)  # start well inside a minute, so the first request and the refusal share a window
    gpt.chat.completions.create(model="minutely", **BODY)
    with pytest.raises(openai.RateLimitError) as refused:
        gpt.chat.completions.create(model="minutely", **BODY)
    wait = int(refused.value.response.headers["retry-after"])
    assert 0 < wait <= 60 and "resets at" in refused.value.message
    time.sleep(wait + 0.5)
    gpt.chat.completions.create(model="minutely", **BODY)


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records every POST."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's naming
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_alert_webhook_fires_once_per_window_across_processes(gateway):
    receiver = Receiver()
    second = None
    try:
        gateway.apply({"budgets": [budget("watch", "alerted", COST * 2, action="alert", webhook_url=receiver.url)]})
        second = GatewayServer(workdir=gateway.workdir, env=gateway.env, keys=gateway.keys).start()
        time.sleep(1.5)  # both processes have the policy
        clients = [client(gateway), client(second)]
        for index in range(6):  # an alert policy never refuses
            clients[index % 2].chat.completions.create(model="alerted", **BODY)
        deadline = time.monotonic() + 10
        while not receiver.bodies and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # time for any duplicate to arrive
        assert len(receiver.bodies) == 1
        alert = receiver.bodies[0]
        assert alert["policy"]["name"] == "watch" and alert["reason"] == "limit_reached"
        assert Decimal(alert["spent_usd"]) >= COST * 2
        [(marked,)] = rows(gateway, "SELECT last_alert_window_start FROM gateway_budgetpolicy WHERE name = 'watch'")
        assert marked is not None and marked.startswith(alert["window"]["start"][:10])
    finally:
        receiver.close()
        if second is not None:
            second.stop()
