#!/usr/bin/env bash
# From a fresh checkout to a running gateway on SQLite: virtualenv, install, keys in .env, migrations,
# a demo endpoint on the built-in fake provider with an API key, then the server on http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
echo "==> installing the gateway and its dependencies"
.venv/bin/python -m pip install -q --upgrade pip
PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip install -q -e .

if [ ! -f .env ]; then
  echo "==> writing .env with a fresh DJANGO_SECRET_KEY and GATEWAY_KEK_PASSPHRASE (keep it safe: it unlocks stored secrets)"
  umask 077
  .venv/bin/python - <<'PY'
import secrets
with open(".env", "w") as f:
    f.write(f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}\n")
    f.write(f"GATEWAY_KEK_PASSPHRASE={secrets.token_urlsafe(32)}\n")
PY
fi

echo "==> applying database migrations"
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py bootstrap_demo

HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
echo "==> gateway listening on http://$HOST:$PORT  (admin: http://$HOST:$PORT/admin/, Ctrl-C to stop)"
exec .venv/bin/python -m uvicorn gateway_project.asgi:application --host "$HOST" --port "$PORT" \
  --loop uvloop --http httptools --no-access-log --timeout-graceful-shutdown 30
