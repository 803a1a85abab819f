#!/usr/bin/env bash
# Browser test of the built-in dashboard: a 2-process cluster on the built-in market, its page
# opened in Debian's chromium driven by playwright-core (tests/browser/dashboard.mjs).
# Installs what is missing: chromium (apt), playwright-core (npm, pinned, into
# ~/.cache/tickflow/playwright). Output (logs, screenshot) in $OUT_DIR (default: a temp dir).
# TICKFLOW_BIN: the binary to run (default: built with the ci profile).
set -euo pipefail
cd "$(dirname "$0")/.."
PLAYWRIGHT_VERSION=1.65.1
export PLAYWRIGHT_DIR="${PLAYWRIGHT_DIR:-$HOME/.cache/tickflow/playwright}/node_modules"

if ! command -v chromium >/dev/null 2>&1; then
  echo "test-dashboard: installing chromium (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "test-dashboard: installing nodejs and npm (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if [ "$(node -p "try{require('$PLAYWRIGHT_DIR/playwright-core/package.json').version}catch(e){''}")" != "$PLAYWRIGHT_VERSION" ]; then
  echo "test-dashboard: installing playwright-core@$PLAYWRIGHT_VERSION (npm)"
  mkdir -p "$PLAYWRIGHT_DIR/.."
  (cd "$PLAYWRIGHT_DIR/.." && { [ -f package.json ] || echo '{"private":true}' > package.json; } \
    && npm install --no-audit --no-fund --silent "playwright-core@$PLAYWRIGHT_VERSION")
fi

bin="${TICKFLOW_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --profile ci --quiet --bin tickflow
  bin="${CARGO_TARGET_DIR:-target}/ci/tickflow"
fi
export OUT_DIR="${OUT_DIR:-$(mktemp -d)}"
mkdir -p "$OUT_DIR"

# Two consecutive free ports for the status servers, two for timely.
ports=$(python3 -c '
import socket
def pair():
    while True:
        a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
        b = socket.socket()
        try:
            b.bind(("127.0.0.1", p + 1)); a.close(); b.close(); return p
        except OSError:
            a.close(); b.close()
print(pair(), pair())')
read -r status timely <<<"$ports"
cat > "$OUT_DIR/cluster.toml" <<TOML
[cluster]
workers = 1
processes = ["127.0.0.1:$timely", "127.0.0.1:$((timely + 1))"]
[status]
listen = "127.0.0.1:$status"
[source.generator]
symbols = 20
rate = 200
interval = "1s"
[windows]
timeframes = ["1m", "5m"]
[checkpoint]
enabled = false
[sinks.file]
dir = "$OUT_DIR/out"
format = "csv"
TOML
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
for p in 0 1; do
  "$bin" run --config "$OUT_DIR/cluster.toml" --process "$p" >"$OUT_DIR/process-$p.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$((status + 1))/health" >/dev/null 2>&1 && curl -sf "http://127.0.0.1:$status/health" >/dev/null 2>&1 && break
  sleep 0.2
done
TICKFLOW_URL="http://127.0.0.1:$status" node tests/browser/dashboard.mjs
echo "test-dashboard: ok (screenshot: $OUT_DIR/dashboard.png)"
