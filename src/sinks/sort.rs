//! `tickflow replay --sorted`: orders a finished result file by event time, then symbol.
//!
//! Without it a replay with several workers writes each worker's rows in turn (each worker
//! holds its own symbols, in event-time order); sorted, the file is the same whatever the
//! number of workers, so runs can be diffed. A pass over the finished file, after the run:
//! it holds the file in memory, and never touches the dataflow's per-record path.

use std::io;
use std::path::Path;

use crate::config::FileFormat;
use crate::decode::timestamp::{is_json_number, parse_rfc3339};

/// A row's sort key: its `ts` (numbers compare as numbers, RFC 3339 text as the instant it
/// names; one file has one form), then its symbol.
fn ts_key(ts: &str) -> f64 {
    let ts = ts.trim().trim_matches('"');
    if is_json_number(ts.as_bytes()) {
        ts.parse().unwrap_or(f64::NAN)
    } else {
        parse_rfc3339(ts).map_or(f64::NAN, |ms| ms as f64)
    }
}

/// Sorts the rows of `path` (CSV with a `symbol,ts,...` header, or NDJSON objects with
/// `symbol` and `ts`) by `(ts, symbol)`, stably, and rewrites it in place.
pub fn sort_rows(path: &Path) -> io::Result<()> {
    let format = FileFormat::from_path(path)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "unknown extension; expected .csv or .ndjson"))?;
    let text = std::fs::read_to_string(path)?;
    let mut lines = text.lines();
    let header = match format {
        FileFormat::Csv => lines.next(),
        FileFormat::Ndjson => None,
    };
    let mut rows: Vec<(f64, String, &str)> = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (symbol, ts) = match format {
            FileFormat::Csv => {
                // Symbols are `[A-Za-z0-9._:-]`: the first two fields are never quoted.
                let mut f = line.splitn(3, ',');
                (f.next().unwrap_or("").to_string(), ts_key(f.next().unwrap_or("")))
            }
            FileFormat::Ndjson => {
                let v: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not a JSON row: {e}")))?;
                let ts = match &v["ts"] {
                    serde_json::Value::String(s) => ts_key(s),
                    other => ts_key(&other.to_string()),
                };
                (v["symbol"].as_str().unwrap_or("").to_string(), ts)
            }
        };
        rows.push((ts, symbol, line));
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let mut out = String::with_capacity(text.len());
    for line in header.into_iter().chain(rows.iter().map(|r| r.2)) {
        out.push_str(line);
        out.push('\n');
    }
    let tmp = path.with_extension("sorting");
    std::fs::write(&tmp, out)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_sort_by_time_then_symbol_and_keep_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.csv");
        std::fs::write(&p, "symbol,ts,close\nB,2,1\nB,10,2\nA,10,3\nA,1,4\n").unwrap();
        sort_rows(&p).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "symbol,ts,close\nA,1,4\nB,2,1\nA,10,3\nB,10,2\n");
    }

    #[test]
    fn ndjson_rows_sort_by_rfc3339_time() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.ndjson");
        std::fs::write(
            &p,
            "{\"symbol\":\"B\",\"ts\":\"1900-01-02T00:00:00.000Z\"}\n{\"symbol\":\"A\",\"ts\":\"1899-12-31T00:00:00.000Z\"}\n",
        )
        .unwrap();
        sort_rows(&p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("{\"symbol\":\"A\""), "{text}");
    }
}
