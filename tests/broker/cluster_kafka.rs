//! Kafka → a real 2-process cluster → files, against a real Kafka-protocol broker (Tansu):
//! bars keyed by symbol on a 4-partition topic, a few invalid payloads among them. The cluster
//! (2 processes × 2 workers, `stop-at-end`) must write exactly what a 1×1 file replay of the same
//! bars writes — bars, candles, signal changes — dead-letter the invalid messages with their
//! offsets, and commit every partition's offset once done. And the same bars with one topic per
//! symbol, read as a `topics` list (1×1 and 2×2) and as a `topic-pattern` (2×2), write exactly
//! what one topic writes.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::cluster::{process_list, read_outputs, run_cluster};
use crate::support::kafka::{Broker, Msg, produce};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tickflow::sources::generator::{GeneratorConfig, MarketGenerator};
use tickflow_operators::Bar;

/// The canonical JSON payload with millisecond timestamps.
fn payload(b: &Bar) -> String {
    format!(
        r#"{{"symbol":"{}","timestamp":{},"open":{},"high":{},"low":{},"close":{},"volume":{}}}"#,
        b.symbol, b.ts, b.open, b.high, b.low, b.close, b.volume
    )
}

fn run(root: &Path, tag: &str, processes: usize, workers: usize, source: &str) -> BTreeMap<String, Vec<String>> {
    let out = root.join(format!("out-{tag}"));
    let cfg = format!(
        r#"
[cluster]
workers = {workers}
processes = [{}]
[status]
listen = "127.0.0.1:0"
{source}
[windows]
timeframes = ["5m"]
[sinks.file]
dir = "{}"
[checkpoint]
url = "{}"
"#,
        process_list(processes),
        out.display(),
        root.join(format!("checkpoints-{tag}")).display()
    );
    run_cluster(root, tag, processes, &cfg);
    read_outputs(&out)
}

#[test]
fn kafka_cluster_output_equals_file_replay_and_offsets_are_committed() {
    let _heavy = crate::support::heavy();
    let broker = Broker::start();
    broker.create_topic("bars", 4);
    let root = tempfile::tempdir().unwrap();

    let symbols = 19;
    let cfg = GeneratorConfig { symbols, seed: 11, records: None, ..GeneratorConfig::default() };
    let bars: Vec<Bar> = MarketGenerator::new(cfg).unwrap().take(symbols * 90).collect();
    // Partition by a hash of the key, as Kafka producers do; a symbol stays in one partition.
    let partition = |b: &Bar| (b.symbol.route_hash() % 4) as i32;
    let mut msgs: Vec<Msg> = bars
        .iter()
        .map(|b| Msg { partition: partition(b), key: b.symbol.to_string(), payload: Some(payload(b).into_bytes()) })
        .collect();
    msgs.insert(100, Msg { partition: 1, key: "BAD".into(), payload: Some(b"{\"symbol\": \"BAD\"".to_vec()) });
    msgs.insert(
        200,
        Msg {
            partition: 2,
            key: "NEG".into(),
            payload: Some(
                br#"{"symbol":"NEG","timestamp":1700000000000,"open":1,"high":1,"low":1,"close":1,"volume":-1}"#
                    .to_vec(),
            ),
        },
    );
    msgs.insert(300, Msg { partition: 3, key: "TOMB".into(), payload: None });
    let counts = produce(&broker.brokers(), "bars", &msgs);

    let file = root.path().join("bars.ndjson");
    std::fs::write(&file, bars.iter().map(|b| payload(b) + "\n").collect::<String>()).unwrap();

    let kafka_src = format!(
        "[source]\nkind = \"kafka\"\n[source.kafka]\nbrokers = \"{}\"\ntopic = \"bars\"\ngroup-id = \"e2e\"\nstop-at-end = true\n",
        broker.brokers()
    );
    let file_src = format!("[source]\nkind = \"file\"\n[source.file]\npaths = [\"{}\"]\n", file.display());
    let from_kafka = run(root.path(), "kafka-2x2", 2, 2, &kafka_src);
    let from_file = run(root.path(), "file-1x1", 1, 1, &file_src);

    assert_eq!(from_kafka["bars"].len(), bars.len(), "every valid bar once");
    // A transactional run (checkpoints on) writes no part for a kind without rows.
    let rows = |o: &BTreeMap<String, Vec<String>>, kind: &str| o.get(kind).cloned().unwrap_or_default();
    for kind in ["bars", "candles", "signal_changes", "late"] {
        assert!(rows(&from_kafka, kind) == rows(&from_file, kind), "{kind} differ between Kafka 2x2 and file 1x1");
    }
    let dead = &from_kafka["dead_letters"];
    assert_eq!(dead.len(), 3, "{dead:#?}");
    assert!(dead.iter().any(|d| d.contains("bars/1@")), "{dead:#?}");
    assert!(dead.iter().any(|d| d.contains("volume: -1 is negative")), "{dead:#?}");

    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", broker.brokers()).set("group.id", "e2e").create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..4 {
        tpl.add_partition("bars", p);
    }
    let committed = consumer.committed_offsets(tpl, std::time::Duration::from_secs(10)).unwrap();
    for p in 0..4 {
        let off = committed.find_partition("bars", p).unwrap().offset();
        assert_eq!(off, Offset::Offset(counts[&p]), "partition {p} committed offset");
    }
}

#[test]
fn a_topic_per_symbol_as_list_or_pattern_equals_one_topic_in_both_shapes() {
    let _heavy = crate::support::heavy();
    let broker = Broker::start();
    let root = tempfile::tempdir().unwrap();
    let symbols = 5;
    let cfg = GeneratorConfig { symbols, seed: 5, records: None, ..GeneratorConfig::default() };
    let bars: Vec<Bar> = MarketGenerator::new(cfg).unwrap().take(symbols * 120).collect();
    broker.create_topic("one", 4);
    let msg =
        |b: &Bar, partition: i32| Msg { partition, key: b.symbol.to_string(), payload: Some(payload(b).into_bytes()) };
    let one: Vec<Msg> = bars.iter().map(|b| msg(b, (b.symbol.route_hash() % 4) as i32)).collect();
    produce(&broker.brokers(), "one", &one);
    let mut names: Vec<String> = bars.iter().map(|b| format!("sym.{}", b.symbol)).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), symbols);
    for name in &names {
        broker.create_topic(name, 1);
        let of: Vec<Msg> = bars.iter().filter(|b| format!("sym.{}", b.symbol) == *name).map(|b| msg(b, 0)).collect();
        produce(&broker.brokers(), name, &of);
    }
    let src = |selection: &str, group: &str| {
        format!(
            "[source]\nkind = \"kafka\"\n[source.kafka]\nbrokers = \"{}\"\n{selection}\ngroup-id = \"{group}\"\nstop-at-end = true\n",
            broker.brokers()
        )
    };
    let list = format!("topics = [{}]", names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", "));
    let want = run(root.path(), "one-1x1", 1, 1, &src("topic = \"one\"", "one"));
    assert_eq!(want["bars"].len(), bars.len(), "every bar once from one topic");
    let runs = [
        ("list-1x1", 1, 1, src(&list, "list1")),
        ("list-2x2", 2, 2, src(&list, "list2")),
        ("pattern-2x2", 2, 2, src("topic-pattern = '^sym\\.'", "pattern")),
    ];
    let rows = |o: &BTreeMap<String, Vec<String>>, kind: &str| o.get(kind).cloned().unwrap_or_default();
    for (tag, processes, workers, source) in runs {
        let got = run(root.path(), tag, processes, workers, &source);
        for kind in ["bars", "candles", "signal_changes", "late", "dead_letters"] {
            let (g, w) = (rows(&got, kind), rows(&want, kind));
            let first = g.iter().zip(&w).position(|(a, b)| a != b);
            assert!(
                g == w,
                "{kind} differ between {tag} and one topic 1x1: {} vs {} rows; first difference at {first:?}: {:?} vs {:?}",
                g.len(),
                w.len(),
                first.map(|i| &g[i]),
                first.map(|i| &w[i])
            );
        }
    }
}
