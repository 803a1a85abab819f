//! The Kafka source against a real Kafka-protocol broker (Tansu), which each test starts on a
//! free loopback port with in-memory storage and kills when done.
//!
//! Needs `tansu` on PATH (or `TANSU_BIN=/path/to/tansu`): `scripts/install-tansu.sh`.
//! Bars are produced with an rdkafka `BaseProducer` (Debian's kcat does not work with Tansu),
//! keyed by symbol, as W1 JSON lines, with a few invalid payloads in between; a 2- or 3-worker
//! timely dataflow reads them with `stop-at-end = true` (or a stop switch) and the tests check
//! what arrived where, what was reported invalid, the watermark, and the committed offsets.
//! No assertion depends on timing; every wait has a deadline.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tickflow::sources::generator::write_w1_line;
use tickflow::sources::kafka::{KafkaSourceConfig, kafka_source};
use tickflow_operators::dataflow::Time;
use tickflow_operators::{Bar, Symbol, TimeBounds};
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::{Inspect, Probe};

/// A bar whose symbol is not UTF-8.
const NOT_UTF8: &[u8] = b"{\"stock_symbol\": \"SYM\xff\xfe\", \"timestamp\": 1700000000.0, \"open\": 1, \"high\": 1, \"low\": 1, \"close\": 1, \"volume\": 1}";

/// 2023-11-14T22:13:20Z: event times well before the wall clock.
const T0: i64 = 1_700_000_000_000;

use crate::support::kafka::{Broker, Msg, produce};

fn bar(symbol: &str, ts: i64, price: f64) -> Bar {
    Bar::new(Symbol::new(symbol).unwrap(), ts, price, price + 1.0, price - 1.0, price + 0.5, 100.0)
}

fn w1(bar: &Bar) -> Vec<u8> {
    let mut s = String::new();
    write_w1_line(&mut s, bar);
    s.into_bytes()
}

fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, Option<i64>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).expect("reading committed offsets");
    (0..partitions)
        .map(|p| {
            let off = match got.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => Some(o),
                _ => None,
            };
            (p, off)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Running the source.

#[derive(Default)]
struct Outcome {
    /// (worker, emitted at time, bar)
    bars: Vec<(usize, u64, Bar)>,
    /// (worker, location, error text, payload)
    invalid: Vec<(usize, String, String, Vec<u8>)>,
    /// worker → (topic, partition)s read at the end
    owned: BTreeMap<usize, Vec<(String, i32)>>,
    /// Highest probe frontier a worker saw.
    max_frontier: u64,
}

impl Outcome {
    /// worker → owned partition numbers (one topic).
    fn partitions(&self) -> BTreeMap<usize, Vec<i32>> {
        self.owned.iter().map(|(w, tp)| (*w, tp.iter().map(|(_, p)| *p).collect())).collect()
    }
}

/// When the workers stop their sources (besides `stop-at-end`).
#[derive(Clone, Copy)]
enum Stop {
    /// Only at the end (`stop-at-end`).
    AtEnd,
    /// Once the output frontier reached this time.
    Frontier(u64),
    /// Once this many bars arrived (over all workers) and the workers own this many partitions together (a
    /// pattern's new topic is assigned by each worker at its own refresh: stopping at the
    /// last bar alone could stop a worker before it took its share).
    BarsAndPartitions(usize, usize),
}

/// Runs the source on `workers` threads until the dataflow completes or `stop` says so
/// (deadline 60 s).
fn run(cfg: KafkaSourceConfig, workers: usize, stop_after: Option<u64>) -> Outcome {
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    run_into(&cfg, workers, stop_after.map_or(Stop::AtEnd, Stop::Frontier), &outcome);
    Arc::try_unwrap(outcome).ok().expect("workers are done").into_inner().unwrap()
}

/// [`run`], filling `outcome` as bars arrive (another thread may watch it).
fn run_into(cfg: &KafkaSourceConfig, workers: usize, stop: Stop, outcome: &Arc<Mutex<Outcome>>) {
    let out = Arc::clone(outcome);
    let spec = cfg.validate().expect("a valid [source.kafka]");
    timely::execute(timely::Config::process(workers), move |worker| {
        let index = worker.index();
        let probe = ProbeHandle::<Time>::new();
        let (o1, o2) = (Arc::clone(&out), Arc::clone(&out));
        let handle = worker.dataflow::<u64, _, _>(|root| {
            root.scoped::<Time, _, _>("Test", |scope| {
                let on_invalid = move |loc: &str, err: &tickflow::decode::DecodeError, payload: &[u8]| {
                    o1.lock().unwrap().invalid.push((index, loc.to_owned(), err.to_string(), payload.to_vec()));
                };
                let (bars, handle) =
                    kafka_source(scope, &spec, TimeBounds::default(), 0, probe.clone(), on_invalid, None)
                        .expect("building the Kafka source");
                bars.inspect_core(move |event| {
                    if let Ok((stamp, data)) = event {
                        let time = stamp.least().expect("a source stamps its messages with its capability").1;
                        let mut o = o2.lock().unwrap();
                        o.bars.extend(data.iter().map(|b| (index, time, *b)));
                    }
                })
                .probe_with(&probe);
                handle
            })
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut max_frontier = 0;
        while worker.step_or_park(Some(Duration::from_millis(20))) {
            let f = probe.with_frontier(|f| f.first().map(|t| t.1));
            if let Some(f) = f {
                max_frontier = max_frontier.max(f);
            }
            match stop {
                Stop::Frontier(target) => {
                    if f.is_none_or(|f| f >= target) {
                        handle.stopper().stop();
                    }
                    assert!(
                        Instant::now() < deadline || handle.stopper().is_stopped(),
                        "worker {index}: the output frontier stalled at {max_frontier}, below {target}"
                    );
                }
                Stop::BarsAndPartitions(n, parts) => {
                    let mut o = out.lock().unwrap();
                    o.owned.insert(index, handle.assigned());
                    let (got, owned) = (o.bars.len(), o.owned.values().map(Vec::len).sum::<usize>());
                    if got >= n && owned >= parts {
                        handle.stopper().stop();
                    }
                    assert!(
                        Instant::now() < deadline || handle.stopper().is_stopped(),
                        "worker {index}: {got} of {n} bars, {owned} of {parts} partitions owned within 60 s"
                    );
                }
                Stop::AtEnd => {
                    assert!(Instant::now() < deadline, "worker {index}: the dataflow did not complete within 60 s")
                }
            }
        }
        handle.finish().expect("the final offset commit");
        let mut o = out.lock().unwrap();
        o.owned.insert(index, handle.assigned());
        o.max_frontier = o.max_frontier.max(max_frontier);
    })
    .expect("starting timely")
    .join()
    .into_iter()
    .for_each(|r| r.expect("a worker panicked"));
}

fn config(broker: &Broker, topic: &str) -> KafkaSourceConfig {
    KafkaSourceConfig {
        brokers: broker.brokers(),
        topic: Some(topic.to_owned()),
        group_id: format!("test-{topic}"),
        stop_at_end: true,
        max_batch: 16, // several activations per partition
        connect_timeout: "20s".into(),
        ..Default::default()
    }
}

/// `count` bars per symbol, symbol `i` on partition `i % partitions`, event time increasing.
fn bars_for(symbols: usize, count: usize, partitions: i32, t0: i64) -> Vec<(i32, Bar)> {
    let mut out = Vec::new();
    for k in 0..count {
        for s in 0..symbols {
            let b = bar(&format!("SYM{s:04}"), t0 + k as i64 * 1_000, 100.0 + (k + s) as f64);
            out.push(((s as i32) % partitions, b));
        }
    }
    out
}

fn sorted(mut bars: Vec<Bar>) -> Vec<Bar> {
    bars.sort_by(|a, b| (a.symbol.as_str(), a.ts).cmp(&(b.symbol.as_str(), b.ts)));
    bars
}

// ---------------------------------------------------------------------------------------
// Tests.

#[test]
fn every_valid_bar_arrives_once_invalid_payloads_are_reported_and_offsets_committed() {
    let broker = Broker::start();
    broker.create_topic("bars", 3);
    let valid = bars_for(6, 30, 3, T0);
    let mut msgs: Vec<Msg> = valid
        .iter()
        .map(|(p, b)| Msg { partition: *p, key: b.symbol.as_str().to_owned(), payload: Some(w1(b)) })
        .collect();
    // Invalid payloads at known positions (offsets are per-partition positions).
    let bad: Vec<(usize, i32, Option<Vec<u8>>, &str)> = vec![
        (5, 0, Some(b"not json".to_vec()), "invalid JSON"),
        (20, 1, Some(Vec::new()), "empty payload"),
        (40, 1, None, "tombstone"),
        (60, 2, Some(NOT_UTF8.to_vec()), "invalid UTF-8"),
        (
            80,
            2,
            Some(br#"{"stock_symbol": "SYM0002", "timestamp": 1700000000.0, "open": 10, "high": 9, "low": 11, "close": 10, "volume": 1}"#.to_vec()),
            "rule: low <= min(open, close)",
        ),
    ];
    for (at, p, payload, _) in &bad {
        msgs.insert(*at, Msg { partition: *p, key: "BAD".into(), payload: payload.clone() });
    }
    let mut next = BTreeMap::<i32, i64>::new();
    let mut expected_invalid = BTreeMap::new();
    for (i, m) in msgs.iter().enumerate() {
        let off = next.entry(m.partition).or_insert(0);
        if let Some((_, _, _, what)) = bad.iter().find(|(at, ..)| *at == i) {
            expected_invalid.insert(format!("bars/{}@{off}", m.partition), *what);
        }
        *off += 1;
    }
    let counts = produce(&broker.brokers(), "bars", &msgs);

    let cfg = config(&broker, "bars");
    let out = run(cfg.clone(), 2, None);

    // Every valid bar exactly once.
    let got = sorted(out.bars.iter().map(|(_, _, b)| *b).collect());
    let want = sorted(valid.iter().map(|(_, b)| *b).collect());
    assert_eq!(got.len(), want.len(), "bar count");
    assert_eq!(got, want);
    // Each partition read by exactly one worker, partition p by worker p % 2.
    assert_eq!(out.partitions(), BTreeMap::from([(0, vec![0, 2]), (1, vec![1])]));
    let partition_of: BTreeMap<String, i32> = valid.iter().map(|(p, b)| (b.symbol.as_str().to_owned(), *p)).collect();
    for (w, _, b) in &out.bars {
        assert_eq!(*w as i32, partition_of[b.symbol.as_str()] % 2, "{} read by worker {w}", b.symbol.as_str());
    }
    // Per-partition event times are ordered and the delay is 0: every bar is on time.
    for (w, time, b) in &out.bars {
        // The time's watermark coordinate is the order-preserving image of event time.
        let wm = tickflow_operators::time::ms_of_watermark(*time);
        assert!(b.ts >= wm, "worker {w}: bar at {} emitted at watermark {wm}", b.ts);
    }
    // Invalid payloads: reported with their location, a reason, and the raw bytes.
    let got_invalid: BTreeMap<String, String> =
        out.invalid.iter().map(|(_, loc, err, _)| (loc.clone(), err.clone())).collect();
    assert_eq!(got_invalid.keys().collect::<Vec<_>>(), expected_invalid.keys().collect::<Vec<_>>());
    for (loc, what) in &expected_invalid {
        assert!(got_invalid[loc].contains(what), "{loc}: {:?} should mention {what:?}", got_invalid[loc]);
    }
    let not_utf8 = out.invalid.iter().find(|(_, _, e, _)| e.contains("UTF-8")).expect("the non-UTF-8 payload");
    assert_eq!(not_utf8.3, NOT_UTF8, "the raw payload is handed over");
    // Offsets committed for everything, after completion.
    let committed = committed(&broker.brokers(), &cfg.group_id, "bars", 3);
    let want_committed: BTreeMap<i32, Option<i64>> = counts.iter().map(|(&p, &n)| (p, Some(n))).collect();
    assert_eq!(committed, want_committed);

    // start = "committed" resumes after them: nothing again, then exactly the new bars.
    let resume = KafkaSourceConfig { start: "committed".into(), ..cfg.clone() };
    let again = run(resume.clone(), 2, None);
    assert_eq!((again.bars.len(), again.invalid.len()), (0, 0));
    let more = bars_for(3, 4, 3, T0 + 1_000_000);
    let msgs: Vec<Msg> = more
        .iter()
        .map(|(p, b)| Msg { partition: *p, key: b.symbol.as_str().to_owned(), payload: Some(w1(b)) })
        .collect();
    produce(&broker.brokers(), "bars", &msgs);
    let third = run(resume, 2, None);
    assert_eq!(sorted(third.bars.iter().map(|(_, _, b)| *b).collect()), sorted(more.iter().map(|(_, b)| *b).collect()));
}

#[test]
fn more_workers_than_partitions_still_complete() {
    let broker = Broker::start();
    broker.create_topic("few", 2);
    let valid = bars_for(4, 10, 2, T0);
    let msgs: Vec<Msg> = valid
        .iter()
        .map(|(p, b)| Msg { partition: *p, key: b.symbol.as_str().to_owned(), payload: Some(w1(b)) })
        .collect();
    let counts = produce(&broker.brokers(), "few", &msgs);
    let cfg = config(&broker, "few");
    let out = run(cfg.clone(), 3, None);
    assert_eq!(out.partitions(), BTreeMap::from([(0, vec![0]), (1, vec![1]), (2, vec![])]));
    assert!(out.bars.iter().all(|(w, _, _)| *w < 2), "worker 2 owns nothing and emits nothing");
    assert_eq!(sorted(out.bars.iter().map(|(_, _, b)| *b).collect()), sorted(valid.iter().map(|(_, b)| *b).collect()));
    let want: BTreeMap<i32, Option<i64>> = counts.iter().map(|(&p, &n)| (p, Some(n))).collect();
    assert_eq!(committed(&broker.brokers(), &cfg.group_id, "few", 2), want);
}

#[test]
fn an_empty_partition_does_not_stall_the_watermark() {
    let broker = Broker::start();
    broker.create_topic("quiet", 2);
    // Everything on partition 0 (worker 0); partition 1 (worker 1's only one) stays empty.
    let valid = bars_for(3, 20, 1, T0);
    let newest = valid.iter().map(|(_, b)| b.ts).max().unwrap() as u64;
    let msgs: Vec<Msg> = valid
        .iter()
        .map(|(_, b)| Msg { partition: 0, key: b.symbol.as_str().to_owned(), payload: Some(w1(b)) })
        .collect();
    produce(&broker.brokers(), "quiet", &msgs);
    // Not stop-at-end: the source would run forever; each worker stops it once the output
    // frontier reached the newest event time. Without the idle rule worker 1, which never
    // sees data, would hold the frontier at 0 and the run would hit its deadline.
    let cfg = KafkaSourceConfig { stop_at_end: false, idle_timeout: "300ms".into(), ..config(&broker, "quiet") };
    let out = run(cfg, 2, Some(newest));
    assert!(out.max_frontier >= newest, "frontier {} < newest event time {newest}", out.max_frontier);
    assert_eq!(out.bars.len(), valid.len());
    assert_eq!(out.partitions(), BTreeMap::from([(0, vec![0]), (1, vec![1])]));
}

/// Resuming inside a record batch (a checkpoint's or a committed offset) reads exactly from
/// that offset: Kafka answers with the whole batch and the client drops what is below it;
/// Tansu 0.6 answers with the *next* batch (and re-sends old batches at the end), which the
/// source detects and corrects by seeking back and dropping what was already read.
#[test]
fn resuming_inside_a_record_batch_reads_exactly_from_the_offset() {
    let broker = Broker::start();
    broker.create_topic("mid", 1);
    let bars = bars_for(12, 2500, 1, T0);
    let msgs: Vec<Msg> =
        bars.iter().map(|(p, b)| Msg { partition: *p, key: b.symbol.to_string(), payload: Some(w1(b)) }).collect();
    produce(&broker.brokers(), "mid", &msgs);
    let mut cfg = config(&broker, "mid");
    cfg.start = "committed".into();
    cfg.max_batch = 4096;
    for resume in [12_345i64, 29_990] {
        cfg.group_id = format!("mid-{resume}");
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker.brokers())
            .set("group.id", &cfg.group_id)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("mid", 0, Offset::Offset(resume)).unwrap();
        c.commit(&tpl, rdkafka::consumer::CommitMode::Sync).expect("committing the resume offset");
        let got: Vec<Bar> = run(cfg.clone(), 1, None).bars.into_iter().map(|(_, _, b)| b).collect();
        let want: Vec<Bar> = bars[resume as usize..].iter().map(|(_, b)| *b).collect();
        assert_eq!(got.len(), want.len(), "resumed at {resume}: bars read");
        assert!(got == want, "resumed at {resume}: the bars from the offset on, once each, in order");
    }
}

/// Produces `bars` to `topic`, all on partition `partition`.
fn produce_bars(broker: &Broker, topic: &str, partition: i32, bars: &[Bar]) -> BTreeMap<i32, i64> {
    let msgs: Vec<Msg> =
        bars.iter().map(|b| Msg { partition, key: b.symbol.as_str().to_owned(), payload: Some(w1(b)) }).collect();
    produce(&broker.brokers(), topic, &msgs)
}

/// `topics`: every listed topic read, each (topic, partition) by exactly one worker (the listed
/// rule deals them round-robin, in configured order), every partition's offset committed.
#[test]
fn listed_topics_are_all_read_each_partition_by_one_worker() {
    let broker = Broker::start();
    let names = ["sym.AAA", "sym.BBB", "sym.CCC", "sym.DDD", "sym.EEE"];
    let mut want = Vec::new();
    for (i, name) in names.iter().enumerate() {
        broker.create_topic(name, 1);
        let bars: Vec<Bar> = (0..25).map(|k| bar(&name[4..], T0 + k * 1_000, 10.0 + i as f64)).collect();
        produce_bars(&broker, name, 0, &bars);
        want.extend(bars);
    }
    let cfg = KafkaSourceConfig {
        topic: None,
        topics: Some(names.iter().map(|s| s.to_string()).collect()),
        group_id: "listed".into(),
        ..config(&broker, "unused")
    };
    let out = run(cfg, 2, None);
    assert_eq!(sorted(out.bars.iter().map(|(_, _, b)| *b).collect()), sorted(want));
    let t = |n: &str| (n.to_owned(), 0);
    assert_eq!(
        out.owned,
        BTreeMap::from([(0, vec![t("sym.AAA"), t("sym.CCC"), t("sym.EEE")]), (1, vec![t("sym.BBB"), t("sym.DDD")])])
    );
    for (w, _, b) in &out.bars {
        let topic = format!("sym.{}", b.symbol.as_str());
        assert!(out.owned[w].contains(&(topic, 0)), "{} read by worker {w}", b.symbol.as_str());
    }
    for name in names {
        assert_eq!(committed(&broker.brokers(), "listed", name, 1), BTreeMap::from([(0, Some(25))]), "{name}");
    }
}

/// `topic-pattern`: the topics matching at start are read, and a topic created while running
/// that matches is found by the next refresh and read from its beginning, by exactly one
/// worker; a topic that does not match is not read.
#[test]
fn a_topic_created_mid_run_that_matches_the_pattern_is_consumed() {
    let broker = Broker::start();
    broker.create_topic("live.a", 2);
    broker.create_topic("other", 1);
    let first = bars_for(4, 10, 2, T0);
    for p in 0..2 {
        let on_p: Vec<Bar> = first.iter().filter(|(q, _)| *q == p).map(|(_, b)| *b).collect();
        produce_bars(&broker, "live.a", p, &on_p);
    }
    produce_bars(&broker, "other", 0, &[bar("NOPE", T0, 1.0)]);
    let later: Vec<Bar> = (0..30).map(|k| bar("LATE", T0 + 5_000_000 + k * 1_000, 50.0)).collect();
    let cfg = KafkaSourceConfig {
        topic: None,
        topic_pattern: Some("^live\\.".into()),
        topic_refresh: "200ms".into(),
        stop_at_end: false,
        idle_timeout: "200ms".into(),
        group_id: "pattern".into(),
        ..config(&broker, "unused")
    };
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let total = first.len() + later.len();
    let runner = {
        let outcome = Arc::clone(&outcome);
        std::thread::spawn(move || run_into(&cfg, 2, Stop::BarsAndPartitions(total, 5), &outcome))
    };
    // Once everything of the first topic arrived, create the second one and fill it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while outcome.lock().unwrap().bars.len() < first.len() {
        assert!(Instant::now() < deadline, "the first topic was not read within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    broker.create_topic("live.b", 3);
    produce_bars(&broker, "live.b", 1, &later);
    runner.join().expect("the run");
    let out = Arc::try_unwrap(outcome).ok().expect("workers are done").into_inner().unwrap();

    let mut want: Vec<Bar> = first.iter().map(|(_, b)| *b).collect();
    want.extend(&later);
    assert_eq!(sorted(out.bars.iter().map(|(_, _, b)| *b).collect()), sorted(want), "both topics, every bar once");
    // Every partition of both topics read by exactly one worker; `other` by none.
    let mut all: Vec<(String, i32)> = out.owned.values().flatten().cloned().collect();
    all.sort();
    let want_parts: Vec<(String, i32)> = [("live.a", 0), ("live.a", 1), ("live.b", 0), ("live.b", 1), ("live.b", 2)]
        .map(|(t, p)| (t.to_owned(), p))
        .into();
    assert_eq!(all, want_parts);
    let reader_of_late = out.bars.iter().filter(|(_, _, b)| b.symbol.as_str() == "LATE").map(|(w, _, _)| *w);
    let owner = out.owned.iter().find(|(_, tp)| tp.contains(&("live.b".to_owned(), 1))).map(|(w, _)| *w);
    assert!(reader_of_late.clone().all(|w| Some(w) == owner), "live.b/1 read by its owner only");
    // The new topic's bars are in order (read from the beginning of their partition).
    let late_ts: Vec<i64> =
        out.bars.iter().filter(|(_, _, b)| b.symbol.as_str() == "LATE").map(|(_, _, b)| b.ts).collect();
    assert_eq!(late_ts, later.iter().map(|b| b.ts).collect::<Vec<_>>());
    assert_eq!(
        committed(&broker.brokers(), "pattern", "live.b", 3),
        BTreeMap::from([(0, None), (1, Some(30)), (2, None)])
    );
}
