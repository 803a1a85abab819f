#!/usr/bin/env bash
# A local Kafka-protocol broker (Tansu) on loopback, for development and the Kafka source.
#
#   scripts/tansu.sh start                   start the broker (no-op if it already runs)
#   scripts/tansu.sh stop                    stop it (no-op if it does not run)
#   scripts/tansu.sh status                  print whether it runs; exit 0 if it does, 3 if not
#   scripts/tansu.sh topic NAME PARTITIONS   create a topic ("already exists" counts as success)
#
# Environment:
#   TANSU_PORT      port on 127.0.0.1 (default 9092)
#   TANSU_STORAGE   storage engine URL (default memory://tansu/, lost on stop;
#                   sqlite://FILE.db keeps topics and messages across restarts)
#   TANSU_WAIT      seconds to wait for the port to accept connections (default 30)
# Logs and pid file: run/tansu/ under the repository root. Install Tansu with
# scripts/install-tansu.sh. Debian's kcat does not work with Tansu: use rdkafka clients.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUN_DIR="$ROOT/run/tansu"
PID_FILE="$RUN_DIR/tansu.pid"
LOG_FILE="$RUN_DIR/tansu.log"
PORT="${TANSU_PORT:-9092}"
STORAGE="${TANSU_STORAGE:-memory://tansu/}"
WAIT="${TANSU_WAIT:-30}"
URL="tcp://127.0.0.1:$PORT"

say() { echo "tansu.sh: $*"; }
die() { echo "tansu.sh: $*" >&2; exit "${2:-1}"; }

need_tansu() {
  command -v tansu >/dev/null 2>&1 || die "tansu is not installed; run scripts/install-tansu.sh" 2
}

# The pid of our broker if it is alive (and is a tansu process), else nothing.
running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ "$(ps -p "$pid" -o comm= 2>/dev/null)" == tansu* ]] || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

start() {
  need_tansu
  local pid
  if pid="$(running_pid)"; then
    say "already running (pid $pid) on $URL"
    return 0
  fi
  if port_open; then
    die "port $PORT is already in use by another process; set TANSU_PORT"
  fi
  mkdir -p "$RUN_DIR"
  say "starting tansu broker on $URL, storage $STORAGE, log $LOG_FILE"
  nohup tansu broker \
    --listener-url "$URL" \
    --advertised-listener-url "$URL" \
    --storage-engine "$STORAGE" \
    >>"$LOG_FILE" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PID_FILE"
  local deadline=$((SECONDS + WAIT))
  until port_open; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      tail -n 20 "$LOG_FILE" >&2 || true
      die "tansu exited during startup; see $LOG_FILE"
    fi
    if ((SECONDS >= deadline)); then
      die "tansu (pid $pid) did not accept connections on $URL within ${WAIT}s; see $LOG_FILE"
    fi
    sleep 0.2
  done
  say "running (pid $pid) on $URL"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    say "not running"
    return 0
  fi
  say "stopping pid $pid"
  kill "$pid"
  local deadline=$((SECONDS + 10))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      say "pid $pid did not exit within 10s; sending SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$PID_FILE"
  say "stopped"
}

status() {
  local pid
  if pid="$(running_pid)"; then
    if port_open; then
      say "running (pid $pid) on $URL"
    else
      say "running (pid $pid) but $URL does not accept connections (yet?)"
    fi
    return 0
  fi
  say "not running"
  return 3
}

topic() {
  [[ $# -eq 2 ]] || die "usage: scripts/tansu.sh topic NAME PARTITIONS" 2
  local name="$1" partitions="$2" out
  [[ "$partitions" =~ ^[1-9][0-9]*$ ]] || die "PARTITIONS must be a positive integer, got '$partitions'" 2
  need_tansu
  port_open || die "no broker on $URL; run scripts/tansu.sh start"
  if out="$(tansu topic create "$name" --partitions "$partitions" --broker "$URL" 2>&1)"; then
    say "created topic $name with $partitions partition(s)"
  elif grep -qiE 'already.?exists|TopicAlreadyExists' <<<"$out"; then
    say "topic $name already exists (partition count unchanged)"
  else
    echo "$out" >&2
    die "creating topic $name failed"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  topic) shift; topic "$@" ;;
  *) die "usage: scripts/tansu.sh start|stop|status|topic NAME PARTITIONS" 2 ;;
esac
