#!/usr/bin/env bash
# The main job on the embedded default: synthetic traffic, SQLite, a local MLflow store.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export MLFLOW_DISABLE_TELEMETRY=true
exec .venv/bin/risk demo "$@"
