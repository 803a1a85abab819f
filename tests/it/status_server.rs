//! The status server over real sockets: exact status codes, JSON fields, readiness
//! transitions and Prometheus lines for a known state. Time comes from a manual clock and the
//! sampler is off, so nothing here depends on timing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tickflow::status::{
    LocalCounters, LocalLatency, ManualClock, PartitionUpdate, ProcessMetrics, ServerOptions, StatusError,
    StatusServer, WorkerMetrics,
};
use warp::Filter;
use warp::reply::Reply;

/// 2023-11-14T22:13:20Z, a round number of seconds.
const T0: i64 = 1_700_000_000_000;

/// A response from [`request`].
#[derive(Debug)]
struct HttpReply {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

impl HttpReply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// A minimal HTTP/1.1 client: one request per connection, `Connection: close`.
fn request(addr: SocketAddr, method: &str, path: &str) -> HttpReply {
    let mut stream = TcpStream::connect(addr).unwrap();
    // A safety net against a hung server, not a timing assertion.
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: BTreeMap<String, String> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let body = if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    HttpReply { status, headers, body }
}

fn get(addr: SocketAddr, path: &str) -> HttpReply {
    request(addr, "GET", path)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn no_sampler() -> ServerOptions {
    ServerOptions { sample_interval: None, ..ServerOptions::default() }
}

/// Process 1 with global workers 2 and 3, nothing happened yet.
fn fresh() -> (Arc<ManualClock>, Arc<ProcessMetrics>) {
    let clock = Arc::new(ManualClock::new(T0));
    let metrics = Arc::new(ProcessMetrics::new(1, 2..4, clock.clone()));
    (clock, metrics)
}

fn start(metrics: &Arc<ProcessMetrics>) -> StatusServer {
    StatusServer::start_with(localhost(), Arc::clone(metrics), None, no_sampler()).unwrap()
}

/// A known state, scraped at T0 + 12 s. Returns the running guards (drop = worker stopped).
fn populate(clock: &ManualClock, m: &ProcessMetrics) -> Vec<tickflow::status::RunningGuard> {
    let guards = m.workers().iter().map(|w| w.running_guard()).collect();
    m.set_source_connected(true);
    m.set_sink_reachable(true);
    m.sample();

    clock.set(T0 + 10_000);
    LocalCounters {
        bars_in: 1_000,
        bars_out: 990,
        bars_late: 3,
        bars_invalid: 7,
        dead_letters: 10,
        candles_out: 40,
        signal_changes: 2,
        batches: 5,
        busy_ns: 2_500_000_000,
        sink_rows: 40,
        sink_batches: 2,
        sink_retries: 1,
        sink_errors: 1,
        backlog: Some(8),
        watermark_ms: Some(T0 + 5_000),
        symbols_tracked: Some(12),
    }
    .publish(m.worker(2).unwrap());
    LocalCounters {
        bars_in: 500,
        bars_out: 500,
        candles_out: 20,
        batches: 3,
        busy_ns: 1_000_000_000,
        sink_rows: 20,
        sink_batches: 1,
        backlog: Some(0),
        watermark_ms: Some(T0 + 7_500),
        symbols_tracked: Some(6),
        ..LocalCounters::default()
    }
    .publish(m.worker(3).unwrap());
    // Latencies of three acknowledged rows: 5 ms and 40 ms on one worker, an hour on another.
    let mut latency = LocalLatency::default();
    latency.observe(5);
    latency.observe(40);
    latency.publish(m.worker(2).unwrap().latency());
    latency.observe(3_600_000);
    latency.publish(m.worker(3).unwrap().latency());
    m.update_partitions([
        PartitionUpdate { topic: "bars", partition: 0, owner_worker: 2, offset: 100, high_watermark: 150 },
        PartitionUpdate { topic: "bars", partition: 1, owner_worker: 3, offset: 200, high_watermark: 200 },
    ]);
    m.mark_sink_flush();
    m.sample();

    let mut rec = m.operator_recorder(2).unwrap();
    rec.operates(7, &[0, 7], "Candles");
    rec.schedule_start(7, Duration::from_micros(500));
    rec.schedule_stop(7, Duration::from_micros(2_000));
    rec.publish();

    clock.set(T0 + 12_000);
    m.record_sink_error("questdb: connection refused");
    guards
}

#[test]
fn health_is_ok_with_exact_body() {
    let (_clock, metrics) = fresh();
    let server = start(&metrics);
    let r = get(server.local_addr(), "/health");
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.body, r#"{"status":"ok"}"#);
}

#[test]
fn ready_goes_from_503_to_200_and_back() {
    let (_clock, metrics) = fresh();
    let server = start(&metrics);
    let addr = server.local_addr();

    let r = get(addr, "/ready");
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json(),
        json!({
            "ready": false,
            "reasons": [
                "source not connected",
                "sink not reachable",
                "0 of 2 workers running; not running: [2, 3]"
            ],
            "source_connected": false,
            "sink_reachable": false,
            "workers_running": 0,
            "workers_expected": 2,
            "workers_not_running": [2, 3]
        })
    );

    metrics.set_source_connected(true);
    metrics.set_sink_reachable(true);
    let g2 = metrics.worker(2).unwrap().running_guard();
    let r = get(addr, "/ready");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["reasons"], json!(["1 of 2 workers running; not running: [3]"]));

    let g3 = metrics.worker(3).unwrap().running_guard();
    let r = get(addr, "/ready");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["ready"], json!(true));
    assert_eq!(r.json()["reasons"], json!([]));

    drop(g2);
    metrics.set_sink_reachable(false);
    let r = get(addr, "/ready");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["reasons"], json!(["sink not reachable", "1 of 2 workers running; not running: [2]"]));
    drop(g3);
}

#[test]
fn status_reports_known_state() {
    let (clock, metrics) = fresh();
    let _guards = populate(&clock, &metrics);
    let server = start(&metrics);
    let r = get(server.local_addr(), "/status");
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/json");
    let s = r.json();

    assert_eq!(
        s["process"],
        json!({
            "id": 1,
            "pid": std::process::id(),
            "version": env!("CARGO_PKG_VERSION"),
            "started_ms": T0,
            "now_ms": T0 + 12_000,
            "uptime_ms": 12_000,
            "first_worker": 2,
            "worker_count": 2
        })
    );
    assert_eq!(s["ready"]["ready"], json!(true));

    assert_eq!(
        s["workers"][0],
        json!({
            "index": 2,
            "running": true,
            "bars_in": 1000,
            "bars_out": 990,
            "bars_late": 3,
            "bars_invalid": 7,
            "dead_letters": 10,
            "candles_out": 40,
            "signal_changes": 2,
            "batches": 5,
            "busy_ns": 2_500_000_000u64,
            "sink_rows": 40,
            "sink_batches": 2,
            "sink_retries": 1,
            "sink_errors": 1,
            "backlog": 8,
            "watermark_ms": T0 + 5_000,
            "watermark_lag_ms": 7_000,
            "busy_pct_10s": 25.0,
            "symbols_tracked": 12,
            "last_activity_ms": T0 + 10_000
        })
    );
    assert_eq!(s["workers"][1]["index"], json!(3));
    assert_eq!(s["workers"][1]["watermark_lag_ms"], json!(4_500));
    assert_eq!(s["workers"][1]["busy_pct_10s"], json!(10.0));

    assert_eq!(
        s["partitions"],
        json!([
            {"topic": "bars", "partition": 0, "owner_worker": 2, "offset": 100,
             "high_watermark": 150, "lag": 50},
            {"topic": "bars", "partition": 1, "owner_worker": 3, "offset": 200,
             "high_watermark": 200, "lag": 0}
        ])
    );

    let totals = &s["totals"];
    assert_eq!(totals["bars_in"], json!(1_500));
    assert_eq!(totals["bars_out"], json!(1_490));
    assert_eq!(totals["candles_out"], json!(60));
    assert_eq!(totals["backlog"], json!(8));
    assert_eq!(totals["symbols_tracked"], json!(18));
    assert_eq!(totals["watermark_ms"], json!(T0 + 5_000));
    assert_eq!(totals["watermark_lag_ms"], json!(7_000));
    assert_eq!(totals["partition_lag"], json!(50));

    // Two samples 10 s apart: both windows cover those 10 s.
    let rates = json!({
        "window_ms": 10_000,
        "bars_in_per_s": 150.0,
        "bars_out_per_s": 149.0,
        "candles_out_per_s": 6.0,
        "sink_rows_per_s": 6.0
    });
    assert_eq!(s["rates"], json!({"last_10s": rates, "last_60s": rates}));

    let error = json!({"message": "questdb: connection refused", "at_ms": T0 + 12_000});
    assert_eq!(
        s["sink"],
        json!({
            "reachable": true,
            "batches": 3,
            "rows": 60,
            "retries": 1,
            "errors": 1,
            "consecutive_failures": 0,
            "backlog": 8,
            "last_flush_ms": T0 + 10_000,
            "last_flush_age_ms": 2_000,
            "last_error": error
        })
    );
    assert_eq!(s["last_error"], error);
    assert_eq!(
        s["operators"],
        json!([{
            "name": "Candles",
            "busy_ns": 1_500_000,
            "schedules": 1,
            "workers": [{"worker": 2, "name": "Candles", "busy_ns": 1_500_000, "schedules": 1}]
        }])
    );
}

#[test]
fn status_before_anything_happened_has_nulls_not_zeros() {
    let (_clock, metrics) = fresh();
    let server = start(&metrics);
    let s = get(server.local_addr(), "/status").json();
    assert_eq!(s["workers"][0]["watermark_ms"], Value::Null);
    assert_eq!(s["workers"][0]["watermark_lag_ms"], Value::Null);
    assert_eq!(s["workers"][0]["busy_pct_10s"], Value::Null);
    assert_eq!(s["workers"][0]["last_activity_ms"], Value::Null);
    assert_eq!(s["rates"], json!({"last_10s": null, "last_60s": null}));
    assert_eq!(s["sink"]["last_flush_ms"], Value::Null);
    assert_eq!(s["last_error"], Value::Null);
    assert_eq!(s["partitions"], json!([]));
    assert_eq!(s["operators"], json!([]));
}

/// `name{labels} value`, with the labels parsed; `None` if the line does not have that shape.
fn parse_sample(line: &str) -> Option<(String, BTreeMap<String, String>, f64)> {
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}')?),
        None => (series, ""),
    };
    let name_ok = !name.is_empty()
        && name
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c == ':' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if !name_ok {
        return None;
    }
    let mut map = BTreeMap::new();
    let mut rest = labels;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        // Values here contain no escaped quotes.
        let (val, after) = after.split_once('"')?;
        map.insert(key.to_owned(), val.to_owned());
        rest = after.strip_prefix(',').unwrap_or(after);
    }
    Some((name.to_owned(), map, value))
}

#[test]
fn metrics_exposition_has_exact_lines_and_valid_shape() {
    let (clock, metrics) = fresh();
    let _guards = populate(&clock, &metrics);
    let server = start(&metrics);
    let r = get(server.local_addr(), "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let lines: Vec<&str> = r.body.lines().collect();

    for expected in [
        "# HELP tickflow_bars_in_total Bars read from the source, valid or not.",
        "# TYPE tickflow_bars_in_total counter",
        "# HELP tickflow_busy_seconds_total Seconds this worker spent doing work.",
        "# TYPE tickflow_busy_seconds_total counter",
        "# TYPE tickflow_watermark_lag_seconds gauge",
        "# TYPE tickflow_build_info gauge",
        "# TYPE tickflow_sink_latency_seconds histogram",
        r#"tickflow_sink_latency_seconds_bucket{process="1",le="0.005"} 1"#,
        r#"tickflow_sink_latency_seconds_bucket{process="1",le="0.025"} 1"#,
        r#"tickflow_sink_latency_seconds_bucket{process="1",le="0.05"} 2"#,
        r#"tickflow_sink_latency_seconds_bucket{process="1",le="+Inf"} 3"#,
        r#"tickflow_sink_latency_seconds_sum{process="1"} 3600.045"#,
        r#"tickflow_sink_latency_seconds_count{process="1"} 3"#,
        r#"tickflow_uptime_seconds{process="1"} 12"#,
        r#"tickflow_ready{process="1"} 1"#,
        r#"tickflow_source_connected{process="1"} 1"#,
        r#"tickflow_sink_reachable{process="1"} 1"#,
        r#"tickflow_workers_running{process="1"} 2"#,
        r#"tickflow_sink_last_flush_timestamp_seconds{process="1"} 1700000010"#,
        r#"tickflow_bars_in_total{process="1",worker="2"} 1000"#,
        r#"tickflow_bars_in_total{process="1",worker="3"} 500"#,
        r#"tickflow_bars_invalid_total{process="1",worker="2"} 7"#,
        r#"tickflow_sink_errors_total{process="1",worker="3"} 0"#,
        r#"tickflow_busy_seconds_total{process="1",worker="2"} 2.5"#,
        r#"tickflow_busy_seconds_total{process="1",worker="3"} 1"#,
        r#"tickflow_worker_running{process="1",worker="3"} 1"#,
        r#"tickflow_sink_backlog_rows{process="1",worker="2"} 8"#,
        r#"tickflow_symbols_tracked{process="1",worker="3"} 6"#,
        r#"tickflow_watermark_timestamp_seconds{process="1",worker="2"} 1700000005"#,
        r#"tickflow_watermark_timestamp_seconds{process="1",worker="3"} 1700000007.5"#,
        r#"tickflow_watermark_lag_seconds{process="1",worker="2"} 7"#,
        r#"tickflow_watermark_lag_seconds{process="1",worker="3"} 4.5"#,
        r#"tickflow_last_activity_timestamp_seconds{process="1",worker="2"} 1700000010"#,
        r#"tickflow_kafka_partition_offset{process="1",worker="2",topic="bars",partition="0"} 100"#,
        r#"tickflow_kafka_partition_high_watermark{process="1",worker="2",topic="bars",partition="0"} 150"#,
        r#"tickflow_kafka_partition_lag{process="1",worker="2",topic="bars",partition="0"} 50"#,
        r#"tickflow_kafka_partition_lag{process="1",worker="3",topic="bars",partition="1"} 0"#,
        r#"tickflow_operator_busy_seconds_total{process="1",worker="2",operator="Candles"} 0.0015"#,
        r#"tickflow_operator_schedules_total{process="1",worker="2",operator="Candles"} 1"#,
    ] {
        assert!(lines.contains(&expected), "missing line: {expected}\n{}", r.body);
    }

    assert!(
        lines.contains(
            &format!(r#"tickflow_build_info{{process="1",version="{}"}} 1"#, env!("CARGO_PKG_VERSION")).as_str()
        ),
        "{}",
        r.body
    );
    assert!(!r.body.contains("tickflow_up{") && !r.body.contains("tickflow_up "), "Prometheus has `up` of its own");
    let has_proc = std::path::Path::new("/proc/self/stat").exists();
    for family in
        ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"]
    {
        assert_eq!(r.body.contains(&format!("# TYPE {family} ")), has_proc, "{family}");
    }
    let allowed: BTreeSet<&str> = ["process", "worker", "topic", "partition", "operator", "le", "version"].into();
    let mut families = BTreeMap::new();
    let mut samples = 0;
    let mut series = BTreeSet::new();
    for line in &lines {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(kind == "HELP" || kind == "TYPE", "{line}");
            if kind == "TYPE" {
                let t = parts.next().unwrap();
                assert!(t == "counter" || t == "gauge" || t == "histogram", "{line}");
                assert_eq!(name.ends_with("_total"), t == "counter", "{line}");
                assert!(families.insert(name.to_owned(), 0).is_none(), "dup {name}");
            }
            continue;
        }
        let (name, labels, _value) =
            parse_sample(line).unwrap_or_else(|| panic!("not `name{{labels}} value`: {line:?}"));
        // A histogram's samples are `<family>_bucket`, `_sum` and `_count`.
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| families.contains_key(*f)).map(str::to_owned))
            .unwrap_or_else(|| name.clone());
        *families.get_mut(&family).unwrap_or_else(|| panic!("sample before its # TYPE: {line}")) += 1;
        assert!(labels.keys().all(|k| allowed.contains(k.as_str())), "{line}");
        assert_eq!(labels["process"], "1", "{line}");
        assert!(series.insert((name, labels)), "duplicate series: {line}");
        samples += 1;
    }
    // 7 process gauges (build info, uptime, readiness ...), the 6 standard `process_*` where
    // /proc exists, 4 process sink-health families, 13 counters and 6 gauges for each of 2
    // workers, the latency histogram (16 bounds, +Inf, sum, count), 3 gauges for each of 2
    // partitions, 2 operator counters for 1 operator.
    let proc_families = if has_proc { 6 } else { 0 };
    assert_eq!(samples, 7 + proc_families + 4 + 2 * (13 + 6) + 19 + 3 * 2 + 2);
    assert_eq!(families["tickflow_bars_in_total"], 2);
}

#[test]
fn unknown_routes_are_404_and_wrong_methods_are_405() {
    let (_clock, metrics) = fresh();
    let server = start(&metrics);
    assert_eq!(get(server.local_addr(), "/nope").status, 404);
    assert_eq!(request(server.local_addr(), "POST", "/health").status, 405);
}

#[test]
fn extra_routes_are_mounted_beside_the_built_in_ones() {
    let (_clock, metrics) = fresh();
    let rules = warp::path!("rules")
        .and(warp::get())
        .map(|| warp::reply::json(&json!({"rules": ["rsi_14 > 70"]})).into_response())
        .boxed();
    let server = StatusServer::start_with(localhost(), Arc::clone(&metrics), Some(rules), no_sampler()).unwrap();
    let r = get(server.local_addr(), "/rules");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"rules": ["rsi_14 > 70"]}));
    assert_eq!(get(server.local_addr(), "/health").status, 200);
}

#[test]
fn port_zero_binds_a_real_port_and_a_taken_port_is_a_bind_error() {
    let (_clock, metrics) = fresh();
    let first = StatusServer::start(localhost(), Arc::clone(&metrics), None).unwrap();
    let addr = first.local_addr();
    assert_ne!(addr.port(), 0);
    let err = StatusServer::start(addr, Arc::clone(&metrics), None).unwrap_err();
    assert!(matches!(err, StatusError::Bind { addr: a, .. } if a == addr), "{err:?}");
    assert!(err.to_string().starts_with(&format!("status server: cannot bind {addr}: ")), "{err}");
}

#[test]
fn shutdown_closes_the_listener() {
    let (_clock, metrics) = fresh();
    let server = start(&metrics);
    let addr = server.local_addr();
    assert_eq!(get(addr, "/health").status, 200);
    server.shutdown();
    let err = TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn publish_adds_correctly_from_several_threads() {
    const THREADS: u64 = 4;
    const BATCHES: u64 = 1_000;
    let (_clock, metrics) = fresh();
    // Every thread publishes into one shared block (worst case for the atomics) and into
    // its process's worker block, as real workers do.
    let shared = Arc::new(WorkerMetrics::new(99, Arc::new(ManualClock::new(T0)) as Arc<dyn tickflow::status::Clock>));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let shared = Arc::clone(&shared);
            let own = Arc::clone(metrics.worker(2 + (t as usize % 2)).unwrap());
            s.spawn(move || {
                let mut local = LocalCounters::default();
                for batch in 0..BATCHES {
                    for _record in 0..3 {
                        local.bars_in += 1;
                    }
                    local.sink_rows += batch % 2;
                    local.batches += 1;
                    let mut copy = local.clone();
                    copy.publish(&own);
                    local.publish(&shared);
                }
            });
        }
    });
    let v = shared.load().counters;
    assert_eq!(v.bars_in, THREADS * BATCHES * 3);
    assert_eq!(v.batches, THREADS * BATCHES);
    assert_eq!(v.sink_rows, THREADS * BATCHES / 2);
    assert_eq!(v.bars_out, 0);
    let totals = metrics.totals();
    assert_eq!(totals, v);
    assert_eq!(metrics.worker(2).unwrap().load().counters.bars_in, 2 * BATCHES * 3);
}

#[test]
fn watermark_lag_is_never_negative() {
    // Event time ahead of the wall clock (a generator started in the future, a clock skew):
    // the lag is 0, not a negative number.
    let (clock, metrics) = fresh();
    clock.set(T0);
    LocalCounters { watermark_ms: Some(T0 + 1_243), ..LocalCounters::default() }.publish(metrics.worker(2).unwrap());
    let server = start(&metrics);
    let text = get(server.local_addr(), "/metrics").body;
    assert!(text.contains(r#"tickflow_watermark_lag_seconds{process="1",worker="2"} 0"#), "{text}");
    let status = get(server.local_addr(), "/status").json();
    assert_eq!(status["workers"][0]["watermark_lag_ms"], json!(0), "{status}");
    assert_eq!(status["totals"]["watermark_lag_ms"], json!(0), "{status}");
}
