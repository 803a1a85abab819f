#!/usr/bin/env python3
"""Instruction counts of a callgrind profile, by function and by area of the code.

    by_function.py ANNOTATE.txt [TOP]

ANNOTATE.txt is `callgrind_annotate --inclusive=no --threshold=100 callgrind.out` (exclusive
instructions per file:function, where "file" is the source file of the inlined line). Prints
two Markdown tables: the TOP (default 20) machine functions with their instructions summed
over every file inlined into them, and the instructions by area, classified by source file
(so indicator code inlined into an operator's closure counts as indicator code; inlined
standard-library code counts to the function it was inlined into).
"""
import re
import sys
from collections import defaultdict

LINE = re.compile(r"^\s*([0-9,]+) \(\s*[0-9.]+%\)\s+(.*?)(?: \[[^\]]*\])?$")

# (area, pattern on "file:function"), first match wins.
AREAS = [
    ("float formatting (ryu, zmij, sinks/float.rs)", r"/ryu-|/zmij-|src/sinks/float\.rs:"),
    ("integer formatting (itoa)", r"/itoa-"),
    ("row formatting (sinks/file.rs RowFormat, FileSink)", r"src/sinks/file\.rs:|src/sinks/worker\.rs:"),
    ("NDJSON reading and decoding (decode/, sources/)", r"src/decode/|src/sources/|:std::io::BufRead|memchr\.rs:|core::str::converts"),
    ("indicators, signals, candle arithmetic (operators/ set, indicators, signal, rows)",
     r"operators/src/(set|indicators/|signal|rows|bar)"),
    ("candle window bookkeeping (operators/ dataflow/candles.rs)", r"operators/src/dataflow/candles\.rs:"),
    ("engine: timely, exchange, reorder, enrich operator, driver",
     r"/timely|operators/src/dataflow/(reorder|enrich|mod)\.rs:|src/sources/driver|src/cluster/|columnar|crossbeam"),
    ("memcpy/memmove/memset (libc)", r"mem(cpy|move|set)"),
    ("allocator (malloc/free)", r"malloc|free|_int_|realloc|alloc::alloc|cfree"),
    ("symbol interning, hashing", r"operators/src/symbol\.rs:|hash"),
]

# For code of the standard library (/rustc/...) inlined into a function, the function decides.
FUNC_AREAS = [
    ("float formatting (ryu, zmij, sinks/float.rs)", r"^ryu::|^zmij::|^tickflow::sinks::float::"),
    ("integer formatting (itoa)", r"^itoa::"),
    ("row formatting (sinks/file.rs RowFormat, FileSink)", r"^tickflow::sinks::(file|worker)|TsUnit::format_into"),
    ("NDJSON reading and decoding (decode/, sources/)",
     r"^(<)?tickflow::(decode|sources::file|sources::local)|BufRead|read_until|from_utf8|Symbol::new"),
    ("indicators, signals, candle arithmetic (operators/ set, indicators, signal, rows)",
     r"tickflow_operators::(indicators|set|signal|rows|bar)|candles::apply"),
    ("engine: timely, exchange, reorder, enrich operator, driver",
     r"timely|tickflow_operators::dataflow::(reorder|enrich)|tickflow::(sources::driver|cluster)|crossbeam|columnar"),
    ("candle window bookkeeping (operators/ dataflow/candles.rs)", r"tickflow_operators::dataflow::candles"),
    ("BTreeMap/BTreeSet (in replay: the candle operator's to_close/to_final sets)", r"btree"),
    ("engine: timely, exchange, reorder, enrich operator, driver", r"slice::sort"),
    ("std formatting (core::fmt, format!)", r"core::fmt|alloc::fmt|fmt::Write"),
    ("allocator (malloc/free)", r"malloc|free|_int_|realloc|alloc::alloc|RawVec|reserve"),
    ("the loop's own code (tickflow-bench main)", r"^tickflow_bench::"),
    ("symbol interning, hashing", r"SymbolTable|Symbol as core::hash"),
    ("indicators, signals, candle arithmetic (operators/ set, indicators, signal, rows)", r"^fma$|compiler_builtins.*fma"),
]


def area_of(where: str, func: str) -> str:
    if not where.startswith("/rustc/") and not where.startswith("???"):
        for area, pat in AREAS:
            if re.search(pat, where):
                return area
    for area, pat in FUNC_AREAS:
        if re.search(pat, func):
            return area
    return "other"


def main() -> int:
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    total = 0
    by_fn: dict[str, int] = defaultdict(int)
    by_area: dict[str, int] = defaultdict(int)
    listing = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if "PROGRAM TOTALS" in line:
                total = int(line.split()[0].replace(",", ""))
                continue
            if "file:function" in line:
                listing = True
                continue
            if listing and not line.strip() and by_fn:
                break  # the end of the listing (auto-annotated sources may follow)
            m = LINE.match(line) if listing else None
            if not m:
                continue
            n = int(m.group(1).replace(",", ""))
            where = m.group(2)
            file, _, func = where.partition(":")
            by_fn[func or where] += n
            by_area[area_of(where, func or where)] += n
    listed = sum(by_fn.values())
    by_area["below the threshold (not listed)"] += total - listed
    print(f"Total: {total:,} instructions.\n")
    print("| function (exclusive, inlined code included) | instructions | % |")
    print("|---|---|---|")
    for func, n in sorted(by_fn.items(), key=lambda kv: -kv[1])[:top]:
        name = func if len(func) <= 110 else func[:107] + "..."
        print(f"| `{name}` | {n:,} | {100 * n / total:.1f} |")
    print()
    print("| area (by source file) | instructions | % |")
    print("|---|---|---|")
    for area, n in sorted(by_area.items(), key=lambda kv: -kv[1]):
        print(f"| {area} | {n:,} | {100 * n / total:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
