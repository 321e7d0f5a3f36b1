#!/usr/bin/env bash
# Make sure PostgreSQL's server programs (initdb, pg_ctl, postgres) are here for the store tests
# (tests/test_database.py starts a throw-away server on a Unix socket in a temporary folder).
#
# Idempotent and never fails the build: when the programs are already there it says so; when they
# are missing and we are root with apt-get, it installs Debian's `postgresql`; otherwise it prints
# why it could not and exits 0, and the PostgreSQL store tests skip with that reason.
#
#   scripts/ensure-postgres.sh                # called by `make test`
#   BW_PG_BIN=/opt/pg16/bin make test         # use the programs of another installation
set -u

find_pg_bin() {
    local dir
    for dir in "${BW_PG_BIN:-}" $(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/x)") \
        $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -n "$dir" ] || continue
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

if found="$(find_pg_bin)"; then
    echo "ensure-postgres: using $found ($("$found/postgres" --version 2>/dev/null))"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-postgres: PostgreSQL (initdb, pg_ctl) not found and not root; the PostgreSQL store" \
        "tests will be skipped. Install it with: sudo apt-get install postgresql (or set BW_PG_BIN)."
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-postgres: PostgreSQL not found and no apt-get here; the PostgreSQL store tests will" \
        "be skipped. Install PostgreSQL with your package manager (or set BW_PG_BIN)."
    exit 0
fi

echo "ensure-postgres: installing Debian's postgresql (apt-get) ..."
log="$(mktemp -t ensure-postgres.XXXXXX.log)"
if apt-get update >"$log" 2>&1 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql \
        >>"$log" 2>&1 &&
    found="$(find_pg_bin)"; then
    echo "ensure-postgres: installed $found ($("$found/postgres" --version 2>/dev/null))"
    rm -f "$log"
else
    echo "ensure-postgres: could not install postgresql (no network or no package?); the PostgreSQL" \
        "store tests will be skipped. Last lines of $log:"
    tail -n 5 "$log" | sed 's/^/    /'
fi
exit 0
