"""The gateway against a real MLflow tracking server and MLflow's own client code, both from MLflow's own
virtual environment (`MLFLOW_VENV`, set up by scripts/mlflow_stage.sh) so its dependencies never meet the
gateway's: spans exported over OTLP land in the experiment as GenAI traces, and MLflow's `gateway:/`
scoring reaches the gateway with HTTP Basic credentials."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import free_port, make_gateway

VENV = os.environ.get("MLFLOW_VENV", "")
pytestmark = pytest.mark.skipif(not VENV, reason="MLFLOW_VENV is not set (scripts/mlflow_stage.sh sets it)")

SEARCH = """
import json, sys, mlflow
mlflow.set_tracking_uri(sys.argv[1])
found = []
for trace in mlflow.search_traces(experiment_ids=[sys.argv[2]], return_type="list"):
    found.append({"request_id": trace.info.trace_id, "token_usage": trace.info.token_usage,
                  "spans": [{"name": s.name, "type": s.span_type, "attributes": s.attributes,
                             "inputs": s.inputs, "outputs": s.outputs} for s in trace.data.spans]})
print(json.dumps(found, default=str))
"""
SCORE = """
import sys
from mlflow.metrics.genai.model_utils import score_model_on_payload
print(score_model_on_payload(sys.argv[1], sys.argv[2]))
"""


def mlflow_python(*args: str, env: dict | None = None) -> str:
    done = subprocess.run([str(Path(VENV) / "bin" / "python"), "-c", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = open(root / "server.log", "wb")
    process = subprocess.Popen(
        [str(Path(VENV) / "bin" / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--default-artifact-root", str(root / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # MLflow takes a minute to start on a busy 2-core machine
    while time.monotonic() < deadline:
        assert process.poll() is None, (root / "server.log").read_text()[-3000:]
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        raise AssertionError("the MLflow server did not start within 300 s")
    experiment = httpx.post(f"{url}/api/2.0/mlflow/experiments/create", json={"name": "gateway-traces"}).json()
    yield url, experiment["experiment_id"]
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, mlflow_server):
    url, experiment_id = mlflow_server
    config = {"models": [{"name": "echo", "provider": "fake", "model_name": "fake-echo"}],
              "endpoints": [{"name": "judge", "log_payloads": True, "models": [{"model": "echo"}]}]}
    server = make_gateway(tmp_path_factory.mktemp("gateway"), "mlflow", config, env={
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{url}/v1/traces",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"x-mlflow-experiment-id={experiment_id}",
        "OTEL_BSP_SCHEDULE_DELAY": "100"})
    yield server
    server.stop()


def test_mlflow_scoring_reaches_the_gateway_and_its_trace_lands_in_mlflow(gateway, mlflow_server):
    url, experiment_id = mlflow_server
    answer = mlflow_python(SCORE, "gateway:/judge", "rate this answer", env={
        "MLFLOW_GATEWAY_URI": gateway.url, "MLFLOW_TRACKING_USERNAME": "evaluator",
        "MLFLOW_TRACKING_PASSWORD": gateway.keys["default"]})
    assert answer.strip() == "echo: rate this answer"

    deadline = time.monotonic() + 30
    traces = []
    while time.monotonic() < deadline and not traces:
        traces = json.loads(mlflow_python(SEARCH, url, experiment_id))
        time.sleep(0.5)
    assert len(traces) == 1
    spans = {span["name"]: span for span in traces[0]["spans"]}
    request = spans["chat judge"]
    assert request["type"] == "CHAT_MODEL"
    assert request["attributes"]["gen_ai.provider.name"] == "fake"
    assert "rate this answer" in json.dumps(request["inputs"]) and "echo: rate this answer" in json.dumps(request["outputs"])
    assert traces[0]["token_usage"]["input_tokens"] > 0
    assert gateway.keys["default"] not in json.dumps(traces)
