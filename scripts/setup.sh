#!/usr/bin/env bash
# Set up fer_keras in ./.venv at the exact versions of requirements-lock.txt (scripts/lock.sh regenerates it).
#   bash scripts/setup.sh         the full training environment: requirements.txt, pinned by the lock
#   bash scripts/setup.sh --dev   the whole lock (test, build and lock tools, every extra) and Debian's chromium
# The package itself is installed editable. Rerunning installs nothing while the lock, the requirements
# files, pyproject.toml and setup.py are unchanged (a stamp in .venv records what was installed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
MODE=plain
if [ "${1:-}" = "--dev" ]; then
  MODE=dev
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
STAMP=.venv/.fer_keras-setup-$MODE
KEY=$(cat requirements-lock.txt requirements.txt requirements-dev.txt pyproject.toml setup.py | sha256sum | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$KEY" ] || ! .venv/bin/python -c "import fer_keras" 2>/dev/null; then
  .venv/bin/python -m pip install -q --upgrade pip
  if [ "$MODE" = dev ]; then
    .venv/bin/pip install -q -r requirements-lock.txt
  else
    # -c: only requirements.txt's packages, at the versions the lock names.
    .venv/bin/pip install -q -r requirements.txt -c requirements-lock.txt
  fi
  .venv/bin/pip install -q --no-deps -e .
  echo "$KEY" >"$STAMP"
fi
if [ "$MODE" = dev ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium for the browser tests (apt-get)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: chromium could not be installed; browser tests will be skipped"
  else
    echo "warning: chromium not found; browser tests will be skipped"
  fi
fi
