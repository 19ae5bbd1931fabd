"""GET /ready and /health against the real server, without a client key: ready with a fresh snapshot and
reachable stores; 503 naming Redis while the Redis its budgets count in is down."""
from __future__ import annotations

import httpx

from tests.e2e.harness import make_gateway
from tests.redis_server import redis_server


def test_a_healthy_replica_is_ready_without_a_client_key(e2e_root):
    server = make_gateway(e2e_root, "ready")
    try:
        ready = httpx.get(f"{server.url}/ready")
        assert ready.status_code == 200
        report = ready.json()
        assert report["status"] == "ready" and report["database"] == "ok" and report["redis"] == "not configured"
        assert 0 <= report["snapshot_age_seconds"] < 10 and report["config_version"] >= 0
        assert httpx.get(f"{server.url}/health").status_code == 200
    finally:
        server.stop()


def test_a_replica_whose_redis_is_down_is_not_ready(e2e_root):
    with redis_server() as redis_url:
        server = make_gateway(e2e_root, "ready-redis", env={"REDIS_URL": redis_url})
        try:
            assert httpx.get(f"{server.url}/ready").json()["redis"] == "ok"
            port = redis_url.rsplit(":", 1)[1].split("/")[0]
            import redis

            redis.Redis(port=int(port)).shutdown(nosave=True)
            down = httpx.get(f"{server.url}/ready")
            assert down.status_code == 503
            assert down.json()["status"] == "not ready" and down.json()["redis"] != "ok"
            assert httpx.get(f"{server.url}/health").status_code == 200  # alive, just not to be sent traffic
        finally:
            server.stop()
