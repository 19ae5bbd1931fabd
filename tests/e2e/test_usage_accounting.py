"""Usage records from the real server: stream usage in each provider's format (unified and native routes),
cached tokens at their own price, an abandoned stream still recorded and charged, a client gone before the
first byte still recorded (and its budget reservation released), and no record lost when the server is
stopped with SIGTERM under load."""
from __future__ import annotations

import math
import signal
import threading
from decimal import Decimal

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from tests.clock import clear_of_window_end
from tests.e2e.conftest import endpoint, provider_config
from tests.e2e.db import rows, wait_rows
from tests.e2e.harness import make_gateway
from tests.fakes.base import Behaviour

pytestmark = pytest.mark.clock

SIGTERM_AFTER = 50  # answers served before the SIGTERM test stops the server

MODELS = [
    {"name": "cached-gpt", "provider": "openai", "model_name": "gpt-cached", "secret": "openai-key",
     "input_cost_per_million": 100, "output_cost_per_million": 1000, "cached_input_cost_per_million": 10},
    {"name": "abandon-gpt", "provider": "openai", "model_name": "gpt-abandon", "secret": "openai-key",
     "input_cost_per_million": 100, "output_cost_per_million": 1000},
    {"name": "gone-gpt", "provider": "openai", "model_name": "gpt-gone", "secret": "openai-key",
     "input_cost_per_million": 100, "output_cost_per_million": 1000},
    {"name": "load-gpt", "provider": "openai", "model_name": "gpt-load", "secret": "openai-key",
     "input_cost_per_million": 1, "output_cost_per_million": 1},
    *({"name": name, "provider": "gemini", "model_name": model_name, "secret": "gemini-key",
       "input_cost_per_million": 300, "output_cost_per_million": 2500, "cached_input_cost_per_million": 30}
      for name, model_name in (("tool-gemini", "gemini-tool-usage"), ("inside-gemini", "gemini-thoughts-inside"))),
]
# Built-in price table entries the fakes' model names resolve to (gateway/config/prices.json).
TABLE = {"claude": (Decimal("1"), Decimal("5"), Decimal("0.1")), "gemini-flash": (Decimal("0.3"), Decimal("2.5"),
                                                                                 Decimal("0.03"))}
WINDOW = ("SELECT spent_nanos, reserved_nanos FROM gateway_budgetwindow w JOIN gateway_budgetpolicy p "
          "ON p.id = w.policy_id WHERE p.name = ?")
COLUMNS = "input_tokens, output_tokens, cached_tokens, cost_usd, status_code, usage_estimated, streaming"


def config(fake_openai, fake_anthropic, fake_gemini, endpoints: list[dict], budgets: list[dict] | None = None) -> dict:
    base = provider_config(fake_openai, fake_anthropic, fake_gemini)
    return {**base, "models": [*base["models"], *MODELS], "endpoints": endpoints, "budgets": budgets or []}


@pytest.fixture(autouse=True)
def clear_of_midnight():
    """The daily budgets here are spent and then checked: keep each test inside one UTC day."""
    clear_of_window_end("days", 1, 60)

@pytest.fixture(scope="module")
def gateway(e2e_root, fake_openai, fake_anthropic, fake_gemini):
    endpoints = [endpoint("acc-openai", "cached-gpt"), endpoint("acc-anthropic", "claude"),
                 endpoint("acc-gemini", "gemini-flash"), endpoint("acc-abandon", "abandon-gpt"),
                 endpoint("native-claude", "claude"), endpoint("native-gemini", "gemini-flash"),
                 endpoint("acc-gone", "gone-gpt"), endpoint("acc-stream", "cached-gpt"),
                 endpoint("abandon-claude", "claude"),
                 *(endpoint(f"{route}-{model}", model) for route in ("unified", "unified-stream", "native",
                                                                    "native-stream")
                   for model in ("tool-gemini", "inside-gemini"))]
    budgets = [{"name": name, "scope": "endpoint", "target": target, "amount_usd": 10,
                "window": {"unit": "days", "value": 1}}
               for name, target in (("abandon-budget", "acc-abandon"), ("gone-budget", "acc-gone"))]
    server = make_gateway(e2e_root, "accounting", config(fake_openai, fake_anthropic, fake_gemini, endpoints, budgets))
    yield server
    server.stop()


def record(server, endpoint_name: str) -> tuple:
    found = wait_rows(server, f"SELECT {COLUMNS} FROM gateway_usagerecord WHERE endpoint_name = ?", endpoint_name)
    assert len(found) == 1, found
    return found[0]


def cost(prices: tuple[Decimal, Decimal, Decimal], input_tokens: int, output_tokens: int, cached: int) -> Decimal:
    return ((input_tokens - cached) * prices[0] + cached * prices[2] + output_tokens * prices[1]) / 1_000_000


def test_cached_tokens_are_priced_at_the_cached_price(gateway):
    gpt = openai.OpenAI(base_url=f"{gateway.url}/gateway/mlflow/v1", api_key=gateway.keys["default"], max_retries=0)
    answer = gpt.chat.completions.create(model="acc-openai", messages=[{"role": "user", "content": "hi"}])
    assert answer.usage.prompt_tokens_details.cached_tokens == 3
    input_tokens, output_tokens, cached, recorded, status, estimated, streaming = record(gateway, "acc-openai")
    assert (input_tokens, output_tokens, cached, status, estimated, streaming) == (11, 7, 3, 200, 0, 0)
    assert Decimal(str(recorded)) == Decimal("0.00783")  # 8 x $100 + 3 x $10 + 7 x $1000 per million


def test_a_stream_is_accounted_even_when_the_client_does_not_ask_for_usage(gateway):
    gpt = openai.OpenAI(base_url=f"{gateway.url}/gateway/mlflow/v1", api_key=gateway.keys["default"], max_retries=0)
    chunks = list(gpt.chat.completions.create(model="acc-stream", stream=True,
                                              messages=[{"role": "user", "content": "hi"}]))
    assert not any(c.usage for c in chunks)
    input_tokens, output_tokens, cached, recorded, status, estimated, streaming = record(gateway, "acc-stream")
    assert (input_tokens, output_tokens, cached, status, estimated, streaming) == (11, 7, 3, 200, 0, 1)
    assert Decimal(str(recorded)) == Decimal("0.00783")


@pytest.mark.parametrize("name, prices", [("acc-anthropic", TABLE["claude"]), ("acc-gemini", TABLE["gemini-flash"])])
def test_unified_streams_record_the_providers_own_usage(gateway, name, prices):
    gpt = openai.OpenAI(base_url=f"{gateway.url}/gateway/mlflow/v1", api_key=gateway.keys["default"], max_retries=0)
    chunks = list(gpt.chat.completions.create(model=name, stream=True, stream_options={"include_usage": True},
                                              messages=[{"role": "user", "content": "count me"}]))
    [usage] = [c.usage for c in chunks if c.usage]
    cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0
    input_tokens, output_tokens, cached_tokens, recorded, status, estimated, streaming = record(gateway, name)
    assert (input_tokens, output_tokens, cached_tokens) == (usage.prompt_tokens, usage.completion_tokens, cached)
    assert cached_tokens == 3 and (status, estimated, streaming) == (200, 0, 1)
    assert Decimal(str(recorded)) == cost(prices, input_tokens, output_tokens, cached_tokens)


def test_native_anthropic_stream_is_accounted_from_message_start_and_delta(gateway):
    claude = anthropic.Anthropic(base_url=f"{gateway.url}/gateway/anthropic", api_key=gateway.keys["default"],
                                 max_retries=0)
    with claude.messages.stream(model="native-claude", max_tokens=50,
                                messages=[{"role": "user", "content": "hello"}]) as stream:
        final = stream.get_final_message()
    input_tokens, output_tokens, cached, recorded, status, estimated, _ = record(gateway, "native-claude")
    assert (input_tokens, output_tokens, cached) == (final.usage.input_tokens + 3, final.usage.output_tokens, 3)
    assert (status, estimated) == (200, 0)
    assert Decimal(str(recorded)) == cost(TABLE["claude"], input_tokens, output_tokens, cached)


def test_native_gemini_stream_is_accounted_from_usage_metadata(gateway):
    gem = genai.Client(api_key=gateway.keys["default"], http_options=genai_types.HttpOptions(
        base_url=f"{gateway.url}/gateway/gemini", api_version="v1beta", retry_options=None))
    chunks = list(gem.models.generate_content_stream(model="native-gemini", contents="hello there"))
    meta = chunks[-1].usage_metadata
    input_tokens, output_tokens, cached, recorded, status, estimated, _ = record(gateway, "native-gemini")
    assert (input_tokens, cached) == (meta.prompt_token_count, meta.cached_content_token_count)
    assert output_tokens == meta.candidates_token_count + (meta.thoughts_token_count or 0)
    assert (status, estimated) == (200, 0)
    assert Decimal(str(recorded)) == cost(TABLE["gemini-flash"], input_tokens, output_tokens, cached)


@pytest.mark.parametrize("model, expected", [
    ("tool-gemini", (15, 9, 3)),    # tool-use prompt tokens are input; thoughts come on top of the candidates
    ("inside-gemini", (11, 9, 3)),  # prompt + candidates = total: the candidates already hold the thoughts
])
def test_the_same_gemini_call_costs_the_same_on_the_unified_and_the_native_routes(gateway, model, expected):
    gpt = openai.OpenAI(base_url=f"{gateway.url}/gateway/mlflow/v1", api_key=gateway.keys["default"], max_retries=0)
    gem = genai.Client(api_key=gateway.keys["default"], http_options=genai_types.HttpOptions(
        base_url=f"{gateway.url}/gateway/gemini", api_version="v1beta", retry_options=None))
    messages = [{"role": "user", "content": "hello there"}]
    gpt.chat.completions.create(model=f"unified-{model}", messages=messages)
    list(gpt.chat.completions.create(model=f"unified-stream-{model}", messages=messages, stream=True))
    gem.models.generate_content(model=f"native-{model}", contents="hello there")
    list(gem.models.generate_content_stream(model=f"native-stream-{model}", contents="hello there"))
    recorded = [record(gateway, f"{route}-{model}") for route in ("unified", "unified-stream", "native",
                                                                 "native-stream")]
    assert {row[:3] for row in recorded} == {expected}
    assert {Decimal(str(row[3])) for row in recorded} == {cost((Decimal(300), Decimal(2500), Decimal(30)), *expected)}
    assert all(row[4] == 200 and row[5] == 0 for row in recorded)


def test_an_abandoned_stream_is_recorded_and_charged(gateway, fake_openai):
    fake_openai.behave("gpt-abandon", Behaviour(stall_after=3, stall_seconds=5), times=1)
    body = {"model": "acc-abandon", "stream": True, "max_tokens": 50,
            "messages": [{"role": "user", "content": "tell me a long story please"}]}
    with httpx.Client(timeout=10) as http:
        with http.stream("POST", f"{gateway.url}/gateway/mlflow/v1/chat/completions", json=body,
                         headers={"Authorization": f"Bearer {gateway.keys['default']}"}) as response:
            events = 0
            for line in response.iter_lines():
                events += line.startswith("data: ")
                if events == 2:
                    break  # the client goes away mid-stream
    input_tokens, output_tokens, cached, recorded, status, estimated, _ = record(gateway, "acc-abandon")
    assert (status, estimated) == (499, 1)
    assert input_tokens == math.ceil(len("tell me a long story please".encode()) / 4) and output_tokens > 0
    assert Decimal(str(recorded)) == cost((Decimal(100), Decimal(1000), Decimal(100)), input_tokens, output_tokens, 0)
    [(spent, reserved)] = wait_rows(gateway, WINDOW, "abandon-budget", expect=lambda r: r and r[0][1] == 0)
    assert (spent, reserved) == (int(Decimal(str(recorded)) * 10**9), 0)


def test_an_abandoned_native_stream_is_recorded_from_what_was_seen(gateway, fake_anthropic):
    fake_anthropic.behave("claude-haiku-4-5", Behaviour(stall_after=5, stall_seconds=5), times=1)
    body = {"model": "abandon-claude", "stream": True, "max_tokens": 50,
            "messages": [{"role": "user", "content": "tell me a long story please"}]}
    with httpx.Client(timeout=10) as http:
        with http.stream("POST", f"{gateway.url}/gateway/anthropic/v1/messages", json=body,
                         headers={"x-api-key": gateway.keys["default"]}) as response:
            for line in response.iter_lines():
                if "content_block_delta" in line:
                    break  # the client goes away after the first text
    input_tokens, output_tokens, cached, recorded, status, estimated, _ = record(gateway, "abandon-claude")
    assert (status, estimated) == (499, 1)
    assert (input_tokens, cached) == (11, 3) and output_tokens >= 1  # input as message_start reported it
    assert Decimal(str(recorded)) == cost(TABLE["claude"], input_tokens, output_tokens, cached)


@pytest.mark.parametrize("path, route, stream", [
    ("/gateway/mlflow/v1/chat/completions", "unified/chat", True),
    ("/gateway/mlflow/v1/chat/completions", "unified/chat", False),
    ("/gateway/openai/v1/chat/completions", "passthrough/openai-chat", True),
])
def test_a_client_gone_before_the_first_byte_is_recorded_and_holds_no_budget(gateway, fake_openai, path, route,
                                                                              stream):
    fake_openai.behave("gpt-gone", Behaviour(delay=2), times=1)
    body = {"model": "acc-gone", "stream": stream, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(httpx.ReadTimeout):  # the client gives up while the provider is still thinking
        httpx.post(f"{gateway.url}{path}", json=body, headers={"Authorization": f"Bearer {gateway.keys['default']}"},
                   timeout=httpx.Timeout(10, read=0.5))
    found = wait_rows(gateway, "SELECT status_code, error_type FROM gateway_usagerecord WHERE endpoint_name = "
                               "'acc-gone' AND route = ? AND streaming = ?", route, stream)
    assert found == [(499, "client_closed")]
    [(_, reserved)] = wait_rows(gateway, WINDOW, "gone-budget", expect=lambda r: r and r[0][1] == 0)
    assert reserved == 0


def test_sigterm_under_load_loses_no_usage_record(e2e_root, fake_openai, fake_anthropic, fake_gemini):
    server = make_gateway(e2e_root, "sigterm", config(fake_openai, fake_anthropic, fake_gemini,
                                                       [endpoint("load", "load-gpt")]))
    fake_openai.behave("gpt-load", Behaviour(delay=0.05))
    completed, attempted, counted, stop = [0], [0], threading.Condition(), threading.Event()

    def load() -> None:
        with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {server.keys['default']}"}) as http:
            while not stop.is_set():
                with counted:
                    attempted[0] += 1
                try:
                    answer = http.post(f"{server.url}/gateway/mlflow/v1/chat/completions",
                                       json={"model": "load", "messages": [{"role": "user", "content": "hi"}]})
                except httpx.HTTPError:
                    return
                if answer.status_code != 200:
                    return
                with counted:
                    completed[0] += 1
                    counted.notify_all()

    threads = [threading.Thread(target=load, daemon=True) for _ in range(16)]
    for thread in threads:
        thread.start()
    try:
        # SIGTERM once the server has served a good number, however slow the machine (a deadline, not a
        # fixed wait): 16 clients keep requests in flight the whole time, so the signal lands under load.
        with counted:
            served = counted.wait_for(lambda: completed[0] > SIGTERM_AFTER, timeout=120)
        assert served, f"only {completed[0]} answers in 120 s"
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=60)  # uvicorn re-raises SIGTERM after its graceful shutdown: exit code -15
    finally:
        stop.set()
        server.stop()
        for thread in threads:
            thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    [(written,)] = rows(server, "SELECT COUNT(*) FROM gateway_usagerecord WHERE endpoint_name = 'load'")
    assert completed[0] <= written <= attempted[0], (completed[0], written, attempted[0])
    assert "could not be written" not in server.log()
