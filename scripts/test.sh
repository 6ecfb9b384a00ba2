#!/usr/bin/env bash
# Set up with the test tools, then lint and run the whole CI test suite (slow tests excluded: -m slow runs them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
export TF_CPP_MIN_LOG_LEVEL=2 NO_ALBUMENTATIONS_UPDATE=1
.venv/bin/ruff check .
.venv/bin/python -m pytest -q --timeout=600 "$@"
