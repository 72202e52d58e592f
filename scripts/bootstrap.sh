#!/usr/bin/env bash
# Installs what the project needs on a fresh machine; safe to run again (does nothing twice).
#   scripts/bootstrap.sh           Python environment (.venv) from the committed uv.lock
#   scripts/bootstrap.sh --system  also Debian's chromium and PostgreSQL, for the test suite
set -euo pipefail
cd "$(dirname "$0")/.."

export UV_PYTHON_DOWNLOADS=never   # only package registries are reachable: use the machine's Python
if ! python3 -m uv --version >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
fi
python3 -m uv sync --frozen --quiet

if [[ "${1:-}" == "--system" ]]; then
    need=()
    [[ -x /usr/bin/chromium ]] || need+=(chromium)
    command -v pg_ctlcluster >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
    if ((${#need[@]})); then
        if [[ $(id -u) -ne 0 ]]; then
            echo "bootstrap: need root to apt-get install ${need[*]}" >&2
            exit 1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
fi
