//! The query API on a real 2-process cluster (2 × 2 workers): a file of bars is processed to
//! the end, the processes stay up (`serve.linger`), and every answer — asked of either
//! process, whichever owns the symbol — equals the same computation over the rows the file
//! sinks wrote: latest state, retained bars and candles (with eviction), summaries over a
//! period (GET and the seed API's POST), aggregates, and the 400/404 answers.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::cluster::{free_port_pair, process_list, spawn_cluster, wait_ok};
use serde_json::{Value, json};
use tickflow_operators::Symbol;

const T0: i64 = 1_700_000_000_000;
const SYMBOLS: usize = 6;
const BARS: usize = 400;
const BAR_RETENTION: usize = 300;
const CANDLE_RETENTION: usize = 4;

/// One CSV row: column name → cell.
type Row = BTreeMap<String, String>;

fn write_input(path: &Path) {
    let mut text = String::new();
    let mut seed: u64 = 7;
    let mut next = || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut px = [100.0f64; SYMBOLS];
    for i in 0..BARS {
        for (s, p) in px.iter_mut().enumerate() {
            let open = *p;
            *p = (*p * (1.0 + (next() - 0.5) * 0.02)).max(1.0);
            let close = (*p * 1e4).round() / 1e4;
            let (hi, lo) = (open.max(close) + next(), open.min(close) - next() * 0.5);
            let vol = (next() * 1000.0).round();
            let ts = T0 + i as i64 * 1000;
            text.push_str(&format!(
                "{{\"symbol\":\"SYM{s:04}\",\"timestamp\":{ts},\"open\":{open},\"high\":{hi},\"low\":{lo},\"close\":{close},\"volume\":{vol}}}\n"
            ));
            *p = close;
        }
    }
    std::fs::write(path, text).unwrap();
}

/// Every row of the `kind` CSV parts (`bars`, `candles`) by symbol, in event-time order.
fn read_rows(dir: &Path, kind: &str) -> BTreeMap<String, Vec<Row>> {
    let mut out: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with(&format!("{kind}-w")) || !name.ends_with(".csv") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        let Some(header) = lines.next() else { continue };
        let cols: Vec<&str> = header.split(',').collect();
        for line in lines {
            let row: Row = cols.iter().zip(line.split(',')).map(|(c, v)| (c.to_string(), v.to_string())).collect();
            out.entry(row["symbol"].clone()).or_default().push(row);
        }
    }
    for rows in out.values_mut() {
        rows.sort_by_key(|r| r["ts"].parse::<i64>().unwrap());
    }
    out
}

fn cell(r: &Row, c: &str) -> Option<f64> {
    let v = &r[c];
    (!v.is_empty()).then(|| v.parse().unwrap())
}

/// The API's JSON row must hold exactly the file row's values.
fn assert_row(api: &Value, file: &Row, skip: &[&str], what: &str) {
    for (col, v) in file {
        if skip.contains(&col.as_str()) {
            continue;
        }
        match col.as_str() {
            "symbol" | "timeframe" => {}
            "signal" => assert_eq!(api["signal"], json!(v), "{what}: signal"),
            "ts" | "count" | "revision" => assert_eq!(api[col].as_i64(), Some(v.parse().unwrap()), "{what}: {col}"),
            _ => assert_eq!(api[col].as_f64(), cell(file, col), "{what}: column {col} (file {v:?}) in {api}"),
        }
    }
}

/// avg / highest / lowest of one column over rows, and the close's largest moves.
fn summary_of(rows: &[Row], cols: &[String]) -> (BTreeMap<String, Value>, Value, Value) {
    let mut fields = BTreeMap::new();
    for c in cols {
        let vals: Vec<f64> = rows.iter().filter_map(|r| cell(r, c)).collect();
        let v = if vals.is_empty() {
            json!({"count": 0, "avg": null, "highest": null, "lowest": null})
        } else {
            let sum: f64 = vals.iter().fold(0.0, |a, b| a + b);
            json!({
                "count": vals.len(),
                "avg": sum / vals.len() as f64,
                "highest": vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                "lowest": vals.iter().cloned().fold(f64::INFINITY, f64::min),
            })
        };
        fields.insert(c.clone(), v);
    }
    let mut gain: Option<(f64, i64)> = None;
    let mut loss: Option<(f64, i64)> = None;
    for w in rows.windows(2) {
        let d = cell(&w[1], "close").unwrap() - cell(&w[0], "close").unwrap();
        let ts: i64 = w[1]["ts"].parse().unwrap();
        if d > 0.0 && gain.is_none_or(|(g, _)| d > g) {
            gain = Some((d, ts));
        }
        if d < 0.0 && loss.is_none_or(|(l, _)| d < l) {
            loss = Some((d, ts));
        }
    }
    let j = |m: Option<(f64, i64)>| m.map_or(Value::Null, |(c, ts)| json!({"change": c, "ts": ts}));
    (fields, j(gain), j(loss))
}

struct Client {
    agent: ureq::Agent,
    base: Vec<String>,
}

impl Client {
    fn get(&self, p: usize, path: &str) -> (u16, Value) {
        let mut r = self.agent.get(&format!("{}{path}", self.base[p])).call().unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}")))
    }
    fn ok(&self, p: usize, path: &str) -> Value {
        let (status, v) = self.get(p, path);
        assert_eq!(status, 200, "GET {path} on process {p}: {v}");
        v
    }
    fn post(&self, p: usize, path: &str, body: &Value) -> (u16, Value) {
        let mut r = self
            .agent
            .post(&format!("{}{path}", self.base[p]))
            .header("content-type", "application/json")
            .send(body.to_string().as_str())
            .unwrap();
        let status = r.status().as_u16();
        (status, serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap())
    }
}

/// Drops `time` fields (RFC 3339 forms of `ts`) so moves compare with the recomputation.
fn without_time(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("time");
    }
    v
}

/// Opens an SSE stream on `port` and returns it with the data of its first `update` event.
fn open_stream(port: u16, path: &str) -> (std::net::TcpStream, Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        if let Some(i) = text.find("event:update\ndata:") {
            let rest = &text[i + "event:update\ndata:".len()..];
            if let Some(end) = rest.find('\n') {
                return (s, serde_json::from_str(&rest[..end]).unwrap());
            }
        }
    }
}

#[test]
fn answers_equal_the_rows_the_sinks_wrote_on_either_process() {
    let _heavy = crate::support::heavy();
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("bars.ndjson");
    write_input(&input);
    let out = root.path().join("out");
    let status = free_port_pair();
    let cfg = format!(
        r#"
[cluster]
workers = 2
processes = [{}]
[status]
listen = "127.0.0.1:{status}"
[source]
kind = "file"
[source.file]
paths = ["{}"]
[windows]
timeframes = ["1m"]
[checkpoint]
enabled = false
[sinks.file]
dir = "{}"
format = "csv"
[serve]
retention = {{ bar = {BAR_RETENTION}, "1m" = {CANDLE_RETENTION} }}
linger = "120s"
stream-clients = 2
"#,
        process_list(2),
        input.display(),
        out.display()
    );
    let cfg_path = root.path().join("cluster.toml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let mut children = spawn_cluster(&cfg_path, 2);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let c = Client { agent, base: (0..2).map(|p| format!("http://127.0.0.1:{}", status + p as u16)).collect() };

    // Done = every bar was read and every worker of both processes has finished (results
    // flushed), the API still up. (Before the workers start, none is running either.)
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let states: Vec<Option<(u64, bool)>> = (0..2)
            .map(|p| {
                c.agent.get(&format!("{}/status", c.base[p])).call().ok().and_then(|mut r| {
                    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().ok()?).ok()?;
                    let stopped = v["workers"].as_array()?.iter().all(|w| w["running"] == json!(false));
                    Some((v["totals"]["bars_in"].as_u64()?, stopped))
                })
            })
            .collect();
        let done = states.iter().all(|s| s.is_some_and(|(_, stopped)| stopped))
            && states.iter().map(|s| s.map_or(0, |(n, _)| n)).sum::<u64>() == (SYMBOLS * BARS) as u64;
        if done {
            break;
        }
        let exited: Vec<_> = children.iter_mut().filter_map(|ch| ch.try_wait().ok().flatten()).collect();
        if Instant::now() >= deadline || !exited.is_empty() {
            children.iter_mut().for_each(|ch| {
                let _ = ch.kill();
                let _ = ch.wait();
            });
            panic!("the cluster did not finish its input in time (exited: {exited:?})");
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    let bars = read_rows(&out, "bars");
    let candles = read_rows(&out, "candles");
    assert_eq!(bars.len(), SYMBOLS);
    let owners: Vec<usize> = bars.keys().map(|s| Symbol::new(s).unwrap().owner(4) / 2).collect();
    assert!(owners.contains(&0) && owners.contains(&1), "symbols on both processes: {owners:?}");
    let columns: Vec<String> = bars.values().next().unwrap()[0]
        .keys()
        .filter(|k| !["symbol", "ts", "open", "high", "low", "volume", "signal"].contains(&k.as_str()))
        .cloned()
        .collect(); // close and every indicator column

    // Every symbol from either process.
    let all0 = c.ok(0, "/api/v1/symbols");
    let all1 = c.ok(1, "/api/v1/symbols");
    assert_eq!(all0, all1, "/api/v1/symbols differs between processes");
    assert_eq!(all0["count"], json!(SYMBOLS));
    assert_eq!(all0["timeframes"], json!(["1m"]));

    for (symbol, rows) in &bars {
        assert_eq!(rows.len(), BARS, "{symbol}: bars written");
        let last = rows.last().unwrap();
        let end: i64 = last["ts"].parse().unwrap();
        for p in 0..2 {
            let what = format!("{symbol} on process {p}");
            let one = c.ok(p, &format!("/api/v1/symbols/{symbol}"));
            assert_row(&one, last, &[], &format!("{what}: latest"));
            let prev = cell(&rows[rows.len() - 2], "close").unwrap();
            assert_eq!(one["change"].as_f64(), Some(cell(last, "close").unwrap() - prev), "{what}: change");
            let listed = all0["symbols"].as_array().unwrap().iter().find(|s| s["symbol"] == json!(symbol)).unwrap();
            assert_eq!(listed, &one, "{what}: /symbols entry");

            // Retained bars: the newest BAR_RETENTION rows, every column.
            let got = c.ok(p, &format!("/api/v1/bars?symbol={symbol}&limit=5000"));
            let got = got["rows"].as_array().unwrap();
            let want = &rows[BARS - BAR_RETENTION..];
            assert_eq!(got.len(), want.len(), "{what}: retained bars");
            for (g, w) in got.iter().zip(want) {
                assert_row(g, w, &[], &format!("{what}: bar"));
            }
            // A range with a limit: the newest `limit` rows with from <= ts <= to.
            let (from, to) = (T0 + 200_000, T0 + 260_000);
            let got = c.ok(p, &format!("/api/v1/bars?symbol={symbol}&from={from}&to=2023-11-14T22:17:40Z&limit=7"));
            let want: Vec<&Row> = rows
                .iter()
                .filter(|r| (from..=to).contains(&r["ts"].parse::<i64>().unwrap()))
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .take(7)
                .rev()
                .collect();
            let got_ts: Vec<i64> = got["rows"].as_array().unwrap().iter().map(|r| r["ts"].as_i64().unwrap()).collect();
            let want_ts: Vec<i64> = want.iter().map(|r| r["ts"].parse().unwrap()).collect();
            assert_eq!(got_ts, want_ts, "{what}: range");

            // Candles: the newest CANDLE_RETENTION windows.
            let cs = &candles[symbol];
            let got = c.ok(p, &format!("/api/v1/candles?symbol={symbol}&timeframe=1m"));
            let got = got["rows"].as_array().unwrap();
            assert_eq!(got.len(), CANDLE_RETENTION, "{what}: candles");
            for (g, w) in got.iter().zip(&cs[cs.len() - CANDLE_RETENTION..]) {
                assert_row(g, w, &[], &format!("{what}: candle"));
            }

            // Summary over 4 minutes of bars: (end - 4m, end].
            let window: Vec<Row> =
                rows.iter().filter(|r| r["ts"].parse::<i64>().unwrap() > end - 240_000).cloned().collect();
            assert_eq!(window.len(), 240);
            let (fields, gain, loss) = summary_of(&window, &columns);
            let s = c.ok(p, &format!("/api/v1/summary?symbol={symbol}&period=4m"));
            assert_eq!(s["rows"], json!(240), "{what}: summary rows");
            assert_eq!((s["start"].as_i64(), s["end"].as_i64()), (Some(end - 240_000), Some(end)));
            for (f, v) in &fields {
                assert_eq!(&s["fields"][f], v, "{what}: summary of {f}");
            }
            assert_eq!(s["fields"].as_object().unwrap().len(), fields.len(), "{what}: close + every column");
            assert_eq!(without_time(&s["highest_gain"]), gain, "{what}: highest gain");
            assert_eq!(without_time(&s["highest_loss"]), loss, "{what}: highest loss");
            let some = c.ok(p, &format!("/api/v1/summary?symbol={symbol}&period=4m&fields=close,sma_5,ema_10,rsi_10"));
            assert_eq!(
                some["fields"].as_object().unwrap().keys().collect::<Vec<_>>(),
                ["close", "ema_10", "rsi_10", "sma_5"]
            );
            assert_eq!(some["fields"]["rsi_10"], fields["rsi_10"]);

            // Aggregates over the same window.
            let vols: Vec<f64> = window.iter().map(|r| cell(r, "volume").unwrap()).collect();
            let a = c.ok(p, &format!("/api/v1/aggregate?symbol={symbol}&field=volume&fn=sum&period=4m"));
            assert_eq!(a["value"].as_f64(), Some(vols.iter().fold(0.0, |x, y| x + y)), "{what}: sum of volume");
            let a = c.ok(p, &format!("/api/v1/aggregate?symbol={symbol}&field=close&fn=first&period=4m"));
            assert_eq!(a["value"].as_f64(), cell(&window[0], "close"), "{what}: first close");

            // Beyond the retention: 400 saying how far back it reaches.
            let (st, e) = c.get(p, &format!("/api/v1/summary?symbol={symbol}&period=10m"));
            assert_eq!(st, 400, "{what}: {e}");
            let msg = e["error"].as_str().unwrap();
            assert!(
                msg.starts_with(&format!(
                    "period: 10m reaches back before the retention: {symbol} keeps its newest {BAR_RETENTION} rows of bar"
                )),
                "{what}: {msg}"
            );
        }
    }

    // Many symbols at once, in the seed API's shape (period in minutes), asked of process 0.
    let names: Vec<&String> = bars.keys().collect();
    let (st, many) = c.post(0, "/api/v1/summary", &json!({ "stock_symbol": names, "period": 4 }));
    assert_eq!(st, 200, "{many}");
    assert_eq!(many["errors"], json!([]));
    let summaries = many["summaries"].as_array().unwrap();
    assert_eq!(summaries.len(), SYMBOLS);
    for (s, name) in summaries.iter().zip(&names) {
        assert_eq!(s, &c.ok(1, &format!("/api/v1/summary?symbol={name}&period=4m")), "POST summary of {name}");
    }
    let (st, mixed) = c.post(1, "/api/v1/summary", &json!({ "symbols": ["SYM0001", "NOPE"], "period": "4m" }));
    assert_eq!(st, 200);
    assert_eq!(mixed["summaries"].as_array().unwrap().len(), 1);
    assert_eq!(mixed["errors"][0]["status"], json!(404));

    // Refusals, from either process.
    for p in 0..2 {
        for (path, status, error) in [
            (
                "/api/v1/symbols/NOPE",
                404,
                "symbol: NOPE is unknown: no bar of it has been processed by this cluster (GET /api/v1/symbols lists the known ones)",
            ),
            ("/api/v1/bars", 400, "symbol: missing; expected e.g. symbol=SYM0001"),
            (
                "/api/v1/bars?symbol=SYM0001&limit=99999",
                400,
                "limit: \"99999\" is outside 1..=5000 (serve.max-limit); expected e.g. limit=500",
            ),
            (
                "/api/v1/bars?symbol=SYM0001&from=soon",
                400,
                "from: \"soon\" is not a time; expected epoch ms (e.g. 1700000000000) or RFC 3339 (e.g. 2023-11-14T22:13:20Z)",
            ),
            (
                "/api/v1/candles?symbol=SYM0001&timeframe=7m",
                400,
                "timeframe: \"7m\" is not a configured timeframe; expected bar or one of 1m (windows.timeframes)",
            ),
            ("/api/v1/candles?symbol=SYM0001", 400, "timeframe: missing; expected one of 1m (e.g. timeframe=5m)"),
            (
                "/api/v1/summary?symbol=SYM0001&fields=close,nope",
                400,
                "fields: \"nope\" is not a field; expected some of open, high, low, close, volume, sma_5, sma_20, ema_10, ema_20, rsi_14, rsi_10, macd, macd_signal, macd_hist, bb_upper, bb_middle, bb_lower, atr_14, obv, vwap",
            ),
            (
                "/api/v1/summary?symbol=SYM0001&period=soon",
                400,
                "period: \"soon\" is not a period; expected a duration such as \"1h\" or \"90m\", or minutes such as 60",
            ),
            (
                "/api/v1/aggregate?symbol=SYM0001&field=volume&fn=median",
                400,
                "fn: \"median\" is not a function; expected one of avg, min, max, sum, first, last, count",
            ),
            ("/api/v1/nope", 404, "no route GET /api/v1/nope; the routes are listed in /api/v1/openapi.json"),
        ] {
            let (st, e) = c.get(p, path);
            assert_eq!((st, e["error"].as_str()), (status, Some(error)), "GET {path} on process {p}");
        }
    }
    // Live streams: an update event with every symbol, every process's status and the newest
    // candle of the selected series; at most serve.stream-clients at once.
    let streams: Vec<(std::net::TcpStream, Value)> =
        (0..2).map(|p| open_stream(status + p as u16, "/api/v1/stream?symbol=SYM0001&timeframe=1m")).collect();
    for (_, update) in &streams {
        assert_eq!(update["symbols"].as_array().map(Vec::len), Some(SYMBOLS), "{update}");
        assert_eq!(update["status"].as_array().map(Vec::len), Some(2), "{update}");
        let newest = candles["SYM0001"].last().unwrap();
        assert_eq!(update["rows"].as_array().map(Vec::len), Some(1), "{update}");
        assert_row(&update["rows"][0], newest, &[], "stream: newest candle");
    }
    let second = open_stream(status, "/api/v1/stream");
    let (st, e) = c.get(0, "/api/v1/stream");
    assert_eq!(st, 503, "{e}");
    assert_eq!(
        e["error"],
        json!("2 live streams are open, the most this process serves (serve.stream-clients); retry later")
    );
    drop((streams, second));

    let doc = c.ok(0, "/api/v1/openapi.json");
    assert!(doc["paths"]["/api/v1/summary"]["post"].is_object());

    for ch in &children {
        let _ = std::process::Command::new("kill").args(["-TERM", &ch.id().to_string()]).status();
    }
    wait_ok(children, "serve cluster");
}
