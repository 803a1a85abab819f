//! A real 2-process cluster (two `tickflow run` processes on loopback) writing to a fake
//! QuestDB over ILP/HTTP: the tables are created first, every bar arrives exactly once as a
//! valid line, and a second run of the same input writes exactly the same rows (which QuestDB's
//! DEDUP UPSERT KEYS turn into an idempotent replay).

use std::path::Path;

use crate::support::cluster::{process_list, run_cluster};
use crate::support::questdb::Fake;
use influxdb_line_protocol::parse_lines;
use tickflow::sources::generator::{GeneratorConfig, MarketGenerator};

fn run_to_questdb(root: &Path, input: &Path, questdb: std::net::SocketAddr, tag: &str) {
    let cfg = format!(
        r#"
[cluster]
workers = 2
processes = [{}]
[status]
listen = "127.0.0.1:0"
[source]
kind = "file"
[source.file]
paths = ["{}"]
[windows]
timeframes = ["5m"]
[sinks.questdb]
addr = "{questdb}"
max-delay = "10ms"
"#,
        process_list(2),
        input.display()
    );
    run_cluster(root, &format!("cluster-{tag}"), 2, &cfg);
}

/// (table, rest of the line) for every accepted line, sorted.
fn rows(fake: &Fake) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = fake
        .accepted()
        .into_iter()
        .map(|l| {
            let (table, rest) = l.split_once(',').unwrap();
            (table.to_string(), rest.to_string())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn two_process_cluster_writes_every_row_once_and_replays_identically() {
    let _heavy = crate::support::heavy();
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("in.ndjson");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    let n = 23 * 60;
    MarketGenerator::new(GeneratorConfig { symbols: 23, seed: 3, records: None, ..GeneratorConfig::default() })
        .unwrap()
        .write_ndjson(&mut f, n)
        .unwrap();
    drop(f);

    let fake = Fake::start(vec![]);
    run_to_questdb(root.path(), &input, fake.addr, "a");
    let ddl = fake.state.lock().unwrap().ddl.clone();
    for table in ["bars", "candles", "aggregates", "signal_changes", "dead_letters"] {
        assert!(
            ddl.iter().any(|q| q.contains(&format!("CREATE TABLE IF NOT EXISTS {table} "))),
            "no DDL for {table}: {ddl:#?}"
        );
    }
    assert!(ddl.iter().any(|q| q.contains("DEDUP UPSERT KEYS(ts, symbol)")), "{ddl:#?}");
    let first = rows(&fake);
    let bars: Vec<_> = first.iter().filter(|(t, _)| t == "bars").collect();
    assert_eq!(bars.len(), n, "every bar written exactly once");
    let mut keys: Vec<_> =
        bars.iter().map(|(_, rest)| (rest.split(' ').next().unwrap(), rest.rsplit(' ').next().unwrap())).collect();
    keys.dedup();
    assert_eq!(keys.len(), n, "no duplicate (symbol, ts) key");
    assert!(first.iter().any(|(t, _)| t == "candles"));
    assert!(first.iter().any(|(t, _)| t == "aggregates"));
    for line in fake.accepted() {
        let parsed: Vec<_> = parse_lines(&line).collect();
        assert!(parsed.iter().all(Result::is_ok), "unparseable line {line:?}");
    }

    let again = Fake::start(vec![]);
    run_to_questdb(root.path(), &input, again.addr, "b");
    assert!(rows(&again) == first, "a replay writes exactly the same rows");
}
