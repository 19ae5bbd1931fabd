#!/usr/bin/env bash
# The MLflow stage: MLflow in a virtual environment of its own (.venv-mlflow, never the gateway's), then the
# tests that run a real MLflow tracking server and MLflow's client code against the gateway (tests/mlflow).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv-mlflow/bin/mlflow ]; then
  "$PYTHON" -m venv .venv-mlflow
  .venv-mlflow/bin/python -m pip install -q mlflow
fi
MLFLOW_VENV="$PWD/.venv-mlflow" .venv/bin/python -m pytest -p no:playwright -q tests/mlflow
