#!/usr/bin/env bash
# Make sure a headless Chromium is available for the report browser test (tests/browser.py).
#
# Idempotent and never fails the build: when Chromium is already there it says so; when it is
# missing and we are root with apt-get, it installs Debian's `chromium`; otherwise it prints why it
# could not and exits 0, and the browser test skips with that reason.
#
#   scripts/ensure-chromium.sh            # called by `make test`
#   BW_CHROMIUM=/path/to/chrome make test # use another Chromium/Chrome instead
set -u

find_chromium() {
    local name
    for name in "${BW_CHROMIUM:-}" chromium chromium-browser google-chrome google-chrome-stable \
        /usr/lib/chromium/chromium; do
        [ -n "$name" ] || continue
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

if found="$(find_chromium)"; then
    echo "ensure-chromium: using $found"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-chromium: chromium not found and not root; the browser test will be skipped." \
        "Install it with: sudo apt-get install chromium (or set BW_CHROMIUM)."
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: chromium not found and no apt-get here; the browser test will be" \
        "skipped. Install Chromium with your package manager (or set BW_CHROMIUM)."
    exit 0
fi

echo "ensure-chromium: installing Debian's chromium (apt-get) ..."
log="$(mktemp -t ensure-chromium.XXXXXX.log)"
if apt-get update >"$log" 2>&1 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
        >>"$log" 2>&1 &&
    found="$(find_chromium)"; then
    echo "ensure-chromium: installed $found ($("$found" --version 2>/dev/null | tail -n 1))"
    rm -f "$log"
else
    echo "ensure-chromium: could not install chromium (no network or no package?); the browser" \
        "test will be skipped. Last lines of $log:"
    tail -n 5 "$log" | sed 's/^/    /'
fi
exit 0
