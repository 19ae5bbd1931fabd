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

echo "==> main suite"
.venv/bin/python -m pytest -p no:playwright tests --ignore=tests/browser -q "$@"
echo "==> browser suite"
.venv/bin/python -m pytest tests/browser -q
