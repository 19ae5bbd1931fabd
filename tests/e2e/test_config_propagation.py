"""An operator's change reaches a running server process within 2 seconds, with no restart."""
from __future__ import annotations

import time

import httpx

from tests.e2e.harness import make_gateway

BASE = {"models": [{"name": "fake-echo", "provider": "fake", "model_name": "fake-echo"}],
        "endpoints": [{"name": "first", "models": [{"model": "fake-echo"}]}]}


def test_config_change_reaches_every_worker_within_two_seconds(e2e_root):
    server = make_gateway(e2e_root, "propagation", BASE, start=False).start(workers=2)
    try:
        headers = {"Authorization": f"Bearer {server.keys['default']}"}

        def visible_everywhere() -> bool:
            # Fresh connections spread over both worker processes; all of them must see the change.
            answers = [httpx.get(f"{server.url}/gateway/mlflow/v1/models", headers=headers).json() for _ in range(6)]
            return all("second" in [m["id"] for m in a["data"]] for a in answers)

        assert not visible_everywhere()
        server.apply({**BASE, "endpoints": BASE["endpoints"] + [{"name": "second", "models": [{"model": "fake-echo"}]}]})
        applied = time.monotonic()
        server.wait_for_config(visible_everywhere, timeout=5)
        assert time.monotonic() - applied < 2.0

        new_key = server.create_key("late")
        created = time.monotonic()
        server.wait_for_config(lambda: httpx.get(f"{server.url}/gateway/mlflow/v1/models",
                                                 headers={"Authorization": f"Bearer {new_key}"}).status_code == 200)
        assert time.monotonic() - created < 2.0
    finally:
        server.stop()
