#!/usr/bin/env bash
# The whole test suite, installing what it needs first (Python packages, chromium, PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --system
export MLFLOW_DISABLE_TELEMETRY=true

# A throwaway PostgreSQL server for the store tests (RISK_TEST_POSTGRES_URL), on 127.0.0.1 and
# a free port, in a temporary folder; stopped and removed on exit. PostgreSQL refuses to run as
# root, so under root the server runs as the `postgres` user of Debian's package.
pg_dir=""
stop_postgres() {
    if [[ -n "$pg_dir" && -d "$pg_dir" ]]; then
        "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$pg_dir"
    fi
}
if [[ -z "${RISK_TEST_POSTGRES_URL:-}" ]]; then
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [[ -z "$pg_bin" ]]; then
        echo "test.sh: PostgreSQL is not installed (scripts/bootstrap.sh --system installs it)" >&2
        exit 1
    fi
    pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/risk-postgres.XXXXXX")
    pg_as=()
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres: "$pg_dir"
        pg_as=(runuser -u postgres --)
    fi
    trap stop_postgres EXIT
    pg_port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${pg_as[@]}" "$pg_bin/initdb" -D "$pg_dir/data" --username=risk --auth=trust \
        --encoding=UTF8 --no-locale >"$pg_dir/initdb.log" 2>&1 \
        || { cat "$pg_dir/initdb.log" >&2; exit 1; }
    # fsync off: the data lives for one test run.
    "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
        -o "-h 127.0.0.1 -p $pg_port -k $pg_dir -F" start >/dev/null \
        || { cat "$pg_dir/server.log" >&2; exit 1; }
    export RISK_TEST_POSTGRES_URL="postgresql+psycopg://risk@127.0.0.1:$pg_port/postgres"
fi

.venv/bin/python -m pytest "$@"
