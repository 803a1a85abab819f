//! Crash-exact recovery of a real 2-process × 2-worker cluster reading a fixed Kafka topic
//! (Tansu): killed with SIGKILL at seeded random moments and restarted each time, it must
//! leave exactly the committed files of an uninterrupted run; stopped with SIGTERM (a
//! savepoint) and restored into another shape (1 process × 3 workers), too. The runs also
//! write to a receiver that answers like QuestDB: after upserts (QuestDB's `DEDUP UPSERT
//! KEYS`: the designated timestamp and the SYMBOL columns) every table holds the same rows.
//! The same holds for bars spread over several topics read through a `topic-pattern`: the
//! checkpoint keeps every (topic, partition)'s position.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::cluster::{assert_same, process_list, read_outputs, wait_ok};
use crate::support::kafka::{Broker, Msg, produce};
use crate::support::questdb::Fake;
use tickflow::sources::generator::{GeneratorConfig, MarketGenerator};
use tickflow_operators::Bar;

fn payload(b: &Bar) -> String {
    format!(
        r#"{{"symbol":"{}","timestamp":{},"open":{},"high":{},"low":{},"close":{},"volume":{}}}"#,
        b.symbol, b.ts, b.open, b.high, b.low, b.close, b.volume
    )
}

/// 40 symbols × 5000 bars, 1 s apart, keyed by symbol on 4 partitions, with 3 invalid payloads.
fn topic(broker: &Broker, name: &str) -> usize {
    broker.create_topic(name, 4);
    let cfg = GeneratorConfig { symbols: 40, seed: 3, interval_ms: 1000, records: None, ..GeneratorConfig::default() };
    let bars: Vec<Bar> = MarketGenerator::new(cfg).unwrap().take(40 * 5000).collect();
    let mut msgs: Vec<Msg> = bars
        .iter()
        .map(|b| Msg {
            partition: (b.symbol.route_hash() % 4) as i32,
            key: b.symbol.to_string(),
            payload: Some(payload(b).into_bytes()),
        })
        .collect();
    msgs.insert(1000, Msg { partition: 1, key: "BAD".into(), payload: Some(b"{\"symbol\": \"BAD\"".to_vec()) });
    msgs.insert(50_000, Msg { partition: 2, key: "BAD".into(), payload: Some(b"not json".to_vec()) });
    msgs.insert(150_000, Msg { partition: 3, key: "TOMB".into(), payload: None });
    produce(&broker.brokers(), name, &msgs);
    bars.len()
}

fn config(
    broker: &Broker,
    selection: &str,
    out: &Path,
    ck: &Path,
    processes: usize,
    workers: usize,
    questdb: &Fake,
) -> String {
    format!(
        r#"
[cluster]
workers = {workers}
processes = [{}]
[status]
listen = "127.0.0.1:0"
[source]
kind = "kafka"
[source.kafka]
brokers = "{}"
{selection}
group-id = "recovery"
stop-at-end = true
idle-timeout = "60s"
[windows]
timeframes = ["1m", "5m"]
[sinks.file]
dir = "{}"
roll-interval = "0s"
[sinks.questdb]
addr = "{}"
max-delay = "5ms"
[checkpoint]
url = "{}"
interval = "150ms"
"#,
        process_list(processes),
        broker.brokers(),
        out.display(),
        questdb.addr,
        ck.display()
    )
}

fn spawn(cfg: &Path, processes: usize) -> Vec<Child> {
    (0..processes)
        .map(|p| {
            Command::new(env!("CARGO_BIN_EXE_tickflow"))
                .current_dir(cfg.parent().unwrap())
                .args(["run", "--config", cfg.to_str().unwrap(), "--process", &p.to_string()])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect()
}

fn kill(children: Vec<Child>, sig: &str) {
    for c in &children {
        let _ = Command::new("kill").args([sig, &c.id().to_string()]).status();
    }
    for mut c in children {
        let _ = c.wait();
    }
}

/// The tables as QuestDB holds them after upserts: per (table, timestamp, SYMBOL columns) the
/// last line written.
fn upserted(fake: &Fake) -> BTreeMap<(String, String, Vec<String>), String> {
    let mut tables = BTreeMap::new();
    for line in fake.accepted() {
        let parsed = influxdb_line_protocol::parse_lines(&line).next().unwrap().unwrap();
        let tags: Vec<String> = parsed.series.tag_set.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();
        let key = (parsed.series.measurement.to_string(), format!("{:?}", parsed.timestamp), tags);
        tables.insert(key, line.clone());
    }
    tables
}

fn run_fresh(
    root: &Path,
    tag: &str,
    broker: &Broker,
    selection: &str,
    questdb: &Fake,
) -> BTreeMap<String, Vec<String>> {
    let out = root.join(format!("out-{tag}"));
    let cfg = root.join(format!("{tag}.toml"));
    std::fs::write(&cfg, config(broker, selection, &out, &root.join(format!("ck-{tag}")), 2, 2, questdb)).unwrap();
    wait_ok(spawn(&cfg, 2), tag);
    read_outputs(&out)
}

/// Starts a 2x2 run and kills it (SIGKILL) `at` ms after each start, restarting each time, then
/// lets the last restart finish; returns what it wrote.
fn killed_at(
    root: &Path,
    broker: &Broker,
    selection: &str,
    db: &Fake,
    moments: &[u64],
) -> BTreeMap<String, Vec<String>> {
    let out = root.join("out-kill");
    let cfg = root.join("kill.toml");
    std::fs::write(&cfg, config(broker, selection, &out, &root.join("ck-kill"), 2, 2, db)).unwrap();
    for &at in moments {
        let children = spawn(&cfg, 2);
        std::thread::sleep(Duration::from_millis(at));
        kill(children, "-KILL");
    }
    wait_ok(spawn(&cfg, 2), "the last restart");
    read_outputs(&out)
}

/// Runs 2x2 until its first checkpoint, stops it with SIGTERM (a savepoint), restores that into
/// 1 process x 3 workers and lets it finish; returns what was written.
fn savepoint_into_1x3(root: &Path, broker: &Broker, selection: &str, db: &Fake) -> BTreeMap<String, Vec<String>> {
    let out = root.join("out-rescale");
    let ck = root.join("ck-rescale");
    let cfg2x2 = root.join("rescale-2x2.toml");
    std::fs::write(&cfg2x2, config(broker, selection, &out, &ck, 2, 2, db)).unwrap();
    let children = spawn(&cfg2x2, 2);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(&ck).map_or(0, |d| d.count()) == 0 {
        assert!(std::time::Instant::now() < deadline, "no checkpoint within a minute");
        std::thread::sleep(Duration::from_millis(20));
    }
    for c in &children {
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
    }
    wait_ok(children, "SIGTERM");
    let cfg1x3 = root.join("rescale-1x3.toml");
    std::fs::write(&cfg1x3, config(broker, selection, &out, &ck, 1, 3, db)).unwrap();
    wait_ok(spawn(&cfg1x3, 1), "restore into 1x3");
    read_outputs(&out)
}

/// The one-topic selection.
const BARS: &str = "topic = \"bars\"";

#[test]
fn kafka_2x2_killed_three_times_and_restored_into_1x3_equals_an_uninterrupted_run() {
    let _heavy = crate::support::heavy();
    let broker = Broker::start();
    let n = topic(&broker, "bars");
    let root = tempfile::tempdir().unwrap();
    let reference_db = Fake::start(Vec::new());
    let want = run_fresh(root.path(), "reference", &broker, BARS, &reference_db);
    let want_db = upserted(&reference_db);
    assert!(want_db.len() >= n, "every bar reached the receiver");
    assert_eq!(want["bars"].len(), n, "the reference run read every valid bar once");
    assert_eq!(want["dead_letters"].len(), 3);

    // SIGKILL at three moments (seeded, spread over start-up, steady state and checkpoint
    // writes, which happen every 150 ms), restarting each time.
    let kill_db = Fake::start(Vec::new());
    assert_same(&killed_at(root.path(), &broker, BARS, &kill_db, &[450, 800, 1250]), &want, "2x2 killed 3 times");
    let got_db = upserted(&kill_db);
    assert_eq!(got_db.len(), want_db.len(), "QuestDB rows after upserts");
    for (k, v) in &want_db {
        assert_eq!(got_db.get(k), Some(v), "QuestDB row {k:?}");
    }

    // SIGTERM = stop with a savepoint, then restore into 1 process x 3 workers.
    let rescale_db = Fake::start(Vec::new());
    let got = savepoint_into_1x3(root.path(), &broker, BARS, &rescale_db);
    assert_same(&got, &want, "2x2 savepoint restored into 1x3");
    assert_eq!(upserted(&rescale_db), want_db, "QuestDB rows after upserts, restored into 1x3");
}

/// 24 symbols × 2500 bars, 1 s apart, over the topics `rt.0`..`rt.3` (2 partitions each), a
/// symbol in one (topic, partition).
fn topics(broker: &Broker) -> usize {
    let cfg = GeneratorConfig { symbols: 24, seed: 9, interval_ms: 1000, records: None, ..GeneratorConfig::default() };
    let bars: Vec<Bar> = MarketGenerator::new(cfg).unwrap().take(24 * 2500).collect();
    for t in 0..4u64 {
        let name = format!("rt.{t}");
        broker.create_topic(&name, 2);
        let msgs: Vec<Msg> = bars
            .iter()
            .filter(|b| b.symbol.route_hash() % 4 == t)
            .map(|b| Msg {
                partition: (b.symbol.route_hash() / 4 % 2) as i32,
                key: b.symbol.to_string(),
                payload: Some(payload(b).into_bytes()),
            })
            .collect();
        produce(&broker.brokers(), &name, &msgs);
    }
    bars.len()
}

#[test]
fn kafka_topic_pattern_2x2_killed_and_restored_into_1x3_equals_an_uninterrupted_run() {
    let _heavy = crate::support::heavy();
    const PATTERN: &str = "topic-pattern = '^rt\\.'";
    let broker = Broker::start();
    let n = topics(&broker);
    let root = tempfile::tempdir().unwrap();
    let reference_db = Fake::start(Vec::new());
    let want = run_fresh(root.path(), "reference", &broker, PATTERN, &reference_db);
    assert_eq!(want["bars"].len(), n, "the reference run read every bar of every topic once");

    // SIGKILL twice (start-up, steady state), restarting each time.
    let got = killed_at(root.path(), &broker, PATTERN, &Fake::start(Vec::new()), &[500, 1100]);
    assert_same(&got, &want, "pattern 2x2 killed twice");
    // SIGTERM = stop with a savepoint, then restore into 1 process x 3 workers.
    let got = savepoint_into_1x3(root.path(), &broker, PATTERN, &Fake::start(Vec::new()));
    assert_same(&got, &want, "pattern 2x2 savepoint restored into 1x3");
}
