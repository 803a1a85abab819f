#!/usr/bin/env bash
# check.sh LOOP_DIR REPLAY_OUTPUT: tickflow replay's results equal the no-engine loop's, row
# for row, as exact text (both format with the same RowFormat). Workers interleave rows and
# the loop closes candles in another order, so each table's rows are compared sorted (bytewise);
# CSV headers must be identical. Late bars and dead letters must be empty on both sides (the
# input is clean and time-ordered). Exit status 1 on any difference.
#
#   LOOP_DIR       `tickflow-bench pipeline INPUT LOOP_DIR CONFIG`'s directory (…-w0 files)
#   REPLAY_OUTPUT  `tickflow replay --output REPLAY_OUTPUT`: the bars file; the other tables
#                  in REPLAY_OUTPUT.d/ (one file per worker)
set -euo pipefail
export LC_ALL=C
[ $# -eq 2 ] || { echo "usage: check.sh LOOP_DIR REPLAY_OUTPUT" >&2; exit 2; }
loop=$1 out=$2 dir="$2.d" ext=${2##*.}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
# body FILE...: every file's rows without its CSV header, sorted.
body() {
  for f; do if [ "$ext" = csv ]; then tail -n +2 "$f"; else cat "$f"; fi; done | sort -S 20% -T "$tmp"
}
report=""
for kind in bars candles signal_changes; do
  want="$loop/$kind-w0.$ext"
  if [ "$kind" = bars ]; then got=("$out"); else got=("$dir/$kind"-w*."$ext"); fi
  [ -f "$want" ] || { echo "check: $want missing" >&2; exit 1; }
  [ -f "${got[0]}" ] || { echo "check: ${got[0]} missing" >&2; exit 1; }
  if [ "$ext" = csv ]; then
    for g in "${got[@]}"; do
      if [ "$(head -n1 "$g")" != "$(head -n1 "$want")" ]; then
        echo "check: $kind: header of $g differs from the loop's" >&2; fail=1
      fi
    done
  fi
  body "$want" >"$tmp/want"
  body "${got[@]}" >"$tmp/got"
  n=$(wc -l <"$tmp/want"); m=$(wc -l <"$tmp/got")
  if cmp -s "$tmp/want" "$tmp/got"; then
    report+="$kind $n rows identical; "
  else
    echo "check: $kind differs: loop $n rows, replay $m rows; first differences (< loop, > replay):" >&2
    diff "$tmp/want" "$tmp/got" | head -n 6 >&2 || true
    fail=1
  fi
done
for kind in late dead_letters; do
  for f in "$loop/$kind"-w*.ndjson "$dir/$kind"-w*.ndjson; do
    if [ -s "$f" ]; then echo "check: $f is not empty ($(wc -l <"$f") rows)" >&2; fail=1; fi
  done
done
[ $fail = 0 ] || { echo "check: FAILED" >&2; exit 1; }
echo "check: ${report%; } (no late bars, no dead letters)"
