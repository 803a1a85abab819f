#!/usr/bin/env bash
# Start and stop the ingest gateway on this machine (logs and pid under run/gateway/).
#   scripts/gateway.sh start [ARGS...]   # e.g. --brokers 127.0.0.1:9092 --listen 127.0.0.1:8080
#   scripts/gateway.sh stop              # SIGTERM: stops accepting, drains in-flight requests
#   scripts/gateway.sh status            # its /ready answer
# Defaults: --brokers 127.0.0.1:9092 --listen 127.0.0.1:8080 (pass your own to override).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=run/gateway
bin=${TICKFLOW_BIN:-target/release/tickflow}
cmd=${1:-status}
shift || true
case "$cmd" in
  start)
    if [ ! -x "$bin" ] || [ -n "$(find src operators/src Cargo.toml -newer "$bin" -print -quit 2>/dev/null)" ]; then
      echo "building $bin ..."; cargo build --release --quiet
    fi
    mkdir -p "$dir"
    if [ -f "$dir/gateway.pid" ] && kill -0 "$(cat "$dir/gateway.pid")" 2>/dev/null; then
      echo "gateway already running (pid $(cat "$dir/gateway.pid"))"; exit 0
    fi
    args=("$@")
    [ ${#args[@]} -gt 0 ] || args=(--brokers 127.0.0.1:9092 --listen 127.0.0.1:8080)
    nohup "$bin" gateway "${args[@]}" >"$dir/gateway.log" 2>&1 &
    echo $! >"$dir/gateway.pid"
    echo "gateway started (pid $!, log $dir/gateway.log)"
    ;;
  stop)
    if [ -f "$dir/gateway.pid" ]; then
      pid=$(cat "$dir/gateway.pid"); rm -f "$dir/gateway.pid"
      if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        echo "gateway stopped"
      fi
    fi
    ;;
  status)
    curl -s -w ' (HTTP %{http_code})\n' "http://${GATEWAY_ADDR:-127.0.0.1:8080}/ready" || { echo "gateway not reachable"; exit 3; }
    ;;
  *) echo "usage: scripts/gateway.sh start [ARGS...] | stop | status" >&2; exit 2 ;;
esac
