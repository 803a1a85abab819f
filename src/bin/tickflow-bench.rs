//! Benchmark helpers used by `scripts/bench.sh` (not needed to run tickflow):
//!
//! - `tickflow-bench baseline INPUT.ndjson OUTPUT.csv [CONFIG.toml]` — the no-engine baseline of
//!   W1: one thread, one loop, the same decoding, indicator arithmetic and output formatting as
//!   tickflow and nothing else (no timely, no exchange, no event-time ordering, no sinks).
//!   tickflow's bars/s are reported as a ratio to this loop measured in the same run, and to
//!   `w1-plain` (an independent loop written the obvious way).
//! - `tickflow-bench pipeline INPUT.ndjson OUTDIR CONFIG.toml` — the no-engine loop of W2: the
//!   same work as `tickflow replay --config CONFIG.toml` (per-bar indicators, signal and
//!   signal changes; per timeframe event-time candles with their indicators, signal and
//!   signal changes), one thread, no timely, no exchange, no reorder. It calls tickflow's
//!   own code for every step (the NDJSON reader, `IndicatorSet`, `Candle`, the candle
//!   operator's `window_start` and `apply`, `FileSink` and its `RowFormat`), and writes
//!   `bars-w0`, `candles-w0` and `signal_changes-w0` (and `late-w0`, `dead_letters-w0`, empty
//!   on a clean input) to OUTDIR as replay's worker 0 would. A candle closes when a bar of a
//!   later window of its symbol arrives, or at the end: on a time-ordered input (W1) that is
//!   exactly the set of candles replay closes by the watermark (delay 0, lateness 0), which
//!   `bench/w2/check.sh` verifies row for row.
//! - `tickflow-bench receiver ADDR OUT.json [WARMUP_MS]` — an ILP/HTTP receiver that answers like QuestDB
//!   (`/exec` 200, `/write` 204) and measures, for every `bars` row, the latency from the bar's
//!   event time (set to its produce time by the load generator) to its arrival; writes
//!   count / p50 / p99 / max to OUT.json when stdin closes, for all rows and for the steady
//!   state: without the first WARMUP_MS (default 3000) of event time (start-up) and the last
//!   second (the newest bars of a stream wait for newer ones — or the idle rule, or shutdown —
//!   before the watermark passes them).
//! - `tickflow-bench kafka-read BROKERS TOPIC` — a bare rdkafka consumer (no engine) reading the
//!   whole topic as fast as it can: the ceiling for Kafka → cluster throughput.
//! - `tickflow-bench kafka-latency BROKERS TOPIC OUT.json [WARMUP_MS]` — a bare rdkafka consumer
//!   with tickflow's fetch settings (`fetch.wait.max.ms` 10), from the topic's start, until stdin
//!   closes: for every message, the time from its bar's event time (the load generator's
//!   produce time) to its arrival here. The broker's own share of the cluster's latency, in
//!   the same run and the same format as `receiver`'s.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use tickflow::config::{Config, FileFormat};
use tickflow::decode::{NdjsonReader, TsUnit, timestamp};
use tickflow::sinks::file::{FileSink, RowFormat};
use tickflow_operators::dataflow::candles::{apply, window_start};
use tickflow_operators::rows::{BarOut, Candle};
use tickflow_operators::{IndicatorSet, Symbol, SymbolState, SymbolTable, TimeBounds, Values};

const DEFAULT: &str = r#"
[indicators]
list = ["sma:20", "ema:20", "rsi:14"]
[signals]
rules = [{ kind = "rsi", period = 14, buy-below = 30.0, sell-above = 70.0 }]
"#;

fn baseline(args: &[String]) -> anyhow::Result<()> {
    if args.len() < 3 {
        anyhow::bail!("usage: tickflow-bench baseline INPUT.ndjson OUTPUT.csv [CONFIG.toml]");
    }
    let text = match args.get(3) {
        Some(p) => std::fs::read_to_string(p)?,
        None => DEFAULT.to_string(),
    };
    let mut cfg = Config::parse(&text)?;
    if let Some(f) = cfg.sinks.file.as_mut() {
        // Only the columns matter here (like `tickflow replay`, which writes to --output).
        f.dir.get_or_insert_with(|| "unused".into());
    }
    let built = cfg.build()?;
    let set: IndicatorSet = built.set;
    let started = Instant::now();
    let reader = NdjsonReader::new(BufReader::with_capacity(1 << 20, File::open(&args[1])?), TimeBounds::default());
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&args[2])?);
    let mut fmt = RowFormat::with_columns(FileFormat::Csv, &set, TsUnit::Seconds, built.file_columns);
    if let Some(h) = fmt.bars_header() {
        out.write_all(h.as_bytes())?;
    }
    let mut states: HashMap<Symbol, tickflow_operators::SymbolState> = HashMap::new();
    let mut row = Values::default();
    let mut n = 0u64;
    for bar in reader {
        let bar = bar?;
        let state = states.entry(bar.symbol).or_insert_with(|| set.new_state());
        let decision = set.update(state, &bar, &mut row);
        let changed_from = state.change.observe(decision.action);
        out.write_all(fmt.bar(&BarOut { bar, values: row, decision, changed_from }))?;
        n += 1;
    }
    out.flush()?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!("baseline: {n} bars in {secs:.3} s, {:.0} bars/s", n as f64 / secs);
    println!("{{\"bars\":{n},\"secs\":{secs}}}");
    Ok(())
}

/// One symbol of the W2 loop: its bar indicator state, the event time of its last bar, and
/// per timeframe the candle indicator state and the open candle.
struct SymbolLoop {
    state: SymbolState,
    last_ts: i64,
    series: Vec<(SymbolState, Option<Candle>)>,
}

fn pipeline(args: &[String]) -> anyhow::Result<()> {
    if args.len() < 4 {
        anyhow::bail!("usage: tickflow-bench pipeline INPUT.ndjson OUTDIR CONFIG.toml");
    }
    let mut cfg = Config::parse(&std::fs::read_to_string(&args[3])?)?;
    if let Some(f) = cfg.sinks.file.as_mut() {
        // As in `tickflow replay`: the results go to OUTDIR, `[sinks.file]` chooses columns.
        f.dir.get_or_insert_with(|| args[2].clone());
    }
    let built = cfg.build()?;
    let input = PathBuf::from(&args[1]);
    // The unit of `ts` in the results, decided as `tickflow replay` decides it.
    let unit = built
        .ts_unit
        .or_else(|| tickflow::sources::file::sniff_ts_unit(std::slice::from_ref(&input)))
        .unwrap_or(TsUnit::Millis);
    let format = built.file_sink.as_ref().map_or(FileFormat::Csv, |f| f.1);
    let set = &built.set;
    let tfs = built.windows.timeframes.clone();
    let started = Instant::now();
    let reader = NdjsonReader::new(BufReader::with_capacity(1 << 20, File::open(&input)?), built.bounds);
    let mut sink = FileSink::create(Path::new(&args[2]), 0, format, set, unit, built.file_columns.clone())?;
    let mut table = SymbolTable::default();
    let mut symbols: Vec<SymbolLoop> = Vec::new();
    let mut row = Values::default();
    let (mut bars, mut candles, mut late) = (0u64, 0u64, 0u64);
    for bar in reader {
        // The W1 input is valid throughout; a record replay would dead-letter stops the loop.
        let bar = bar?;
        bars += 1;
        let id = table.intern(bar.symbol) as usize;
        if id == symbols.len() {
            symbols.push(SymbolLoop {
                state: set.new_state(),
                last_ts: i64::MIN,
                series: tfs.iter().map(|_| (set.new_state(), None)).collect(),
            });
        }
        let s = &mut symbols[id];
        // Enrich: a bar not newer than the symbol's last one is late.
        if bar.ts <= s.last_ts {
            sink.late(&bar, 0)?;
            late += 1;
        } else {
            s.last_ts = bar.ts;
            let decision = set.update(&mut s.state, &bar, &mut row);
            let changed_from = s.state.change.observe(decision.action);
            sink.bar(&BarOut { bar, values: row, decision, changed_from })?;
        }
        // Candles: a bar of a later window closes the open one (lateness 0: an earlier one is late).
        for (&tf, (state, open)) in tfs.iter().zip(s.series.iter_mut()) {
            let start = window_start(bar.ts, tf);
            match open {
                Some(c) if c.start == start => c.add(&bar),
                Some(c) if c.start > start => {
                    sink.late(&bar, tf)?;
                    late += 1;
                }
                _ => {
                    if let Some(mut c) = open.take() {
                        apply(set, state, &mut c, &mut row);
                        sink.candle(&c)?;
                        candles += 1;
                    }
                    *open = Some(Candle::from_bar(&bar, tf, start));
                }
            }
        }
    }
    // The end of the input closes every open window.
    for s in &mut symbols {
        for (state, open) in &mut s.series {
            if let Some(mut c) = open.take() {
                apply(set, state, &mut c, &mut row);
                sink.candle(&c)?;
                candles += 1;
            }
        }
    }
    sink.finish()?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "pipeline: {bars} bars, {candles} candles, {late} late, {} symbols in {secs:.3} s, {:.0} bars/s",
        symbols.len(),
        bars as f64 / secs
    );
    println!("{{\"bars\":{bars},\"candles\":{candles},\"late\":{late},\"secs\":{secs}}}");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("baseline") => baseline(&args),
        Some("pipeline") => pipeline(&args),
        Some("receiver") => receiver(&args),
        Some("kafka-read") => kafka_read(&args),
        Some("kafka-latency") => kafka_latency(&args),
        _ => anyhow::bail!(
            "usage: tickflow-bench baseline|pipeline|receiver|kafka-read|kafka-latency ... (see the module docs)"
        ),
    }
}

/// Milliseconds since the epoch, now.
fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn receiver(args: &[String]) -> anyhow::Result<()> {
    use std::io::{BufRead, Read};
    use std::sync::{Arc, Mutex};
    if args.len() < 3 {
        anyhow::bail!("usage: tickflow-bench receiver ADDR OUT.json");
    }
    let listener = std::net::TcpListener::bind(&args[1])?;
    eprintln!("receiver: listening on {}", listener.local_addr()?);
    let warmup: i64 = args.get(3).map_or(Ok(3000), |w| w.parse())?;
    // (arrival ms, latency ms) of every bars row
    let lat: Arc<Mutex<Vec<(i64, i64)>>> = Arc::default();
    let l2 = lat.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let lat = l2.clone();
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut r = std::io::BufReader::new(conn.try_clone()?);
                let mut w = conn;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let mut len = 0usize;
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h)?;
                        if h.trim().is_empty() {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body)?;
                    if path.starts_with("/write") {
                        let now = now_ms();
                        let mut v = Vec::new();
                        for l in body.split(|&c| c == b'\n') {
                            if l.starts_with(b"bars,") {
                                if let Some(ts) = l.rsplit(|&c| c == b' ').next() {
                                    if let Ok(ns) = std::str::from_utf8(ts).unwrap_or("").parse::<i64>() {
                                        v.push((now, now - ns / 1_000_000));
                                    }
                                }
                            }
                        }
                        lat.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend(v);
                        std::io::Write::write_all(&mut w, b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")?;
                    } else {
                        std::io::Write::write_all(
                            &mut w,
                            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
                        )?;
                    }
                }
            });
        }
    });
    // Stop when stdin closes (the bench script holds it open) or on a signal.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    let rows = lat.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    let out = latency_json(&rows, warmup);
    std::fs::write(&args[2], &out)?;
    eprintln!("receiver: {out}");
    Ok(())
}

/// count / p50 / p99 / max of `(arrival ms, latency ms)` rows as JSON: all of them, the steady
/// state (without the first `warmup` ms of arrival and the last second), and every second.
fn latency_json(rows: &[(i64, i64)], warmup: i64) -> String {
    let first = rows.iter().map(|r| r.0).min().unwrap_or(0);
    let last = rows.iter().map(|r| r.0).max().unwrap_or(0);
    let stats = |mut v: Vec<i64>| {
        v.sort_unstable();
        let q = |p: f64| v.get(((v.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0);
        format!(
            "{{\"rows\":{},\"p50_ms\":{},\"p99_ms\":{},\"max_ms\":{}}}",
            v.len(),
            q(0.5),
            q(0.99),
            v.last().copied().unwrap_or(0)
        )
    };
    let all = stats(rows.iter().map(|r| r.1).collect());
    let steady = stats(rows.iter().filter(|r| r.0 >= first + warmup && r.0 <= last - 1000).map(|r| r.1).collect());
    // Per second of arrival: where in the run the tail is (a checkpoint, a commit, a stall).
    let seconds = (last - first) / 1000 + 1;
    let by_second: Vec<String> = (0..seconds.max(0))
        .map(|k| stats(rows.iter().filter(|r| (r.0 - first) / 1000 == k).map(|r| r.1).collect()))
        .collect();
    format!("{{\"all\":{all},\"steady\":{steady},\"warmup_ms\":{warmup},\"by_second\":[{}]}}", by_second.join(","))
}

/// A bare rdkafka consumer (no commits) of every partition of `topic` from its start, with one
/// extra setting; also the number of partitions.
fn consumer_from_start(
    brokers: &str,
    topic: &str,
    group: &str,
    extra: (&str, &str),
) -> anyhow::Result<(rdkafka::consumer::BaseConsumer, usize)> {
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set(extra.0, extra.1)
        .create()?;
    let md = consumer.fetch_metadata(Some(topic), std::time::Duration::from_secs(10))?;
    let parts = md.topics().first().map_or(0, |t| t.partitions().len());
    let mut tpl = TopicPartitionList::new();
    for p in 0..parts as i32 {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    Ok((consumer, parts))
}

fn kafka_latency(args: &[String]) -> anyhow::Result<()> {
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, Ordering};
    if args.len() < 4 {
        anyhow::bail!("usage: tickflow-bench kafka-latency BROKERS TOPIC OUT.json [WARMUP_MS]");
    }
    let warmup: i64 = args.get(4).map_or(Ok(3000), |w| w.parse())?;
    let (consumer, _) = consumer_from_start(&args[1], &args[2], "tickflow-bench-latency", ("fetch.wait.max.ms", "10"))?;
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        s.store(true, Ordering::Relaxed);
    });
    // (arrival ms, latency ms) of every bar: its event time is the payload's "timestamp".
    let mut rows: Vec<(i64, i64)> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(std::time::Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let now = now_ms();
                let payload = rdkafka::Message::payload(&m).unwrap_or_default();
                let v: serde_json::Value = serde_json::from_slice(payload)?;
                // Any timestamp form tickflow reads (number in s/ms/µs/ns, numeric string or
                // RFC 3339), by tickflow's own rule.
                let ts = match &v["timestamp"] {
                    serde_json::Value::Number(n) => timestamp::parse_numeric(&n.to_string()).ok(),
                    serde_json::Value::String(t) => timestamp::parse_str(t).ok(),
                    _ => None,
                };
                if let Some((ts, _)) = ts {
                    rows.push((now, now - ts));
                }
            }
            Some(Err(e)) => anyhow::bail!("{e}"),
            None => {}
        }
    }
    let out = latency_json(&rows, warmup);
    std::fs::write(&args[3], &out)?;
    eprintln!("kafka-latency: {out}");
    Ok(())
}

fn kafka_read(args: &[String]) -> anyhow::Result<()> {
    if args.len() < 3 {
        anyhow::bail!("usage: tickflow-bench kafka-read BROKERS TOPIC");
    }
    let (consumer, parts) =
        consumer_from_start(&args[1], &args[2], "tickflow-bench", ("enable.partition.eof", "true"))?;
    let started = Instant::now();
    let (mut n, mut bytes, mut eof) = (0u64, 0u64, 0usize);
    while eof < parts {
        match consumer.poll(std::time::Duration::from_millis(100)) {
            Some(Ok(m)) => {
                n += 1;
                bytes += rdkafka::Message::payload(&m).map_or(0, |p| p.len() as u64);
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => eof += 1,
            Some(Err(e)) => anyhow::bail!("{e}"),
            None => {}
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("kafka-read: {n} messages ({bytes} bytes) in {secs:.3} s, {:.0} msg/s", n as f64 / secs);
    println!("{{\"messages\":{n},\"secs\":{secs}}}");
    Ok(())
}
