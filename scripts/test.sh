#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, every unit/integration/doc test,
# and the reference-vector check of the `tickflow replay` CLI with TA-Lib's values.
# Needs: a Rust toolchain (cargo) and python3 (stdlib only). Installs the Tansu broker (a
# Kafka-protocol broker, for the Kafka tests) when it is missing: ~20 minutes, once per machine.
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
echo "== tests"
cargo test --workspace --release
echo "== replay CLI vs TA-Lib reference vectors"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/actual"
for f in operators/tests/data/indicators/input/*.csv; do
  name=$(basename "$f" .csv)
  cargo run --release --quiet -- replay --input "$f" --symbol "$name" --output "$out/$name.csv" 2>/dev/null
  cut -d, -f2- "$out/$name.csv" > "$out/actual/$name.csv"   # the checker wants ts first
done
python3 tests/reference/check_indicators.py operators/tests/data/indicators/expected "$out/actual" --quiet
