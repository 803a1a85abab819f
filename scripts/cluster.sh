#!/usr/bin/env bash
# Start, stop and watch a local tickflow cluster: every process of the config on this machine.
#   scripts/cluster.sh start  [CONFIG]   # builds if needed; logs and pids under run/cluster/
#   scripts/cluster.sh stop   [CONFIG]   # SIGTERM: sources stop, the dataflow drains, sinks flush
#   scripts/cluster.sh status [CONFIG]   # one line per process from its /status endpoint
#   scripts/cluster.sh logs   [N]        # follow process N's log
# CONFIG defaults to cluster.toml. A multi-machine cluster runs the same binary with
# `tickflow run --config CONFIG --process N` on each machine.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:-status}
config=${2:-cluster.toml}
dir=run/cluster
bin=${TICKFLOW_BIN:-target/release/tickflow}

build() {
  if [ ! -x "$bin" ] || [ -n "$(find src operators/src Cargo.toml -newer "$bin" -print -quit 2>/dev/null)" ]; then
    echo "building $bin ..."
    cargo build --release --quiet
  fi
}

case "$cmd" in
  start)
    build
    "$bin" check --config "$config"
    n=$("$bin" check --config "$config" --processes)
    mkdir -p "$dir"
    for ((p = 0; p < n; p++)); do
      pidf="$dir/process-$p.pid"
      if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
        echo "process $p already running (pid $(cat "$pidf"))"
        continue
      fi
      nohup "$bin" run --config "$config" --process "$p" >"$dir/process-$p.log" 2>&1 &
      echo $! >"$pidf"
      echo "process $p started (pid $!, log $dir/process-$p.log)"
    done
    ;;
  stop)
    # Signal every process first: the dataflow completes only when all sources stopped.
    shopt -s nullglob
    pids=()
    for pidf in "$dir"/process-*.pid; do
      pid=$(cat "$pidf")
      if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" && pids+=("$pid"); fi
      rm -f "$pidf"
    done
    for pid in "${pids[@]}"; do
      for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then echo "pid $pid did not stop in 30 s; killing"; kill -KILL "$pid"; fi
    done
    echo "stopped ${#pids[@]} process(es)"
    ;;
  status)
    build
    "$bin" status --config "$config"
    ;;
  logs)
    tail -f "$dir/process-${2:-0}.log"
    ;;
  *)
    echo "usage: scripts/cluster.sh start|stop|status [CONFIG] | logs [N]" >&2
    exit 2
    ;;
esac
