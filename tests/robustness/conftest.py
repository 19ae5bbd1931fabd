"""One real gateway in front of the chaos upstreams (tests/fakes/chaos.py, tests/fakes/chaos_realtime.py) for
the robustness suite: every provider API, every failure mode, one endpoint each (`<vendor>-<mode>`,
`realtime-<mode>`, `realtime-guarded`), a budgeted endpoint, endpoints on a socket that never answers
(`silent`, `realtime-silent`), the raw proxy open to the completion paths, and a ledger of the usage records
owed."""
from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from tests.e2e.db import wait_rows
from tests.e2e.harness import make_gateway
from tests.fakes.chaos import MODES, ChaosUpstream
from tests.fakes.chaos_realtime import MODES as REALTIME_MODES, ChaosRealtime, silent_port

VENDORS = {"openai": "/v1", "anthropic": "/v1", "gemini": "/v1beta", "groq": "/v1"}  # groq: chat only
# The endpoints' total timeout: well under the slow mode's four seconds, far above a healthy answer's time.
TOTAL_TIMEOUT = 1.5
# The realtime secret's connect timeout: how long an upgrade the provider never answers may take.
REALTIME_CONNECT_TIMEOUT = 1.0
PROXY_MAX_BYTES = 1024 * 1024
PROXY_PATHS = {"openai": ["models", "chat/completions"], "anthropic": ["messages"],
               "gemini": [f"models/chaos-{mode}:generateContent" for mode in MODES]}


@pytest.fixture(scope="session")
def chaos():
    server = ChaosUpstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chaos_realtime():
    server = ChaosRealtime().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def silent():
    sock = silent_port()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def chaos_config(chaos: ChaosUpstream, chaos_realtime: ChaosRealtime, silent: str) -> dict:
    secrets = [{"name": f"{vendor}-key", "provider": vendor, "values": {"api_key": f"{vendor}-chaos-0123456789"},
                "auth_config": {"api_base": f"{chaos.url}{prefix}"}} for vendor, prefix in VENDORS.items()]
    models = [{"name": f"{vendor}-{mode}", "provider": vendor, "model_name": f"chaos-{mode}", "secret": f"{vendor}-key",
               "input_cost_per_million": 1, "output_cost_per_million": 2}
              for vendor in VENDORS for mode in MODES]
    # The healthy ("-ok") endpoints get no total timeout: on a loaded machine a healthy answer may take longer
    # than 1.5 s, which must not turn the property tests' "never a 5xx" into a flake.
    endpoints = [{"name": model["name"], "models": [{"model": model["name"]}],
                  **({} if model["name"].endswith("-ok") else {"timeout": TOTAL_TIMEOUT})} for model in models]
    endpoints.append({"name": "budgeted", "models": [{"model": "openai-ok"}]})
    budgets = [{"name": "budgeted-daily", "scope": "endpoint", "target": "budgeted", "amount_usd": 1000,
                "window": {"unit": "days", "value": 1}, "action": "reject"}]
    timeout = {"connect": REALTIME_CONNECT_TIMEOUT, "read": 30}
    secrets += [{"name": "realtime-key", "provider": "openai", "values": {"api_key": "sk-chaos-0123456789"},
                 "auth_config": {"api_base": f"{chaos_realtime.url}/v1"}},
                {"name": "silent-key", "provider": "openai", "values": {"api_key": "sk-silent-0123456789"},
                 "auth_config": {"api_base": f"{silent}/v1", "timeout": timeout}}]
    realtime = [{"name": f"realtime-{mode}", "provider": "openai", "model_name": f"chaos-{mode}",
                 "secret": "realtime-key", "input_cost_per_million": 1, "output_cost_per_million": 2}
                for mode in REALTIME_MODES]
    realtime.append({"name": "realtime-silent", "provider": "openai", "model_name": "chaos-ok", "secret": "silent-key"})
    models += realtime
    endpoints += [{"name": model["name"], "models": [{"model": model["name"]}]} for model in realtime]
    endpoints.append({"name": "silent", "models": [{"model": "realtime-silent"}], "timeout": TOTAL_TIMEOUT})
    # Guardrails read the client's realtime events before they are sent on.
    guardrails = [{"name": "redact-pii", "kind": "pii", "stage": "before", "action": "sanitize"},
                  {"name": "redact-words", "kind": "keywords", "stage": "after", "action": "sanitize",
                   "settings": {"words": ["forbidden-term"]}}]
    endpoints.append({"name": "realtime-guarded", "models": [{"model": "realtime-ok"}],
                      "guardrails": ["redact-pii", "redact-words"]})
    return {"secrets": secrets, "models": models, "endpoints": endpoints, "budgets": budgets, "guardrails": guardrails}


@pytest.fixture(scope="session")
def gateway(chaos, chaos_realtime, silent, tmp_path_factory):
    server = make_gateway(tmp_path_factory.mktemp("robustness"), "chaos", chaos_config(chaos, chaos_realtime, silent),
                          env={"GATEWAY_MAX_REQUEST_BYTES": str(4 * 1024 * 1024),
                               "GATEWAY_PROXY_MAX_REQUEST_BYTES": str(PROXY_MAX_BYTES),
                               "GATEWAY_PROXY_ALLOWED_PATHS": json.dumps(PROXY_PATHS)})
    yield server
    server.stop()


class Ledger:
    """The usage records a module's calls owe: request id -> whether the record must show a failure."""

    def __init__(self) -> None:
        self.owed: dict[str, bool] = {}

    def note(self, headers: Mapping[str, str], *, failed: bool) -> None:
        """`headers`: the answer's, which name its request id."""
        self.owed[headers["x-request-id"]] = failed


@pytest.fixture(scope="module")
def ledger(gateway):
    """Checked once the module's tests are done (one query instead of a wait per call): every call noted has
    its usage record, with an error status exactly when it failed."""
    book = Ledger()
    yield book
    if not book.owed:
        return
    ids = list(book.owed)
    marks = ",".join("?" * len(ids))
    found = dict(wait_rows(gateway, f"SELECT request_id, status_code FROM gateway_usagerecord WHERE request_id IN ({marks})",
                           *ids, expect=lambda rows: len(rows) >= len(ids), timeout=10))
    assert sorted(set(ids) - set(found)) == [], "calls without a usage record"
    wrong = {rid: found[rid] for rid, failed in book.owed.items() if (found[rid] >= 400) != failed}
    assert wrong == {}, "usage records whose status says the opposite of what the client saw"
