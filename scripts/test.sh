#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run every stage, even when an earlier one
# fails, and end with one summary line per stage. Stages:
#   postgresql  the database-facing tests again on a throwaway PostgreSQL cluster (root only: initdb runs as
#               the postgres user)
#   replicas    two gateway processes (separate uvicorn servers) on one PostgreSQL database and one Redis,
#               all on 127.0.0.1: config propagation, exact budgets and rate limits across both, usage in
#               PostgreSQL, SIGTERM under load, a Redis restart (tests/e2e/test_replicas.py)
#   main        the whole suite on SQLite (real servers, fake upstreams, official SDKs)
#   clock+1y    the tests that read the wall clock (marker `clock`), with the clock a year ahead (faketime),
#               so a test that only passes before some calendar date fails here first
#   clock@leap-day  the same tests started 30 s before the end of the next 29 February (end of a day, of a
#               month, of a leap year's February), so window boundaries are crossed while they run
#   litellm     the optional litellm adapter's tests, in a virtualenv of its own (.venv-litellm) with the
#               `litellm` extra installed, against a fake OpenAI upstream, with litellm's local cost map
#   browser     the admin in Debian's Chromium, in its own pytest run (pytest-playwright and asyncio tests
#               don't mix)
#   mlflow      a real MLflow tracking server and MLflow's client code against the gateway, MLflow installed in
#               its own virtual environment (scripts/mlflow_stage.sh), capped at MLFLOW_STAGE_SECONDS (900)
#   fuzz        schemathesis against a running server, every management API operation from its OpenAPI
#               schema, fixed seed, about 75 s of fuzzing: no 5xx, no answer outside the schema
# Extra arguments go to the main stage's pytest. Exits non-zero when any stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv || exit 1
fi
.venv/bin/python -m pip install -q --upgrade pip || exit 1
# The editable build's note about same-named folders is expected for this layout, not a problem to report.
PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip install -q -e '.[test]' || exit 1

# System packages from Debian: Chromium (browser tests), Redis (shared budget counters), PostgreSQL (database
# tests), faketime (the shifted-clock stage).
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v faketime >/dev/null 2>&1 || need+=(faketime)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO="none"; fi
  if [ "$SUDO" != none ]; then
    echo "==> installing ${need[*]} from Debian's packages"
    $SUDO apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}" >/dev/null
  else
    echo "==> cannot install ${need[*]} (not root, no sudo): the tests that need them will be skipped"
  fi
fi

logs=$(mktemp -d)
summary=()
failed=0

# run_stage NAME COMMAND...: runs one stage, keeps its output, records its closing line and exit status.
run_stage() {
  local name=$1
  shift
  echo "==> stage $name"
  "$@" 2>&1 | tee "$logs/$name.log"
  local status=${PIPESTATUS[0]}
  local closing
  closing=$(grep -E '[0-9]+ (passed|failed|error|errors|skipped)' "$logs/$name.log" | tail -n 1 | sed -E 's/^=+ //; s/ =+$//')
  if [ "$status" = 0 ]; then
    summary+=("stage $name: ok (${closing:-no result line})")
  else
    summary+=("stage $name: FAILED, exit $status (${closing:-no result line})")
    failed=1
  fi
}

skip_stage() {
  summary+=("stage $1: skipped ($2)")
}

pytest=(.venv/bin/python -m pytest -p no:playwright -q)
DB_TESTS=(-m "database")

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -n 1 || true)
if [ -n "$pg_bin" ] && [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1; then
  pg_dir=$(mktemp -d)
  chown postgres "$pg_dir"
  pg_port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  su postgres -c "$pg_bin/initdb -D $pg_dir/data -A trust -U postgres" >/dev/null
  su postgres -c "$pg_bin/pg_ctl -D $pg_dir/data -w -l $pg_dir/log -o '-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1' start" >/dev/null
  trap 'su postgres -c "$pg_bin/pg_ctl -D $pg_dir/data -m fast stop" >/dev/null 2>&1 || true' EXIT
  run_stage postgresql env DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/postgres" \
    "${pytest[@]}" tests --ignore=tests/browser "${DB_TESTS[@]}"
  su postgres -c "$pg_bin/createdb -h 127.0.0.1 -p $pg_port replicas"
  run_stage replicas env GATEWAY_REPLICA_DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/replicas" \
    "${pytest[@]}" tests/e2e/test_replicas.py -m replicas
else
  skip_stage postgresql "needs root and Debian's postgresql package"
  skip_stage replicas "needs root and Debian's postgresql package"
fi

run_stage main "${pytest[@]}" tests --ignore=tests/browser "$@"

if command -v faketime >/dev/null 2>&1; then
  run_stage clock+1y faketime -f "+365d" "${pytest[@]}" tests --ignore=tests/browser -m clock
  # An offset rather than faketime's absolute "@date", so the gateway processes the tests start share the clock.
  to_leap_midnight=$(.venv/bin/python scripts/seconds_to_leap_midnight.py 30)
  run_stage clock@leap-day faketime -f "+${to_leap_midnight}s" "${pytest[@]}" tests --ignore=tests/browser -m clock
else
  skip_stage clock+1y "faketime is not installed"
  skip_stage clock@leap-day "faketime is not installed"
fi

litellm_stage() {
  { [ -x .venv-litellm/bin/python ] || "$PYTHON" -m venv .venv-litellm; } &&
    PYTHONWARNINGS="ignore:Editable installation" .venv-litellm/bin/python -m pip install -q -e '.[test,litellm]' &&
    LITELLM_LOCAL_MODEL_COST_MAP=True .venv-litellm/bin/python -m pytest -p no:playwright -q \
      tests/providers/test_litellm_adapter.py tests/e2e/test_litellm.py
}
run_stage litellm litellm_stage

run_stage browser .venv/bin/python -m pytest tests/browser -q

run_stage mlflow timeout "${MLFLOW_STAGE_SECONDS:-900}" scripts/mlflow_stage.sh
run_stage fuzz .venv/bin/python scripts/fuzz_admin_api.py --seed 14 --max-time 75

echo
echo "==> summary"
printf '%s\n' "${summary[@]}"
exit $failed
