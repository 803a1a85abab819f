#!/usr/bin/env bash
# Runs every cargo-fuzz (libFuzzer) target in fuzz/ for a bounded time, one after another,
# and prints executions, speed and findings per target.
#
#   scripts/fuzz.sh [SECONDS]        # per target; default 60
#   FUZZ_TARGETS="csv ilp" scripts/fuzz.sh 20
#   FUZZ_RUNS=10000000 scripts/fuzz.sh        # a number of executions instead of a time
#   FUZZ_SANITIZER=address scripts/fuzz.sh    # AddressSanitizer (slower; see below)
#   FUZZ_SEED=1 scripts/fuzz.sh 10            # libFuzzer's random seed fixed (CI does this)
#   FUZZ_MAX_LEN=65536 scripts/fuzz.sh        # longer inputs (default 4096, libFuzzer's own
#                                             # default: a few dozen records; the time per
#                                             # execution grows with the input, and the csv
#                                             # target's corpus grew to 9 KB inputs at 5k/s)
#
# Toolchain: only stable Rust is needed. cargo-fuzz passes nightly-only flags (-Zsanitizer,
# -Cpasses=sancov-module); RUSTC_BOOTSTRAP=1 lets stable rustc accept them. Measured on this
# project's machine (rustc 1.95, cargo-fuzz 0.13.2): both the AddressSanitizer build and the
# uninstrumented one (`-s none`) build and run, and ASan reports a planted use-after-free.
# The default is `-s none`: tickflow denies `unsafe_code` in every crate of the workspace,
# so ASan guards only dependencies' unsafe code, at several times the cost per execution;
# overflow checks and debug assertions stay on in both (cargo fuzz build sets them).
#
# Corpora: fuzz/seeds/<target> holds the small, committed seeds; what libFuzzer finds goes
# to fuzz/corpus/<target> (git-ignored), crashes to fuzz/artifacts/<target> (git-ignored).
# A crash makes the script exit 1 after the remaining targets ran; reproduce it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -O -s none <target> fuzz/artifacts/<target>/crash-...
# and turn it into a regression test in the ordinary test suite, named after the finding.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_TARGET=${1:-60}
SANITIZER=${FUZZ_SANITIZER:-none}
ALL_TARGETS="json_line ndjson csv udf gateway_body rule_condition config ilp"
TARGETS=${FUZZ_TARGETS:-$ALL_TARGETS}
export RUSTC_BOOTSTRAP=1
# The fuzz crate is its own workspace; keep its build apart from the main one's.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/fuzz

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
fi

dict_for() {
  case "$1" in
    json_line | ndjson | udf | gateway_body) echo "-dict=$ROOT/fuzz/dicts/json.dict" ;;
    csv) echo "-dict=$ROOT/fuzz/dicts/csv.dict" ;;
    rule_condition) echo "-dict=$ROOT/fuzz/dicts/rule.dict" ;;
    config) echo "-dict=$ROOT/fuzz/dicts/toml.dict" ;;
    *) echo "" ;;
  esac
}

echo "fuzz.sh: building ($SANITIZER sanitizer) into $CARGO_TARGET_DIR"
(cd fuzz && cargo fuzz build -O -s "$SANITIZER")

if [[ -n "${FUZZ_RUNS:-}" ]]; then
  BOUND="-runs=$FUZZ_RUNS"
else
  BOUND="-max_total_time=$SECONDS_PER_TARGET"
fi

failed=()
report=$(mktemp)
trap 'rm -f "$report"' EXIT
printf '%-16s %14s %10s %8s %s\n' target executions execs/s seconds findings >"$report"
for t in $TARGETS; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  log="fuzz/artifacts/$t/last-run.log"
  echo "fuzz.sh: $t ($BOUND)"
  marker="fuzz/artifacts/$t/.started"
  touch "$marker"
  set +e
  # -jobs=1 -workers=1: one process (the machine's cores are shared); the seeds are read,
  # new inputs are written to the corpus directory (the first one).
  # Seeds where the target has them (ilp builds its rows with `arbitrary`: none).
  seeds=()
  [[ -d "fuzz/seeds/$t" ]] && seeds=("seeds/$t")
  (cd fuzz && cargo fuzz run -O -s "$SANITIZER" "$t" "corpus/$t" "${seeds[@]}" -- \
    "$BOUND" -jobs=1 -workers=1 -print_final_stats=1 -max_len="${FUZZ_MAX_LEN:-4096}" -timeout=10 -rss_limit_mb=2048 \
    -seed="${FUZZ_SEED:-0}" -artifact_prefix="artifacts/$t/" $(dict_for "$t")) >"$log" 2>&1
  rc=$?
  set -e
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' | tail -1 || true)
  findings=$(find "fuzz/artifacts/$t" -maxdepth 1 -type f -newer "$marker" \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
  printf '%-16s %14s %10s %8s %s\n' "$t" "${runs:-?}" "${speed:-?}" "${secs:-?}" "$findings" >>"$report"
  if [[ $rc -ne 0 ]]; then
    failed+=("$t")
    echo "fuzz.sh: $t FAILED (exit $rc); the last lines of $log:" >&2
    tail -n 30 "$log" >&2
  fi
done
cat "$report"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz.sh: findings in: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
  exit 1
fi
echo "fuzz.sh: no findings"
