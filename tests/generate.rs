//! `tickflow generate` end to end: the W1 file shape, CSV, and through the gateway and
//! straight to Kafka (Tansu, started here), read back exactly.

mod gateway_support;

use std::collections::BTreeMap;
use std::time::Duration;

use gateway_support::*;
use tickflow::decode::{CsvReader, decode_json_line};
use tickflow::generate::{Format, GenerateArgs, ProgressMode, run_plan};
use tickflow::sources::generator::{GeneratorConfig, MarketGenerator};
use tickflow_operators::{Bar, TimeBounds};

fn args(to: &str, symbols: usize, count: u64) -> GenerateArgs {
    // A fixed start: live targets would otherwise start at the wall clock.
    GenerateArgs {
        to: to.into(),
        symbols,
        count: Some(count),
        start_ms: Some(1_700_000_000_000),
        progress: ProgressMode::None,
        ..GenerateArgs::default()
    }
}

fn expected(symbols: usize, count: u64) -> Vec<Bar> {
    MarketGenerator::new(GeneratorConfig { symbols, records: Some(count), ..GeneratorConfig::default() })
        .unwrap()
        .collect()
}

fn by_symbol(bars: impl IntoIterator<Item = Bar>) -> BTreeMap<String, Vec<Bar>> {
    let mut m: BTreeMap<String, Vec<Bar>> = BTreeMap::new();
    for b in bars {
        m.entry(b.symbol.as_str().to_string()).or_default().push(b);
    }
    m
}

#[test]
fn file_output_is_exactly_the_w1_shape_and_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w1.ndjson");
    let s = run_plan(&args(path.to_str().unwrap(), 50, 5000).plan().unwrap()).unwrap();
    assert_eq!((s.generated, s.confirmed), (5000, 5000));
    let mut want = Vec::new();
    MarketGenerator::new(GeneratorConfig { symbols: 50, records: Some(5000), ..GeneratorConfig::default() })
        .unwrap()
        .write_ndjson(&mut want, usize::MAX)
        .unwrap();
    let got = std::fs::read(&path).unwrap();
    assert!(got == want, "file differs from MarketGenerator::write_ndjson");
    let first = std::str::from_utf8(&got).unwrap().lines().next().unwrap();
    assert!(first.starts_with("{\"stock_symbol\": \"SYM0000\", \"timestamp\": 1700000000.0, \"open\": "), "{first}");

    // Same seed, same bytes; another seed, other bytes.
    let again = dir.path().join("again.ndjson");
    run_plan(&args(again.to_str().unwrap(), 50, 5000).plan().unwrap()).unwrap();
    assert!(std::fs::read(&again).unwrap() == got);
    let other = dir.path().join("other.ndjson");
    run_plan(&GenerateArgs { seed: 1, ..args(other.to_str().unwrap(), 50, 5000) }.plan().unwrap()).unwrap();
    assert!(std::fs::read(&other).unwrap() != got);
}

#[test]
fn csv_and_canonical_files_read_back_to_the_same_bars() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("b.csv");
    run_plan(&GenerateArgs { format: Format::Csv, ..args(csv.to_str().unwrap(), 7, 300) }.plan().unwrap()).unwrap();
    let text = std::fs::read(&csv).unwrap();
    let bars: Vec<Bar> = CsvReader::new(&text[..], None, TimeBounds::default()).unwrap().map(Result::unwrap).collect();
    assert_eq!(bars, expected(7, 300));

    let canon = dir.path().join("b.ndjson");
    run_plan(&GenerateArgs { format: Format::Canonical, ..args(canon.to_str().unwrap(), 7, 300) }.plan().unwrap())
        .unwrap();
    let text = std::fs::read_to_string(&canon).unwrap();
    let bars: Vec<Bar> =
        text.lines().map(|l| decode_json_line(l.as_bytes(), 1, &TimeBounds::default()).unwrap()).collect();
    assert_eq!(bars, expected(7, 300));
}

#[test]
fn through_the_gateway_and_straight_to_kafka_every_bar_arrives_once() {
    let stack = Stack::start(3, |c| c.tokens = vec!["generate-token-0123456789".into()]);
    let url = format!("http://{}", stack.addr());
    let plan = GenerateArgs {
        batch: 250,
        concurrency: 3,
        token: Some("generate-token-0123456789".into()),
        ..args(&url, 30, 3000)
    }
    .plan()
    .unwrap();
    let s = run_plan(&plan).unwrap();
    assert_eq!(s.confirmed, 3000);
    let got = read_topic(&stack.tansu.brokers(), "bars", 3, 3000, Duration::from_secs(60));
    let bars = got.iter().map(|r| decode_json_line(r.payload.as_bytes(), 1, &TimeBounds::default()).unwrap());
    // Concurrent requests may interleave symbols' batches, so compare as sets per symbol.
    let mut got_by = by_symbol(bars);
    for v in got_by.values_mut() {
        v.sort_by_key(|b| b.ts);
    }
    assert_eq!(got_by, by_symbol(expected(30, 3000)));

    // Without a token the gateway refuses, and generate says so.
    let err = run_plan(&args(&url, 3, 10).plan().unwrap()).unwrap_err().to_string();
    assert!(err.contains("HTTP 401"), "{err}");

    // Straight to Kafka: another topic, canonical records keyed by symbol, in order.
    stack.tansu.create_topic("direct", 2);
    let s = run_plan(&args(&format!("kafka://{}/direct", stack.tansu.brokers()), 20, 2000).plan().unwrap()).unwrap();
    assert_eq!(s.confirmed, 2000);
    let got = read_topic(&stack.tansu.brokers(), "direct", 2, 2000, Duration::from_secs(60));
    for r in &got {
        assert_eq!(r.partition, murmur2_partition(r.key.as_deref().unwrap().as_bytes(), 2));
    }
    let bars = got.iter().map(|r| decode_json_line(r.payload.as_bytes(), 1, &TimeBounds::default()).unwrap());
    assert_eq!(by_symbol(bars), by_symbol(expected(20, 2000)));
}
