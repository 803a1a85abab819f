//! Decode throughput on W1-shaped input made by the built-in generator: the hand-written
//! scanner against serde_json into a borrowed struct and into a `Value` (baselines), and
//! the CSV reader. Throughput is reported per line (elements) and per byte.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::Deserialize;
use tickflow::decode::json::{parse_f64, parse_ts};
use tickflow::decode::{CsvReader, NdjsonReader, TsUnit, decode_json_line};
use tickflow::sources::generator::{CSV_HEADER, GeneratorConfig, MarketGenerator, write_csv_row, write_w1_line};
use tickflow_operators::{Bar, Symbol, TimeBounds};

const LINES: u64 = 100_000;

fn input() -> (String, String) {
    let cfg = GeneratorConfig { records: Some(LINES), ..GeneratorConfig::default() };
    let mut nd = String::new();
    let mut csv = format!("{CSV_HEADER}\n");
    for bar in MarketGenerator::new(cfg).expect("the W1 config is valid") {
        write_w1_line(&mut nd, &bar);
        nd.push('\n');
        write_csv_row(&mut csv, &bar, TsUnit::Seconds);
        csv.push('\n');
    }
    (nd, csv)
}

/// The W1 line as a serde struct with borrowed strings (the alternative design).
#[derive(Deserialize)]
#[allow(dead_code)]
struct W1<'a> {
    #[serde(borrow)]
    stock_symbol: &'a str,
    timestamp: f64,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
}

fn bench(c: &mut Criterion) {
    let (nd, csv) = input();
    let bounds = TimeBounds::default();
    let mut g = c.benchmark_group("w1_ndjson_lines");
    g.throughput(Throughput::Elements(LINES));
    g.bench_function("decode_json_line", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for (i, line) in nd.lines().enumerate() {
                let bar = decode_json_line(line.as_bytes(), i as u64 + 1, &bounds).expect("generated lines are valid");
                sum += bar.close;
            }
            black_box(sum)
        })
    });
    g.bench_function("ndjson_reader", |b| {
        b.iter(|| {
            let sum: f64 = NdjsonReader::new(nd.as_bytes(), bounds).map(|r| r.map_or(0.0, |b| b.close)).sum();
            black_box(sum)
        })
    });
    g.bench_function("serde_json_borrowed_struct", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for line in nd.lines() {
                let w: W1<'_> = serde_json::from_str(line).expect("generated lines are valid");
                sum += w.close;
            }
            black_box(sum)
        })
    });
    g.bench_function("serde_json_value", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for line in nd.lines() {
                let v: serde_json::Value = serde_json::from_str(line).expect("generated lines are valid");
                sum += v["close"].as_f64().unwrap_or(0.0);
            }
            black_box(sum)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("w1_ndjson_bytes");
    g.throughput(Throughput::Bytes(nd.len() as u64));
    g.bench_function("decode_json_line", |b| {
        b.iter(|| {
            let ok = nd.lines().filter(|l| decode_json_line(l.as_bytes(), 1, &bounds).is_ok()).count();
            black_box(ok)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("w1_csv");
    g.throughput(Throughput::Elements(LINES));
    g.bench_function("csv_reader", |b| {
        b.iter(|| {
            let r = CsvReader::new(csv.as_bytes(), None, bounds).expect("the header is valid");
            let sum: f64 = r.map(|r| r.map_or(0.0, |b| b.close)).sum();
            black_box(sum)
        })
    });
    // The alternative issue 13 asked about: the csv crate's `ByteRecord` reader doing the
    // splitting, with the same field parsers, symbol rule and validation as `CsvReader`.
    g.bench_function("csv_crate_byte_record", |b| {
        b.iter(|| {
            let mut r = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
            let head = r.byte_headers().expect("the header is valid").clone();
            let col = |n: &str| head.iter().position(|h| h.eq_ignore_ascii_case(n.as_bytes())).expect("a column");
            let [sy, ts, open, high, low, close, volume] =
                ["symbol", "ts", "open", "high", "low", "close", "volume"].map(col);
            let mut rec = csv::ByteRecord::new();
            let mut sum = 0.0;
            while r.read_byte_record(&mut rec).expect("generated rows are valid") {
                let text = |i: usize| std::str::from_utf8(&rec[i]).map(str::trim).expect("generated rows are UTF-8");
                let num = |i: usize, name: &str| parse_f64(name, text(i), true).expect("a number");
                let symbol = Symbol::new(text(sy)).expect("a symbol");
                let (t, _) = parse_ts("ts", text(ts), true).expect("a timestamp");
                let bar = Bar::new(
                    symbol,
                    t,
                    num(open, "open"),
                    num(high, "high"),
                    num(low, "low"),
                    num(close, "close"),
                    num(volume, "volume"),
                );
                bar.validate(&bounds).expect("generated bars are valid");
                sum += bar.close;
            }
            black_box(sum)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("generator");
    g.throughput(Throughput::Elements(LINES));
    g.bench_function("fill", |b| {
        b.iter(|| {
            let cfg = GeneratorConfig { records: Some(LINES), ..GeneratorConfig::default() };
            let mut gen_ = MarketGenerator::new(cfg).expect("the W1 config is valid");
            let mut out = Vec::with_capacity(LINES as usize);
            black_box(gen_.fill(&mut out, LINES as usize))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
