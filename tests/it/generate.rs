//! `tickflow generate` to files: the W1 file shape, CSV and canonical NDJSON, read back
//! exactly (through the gateway and straight to Kafka: `tests/broker/generate.rs`).

use crate::support::generate::{args, expected};
use tickflow::decode::{CsvReader, decode_json_line};
use tickflow::generate::{Format, GenerateArgs, run_plan};
use tickflow::sources::generator::{GeneratorConfig, MarketGenerator};
use tickflow_operators::{Bar, TimeBounds};

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
