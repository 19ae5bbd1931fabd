"""One real gateway in front of the chaos upstream (tests/fakes/chaos.py) for the robustness suite: every
provider API, every failure mode, one endpoint each (`<vendor>-<mode>`), plus a budgeted endpoint."""
from __future__ import annotations

import pytest

from tests.e2e.harness import make_gateway
from tests.fakes.chaos import MODES, ChaosUpstream

VENDORS = {"openai": "/v1", "anthropic": "/v1", "gemini": "/v1beta"}
# The endpoints' total timeout: well under the slow mode's four seconds, far above a healthy answer's time.
TOTAL_TIMEOUT = 1.5


@pytest.fixture(scope="session")
def chaos():
    server = ChaosUpstream().start()
    yield server
    server.stop()


def chaos_config(chaos: ChaosUpstream) -> dict:
    secrets = [{"name": f"{vendor}-key", "provider": vendor, "values": {"api_key": f"{vendor}-chaos-0123456789"},
                "auth_config": {"api_base": f"{chaos.url}{prefix}"}} for vendor, prefix in VENDORS.items()]
    models = [{"name": f"{vendor}-{mode}", "provider": vendor, "model_name": f"chaos-{mode}", "secret": f"{vendor}-key",
               "input_cost_per_million": 1, "output_cost_per_million": 2}
              for vendor in VENDORS for mode in MODES]
    endpoints = [{"name": model["name"], "models": [{"model": model["name"]}], "timeout": TOTAL_TIMEOUT}
                 for model in models]
    endpoints.append({"name": "budgeted", "models": [{"model": "openai-ok"}]})
    budgets = [{"name": "budgeted-daily", "scope": "endpoint", "target": "budgeted", "amount_usd": 1000,
                "window": {"unit": "days", "value": 1}, "action": "reject"}]
    return {"secrets": secrets, "models": models, "endpoints": endpoints, "budgets": budgets}


@pytest.fixture(scope="session")
def gateway(chaos, tmp_path_factory):
    server = make_gateway(tmp_path_factory.mktemp("robustness"), "chaos", chaos_config(chaos),
                          env={"GATEWAY_MAX_REQUEST_BYTES": str(4 * 1024 * 1024)})
    yield server
    server.stop()
