#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run it: the main suite first, then the
# real-browser admin tests in their own pytest invocation (pytest-playwright and asyncio tests don't mix).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

# System packages: Debian's Chromium for the browser tests, Redis for the shared budget counter tests.
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
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

# The database-facing tests again on PostgreSQL (a throwaway cluster on 127.0.0.1), as root only: initdb
# must run as the postgres user.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -n 1 || true)
if [ -n "$pg_bin" ] && [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1; then
  pg_dir=$(mktemp -d)
  chown postgres "$pg_dir"
  pg_port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  su postgres -c "$pg_bin/initdb -D $pg_dir/data -A trust -U postgres" >/dev/null
  su postgres -c "$pg_bin/pg_ctl -D $pg_dir/data -w -l $pg_dir/log -o '-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1' start" >/dev/null
  trap 'su postgres -c "$pg_bin/pg_ctl -D $pg_dir/data -m fast stop" >/dev/null 2>&1 || true' EXIT
  echo "==> database tests on PostgreSQL"
  DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/postgres" .venv/bin/python -m pytest -p no:playwright -q \
    tests/test_budget_backends.py tests/test_budgets.py tests/test_config_apply.py tests/test_crypto.py \
    tests/test_kek_rotation.py tests/test_usage.py tests/test_hot_path_queries.py tests/test_admin.py
else
  echo "==> PostgreSQL tests skipped (needs root and Debian's postgresql package)"
fi

echo "==> main suite"
.venv/bin/python -m pytest -p no:playwright tests --ignore=tests/browser -q "$@"
echo "==> browser suite"
.venv/bin/python -m pytest tests/browser -q
