//! The hot pieces, one by one: each indicator's update (ns/bar), the whole standard set, the
//! routing step (stable hash + interning), CSV row formatting and ILP row encoding; and an
//! allocation count over the whole per-record path (decode → route → indicators → encode),
//! which must be zero per record once warmed up.
//!
//! `cargo bench --bench hot` (add `-- --quick` for a fast pass).
#![allow(unsafe_code)] // the counting allocator below; nothing else

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tickflow::config::FileFormat;
use tickflow::decode::{TsUnit, decode_json_line};
use tickflow::sinks::file::RowFormat;
use tickflow::sinks::questdb::{RowBatch, Tables};
use tickflow::sources::generator::{GeneratorConfig, MarketGenerator, write_w1_line};
use tickflow_operators::indicators::{
    Atr, Bollinger, Donchian, Ema, Indicator, Macd, Obv, Roc, RollingVwap, Rsi, Sma, Vwap,
};
use tickflow_operators::rows::BarOut;
use tickflow_operators::{Bar, IndicatorSet, SymbolTable, TimeBounds, Values};

/// Counts allocations (not frees) made through the global allocator.
struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: usize = 100_000;

fn bars() -> Vec<Bar> {
    let cfg = GeneratorConfig { symbols: 1, records: Some(N as u64), ..GeneratorConfig::default() };
    MarketGenerator::new(cfg).expect("valid config").collect()
}

fn run<I: Indicator>(mut ind: I, bars: &[Bar]) {
    for b in bars {
        black_box(ind.update(black_box(b)));
    }
}

fn indicators(c: &mut Criterion) {
    let bars = bars();
    let mut g = c.benchmark_group("indicator_update");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("sma_20", |b| b.iter(|| run(Sma::new(20).unwrap(), &bars)));
    g.bench_function("ema_20", |b| b.iter(|| run(Ema::new(20).unwrap(), &bars)));
    g.bench_function("rsi_14", |b| b.iter(|| run(Rsi::new(14).unwrap(), &bars)));
    g.bench_function("macd_12_26_9", |b| b.iter(|| run(Macd::new(12, 26, 9).unwrap(), &bars)));
    g.bench_function("bbands_20_2", |b| b.iter(|| run(Bollinger::new(20, 2.0).unwrap(), &bars)));
    g.bench_function("atr_14", |b| b.iter(|| run(Atr::new(14).unwrap(), &bars)));
    g.bench_function("obv", |b| b.iter(|| run(Obv::default(), &bars)));
    g.bench_function("vwap", |b| b.iter(|| run(Vwap::default(), &bars)));
    g.bench_function("vwap_20_rolling", |b| b.iter(|| run(RollingVwap::new(20).unwrap(), &bars)));
    g.bench_function("donchian_20", |b| b.iter(|| run(Donchian::new(20).unwrap(), &bars)));
    g.bench_function("roc_10", |b| b.iter(|| run(Roc::new(10).unwrap(), &bars)));
    let set = IndicatorSet::standard();
    g.bench_function("standard_set_and_rules", |b| {
        b.iter(|| {
            let mut st = set.new_state();
            let mut row = Values::default();
            for bar in &bars {
                black_box(set.update(&mut st, bar, &mut row));
            }
        })
    });
    g.finish();
}

fn route_encode(c: &mut Criterion) {
    let cfg = GeneratorConfig { symbols: 1000, records: Some(N as u64), ..GeneratorConfig::default() };
    let bars: Vec<Bar> = MarketGenerator::new(cfg).expect("valid config").collect();
    let set = IndicatorSet::standard();
    let mut st = set.new_state();
    let mut row = Values::default();
    let outs: Vec<BarOut> = bars
        .iter()
        .map(|b| {
            let decision = set.update(&mut st, b, &mut row);
            BarOut { bar: *b, values: row, decision, changed_from: None }
        })
        .collect();
    let mut g = c.benchmark_group("per_record");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("route_hash_and_intern", |b| {
        let mut table = SymbolTable::default();
        b.iter(|| {
            for bar in &bars {
                black_box(bar.symbol.route_hash() % 4);
                black_box(table.intern(bar.symbol));
            }
        })
    });
    g.bench_function("csv_row_standard_set", |b| {
        let mut fmt = RowFormat::new(FileFormat::Csv, &set, TsUnit::Seconds);
        b.iter(|| {
            for o in &outs {
                black_box(fmt.bar(o).len());
            }
        })
    });
    g.bench_function("ilp_row_standard_set", |b| {
        let tables = Tables::new(&set, "").expect("valid tables");
        let mut batch = RowBatch::new();
        b.iter(|| {
            batch.clear();
            for o in &outs {
                tables.bar(&mut batch, o).expect("encodable");
            }
            black_box(batch.rows());
        })
    });
    g.finish();
}

/// Allocations per record on the whole path, after a warm-up that sizes every buffer.
fn allocations(_: &mut Criterion) {
    let cfg = GeneratorConfig { symbols: 1000, records: Some(2 * N as u64), ..GeneratorConfig::default() };
    let mut lines = Vec::new();
    for bar in MarketGenerator::new(cfg).expect("valid config") {
        let mut s = String::new();
        write_w1_line(&mut s, &bar);
        lines.push(s);
    }
    let set = IndicatorSet::standard();
    let tables = Tables::new(&set, "").expect("valid tables");
    let mut table = SymbolTable::default();
    let mut states = Vec::new();
    let mut row = Values::default();
    let mut fmt = RowFormat::new(FileFormat::Csv, &set, TsUnit::Seconds);
    let mut batch = RowBatch::new();
    let bounds = TimeBounds::default();
    let mut pass = |lines: &[String], batch: &mut RowBatch| {
        batch.clear();
        for (i, l) in lines.iter().enumerate() {
            let bar = decode_json_line(l.as_bytes(), i as u64, &bounds).expect("valid line");
            black_box(bar.symbol.route_hash());
            let id = table.intern(bar.symbol) as usize;
            if id == states.len() {
                states.push(set.new_state());
            }
            let decision = set.update(&mut states[id], &bar, &mut row);
            let out = BarOut { bar, values: row, decision, changed_from: None };
            black_box(fmt.bar(&out).len());
            tables.bar(batch, &out).expect("encodable");
        }
    };
    pass(&lines[..N], &mut batch); // warm-up: symbols interned, buffers grown
    let before = ALLOCS.load(Ordering::Relaxed);
    pass(&lines[N..], &mut batch);
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    println!(
        "allocations on the per-record path (decode → route → indicators → CSV + ILP encode), \
         {N} records after warm-up: {allocs} ({:.4} per record)",
        allocs as f64 / N as f64
    );
}

criterion_group!(benches, indicators, route_encode, allocations);
criterion_main!(benches);
