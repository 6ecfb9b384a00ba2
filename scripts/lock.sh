#!/usr/bin/env bash
# Regenerate requirements-lock.txt: exact versions of the whole development environment
# (requirements-dev.txt = requirements.txt + Ray + test/build tools), resolved by uv for
# Python 3.11 on Linux x86_64. Versions already in the lock are kept while they still satisfy
# the ranges; `bash scripts/lock.sh --upgrade` moves every package to its newest allowed version.
# Then `bash scripts/setup.sh --dev` installs the new lock.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=.venv/bin/uv
if [ ! -x "$UV" ]; then
  UV=$(command -v uv || true)
fi
if [ -z "$UV" ]; then
  echo "error: uv not found: bash scripts/setup.sh --dev installs it into .venv" >&2
  exit 1
fi
"$UV" pip compile requirements-dev.txt --output-file requirements-lock.txt \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  --custom-compile-command "bash scripts/lock.sh" --quiet "$@"
echo "wrote requirements-lock.txt ($(grep -c '==' requirements-lock.txt) packages)"
