#!/usr/bin/env bash
# An S3-compatible server (moto) on loopback, for the checkpoint store's S3 test.
#
#   eval "$(scripts/s3-test-server.sh start)"   start it (installs moto[server] with pip when
#                                               missing), create the bucket, print the exports
#   scripts/s3-test-server.sh env              print the exports of the running server
#   scripts/s3-test-server.sh stop             stop it (no-op if it does not run)
#
# The exports are what the S3 test and `tickflow` read: AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT, AWS_ALLOW_HTTP=true, and
# TICKFLOW_TEST_S3_URL=s3://BUCKET/ckpt. Only they go to stdout; messages go to stderr.
#
# Environment:
#   S3_TEST_BUCKET  bucket to create (default tickflow-test)
#   S3_TEST_PORT    port on 127.0.0.1 (default: a free one)
#   S3_TEST_WAIT    seconds to wait for the server (default 30)
# Logs, pid and env files: run/s3/ under the repository root. Data is in memory, gone on stop.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUN_DIR="$ROOT/run/s3"
PID_FILE="$RUN_DIR/moto.pid"
LOG_FILE="$RUN_DIR/moto.log"
ENV_FILE="$RUN_DIR/env"
BUCKET="${S3_TEST_BUCKET:-tickflow-test}"
WAIT="${S3_TEST_WAIT:-30}"

say() { echo "s3-test-server.sh: $*" >&2; }
die() { echo "s3-test-server.sh: $*" >&2; exit "${2:-1}"; }

# The pid of our server if it is alive (and is moto), else nothing.
running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  grep -q moto "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

install_moto() {
  if python3 -c 'import moto.server, boto3' 2>/dev/null; then
    return 0
  fi
  say "installing moto[server] with pip"
  python3 -m pip install --quiet 'moto[server]' >&2 || die "pip could not install moto[server]" 2
  python3 -c 'import moto.server, boto3' 2>/dev/null || die "moto[server] installed but does not import" 2
}

start() {
  command -v python3 >/dev/null 2>&1 || die "python3 is required" 2
  local pid
  if pid="$(running_pid)"; then
    say "already running (pid $pid)"
    cat "$ENV_FILE"
    return 0
  fi
  install_moto
  mkdir -p "$RUN_DIR"
  local port="${S3_TEST_PORT:-$(free_port)}"
  port_open "$port" && die "port $port is already in use; set S3_TEST_PORT"
  say "starting moto on http://127.0.0.1:$port, log $LOG_FILE"
  nohup python3 -m moto.server -H 127.0.0.1 -p "$port" >>"$LOG_FILE" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PID_FILE"
  local deadline=$((SECONDS + WAIT))
  until port_open "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      tail -n 20 "$LOG_FILE" >&2 || true
      die "moto exited during startup; see $LOG_FILE"
    fi
    ((SECONDS < deadline)) || die "moto (pid $pid) did not accept connections within ${WAIT}s; see $LOG_FILE"
    sleep 0.2
  done
  local endpoint="http://127.0.0.1:$port"
  cat >"$ENV_FILE" <<EOF
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
export AWS_ENDPOINT=$endpoint
export AWS_ALLOW_HTTP=true
export TICKFLOW_TEST_S3_URL=s3://$BUCKET/ckpt
EOF
  ENDPOINT="$endpoint" BUCKET="$BUCKET" python3 - <<'EOF' >&2 || die "could not create the bucket; see $LOG_FILE"
import os
import boto3
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
s3.create_bucket(Bucket=os.environ["BUCKET"])
EOF
  say "running (pid $pid) on $endpoint, bucket $BUCKET"
  cat "$ENV_FILE"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE" "$ENV_FILE"
    say "not running"
    return 0
  fi
  kill "$pid"
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -f "$PID_FILE" "$ENV_FILE"
  say "stopped (pid $pid)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) running_pid >/dev/null || die "not running" 3; cat "$ENV_FILE" ;;
  *) die "usage: $0 start|stop|env" 2 ;;
esac
