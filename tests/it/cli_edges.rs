//! The edges a new user hits first, through the real binary: usage errors (exit code 2, one
//! line, nothing created), error text printed once, logs without colour off a terminal and
//! as JSON, the output `ts` unit, dead-letter locations, replay ordering, old market history.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tickflow() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tickflow"));
    c.env_remove("NO_COLOR").env_remove("RUST_LOG");
    c
}

fn run(c: &mut Command) -> (i32, String, String) {
    let Output { status, stdout, stderr } = c.output().unwrap();
    (status.code().unwrap_or(-1), String::from_utf8(stdout).unwrap(), String::from_utf8(stderr).unwrap())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `symbol,ts,...` CSV rows of `n` daily bars from `start_s` (Unix seconds), a gentle walk.
fn daily_csv(symbol: &str, start_s: i64, n: usize) -> String {
    let mut s = String::from("symbol,ts,open,high,low,close,volume\n");
    let mut p = 100.0;
    for i in 0..n {
        let c = p * (1.0 + 0.01 * ((i * 7 % 11) as f64 - 5.0) / 5.0);
        let (h, l) = (f64::max(p, c) * 1.01, f64::min(p, c) * 0.99);
        s.push_str(&format!("{symbol},{},{p:.4},{h:.4},{l:.4},{c:.4},1000\n", start_s + i as i64 * 86_400));
        p = c;
    }
    s
}

#[test]
fn replay_of_a_missing_input_is_one_line_exit_2_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.csv");
    let (code, _, err) = run(tickflow().args(["replay", "--input", "missing.ndjson", "--output"]).arg(&out));
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("tickflow: --input missing.ndjson: No such file or directory"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no x.csv, no x.csv.d/");
}

#[test]
fn replay_refuses_an_output_extension_it_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", &daily_csv("AAPL", 1_700_000_000, 3));
    let out = dir.path().join("out.parquet");
    let (code, _, err) = run(tickflow().arg("replay").arg("--input").arg(&input).arg("--output").arg(&out));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("out.parquet: unknown extension; expected .csv or .ndjson"), "{err}");
    assert!(!out.exists() && !dir.path().join("out.parquet.d").exists());
}

#[test]
fn a_bind_error_says_the_os_error_once() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, err) =
        run(tickflow().args(["gateway", "--listen", &addr, "--brokers", "127.0.0.1:1"]).env("NO_COLOR", "1"));
    assert_ne!(code, 0, "{err}");
    let os = std::io::Error::from(std::io::ErrorKind::AddrInUse).to_string();
    let last = err.lines().last().unwrap_or("");
    assert!(last.contains(&format!("cannot bind {addr}")), "{err}");
    assert_eq!(last.matches("os error 98").count(), 1, "doubled: {last} ({os})");
}

#[test]
fn logs_have_no_colour_off_a_terminal_and_can_be_json() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", &daily_csv("AAPL", 1_700_000_000, 30));
    let out = dir.path().join("out.csv");
    let replay = |extra: &[&str]| {
        let mut c = tickflow();
        c.args(extra).arg("replay").arg("--input").arg(&input).arg("--output").arg(&out).env("RUST_LOG", "debug");
        run(&mut c)
    };
    let (code, _, err) = replay(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.lines().count() > 1, "debug logs expected: {err}");
    assert!(!err.contains('\x1b'), "ANSI escapes in a log file: {err:?}");
    let (code, _, err) = replay(&["--log-format", "json"]);
    assert_eq!(code, 0, "{err}");
    let logs: Vec<&str> = err.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!logs.is_empty(), "{err}");
    for l in logs {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{l}");
    }
}

#[test]
fn the_ts_unit_is_the_inputs_even_when_the_first_rows_are_invalid_or_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    // Seconds; the first two rows break the bar rules (high below close), so they are
    // dead-lettered: the results must still be in seconds.
    let mut text = String::from("symbol,ts,open,high,low,close,volume\n");
    text.push_str("AAPL,1700000000,10,9,8,10.5,1\nAAPL,1700000060,10,9,8,10.5,1\n");
    text.push_str("AAPL,1700000120,10,11,9,10.5,1\nAAPL,1700000180,10.5,11,10,10.8,1\n");
    let input = write(dir.path(), "in.csv", &text);
    let rows = |extra: &[&str]| -> Vec<String> {
        let out = dir.path().join("out.csv");
        let (code, _, err) =
            run(tickflow().arg("replay").arg("--input").arg(&input).arg("--output").arg(&out).args(extra));
        assert_eq!(code, 0, "{err}");
        let text = std::fs::read_to_string(&out).unwrap();
        text.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().to_owned()).collect()
    };
    assert_eq!(rows(&[]), ["1700000120", "1700000180"]);
    assert_eq!(rows(&["--ts-unit", "ms"]), ["1700000120000", "1700000180000"]);
    assert_eq!(rows(&["--ts-unit", "rfc3339"]), ["2023-11-14T22:15:20.000Z", "2023-11-14T22:16:20.000Z"]);
}

#[test]
fn an_ndjson_dead_letter_names_its_byte_offset() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"symbol":"A","ts":1700000000,"open":1,"high":2,"low":1,"close":2,"volume":1}"#;
    let bad = r#"{"symbol":"A","ts":1700000060,"open":1,"high":0.5,"low":1,"close":2,"volume":1}"#;
    let input = write(dir.path(), "in.ndjson", &format!("{good}\n{bad}\n"));
    let out = dir.path().join("out.csv");
    let (code, _, err) = run(tickflow().arg("replay").arg("--input").arg(&input).arg("--output").arg(&out));
    assert_eq!(code, 0, "{err}");
    let dead = std::fs::read_to_string(dir.path().join("out.csv.d/dead_letters-w0.ndjson")).unwrap();
    let offset = good.len() + 1;
    assert!(dead.contains(&format!("byte offset {offset}: high")), "{dead}");
    assert!(!dead.contains("record "), "{dead}");
}

#[test]
fn replay_sorted_orders_two_workers_rows_by_time_then_symbol() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = daily_csv("AAA", 1_700_000_000, 40);
    for sym in ["BBB", "CCC", "DDD"] {
        text.push_str(daily_csv(sym, 1_700_000_000, 40).split_once('\n').unwrap().1);
    }
    let input = write(dir.path(), "in.csv", &text);
    let out = dir.path().join("out.csv");
    let (code, _, err) = run(tickflow().arg("replay").arg("--input").arg(&input).arg("--output").arg(&out).args([
        "--workers",
        "2",
        "--sorted",
    ]));
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    let keys: Vec<(i64, String)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let mut f = l.split(',');
            let sym = f.next().unwrap().to_owned();
            (f.next().unwrap().parse().unwrap(), sym)
        })
        .collect();
    assert_eq!(keys.len(), 160);
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[test]
fn daily_history_from_1900_is_accepted_by_default_with_its_candles() {
    let dir = tempfile::tempdir().unwrap();
    // 1900-01-01 .. : before the Unix epoch, as real index history is.
    let input = write(dir.path(), "dji.csv", &daily_csv("DJI", -2_208_988_800, 500));
    let out = dir.path().join("out.csv");
    let (code, _, err) = run(tickflow().arg("replay").arg("--input").arg(&input).arg("--output").arg(&out));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("bars in 500, bars out 500, candles 1500, signal changes"), "{err}");
    assert!(err.contains("late 0, invalid 0"), "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().nth(1).unwrap().split(',').nth(1), Some("-2208988800"));
}

#[test]
fn a_config_type_error_is_listed_with_the_other_problems() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "bad.toml", "[cluster]\nworkers = 0\n[source.generator]\nrate = -5\n");
    let (code, _, err) = run(tickflow().arg("check").arg("--config").arg(&cfg));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("2 problem(s) in the configuration"), "{err}");
    assert!(
        err.contains("source.generator.rate: invalid value: integer `-5`, expected u64; expected a whole number"),
        "{err}"
    );
    assert!(err.contains("cluster.workers: 0 is outside 1..=256"), "{err}");
}

#[test]
fn replay_workers_share_one_output_file_with_the_chosen_columns() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for k in 0..50 {
        for sym in ["AAA", "BBB", "CCC", "DDD"] {
            let ts = 1_700_000_000 + 60 * k;
            let c = 100.0 + k as f64;
            text.push_str(&format!(
                "{{\"stock_symbol\": \"{sym}\", \"timestamp\": {ts}.0, \"open\": {c}, \"high\": {c}, \"low\": {c}, \
                 \"close\": {c}, \"volume\": 1}}\n"
            ));
        }
    }
    let input = write(dir.path(), "in.ndjson", &text);
    let cfg = write(
        dir.path(),
        "w1.toml",
        "[indicators]\nlist = [\"sma:20\"]\n[windows]\ntimeframes = []\n[sinks.file]\ncolumns = [\"symbol\", \"ts\", \"close\", \"sma_20\"]\n",
    );
    let out = dir.path().join("out.csv");
    let (code, _, err) = run(tickflow()
        .arg("replay")
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&out)
        .args(["--workers", "2", "--config"])
        .arg(&cfg));
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("symbol,ts,close,sma_20"));
    let mut rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 200);
    rows.sort();
    assert_eq!(rows[0], "AAA,1700000000,100,");
    assert_eq!(rows[19], "AAA,1700001140,119,109.5");
    // Nothing is left to concatenate, and nothing half-written is left behind.
    let parts: Vec<String> = std::fs::read_dir(dir.path().join("out.csv.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("bars"))
        .collect();
    assert!(parts.is_empty(), "{parts:?}");
    assert!(!dir.path().join(".out.csv.inprogress").exists());
}
