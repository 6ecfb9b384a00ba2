#!/usr/bin/env bash
# Main job on the embedded demo data: generate it, run the demo grid, select the best model, write the report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=2 NO_ALBUMENTATIONS_UPDATE=1
.venv/bin/fer-data demo data/demo
.venv/bin/fer-grid grids/demo.json --workers 2
.venv/bin/fer-report --history history/demo --model models/demo_model --data data/demo --out reports/demo/report.html
