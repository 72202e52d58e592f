#!/usr/bin/env bash
# The whole test suite, installing what it needs first (Python packages, chromium, PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --system
export MLFLOW_DISABLE_TELEMETRY=true
exec .venv/bin/python -m pytest "$@"
