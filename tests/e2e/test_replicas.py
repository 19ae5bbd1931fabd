"""Two replicas, one PostgreSQL, one Redis: the deployment docs/deploy.md describes, run for real.

Two separate uvicorn processes on different ports share a PostgreSQL database (configuration, usage) and a
redis-server (budget and rate-limit counters), all on 127.0.0.1. The stage `replicas` of scripts/test.sh
provides a fresh database in GATEWAY_REPLICA_DATABASE_URL; without it (the SQLite stages) these tests skip.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import openai
import pytest

from tests.clock import clear_of_window_end
from tests.e2e.conftest import endpoint, provider_config
from tests.e2e.harness import BASE_ENV, GatewayServer
from tests.fakes.base import Behaviour
from tests.redis_server import real_clock_env

DATABASE_URL = os.environ.get("GATEWAY_REPLICA_DATABASE_URL", "")
pytestmark = [pytest.mark.replicas,
              pytest.mark.skipif(not DATABASE_URL, reason="needs GATEWAY_REPLICA_DATABASE_URL (stage `replicas`)")]

PRICED = {"name": "priced-gpt", "provider": "openai", "model_name": "gpt-budget", "secret": "openai-key",
          "input_cost_per_million": 100, "output_cost_per_million": 1000}
SLOW = {"name": "slow-gpt", "provider": "openai", "model_name": "gpt-slow", "secret": "openai-key"}
COST = Decimal("0.0081")  # the fake's 11 + 7 tokens at these prices, exactly the estimate for BODY
BODY = {"messages": [{"role": "user", "content": "x" * 44}], "max_tokens": 7}


class Redis:
    """A redis-server on a fixed 127.0.0.1 port that can be stopped and started again on the same port."""

    def __init__(self, workdir) -> None:
        from tests.e2e.harness import free_port

        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=real_clock_env())
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def query(sql: str, *args) -> list[tuple]:
    import psycopg

    with psycopg.connect(DATABASE_URL.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        return conn.execute(sql, args).fetchall()


def wait_query(sql: str, *args, expect, timeout: float = 10.0) -> list[tuple]:
    deadline = time.monotonic() + timeout
    while True:
        found = query(sql, *args)
        if expect(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, fake_openai, fake_anthropic, fake_gemini):
    workdir = tmp_path_factory.mktemp("replicas")
    redis = Redis(workdir)
    redis.start()
    env = {**os.environ, **BASE_ENV, "DATABASE_URL": DATABASE_URL, "REDIS_URL": redis.url,
           "GATEWAY_DATA_DIR": str(workdir), "GATEWAY_CONFIG_POLL_SECONDS": "0.5"}
    first = GatewayServer(workdir=workdir, env=env)
    first.manage("migrate", "--noinput", "-v0")
    base = provider_config(fake_openai, fake_anthropic, fake_gemini)
    first.apply({**base, "models": [*base["models"], PRICED, SLOW],
                 "endpoints": [endpoint("chat", "gpt"), endpoint("budgeted", "priced-gpt"),
                               endpoint("limited", "gpt"), endpoint("slow", "slow-gpt"),
                               endpoint("after-restart", "gpt"), endpoint("widely-limited", "gpt")],
                 "budgets": [{"name": "ten", "scope": "endpoint", "target": "budgeted", "amount_usd": float(COST * 10),
                              "window": {"unit": "days", "value": 1}, "action": "reject"}],
                 "rate_limits": [{"name": "r12", "scope": "endpoint", "target": "limited", "requests_per_minute": 12},
                                 {"name": "r300", "scope": "endpoint", "target": "widely-limited",
                                  "requests_per_minute": 300},
                                 {"name": "r5", "scope": "endpoint", "target": "after-restart",
                                  "requests_per_minute": 5}]},
                "--prune")
    first.create_key(f"replicas-{time.monotonic_ns()}")
    first.keys["default"] = next(iter(first.keys.values()))
    first.start()
    second = GatewayServer(workdir=workdir, env=env, keys=first.keys).start()
    yield first, second, redis
    second.stop()
    first.stop()
    redis.stop()


def client(server: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/gateway/mlflow/v1", api_key=server.keys["default"], max_retries=0,
                         timeout=30)


def spread(servers, model: str, count: int, body: dict = BODY) -> list[int | str]:
    """`count` concurrent requests alternating between the replicas: each one's HTTP status, or the error kind."""
    clients = [client(server) for server in servers]

    def one(index: int):
        try:
            clients[index % len(clients)].chat.completions.create(model=model, **body)
            return 200
        except openai.APIStatusError as exc:
            return exc.status_code
        except openai.APIConnectionError:
            return "connection"

    with ThreadPoolExecutor(max_workers=min(count, 40)) as pool:
        return list(pool.map(one, range(count)))


def test_a_configuration_change_through_one_replica_is_served_by_both_within_two_seconds(cluster):
    first, second, _ = cluster
    clients = [httpx.Client(base_url=f"{server.url}/gateway/mlflow/v1", timeout=10,
                            headers={"Authorization": f"Bearer {server.keys['default']}"}) for server in (first, second)]
    assert {c.post("/chat/completions", json={"model": "added-late", **BODY}).status_code for c in clients} == {404}
    first.apply({"endpoints": [endpoint("added-late", "gpt")]})
    start = time.monotonic()

    def served_by_both() -> bool:
        return all(c.post("/chat/completions", json={"model": "added-late", **BODY}).status_code == 200
                   for c in clients)

    first.wait_for_config(served_by_both, timeout=5)
    assert time.monotonic() - start <= 2.0
    for c in clients:
        c.close()


def test_a_budget_for_ten_admits_exactly_ten_of_forty_over_both(cluster):
    clear_of_window_end("days", 1, 60)
    first, second, _ = cluster
    outcomes = spread([first, second], "budgeted", 40)
    assert outcomes.count(200) == 10 and outcomes.count(429) == 30
    costs = wait_query("SELECT cost_usd FROM gateway_usagerecord WHERE endpoint_name = 'budgeted' AND status_code = 200",
                       expect=lambda r: len(r) >= 10)
    assert sum(cost for (cost,) in costs) == COST * 10


def test_a_rate_limit_admits_its_burst_across_both(cluster):
    first, second, _ = cluster
    outcomes = spread([first, second], "limited", 30)
    assert outcomes.count(200) == 12 and outcomes.count(429) == 18


def test_a_limit_large_enough_for_allowances_still_holds_across_both(cluster):
    """300 a minute is shared through per-process allowances (gateway/ratelimits/allowance.py): across both
    replicas it admits its burst, never more (but for what refills meanwhile, 5 a second), and at most one
    allowance per replica (3 requests) fewer."""
    first, second, _ = cluster
    started = time.monotonic()
    outcomes = spread([first, second], "widely-limited", 360)
    refilled = int((time.monotonic() - started) * 300 / 60) + 1
    assert 300 - 2 * 3 <= outcomes.count(200) <= 300 + refilled
    assert outcomes.count(200) + outcomes.count(429) == 360


def test_usage_from_both_replicas_lands_in_postgresql(cluster):
    first, second, _ = cluster
    before = query("SELECT COUNT(*) FROM gateway_usagerecord WHERE endpoint_name = 'chat'")[0][0]
    for server in (first, second):
        assert spread([server], "chat", 10) == [200] * 10
    found = wait_query("SELECT COUNT(*) FROM gateway_usagerecord WHERE endpoint_name = 'chat'",
                       expect=lambda r: r[0][0] >= before + 20)
    assert found[0][0] == before + 20


def test_redis_restarting_mid_run_crashes_neither_replica_and_counting_resumes(cluster):
    first, second, redis = cluster
    redis.stop()
    # Fail open (the default): rate-limited requests are admitted while Redis is gone; budgets on Redis refuse.
    assert spread([first, second], "after-restart", 8) == [200] * 8
    assert set(spread([first, second], "budgeted", 2)) == {503}
    for server in (first, second):
        assert server.process.poll() is None
        assert httpx.get(f"{server.url}/health").status_code == 200
        assert httpx.get(f"{server.url}/ready").status_code == 503
    redis.start()  # empty, as after a restart without persistence
    outcomes = []
    deadline = time.monotonic() + 10
    while outcomes.count(429) == 0 and time.monotonic() < deadline:
        outcomes += spread([first, second], "after-restart", 1)
    assert outcomes.count(200) >= 5 and outcomes[-1] == 429
    for server in (first, second):
        assert httpx.get(f"{server.url}/ready").status_code == 200


def test_sigterm_under_load_loses_no_usage_record_and_the_other_replica_keeps_serving(cluster, fake_openai):
    first, second, _ = cluster
    fake_openai.behave("gpt-slow", Behaviour(delay=0.2))
    before = query("SELECT COUNT(*) FROM gateway_usagerecord WHERE endpoint_name = 'slow' AND status_code = 200")[0][0]
    outcomes: list = []
    recorded_outcome, stop = threading.Condition(), threading.Event()

    def load(server: GatewayServer) -> None:
        gpt = client(server)
        for _ in range(200):  # bounded; stopped earlier by the test
            if stop.is_set():
                return
            try:
                gpt.chat.completions.create(model="slow", **BODY)
                outcome = (server.port, 200)
            except openai.APIStatusError as exc:
                outcome = (server.port, exc.status_code)
            except openai.APIConnectionError:
                outcome = (server.port, "connection")
            with recorded_outcome:
                outcomes.append(outcome)
                recorded_outcome.notify_all()

    def served(server: GatewayServer) -> int:
        return sum(1 for port, status in outcomes if port == server.port and status == 200)

    def wait_until(condition, what: str) -> None:
        """Deadlines rather than fixed waits: a slow machine gets the time it needs."""
        with recorded_outcome:
            assert recorded_outcome.wait_for(condition, timeout=60), f"{what} within 60 s: {outcomes[-20:]}"

    threads = [threading.Thread(target=load, args=(server,), daemon=True) for server in (first, second)
               for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        # Both replicas under load: each has answered, and its clients keep requests in flight upstream.
        wait_until(lambda: served(first) >= 4 and served(second) >= 4, "both replicas answering")
        # uvicorn finishes the requests in flight, runs the lifespan shutdown, then re-raises the signal.
        assert first.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        with recorded_outcome:
            served_before = served(second)
        wait_until(lambda: served(second) > served_before, "the other replica answering after the SIGTERM")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert all(status == 200 for port, status in outcomes if port == second.port)
    answered = sum(1 for _, status in outcomes if status == 200)
    unanswered = sum(1 for _, status in outcomes if status == "connection")  # may or may not have been served
    recorded = wait_query("SELECT COUNT(*) FROM gateway_usagerecord WHERE endpoint_name = 'slow' AND status_code = 200",
                          expect=lambda r: r[0][0] - before >= answered)
    assert answered <= recorded[0][0] - before <= answered + unanswered
    first.start()  # back for any later test
