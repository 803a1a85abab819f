#!/usr/bin/env bash
# End-to-end benchmarks. Prints a table; writes bench/out/results.md. Not a test: nothing here
# asserts a time, but a W1 or W2 run whose output fails its check fails the script.
#
#   scripts/bench.sh            # all: w1, kafka, soak
#   scripts/bench.sh w1         # W1 file → dataflow → file, 1 and 2 workers, vs the plain loop and
#                               # the own no-engine loop (interleaved in every run)
#   scripts/bench.sh w2         # W2: the default cluster.toml pipeline (standard set, 3 signal rules,
#                               # 1m/5m/1h candles, signal changes) by replay, 1 and 2 workers, vs the
#                               # same work in a no-engine loop (tickflow-bench pipeline), interleaved;
#                               # every replay output checked row for row against the loop's
#   scripts/bench.sh w2-symbols # W2 at W2_SYMBOLS symbols (same W2_BARS bars in all): the loop and
#                               # replay with 2 workers, bars/s and peak RSS, RSS per symbol
#   scripts/bench.sh w1-callgrind # W1 on a W2_PROFILE_BARS prefix under callgrind: instructions of the
#                               # plain loop, the own loop and replay --workers 1, and by function
#   scripts/bench.sh w2-callgrind # W2 on a W2_PROFILE_BARS prefix under callgrind: instructions by
#                               # function for the loop and for replay --workers 1
#   scripts/bench.sh kafka      # Kafka → 2-process cluster → ILP/HTTP receiver: rate and latency
#   scripts/bench.sh soak       # the generator at a fixed rate; RSS sampled over time
#   scripts/bench.sh questdb    # file → 2 workers (standard set, 1m/5m/1h candles) → QuestDB-like
#                               # receiver over 1 and 2 connections, vs the receiver's ceiling for
#                               # the same captured requests (no engine), rows/s, MB/s, peak RSS
#   scripts/bench.sh micro      # the criterion benches (benches/decode.rs, benches/hot.rs): decoders
#                               # against serde_json and the csv crate, indicator/operator hot paths;
#                               # CRITERION_ARGS passes options (e.g. "--save-baseline before",
#                               # "--baseline before" for a before/after comparison)
#   scripts/bench.sh csv        # the CSV reader against the csv crate's ByteRecord reader with the
#                               # same field parsers (examples/csv_read.rs): wall time over the W1
#                               # bars as CSV, and instructions a line (callgrind, CSV_LINES lines)
#   scripts/bench.sh checkpoint # checkpoint size, pause and write time at 1k/10k/100k symbols;
#                               # throughput with checkpoints every 10 s and every 1 s vs none
#
# Environment: SKIP_BUILD=1 (use the binaries already built), W1_RECORDS (default 2000000), RUNS (repeats, median taken; default 3),
# KAFKA_BARS (pre-loaded bars, default 1000000), RATES (fixed input rates, default "10000 20000 50000"),
# LATENCY_SECS (per fixed rate, default 20), GEN_LINGER (the load generator's Kafka linger in the latency phase,
# default 0ms: latency from the moment a bar is made; generate's own default is 20ms), SOAK_SECS (default 120; 600 = the 10-minute soak),
# QDB_BARS (bars for the questdb bench, default 500000), W2_SYMBOLS (default "1000 10000 100000"),
# W2_BARS (bars of every w2-symbols input, default 2000000), W2_PROFILE_BARS (default 200000).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
OUT=bench/out
mkdir -p "$OUT"
W1_RECORDS=${W1_RECORDS:-2000000}
RUNS=${RUNS:-3}
what=${1:-all}

if [ -z "${SKIP_BUILD:-}" ] && [ "$what" != micro ] && [ "$what" != csv ]; then
  echo "== building (release)"
  cargo build --release --quiet --bin tickflow --bin tickflow-bench --bin w1-plain --bin tickflow-ilp-bench
fi
TF=${CARGO_TARGET_DIR:-target}/release/tickflow
TB=${CARGO_TARGET_DIR:-target}/release/tickflow-bench
TP=${CARGO_TARGET_DIR:-target}/release/w1-plain
TI=${CARGO_TARGET_DIR:-target}/release/tickflow-ilp-bench
results="$OUT/results.md"
{
  echo "# tickflow benchmark results"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
} >"$results"

# time_run CMD... → prints "wall_s peak_rss_kb cpu_s" for the command
time_run() {
  local tf; tf=$(mktemp)
  /usr/bin/env time -f "%e %M %U %S" -o "$tf" "$@" >/dev/null 2>"$tf.err" || { cat "$tf.err" >&2; rm -f "$tf" "$tf.err"; return 1; }
  awk '{printf "%s %s %.2f\n", $1, $2, $3 + $4}' "$tf" >"$tf.out"; mv "$tf.out" "$tf"
  cat "$tf"; rm -f "$tf" "$tf.err"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

bench_w1() {
  command -v /usr/bin/time >/dev/null || { echo "bench.sh: needs /usr/bin/time (apt-get install time)"; exit 2; }
  local input="$OUT/w1_${W1_RECORDS}.ndjson" ref="$OUT/w1_${W1_RECORDS}.ref.csv"
  if [ ! -s "$input" ]; then
    echo "== generating W1 input ($W1_RECORDS bars, 1000 symbols) with gen_ticks.py"
    python3 bench/w1/gen_ticks.py --records "$W1_RECORDS" --out "$input"
  fi
  if [ ! -s "$ref" ]; then
    echo "== computing the reference output (reference.py; slow, cached)"
    python3 bench/w1/reference.py "$input" "$ref"
  fi
  local load0; load0=$(cut -d' ' -f1-3 /proc/loadavg)
  # Interleaved A/B: every run times all four, so load drifts hit each alike.
  declare -A wall rss cpu
  local kinds="plain base tf1 tf2"
  for ((r = 1; r <= RUNS; r++)); do
    echo "== W1 run $r/$RUNS"
    for k in $kinds; do
      local cmd
      case $k in
        plain) cmd=("$TP" "$input" "$OUT/w1_plain.csv") ;;
        base) cmd=("$TB" baseline "$input" "$OUT/w1_base.csv" bench/w1/w1.toml) ;;
        tf*) cmd=("$TF" replay --input "$input" --output "$OUT/w1_$k.csv" --workers "${k#tf}" --config bench/w1/w1.toml) ;;
      esac
      # Every run writes a new file: replacing the last run's output costs whoever replaces
      # it atomically (a new file renamed over the old one, as replay does) page-cache
      # pages that truncating in place (the loops) reuses: ~0.3 s of kernel time here.
      rm -rf "$OUT/w1_$k.csv" "$OUT/w1_$k.csv.d"
      read -r w m c < <(time_run "${cmd[@]}")
      wall[$k]+="$w "; cpu[$k]+="$c "; rss[$k]=$m
    done
  done
  echo "== checking every output against the reference (check.py)"
  for o in $kinds; do
    python3 bench/w1/check.py "$ref" "$OUT/w1_$o.csv" --quiet || { echo "bench.sh: W1 output $o FAILED the check"; exit 1; }
  done
  med() { echo "$1" | tr ' ' '\n' | grep . | median; }
  local p b t1
  p=$(med "${wall[plain]}"); b=$(med "${wall[base]}"); t1=$(med "${wall[tf1]}")
  {
    echo "## W1: $W1_RECORDS bars, 1000 symbols, SMA 20 / EMA 20 / RSI 14 + signal, spec columns (median of $RUNS, interleaved; all outputs CHECK PASSED)"
    echo
    echo "- load average before the runs: $load0; after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "| run | wall s (runs) | CPU s | bars/s | × plain loop | × own baseline | × 1 worker | peak RSS MB |"
    echo "|---|---|---|---|---|---|---|---|"
    for k in $kinds; do
      local w c name; w=$(med "${wall[$k]}"); c=$(med "${cpu[$k]}")
      case $k in
        plain) name="plain loop (w1-plain: serde_json, HashMap, ryu)";;
        base) name="own no-engine loop (tickflow-bench baseline)";;
        tf1) name="tickflow replay, 1 worker";;
        tf2) name="tickflow replay, 2 workers";;
      esac
      awk -v n="$name" -v w="$w" -v runs="${wall[$k]% }" -v c="$c" -v p="$p" -v b="$b" -v t1="$t1" -v r="${rss[$k]}" -v N="$W1_RECORDS" \
        'BEGIN {printf "| %s | %.2f (%s) | %.2f | %.0f | %.2f× | %.2f× | %.2f× | %.0f |\n", n, w, runs, c, N/w, p/w, b/w, t1/w, r/1024}'
    done
    echo
  } | tee -a "$results"
}

# w1_input N [SYMBOLS]: the gen_ticks.py input of N bars (SYMBOLS, default 1000), generated
# when missing; prints its path. The 1000-symbol file is the W1 input itself.
w1_input() {
  local n=$1 symbols=${2:-1000} path
  if [ "$symbols" = 1000 ]; then path="$OUT/w1_$n.ndjson"; else path="$OUT/w2_${n}_${symbols}sym.ndjson"; fi
  if [ ! -s "$path" ]; then
    echo "== generating $n bars, $symbols symbols with gen_ticks.py" >&2
    python3 bench/w1/gen_ticks.py --records "$n" --symbols "$symbols" --out "$path" >&2
  fi
  echo "$path"
}

# w2_cmd KIND INPUT TAG: the command of one W2 run (loop, tf1, tf2) writing to $OUT/w2_TAG_KIND*.
w2_cmd() {
  case $1 in
    loop) echo "$TB pipeline $2 $OUT/w2_$3_loop bench/w2/w2.toml" ;;
    tf*) echo "$TF replay --input $2 --output $OUT/w2_$3_$1.csv --workers ${1#tf} --config bench/w2/w2.toml" ;;
  esac
}

# w2_clean KIND TAG: removes a run's results before it starts (so every check sees this run's).
w2_clean() {
  case $1 in
    loop) rm -rf "$OUT/w2_$2_loop" ;;
    tf*) rm -rf "$OUT/w2_$2_$1.csv" "$OUT/w2_$2_$1.csv.d" ;;
  esac
}

bench_w2() {
  command -v /usr/bin/time >/dev/null || { echo "bench.sh: needs /usr/bin/time (apt-get install time)"; exit 2; }
  local input; input=$(w1_input "$W1_RECORDS")
  local load0; load0=$(cut -d' ' -f1-3 /proc/loadavg)
  declare -A wall rss cpu
  local kinds="loop tf1 tf2" tag=main
  for ((r = 1; r <= RUNS; r++)); do
    echo "== W2 run $r/$RUNS"
    for k in $kinds; do
      w2_clean "$k" $tag
      # shellcheck disable=SC2046 # the command's words (no spaces in these paths)
      read -r w m c < <(time_run $(w2_cmd "$k" "$input" $tag))
      wall[$k]+="$w "; cpu[$k]+="$c "; rss[$k]+="$m "
    done
  done
  echo "== checking every replay output against the loop's, row for row (bench/w2/check.sh)"
  local checked=""
  for k in tf1 tf2; do
    checked=$(bench/w2/check.sh "$OUT/w2_${tag}_loop" "$OUT/w2_${tag}_$k.csv") || { echo "bench.sh: W2 output $k FAILED the check"; exit 1; }
    echo "$k: $checked"
  done
  med() { echo "$1" | tr ' ' '\n' | grep . | median; }
  local l t1
  l=$(med "${wall[loop]}"); t1=$(med "${wall[tf1]}")
  {
    echo "## W2: $W1_RECORDS bars (W1 input, 1000 symbols), default pipeline: 11 indicators, 3 rules, 1m/5m/1h candles (median of $RUNS, interleaved; all outputs CHECK PASSED)"
    echo
    echo "- ${checked#check: }"
    echo "- load average before the runs: $load0; after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "| run | wall s (runs) | CPU s | bars/s | × loop | × 1 worker | peak RSS MB |"
    echo "|---|---|---|---|---|---|---|"
    for k in $kinds; do
      local w c m name; w=$(med "${wall[$k]}"); c=$(med "${cpu[$k]}"); m=$(echo "${rss[$k]}" | tr ' ' '\n' | grep . | sort -n | tail -1)
      case $k in
        loop) name="no-engine loop (tickflow-bench pipeline)";;
        tf1) name="tickflow replay, 1 worker";;
        tf2) name="tickflow replay, 2 workers";;
      esac
      awk -v n="$name" -v w="$w" -v runs="${wall[$k]% }" -v c="$c" -v l="$l" -v t1="$t1" -v r="$m" -v N="$W1_RECORDS" \
        'BEGIN {printf "| %s | %.2f (%s) | %.2f | %.0f | %.2f× | %.2f× | %.0f |\n", n, w, runs, c, N/w, l/w, t1/w, r/1024}'
    done
    echo
  } | tee -a "$results"
}

bench_w2_symbols() {
  command -v /usr/bin/time >/dev/null || { echo "bench.sh: needs /usr/bin/time (apt-get install time)"; exit 2; }
  local bars=${W2_BARS:-2000000} sizes=${W2_SYMBOLS:-1000 10000 100000}
  declare -A input wall rss cpu
  for n in $sizes; do input[$n]=$(w1_input "$bars" "$n"); done
  local load0; load0=$(cut -d' ' -f1-3 /proc/loadavg)
  for ((r = 1; r <= RUNS; r++)); do
    for n in $sizes; do
      echo "== W2 symbols run $r/$RUNS, $n symbols"
      for k in loop tf2; do
        w2_clean "$k" "${n}sym"
        # shellcheck disable=SC2046
        read -r w m c < <(time_run $(w2_cmd "$k" "${input[$n]}" "${n}sym"))
        wall[$n$k]+="$w "; cpu[$n$k]+="$c "; rss[$n$k]+="$m "
      done
    done
  done
  echo "== checking every replay output against the loop's (bench/w2/check.sh)"
  for n in $sizes; do
    bench/w2/check.sh "$OUT/w2_${n}sym_loop" "$OUT/w2_${n}sym_tf2.csv" || { echo "bench.sh: W2 output at $n symbols FAILED the check"; exit 1; }
  done
  med() { echo "$1" | tr ' ' '\n' | grep . | median; }
  maxv() { echo "$1" | tr ' ' '\n' | grep . | sort -n | tail -1; }
  local first; first=${sizes%% *}
  local r0 t0; r0=$(maxv "${rss[${first}tf2]}"); t0=$(med "${wall[${first}tf2]}")
  {
    echo "## W2 symbol scaling: $bars bars at each size, default pipeline, replay with 2 workers vs the no-engine loop (median of $RUNS, interleaved; all outputs CHECK PASSED)"
    echo
    echo "- load average before the runs: $load0; after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- RSS per symbol: peak RSS / symbols, and the growth over the $first-symbol run per added symbol"
    echo
    echo "| symbols | bars/symbol | loop wall s (runs) | loop bars/s | loop peak RSS MB | replay 2w wall s (runs) | replay 2w CPU s | replay 2w bars/s | × loop | × $first symbols | replay peak RSS MB | KiB/symbol | added KiB/added symbol |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for n in $sizes; do
      local lw tw tc lm tm; lw=$(med "${wall[${n}loop]}"); tw=$(med "${wall[${n}tf2]}"); tc=$(med "${cpu[${n}tf2]}")
      lm=$(maxv "${rss[${n}loop]}"); tm=$(maxv "${rss[${n}tf2]}")
      awk -v n="$n" -v b="$bars" -v lw="$lw" -v lr="${wall[${n}loop]% }" -v lm="$lm" -v tw="$tw" -v tr="${wall[${n}tf2]% }" -v tc="$tc" \
        -v tm="$tm" -v t0="$t0" -v r0="$r0" -v f="$first" \
        'BEGIN {added = (n > f) ? sprintf("%.2f", (tm - r0) / (n - f)) : "—";
                printf "| %d | %d | %.2f (%s) | %.0f | %.0f | %.2f (%s) | %.2f | %.0f | %.2f× | %.2f× | %.0f | %.2f | %s |\n",
                  n, b / n, lw, lr, b / lw, lm / 1024, tw, tr, tc, b / tw, lw / tw, t0 / tw, tm / 1024, tm / n, added}'
    done
    echo
  } | tee -a "$results"
}

# W2 under callgrind on a prefix of the W1 input: instructions (Ir) by function, exclusive,
# for the no-engine loop and for replay with 1 worker; the annotations go to $OUT/w2_callgrind_*.txt.
bench_w2_callgrind() {
  command -v valgrind >/dev/null || { echo "bench.sh: needs valgrind"; exit 2; }
  local n=${W2_PROFILE_BARS:-200000} full; full=$(w1_input "$W1_RECORDS")
  local input="$OUT/w2_prefix_$n.ndjson"
  [ -s "$input" ] || head -n "$n" "$full" >"$input"
  {
    echo "## W2 under callgrind: the first $n bars of the W1 input (instructions, exclusive, by function)"
    echo
  } | tee -a "$results"
  for k in loop tf1; do
    local cg="$OUT/w2_callgrind_$k.out"
    w2_clean "$k" prof
    echo "== callgrind: $k"
    # shellcheck disable=SC2046
    valgrind --tool=callgrind --callgrind-out-file="$cg" $(w2_cmd "$k" "$input" prof) >/dev/null 2>"$OUT/w2_callgrind_$k.log"
    callgrind_annotate --auto=no --inclusive=no --threshold=100 "$cg" >"$OUT/w2_callgrind_$k.txt" 2>/dev/null
    {
      echo "### $k: \`$(w2_cmd "$k" "$input" prof | sed "s|$OUT/||g; s|${CARGO_TARGET_DIR:-target}/release/||")\`"
      echo
      python3 bench/w2/by_function.py "$OUT/w2_callgrind_$k.txt" 25
      echo
    } | tee -a "$results"
  done
  bench/w2/check.sh "$OUT/w2_prof_loop" "$OUT/w2_prof_tf1.csv"
}

# W1 under callgrind: the plain loop, the own loop and replay with 1 worker over the first
# W2_PROFILE_BARS bars of the W1 input; whole-program instructions and the top functions.
bench_w1_callgrind() {
  command -v valgrind >/dev/null || { echo "bench.sh: needs valgrind"; exit 2; }
  local n=${W2_PROFILE_BARS:-200000} full; full=$(w1_input "$W1_RECORDS")
  local input="$OUT/w1_prefix_$n.ndjson"
  [ -s "$input" ] || head -n "$n" "$full" >"$input"
  {
    echo "## W1 under callgrind: the first $n bars of the W1 input (instructions)"
    echo
    echo "| program | instructions | per bar | × plain loop |"
    echo "|---|---|---|---|"
  } | tee -a "$results"
  local plain_ir=""
  for k in plain base tf1; do
    local cg="$OUT/w1_callgrind_$k.out" out="$OUT/w1_prof_$k.csv" cmd name
    rm -rf "$out" "$out.d"
    case $k in
      plain) cmd=("$TP" "$input" "$out"); name="plain loop (w1-plain)" ;;
      base) cmd=("$TB" baseline "$input" "$out" bench/w1/w1.toml); name="own no-engine loop (tickflow-bench baseline)" ;;
      tf1) cmd=("$TF" replay --input "$input" --output "$out" --workers 1 --config bench/w1/w1.toml); name="tickflow replay, 1 worker" ;;
    esac
    valgrind --tool=callgrind --callgrind-out-file="$cg" "${cmd[@]}" >/dev/null 2>"$OUT/w1_callgrind_$k.log"
    callgrind_annotate --auto=no --inclusive=no --threshold=100 "$cg" >"$OUT/w1_callgrind_$k.txt" 2>/dev/null
    local ir; ir=$(awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}' "$OUT/w1_callgrind_$k.txt")
    plain_ir=${plain_ir:-$ir}
    awk -v n="$name" -v ir="$ir" -v p="$plain_ir" -v bars="$n" \
      'BEGIN {printf "| %s | %.3f G | %.0f | %.2f× |\n", n, ir/1e9, ir/bars, p/ir}' | tee -a "$results"
  done
  echo | tee -a "$results"
  for k in plain base tf1; do
    { echo "### $k, by function (exclusive)"; echo; python3 bench/w2/by_function.py "$OUT/w1_callgrind_$k.txt" 15; echo; } | tee -a "$results"
  done
  # One worker writes the own loop's rows in the same order: the outputs must be the same bytes.
  cmp -s "$OUT/w1_prof_base.csv" "$OUT/w1_prof_tf1.csv" || { echo "bench.sh: replay's output differs from the own loop's"; exit 1; }
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bench_kafka() {
  local port; port=$(free_port)
  export TANSU_PORT=$port
  scripts/tansu.sh start >/dev/null
  trap 'scripts/tansu.sh stop >/dev/null 2>&1 || true' RETURN
  local brokers="127.0.0.1:$port" bars=${KAFKA_BARS:-1000000}
  scripts/tansu.sh topic bars 4 >/dev/null
  echo "== pre-loading $bars bars into Kafka"
  "$TF" generate --to "kafka://$brokers/bars" --symbols 1000 --count "$bars" --progress none 2>&1 | tail -1
  echo "== bare rdkafka consumer (no engine)"
  local bare; bare=$("$TB" kafka-read "$brokers" bars 2>/dev/null)
  local rport p0 p1 s0 s1; rport=$(free_port); p0=$(free_port); p1=$(free_port); s0=$(free_port)
  cat >"$OUT/kafka.toml" <<TOML
[cluster]
workers = 1
processes = ["127.0.0.1:$p0", "127.0.0.1:$p1"]
[status]
listen = "127.0.0.1:$s0"
[source]
kind = "kafka"
[source.kafka]
brokers = "$brokers"
topic = "bars"
group-id = "bench-\$RANDOM"
stop-at-end = true
[indicators]
list = ["sma:20", "ema:20", "rsi:14"]
[signals]
rules = [{ kind = "rsi", period = 14 }]
[windows]
timeframes = []
[checkpoint]
url = "$OUT/kafka-checkpoints"
# The shipped defaults otherwise (adaptive batching, one connection per worker).
[sinks.questdb]
addr = "127.0.0.1:$rport"
TOML
  rm -rf "$OUT/kafka-checkpoints"
  sed -i "s/bench-\\\$RANDOM/bench-$RANDOM/" "$OUT/kafka.toml"
  echo "== Kafka → 2-process cluster → ILP receiver, as fast as possible"
  mkfifo "$OUT/recv.fifo" 2>/dev/null || true
  "$TB" receiver "127.0.0.1:$rport" "$OUT/recv_max.json" <"$OUT/recv.fifo" 2>/dev/null & local rpid=$!
  exec 7>"$OUT/recv.fifo"
  local start end; start=$(date +%s.%N)
  "$TF" run --config "$OUT/kafka.toml" --process 0 2>/dev/null & local c0=$!
  "$TF" run --config "$OUT/kafka.toml" --process 1 2>/dev/null & local c1=$!
  wait $c0 $c1
  end=$(date +%s.%N)
  exec 7>&-; wait $rpid || true
  local bare_rate cluster_rate
  bare_rate=$(python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(round(d['messages']/d['secs']))" "$bare")
  cluster_rate=$(python3 -c "print(round($bars/($end-$start)))")
  {
    echo "## Kafka (Tansu, 4 partitions, $bars bars pre-loaded) → 2 processes × 1 worker → ILP/HTTP receiver"
    echo
    echo "| what | bars/s |"
    echo "|---|---|"
    echo "| bare rdkafka consumer, same broker and topic (the ceiling) | $bare_rate |"
    echo "| tickflow cluster, end to end incl. start-up and sink acks | $cluster_rate ($(python3 -c "print(f'{$cluster_rate/$bare_rate:.2f}')")× the bare consumer) |"
    echo
  } | tee -a "$results"

  echo "== latency at fixed input rates"
  {
    echo "| input rate bars/s | rows | p50 ms | p99 ms | max ms | steady state (without the first 3 s and the last 1 s): rows, p50, p99, max ms | bare rdkafka consumer, same load, own pass, steady: rows, p50, p99, max ms |"
    echo "|---|---|---|---|---|---|---|"
  } >"$OUT/latency.md"
  # --start-now: event time starts when generate makes its first batch (its start-up is not
  # counted as latency); --batch one round of the symbols: a round a tick, as a feed sends it
  # (a batch of 1000 would carry 50 ms of event time, made at once, partly in the future).
  local symbols=100
  produce_at() { # topic rate
    "$TF" generate --to "kafka://$brokers/$1" --symbols $symbols --rate "$2" --duration "${LATENCY_SECS:-20}s" \
      --start-now --interval "$((symbols * 1000 / $2))ms" --linger "${GEN_LINGER:-0ms}" --batch "$symbols" --progress none >/dev/null 2>&1 || true
  }
  mkfifo "$OUT/bare.fifo" 2>/dev/null || true
  for rate in ${RATES:-10000 20000 50000}; do
    # The broker's own share first: a bare rdkafka consumer (tickflow's fetch settings, no
    # engine) of a topic of its own under the same load, alone on the machine (run beside the
    # cluster it would take CPU from it on two cores).
    scripts/tansu.sh topic "bare$rate" 4 >/dev/null
    "$TB" kafka-latency "$brokers" "bare$rate" "$OUT/bare_lat_$rate.json" <"$OUT/bare.fifo" 2>/dev/null & bpid=$!
    exec 8>"$OUT/bare.fifo"
    sleep 1
    produce_at "bare$rate" "$rate"
    sleep 1
    exec 8>&-; wait $bpid || true
    # A topic of its own per rate, read from its beginning: `start = "latest"` on Tansu 0.6
    # starts from its under-reported high watermark, and the bars behind it come back.
    scripts/tansu.sh topic "lat$rate" 4 >/dev/null
    sed -i 's/^stop-at-end = true/stop-at-end = false/; s/^group-id = .*/group-id = "bench-lat-'"$rate"'"/; s/^topic = .*/topic = "lat'"$rate"'"/' "$OUT/kafka.toml"
    "$TB" receiver "127.0.0.1:$rport" "$OUT/recv_$rate.json" <"$OUT/recv.fifo" 2>/dev/null & rpid=$!
    exec 7>"$OUT/recv.fifo"
    # --fresh: the run above ended its input (stop-at-end), so its last checkpoint holds the
    # watermark past everything; resuming from it would make every new bar late (README,
    # "give a new job its own checkpoint.url").
    "$TF" run --config "$OUT/kafka.toml" --process 0 --fresh 2>/dev/null & c0=$!
    "$TF" run --config "$OUT/kafka.toml" --process 1 --fresh 2>/dev/null & c1=$!
    sleep 3
    produce_at "lat$rate" "$rate"
    sleep 2
    kill -TERM $c0 $c1; wait $c0 $c1 || true
    exec 7>&-; wait $rpid || true
    python3 -c "import json; j=json.load(open('$OUT/recv_$rate.json')); d=j['all']; s=j['steady']; b=json.load(open('$OUT/bare_lat_$rate.json'))['steady']; print(f\"| $rate | {d['rows']} | {d['p50_ms']} | {d['p99_ms']} | {d['max_ms']} | {s['rows']}, {s['p50_ms']}, {s['p99_ms']}, {s['max_ms']} | {b['rows']}, {b['p50_ms']}, {b['p99_ms']}, {b['max_ms']} |\")" >>"$OUT/latency.md"
  done
  {
    echo "### Latency: produce (event time = produce time) → the receiver got the row (shipped defaults: adaptive batching, fetch.wait.max.ms 10; the generator's producer linger ${GEN_LINGER:-0ms})"
    echo
    cat "$OUT/latency.md"
    echo
  } | tee -a "$results"
  rm -f "$OUT/recv.fifo" "$OUT/bare.fifo"
}

bench_soak() {
  local secs=${SOAK_SECS:-120} s0; s0=$(free_port)
  cat >"$OUT/soak.toml" <<TOML
[cluster]
workers = 2
processes = ["127.0.0.1:$(free_port)"]
[status]
listen = "127.0.0.1:$s0"
[source.generator]
symbols = 1000
rate = 20000
[windows]
timeframes = ["1m", "5m", "1h"]
TOML
  echo "== soak: generator at 20000 bars/s for ${secs}s, RSS sampled every 10 s"
  "$TF" run --config "$OUT/soak.toml" 2>/dev/null & local pid=$!
  local samples=""
  for ((t = 0; t <= secs; t += 10)); do
    sleep 10
    samples+="$(awk '/VmRSS/ {printf "%.0f", $2/1024}' /proc/$pid/status) "
  done
  kill -TERM $pid; wait $pid || true
  {
    echo "## Soak: generator, 1000 symbols, 20000 bars/s, 1m/5m/1h candles, ${secs}s"
    echo
    echo "RSS MB every 10 s: $samples"
    echo
  } | tee -a "$results"
}

# ck_config FILE SYMBOLS BARS OUTDIR CKDIR ENABLED [INTERVAL]: the default pipeline (standard set,
# signals, 1m/5m/1h candles) on the generator, 2 workers, rate 0, checkpoints every INTERVAL (1s).
ck_config() {
  cat >"$1" <<TOML
[cluster]
workers = 2
processes = ["127.0.0.1:$(free_port)"]
[status]
listen = "127.0.0.1:0"
[source.generator]
symbols = $2
rate = 0
interval = "1s"
count = $3
[sinks.file]
dir = "$4"
[checkpoint]
enabled = $6
url = "$5"
interval = "${7:-1s}"
retain = 100
TOML
}

bench_checkpoint() {
  local dir; dir=$(mktemp -d)
  {
    echo "## Checkpoints (generator, standard set + signals + 1m/5m/1h candles, 2 workers, every 1 s)"
    echo
    echo "| symbols | bars | checkpoints | bytes per checkpoint (all parts) | bytes/symbol | reading paused ms (median) | part written ms (median) | restart from the last checkpoint s |"
    echo "|---|---|---|---|---|---|---|---|"
  } | tee -a "$results"
  # CK_FILES=DIR puts the throughput runs' result files there (e.g. a tmpfs, to separate the
  # protocol's cost from the disk's: fsync on tmpfs is free); CK_SIZES=0 skips the size table.
  local files="${CK_FILES:-$dir}"
  for n in $([ "${CK_SIZES:-1}" = 0 ] || echo 1000 10000 100000); do
    local bars=$((n * 10 > 400000 ? n * 10 : 400000))
    ck_config "$dir/ck$n.toml" "$n" "$bars" "$dir/out$n" "$dir/ck$n" true
    RUST_LOG=warn,tickflow::sources::driver=debug "$TF" run --config "$dir/ck$n.toml" 2>"$dir/log$n" >/dev/null
    local parts count bytes pause write
    parts=$(sed 's/\x1b\[[0-9;]*m//g' "$dir/log$n" | grep 'checkpoint part written' || true)
    count=$(ls "$dir/ck$n" | grep -c '^manifest-' || true)
    bytes=$(cat "$dir/ck$n"/ckpt-*/* | wc -c)
    pause=$(echo "$parts" | grep -o 'paused_ms=[0-9.]*' | cut -d= -f2 | median)
    write=$(echo "$parts" | grep -o 'written_ms=[0-9.]*' | cut -d= -f2 | median)
    # Restart: the same command again resumes from the run's last checkpoint (load, decode and
    # restore every symbol's state, the file rollback, one more checkpoint, exit).
    local restart
    read -r restart _ < <(time_run "$TF" run --config "$dir/ck$n.toml")
    awk -v n="$n" -v b="$bars" -v c="$count" -v by="$bytes" -v p="$pause" -v w="$write" -v r="$restart" \
      'BEGIN {per = c ? by / c : 0; printf "| %d | %d | %d | %.0f | %.0f | %.1f | %.1f | %.2f |\n", n, b, c, per, per / n, p, w, r}' | tee -a "$results"
  done
  echo | tee -a "$results"
  # Throughput: checkpoints off vs every 10 s (the default) on a run long enough to take
  # several, and vs every 1 s on a short one (the worst case), A/B interleaved.
  local w
  for spec in "20000000 10s" "2000000 1s"; do
    local bars=${spec% *} every=${spec#* } on="" off=""
    for ((r = 1; r <= RUNS; r++)); do
      for mode in on off; do
        rm -rf "$dir/tp-$mode" "$files/tpo-$mode"
        ck_config "$dir/tp-$mode.toml" 1000 "$bars" "$files/tpo-$mode" "$dir/tp-$mode" \
          "$([ $mode = on ] && echo true || echo false)" "$every"
        read -r w _ < <(time_run "$TF" run --config "$dir/tp-$mode.toml")
        if [ $mode = on ]; then on+="$w "; else off+="$w "; fi
        [ $mode = on ] && ck_taken=$(ls "$dir/tp-on" | grep -c '^manifest-' || true)
      done
    done
    local won woff
    won=$(echo "$on" | tr ' ' '\n' | grep . | median); woff=$(echo "$off" | tr ' ' '\n' | grep . | median)
    {
      echo "| $bars bars, 1000 symbols, 2 workers (median of $RUNS, interleaved; result files in ${CK_FILES:-the temp dir}) | wall s | bars/s |"
      echo "|---|---|---|"
      awk -v w="$woff" -v b="$bars" 'BEGIN {printf "| checkpoints off | %.2f | %.0f |\n", w, b / w}'
      awk -v w="$won" -v o="$woff" -v b="$bars" -v e="$every" -v c="$ck_taken" \
        'BEGIN {printf "| checkpoints every %s (%d taken in the last run) | %.2f | %.0f (%+.1f%% time) |\n", e, c, w, b / w, (w / o - 1) * 100}'
      echo
    } | tee -a "$results"
  done
  rm -rf "$dir" "$files"/tpo-on "$files"/tpo-off
}

# The QuestDB sink's throughput: rows/s and MB/s through 1 and 2 connections, against the
# ceiling of the same receiver for the same requests sent by a plain client (tickflow-ilp-bench
# blast: the captured bodies, no engine), and the peak RSS of the cluster process.
bench_questdb() {
  command -v /usr/bin/time >/dev/null || { echo "bench.sh: needs /usr/bin/time (apt-get install time)"; exit 2; }
  local bars=${QDB_BARS:-500000}
  local input="$OUT/w1_${bars}.ndjson"
  if [ ! -s "$input" ]; then
    echo "== generating $bars bars (1000 symbols) with gen_ticks.py"
    python3 bench/w1/gen_ticks.py --records "$bars" --out "$input"
  fi
  local capture="$OUT/qdb_capture.bin"
  declare -A wall rss rows bytes
  for ((r = 1; r <= RUNS; r++)); do
    for conns in 1 2; do
      echo "== QuestDB sink run $r/$RUNS, $conns connection(s)"
      local rport s0; rport=$(free_port); s0=$(free_port)
      cat >"$OUT/qdb.toml" <<TOML
[cluster]
workers = 2
processes = ["127.0.0.1:$(free_port)"]
[status]
listen = "127.0.0.1:$s0"
[source]
kind = "file"
[source.file]
paths = ["$input"]
[windows]
timeframes = ["1m", "5m", "1h"]
[serve]
enabled = false
[sinks.questdb]
addr = "127.0.0.1:$rport"
connections = $conns
TOML
      mkfifo "$OUT/qdb.fifo" 2>/dev/null || true
      local cap=""; [ "$r" = 1 ] && [ "$conns" = 1 ] && cap=$capture
      # shellcheck disable=SC2086
      "$TI" receive "127.0.0.1:$rport" "$OUT/qdb_recv.json" $cap <"$OUT/qdb.fifo" 2>/dev/null & local rpid=$!
      exec 8>"$OUT/qdb.fifo"
      read -r w m < <(time_run "$TF" run --config "$OUT/qdb.toml")
      exec 8>&-; wait $rpid
      rm -f "$OUT/qdb.fifo"
      wall[$conns]+="$w "; rss[$conns]+="$m "
      rows[$conns]=$(python3 -c "import json; print(json.load(open('$OUT/qdb_recv.json'))['rows'])")
      bytes[$conns]=$(python3 -c "import json; print(json.load(open('$OUT/qdb_recv.json'))['bytes'])")
    done
  done
  if [ "${rows[1]}" != "${rows[2]}" ]; then
    echo "bench.sh: 1 and 2 connections wrote different row counts (${rows[1]} vs ${rows[2]})"; exit 1
  fi
  declare -A ceil
  local cap_rows=""
  for ((r = 1; r <= RUNS; r++)); do
    for conns in 1 2 4; do
      local rport; rport=$(free_port)
      mkfifo "$OUT/qdb.fifo" 2>/dev/null || true
      "$TI" receive "127.0.0.1:$rport" "$OUT/qdb_blast_recv.json" <"$OUT/qdb.fifo" 2>/dev/null & local rpid=$!
      exec 8>"$OUT/qdb.fifo"
      sleep 0.2
      local j; j=$("$TI" blast "127.0.0.1:$rport" "$capture" "$conns")
      exec 8>&-; wait $rpid
      rm -f "$OUT/qdb.fifo"
      ceil[$conns]+="$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['secs'])" "$j") "
      cap_rows=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['rows'])" "$j")
    done
  done
  [ "$cap_rows" = "${rows[1]}" ] || { echo "bench.sh: the capture holds $cap_rows rows, the run wrote ${rows[1]}"; exit 1; }
  {
    echo "## QuestDB sink: $bars bars, 2 workers, standard set + 1m/5m/1h candles → ILP/HTTP receiver (median of $RUNS)"
    echo
    echo "Every run wrote ${rows[1]} rows ($(awk -v b="${bytes[1]}" 'BEGIN {printf "%.1f", b/1048576}') MB). Ceiling: the same requests sent"
    echo "by \`tickflow-ilp-bench blast\` (no engine) to the same receiver. Rates are end to end (start-up included)."
    echo
    echo "| what | connections | wall s | rows/s | MB/s | of the ceiling at the same connections | peak RSS MB |"
    echo "|---|---|---|---|---|---|---|"
    for conns in 1 2 4; do
      local c; c=$(echo "${ceil[$conns]}" | tr ' ' '
' | grep . | median)
      awk -v c="$c" -v k="$conns" -v n="${rows[1]}" -v b="${bytes[1]}" 'BEGIN {printf "| ceiling (blast) | %d | %.2f | %.0f | %.1f | 1.00× | — |\n", k, c, n/c, b/1048576/c}'
    done
    for conns in 1 2; do
      local w c m; w=$(echo "${wall[$conns]}" | tr ' ' '
' | grep . | median); c=$(echo "${ceil[$conns]}" | tr ' ' '
' | grep . | median)
      m=$(echo "${rss[$conns]}" | tr ' ' '
' | grep . | sort -n | tail -1)
      awk -v w="$w" -v c="$c" -v k="$conns" -v n="${rows[1]}" -v b="${bytes[1]}" -v m="$m" 'BEGIN {printf "| tickflow run | %d | %.2f | %.0f | %.1f | %.2f× | %.0f |\n", k, w, n/w, b/1048576/w, c/w, m/1024}'
    done
    echo
  } | tee -a "$results"
}

# The criterion benches, one table: median time per iteration and throughput (criterion's
# middle estimate), plus the change against a saved baseline when CRITERION_ARGS names one.
bench_csv() {
  command -v valgrind >/dev/null || { echo "bench.sh: needs valgrind (apt-get install valgrind)"; exit 2; }
  local input="$OUT/w1_${W1_RECORDS}.ndjson" csvf="$OUT/w1_${W1_RECORDS}.csv" lines=${CSV_LINES:-200000}
  if [ ! -s "$input" ]; then
    echo "== generating W1 input ($W1_RECORDS bars, 1000 symbols) with gen_ticks.py"
    python3 bench/w1/gen_ticks.py --records "$W1_RECORDS" --out "$input"
  fi
  if [ ! -s "$csvf" ]; then
    echo "== writing the W1 bars as CSV"
    python3 -c '
import json, sys
out = open(sys.argv[2], "w")
out.write("ts,symbol,open,high,low,close,volume\n")
for line in open(sys.argv[1]):
    r = json.loads(line)
    out.write(",".join([repr(r["timestamp"]), r["stock_symbol"]] + [repr(r[k]) for k in ("open", "high", "low", "close", "volume")]) + "\n")
' "$input" "$csvf"
  fi
  if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --quiet --example csv_read
  fi
  local ex=${CARGO_TARGET_DIR:-target}/release/examples/csv_read
  head -n "$((lines + 1))" "$csvf" >"$OUT/csv_head.csv"
  declare -A wall ir sums
  for ((r = 1; r <= RUNS; r++)); do
    for m in reader crate; do
      read -r w _ _ < <(time_run "$ex" "$csvf" "$m"); wall[$m]+="$w "
    done
  done
  for m in reader crate; do
    sums[$m]=$("$ex" "$csvf" "$m")
    valgrind --tool=callgrind --callgrind-out-file="$OUT/csv_$m.callgrind" "$ex" "$OUT/csv_head.csv" "$m" >/dev/null 2>"$OUT/csv_$m.valgrind"
    ir[$m]=$(grep -o 'Collected : [0-9]*' "$OUT/csv_$m.valgrind" | awk '{print $3}')
  done
  [ "${sums[reader]}" = "${sums[crate]}" ] || { echo "bench.sh: the two readers disagree: ${sums[reader]} / ${sums[crate]}"; exit 1; }
  med() { echo "$1" | tr ' ' '\n' | grep . | median; }
  {
    echo "## CSV: CsvReader against the csv crate (ByteRecord + the same parsers), W1 bars as CSV"
    echo
    echo "- load average: $(cut -d' ' -f1-3 /proc/loadavg); both read: ${sums[reader]}"
    echo
    echo "| reader | wall s, $W1_RECORDS lines (runs) | lines/s | instructions a line (callgrind, $lines lines, whole program) |"
    echo "|---|---|---|---|"
    for m in reader crate; do
      local w; w=$(med "${wall[$m]}")
      awk -v n="$m" -v w="$w" -v runs="${wall[$m]% }" -v N="$W1_RECORDS" -v ir="${ir[$m]}" -v L="$lines" \
        'BEGIN {printf "| %s | %.2f (%s) | %.0f | %.0f |\n", (n == "reader" ? "tickflow CsvReader" : "csv crate ByteRecord + tickflow parsers"), w, runs, N/w, ir/L}'
    done
    echo
  } | tee -a "$results"
}

bench_micro() {
  local log; log=$(mktemp)
  echo "== criterion: cargo bench --bench decode --bench hot ${CRITERION_ARGS:-}"
  # shellcheck disable=SC2086 # CRITERION_ARGS is a list of options
  cargo bench --quiet --bench decode --bench hot -- ${CRITERION_ARGS:-} 2>&1 | tee "$log" >/dev/null
  {
    echo "## criterion benches (cargo bench --bench decode --bench hot)"
    echo
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "| benchmark | time per iteration | throughput | change |"
    echo "|---|---|---|---|"
    awk '
      function flush() { if (name != "") printf "| %s | %s | %s | %s |\n", name, t, (thr == "" ? "—" : thr), (chg == "" ? "—" : chg); name = ""; t = ""; thr = ""; chg = "" }
      /time:[ ]+\[/ {
        flush()
        line = $0; sub(/[ ]+time:.*/, "", line); gsub(/^[ ]+|[ ]+$/, "", line)
        if (line == "") line = pending
        name = line
        match($0, /\[[^]]*\]/); split(substr($0, RSTART + 1, RLENGTH - 2), a, " "); t = a[3] " " a[4]
        next
      }
      /thrpt:[ ]+\[/ && name != "" { match($0, /\[[^]]*\]/); split(substr($0, RSTART + 1, RLENGTH - 2), a, " "); thr = a[3] " " a[4]; next }
      /change:/ && /time:/ { next }
      /Performance has (regressed|improved)|No change in performance|Change within noise/ && name != "" { chg = $0; gsub(/^[ ]+|[.]$/, "", chg); next }
      /^[A-Za-z0-9_\/ -]+$/ { pending = $0; gsub(/^[ ]+|[ ]+$/, "", pending) }
      END { flush() }
    ' "$log"
    echo
  } | tee -a "$results"
  rm -f "$log"
}

case "$what" in
  micro) bench_micro ;;
  csv) bench_csv ;;
  w1) bench_w1 ;;
  w2) bench_w2 ;;
  w2-symbols) bench_w2_symbols ;;
  w2-callgrind) bench_w2_callgrind ;;
  w1-callgrind) bench_w1_callgrind ;;
  kafka) bench_kafka ;;
  checkpoint) bench_checkpoint ;;
  soak) bench_soak ;;
  questdb) bench_questdb ;;
  all) bench_w1; bench_kafka; bench_soak ;;
  *) echo "usage: scripts/bench.sh [w1|w1-callgrind|w2|w2-symbols|w2-callgrind|kafka|soak|questdb|checkpoint|micro|all]" >&2; exit 2 ;;
esac
echo "results: $results"
