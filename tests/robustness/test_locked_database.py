"""A sick budget store does not stall requests: with the SQLite database write-locked by another process,
a budget that refuses overspending answers 503 within GATEWAY_BUDGET_TIMEOUT_SECONDS (not after the
20-second busy timeout), an alert-only budget and an unbudgeted endpoint are served at once."""
from __future__ import annotations

import sqlite3
import time

import httpx
import pytest

from tests.e2e.harness import make_gateway

DEADLINE = 1.0
SLACK = 2.5  # a loaded machine; far below the 20-second busy timeout the requests used to wait


@pytest.fixture(scope="module")
def gateway(chaos, tmp_path_factory):
    vendor = {"name": "openai-key", "provider": "openai", "values": {"api_key": "sk-chaos-0123456789"},
              "auth_config": {"api_base": f"{chaos.url}/v1"}}
    model = {"name": "gpt", "provider": "openai", "model_name": "chaos-ok", "secret": "openai-key",
             "input_cost_per_million": 1, "output_cost_per_million": 2}
    window = {"unit": "days", "value": 1}
    config = {"secrets": [vendor], "models": [model],
              "endpoints": [{"name": name, "models": [{"model": "gpt"}]} for name in ("guarded", "watched", "free")],
              "budgets": [{"name": "guarded-daily", "scope": "endpoint", "target": "guarded", "amount_usd": 100,
                           "window": window, "action": "reject"},
                          {"name": "watched-daily", "scope": "endpoint", "target": "watched", "amount_usd": 100,
                           "window": window, "action": "alert"}]}
    server = make_gateway(tmp_path_factory.mktemp("locked"), "locked", config,
                          env={"GATEWAY_BUDGET_TIMEOUT_SECONDS": str(DEADLINE)})
    yield server
    server.stop()


def chat(gateway, endpoint: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.post(f"{gateway.url}/gateway/mlflow/v1/chat/completions", timeout=60,
                          headers={"authorization": f"Bearer {gateway.keys['default']}"},
                          json={"model": endpoint, "messages": [{"role": "user", "content": "hi"}]})
    return response, time.monotonic() - started


def test_budget_checks_on_a_locked_database_answer_within_the_deadline(gateway):
    # "guarded" is first called under the lock: with no allowance in memory yet, it needs the store.
    for endpoint in ("watched", "free"):
        assert chat(gateway, endpoint)[0].status_code == 200
    lock = sqlite3.connect(gateway.workdir / "gateway.sqlite3", isolation_level=None, timeout=30)
    lock.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        refused, took = chat(gateway, "guarded")
        assert refused.status_code == 503, refused.text
        error = refused.json()["error"]
        assert error["code"] == "budget_store_unavailable" and f"within {DEADLINE:g} s" in error["message"]
        assert took < DEADLINE + SLACK
        for endpoint in ("watched", "free"):
            served, took = chat(gateway, endpoint)
            assert served.status_code == 200 and took < SLACK
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert chat(gateway, "guarded")[0].status_code == 200
