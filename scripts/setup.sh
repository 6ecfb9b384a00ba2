#!/usr/bin/env bash
# Set up fer_keras in ./.venv. `--dev` adds the test tools and Debian's chromium for browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--dev" ]; then
  .venv/bin/pip install -q -r requirements-dev.txt
  if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "installing chromium for the browser tests (apt-get)"
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "warning: chromium could not be installed; browser tests will be skipped"
    else
      echo "warning: chromium not found; browser tests will be skipped"
    fi
  fi
else
  .venv/bin/pip install -q -r requirements.txt
fi
.venv/bin/pip install -q --no-deps -e .
