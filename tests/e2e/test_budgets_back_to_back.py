"""Budgets hold for requests sent one after another whose answers cost more than their estimate (no
max_tokens): each request's settled cost reaches the shared counter before its response ends, so the next
admission, in this process or another, sees it. One process and two, on the database and on Redis."""
from __future__ import annotations

import contextlib
from decimal import Decimal

import openai
import pytest

from tests.clock import clear_of_window_end
from tests.e2e.conftest import endpoint, provider_config
from tests.e2e.db import wait_rows
from tests.e2e.harness import GatewayServer, make_gateway
from tests.redis_server import redis_server

pytestmark = pytest.mark.clock

# 11 input tokens at $100/M and 7 output tokens at $1000/M: each answer costs $0.0081. Without max_tokens and
# with GATEWAY_BUDGET_DEFAULT_OUTPUT_TOKENS=1, the estimate is $0.0021, so every answer overruns it by $0.006.
PRICED = {"name": "priced-gpt", "provider": "openai", "model_name": "gpt-budget", "secret": "openai-key",
          "input_cost_per_million": 100, "output_cost_per_million": 1000}
COST, ESTIMATE, LIMIT = Decimal("0.0081"), Decimal("0.0021"), Decimal("0.03")
BODY = {"messages": [{"role": "user", "content": "x" * 44}]}


@pytest.mark.parametrize("processes", [1, 2])
@pytest.mark.parametrize("store", ["database", "redis"])
def test_sequential_requests_that_overrun_their_estimate_stop_at_the_budget(
        e2e_root, fake_openai, fake_anthropic, fake_gemini, store, processes):
    clear_of_window_end("days", 1, 60)
    with redis_server() if store == "redis" else contextlib.nullcontext() as redis_url:
        env = {"GATEWAY_BUDGET_DEFAULT_OUTPUT_TOKENS": "1", **({"REDIS_URL": redis_url} if redis_url else {})}
        base = provider_config(fake_openai, fake_anthropic, fake_gemini)
        config = {**base, "models": [*base["models"], PRICED], "endpoints": [endpoint("overrun", "priced-gpt")],
                  "budgets": [{"name": "small", "scope": "endpoint", "target": "overrun", "amount_usd": float(LIMIT),
                               "window": {"unit": "days", "value": 1}, "action": "reject"}]}
        servers = [make_gateway(e2e_root, f"overrun-{store}-{processes}", config, env=env)]
        if processes == 2:
            servers.append(GatewayServer(workdir=servers[0].workdir, env=servers[0].env, keys=servers[0].keys).start())
        try:
            clients = [openai.OpenAI(base_url=f"{s.url}/gateway/mlflow/v1", api_key=s.keys["default"], max_retries=0)
                       for s in servers]
            admitted = 0
            for index in range(12):
                try:
                    clients[index % len(clients)].chat.completions.create(model="overrun", **BODY)
                    admitted += 1
                except openai.RateLimitError:
                    pass
            # Admitted while spent + estimate <= limit: 3 x $0.0081 + $0.0021 fits, 4 x $0.0081 + $0.0021 does not.
            assert admitted == 4
            costs = wait_rows(servers[0], "SELECT cost_usd FROM gateway_usagerecord WHERE status_code = 200",
                              expect=lambda r: len(r) >= 4)
            spent = sum(Decimal(str(cost)) for (cost,) in costs)
            assert spent == 4 * COST <= LIMIT + (COST - ESTIMATE)
        finally:
            for server in servers:
                server.stop()
