//! Alerts across a real 2-process cluster (2 × 1 worker) with the rules in a real Kafka-protocol
//! broker (Tansu): a scripted price path is replayed at a fixed rate; rules stored before the run
//! fire exactly where the path crosses (and recrosses) their thresholds, a rule for a symbol
//! that never crosses stays silent, and a rule added over HTTP while the cluster runs fires on
//! the next crossing. Alerts arrive on a local webhook receiver with stable ids.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::support::cluster::{free_port_pair, process_list, spawn_cluster, wait_all};
use crate::support::kafka::Broker;
use tickflow::alerts::{AlertsConfig, RuleDef, RuleStore};

const T0: i64 = 1_700_000_000_000;

fn rule(id: &str, symbol: &str, condition: &str, hook: SocketAddr) -> RuleDef {
    serde_json::from_str(&format!(
        r#"{{"id":"{id}","owner":"t","symbol":"{symbol}","condition":"{condition}","timeframe":"bar",
            "channel":{{"type":"webhook","url":"http://{hook}/hook"}},"cooldown":"0s"}}"#
    ))
    .unwrap()
}

/// AAA: 100 for 200 bars, then 106 (cross), 107 (stays), 104 (dips), 106 (recross), 100 × 100,
/// then 110 at bar 400 (for the rule added while running). BBB: flat at 50.
fn write_path(path: &Path) -> Vec<(i64, f64)> {
    let mut aaa = vec![100.0; 200];
    aaa.extend([106.0, 107.0, 104.0, 106.0]);
    aaa.extend(vec![100.0; 196]);
    aaa.extend([110.0, 100.0, 100.0, 100.0, 100.0]);
    let mut text = String::new();
    let mut out = Vec::new();
    for (i, p) in aaa.iter().enumerate() {
        let ts = T0 + i as i64 * 1000;
        for (sym, px) in [("AAA", *p), ("BBB", 50.0)] {
            text.push_str(&format!(
                r#"{{"symbol":"{sym}","timestamp":{ts},"open":{px},"high":{px},"low":{px},"close":{px},"volume":1}}"#
            ));
            text.push('\n');
        }
        out.push((ts, *p));
    }
    std::fs::write(path, text).unwrap();
    out
}

#[test]
fn rules_fire_exactly_on_crossings_across_two_processes() {
    let _heavy = crate::support::heavy();
    let broker = Broker::start();
    broker.create_topic("rules", 1);
    broker.create_topic("alerts", 1);
    let (hook, got) = crate::support::webhook::receiver(Arc::new(AtomicBool::new(true)));
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("path.ndjson");
    let path = write_path(&input);

    let mut acfg = AlertsConfig::new(&broker.brokers());
    acfg.rules_topic = "rules".into();
    acfg.alerts_topic = "alerts".into();
    let store = RuleStore::start(&acfg).unwrap();
    store.put(&rule("above105", "AAA", "price > 105", hook)).unwrap();
    store.put(&rule("never", "BBB", "price > 60", hook)).unwrap();

    let status = free_port_pair();
    let cfg = format!(
        r#"
[cluster]
workers = 1
processes = [{}]
[status]
listen = "127.0.0.1:{status}"
[source]
kind = "file"
[source.file]
paths = ["{}"]
rate = 100
[windows]
timeframes = []
[alerts]
brokers = "{}"
rules-topic = "rules"
alerts-topic = "alerts"
min-interval = "0s"
allowed-hosts = ["127.0.0.1"]
dead-letter = "{}"
"#,
        process_list(2),
        input.display(),
        broker.brokers(),
        root.path().join("dead.ndjson").display()
    );
    let cfg_path = root.path().join("cluster.toml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let mut children = spawn_cluster(&cfg_path, 2);

    // While it runs (~4 s at 100 bars/s for 2 symbols), add a rule over HTTP on process 1's
    // status port: it must fire on the 110 at bar 400, long after it is stored.
    let deadline = Instant::now() + Duration::from_secs(30);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let url = format!("http://127.0.0.1:{}/rules", status + 1);
    let body = serde_json::to_string(&rule("above108", "AAA", "price > 108", hook)).unwrap();
    let mut last = String::new();
    loop {
        match agent.post(&url).header("content-type", "application/json").send(body.as_str()) {
            Ok(r) if r.status().as_u16() == 201 => break,
            outcome => {
                last = match outcome {
                    Ok(mut r) => format!("{} {}", r.status(), r.body_mut().read_to_string().unwrap_or_default()),
                    Err(e) => e.to_string(),
                };
                let exited: Vec<_> = children.iter_mut().filter_map(|c| c.try_wait().ok().flatten()).collect();
                if Instant::now() >= deadline || !exited.is_empty() {
                    for c in &mut children {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                    panic!("could not add a rule over HTTP; last answer: {last}; exited: {exited:?}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    let _ = last;
    let text = agent
        .get(&format!("http://127.0.0.1:{}/alerts/stats", status + 1))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let stats: serde_json::Value = serde_json::from_str(&text).unwrap();
    for key in ["queued", "attempts", "delivered", "retried", "dead_lettered", "overflowed"] {
        assert!(stats[key].is_u64(), "/alerts/stats lacks {key}: {stats}");
    }
    wait_all(children, "alerts cluster");

    // The run is over; deliveries were awaited by the notifier before the processes exited.
    let alerts: Vec<serde_json::Value> = got.lock().unwrap().iter().map(|(v, _)| v.clone()).collect();
    let fired: BTreeSet<(String, String, i64)> = alerts
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap().to_string(),
                a["symbol"].as_str().unwrap().to_string(),
                a["ts"].as_i64().unwrap(),
            )
        })
        .collect();
    let ts = |i: usize| path[i].0;
    let expected: BTreeSet<(String, String, i64)> = [
        ("above105".to_string(), "AAA".to_string(), ts(200)), // crosses
        ("above105".to_string(), "AAA".to_string(), ts(203)), // recrosses after dipping at 202
        ("above105".to_string(), "AAA".to_string(), ts(400)),
        ("above108".to_string(), "AAA".to_string(), ts(400)), // added over HTTP while running
    ]
    .into_iter()
    .collect();
    assert_eq!(fired, expected, "alerts: {alerts:#?}");
    assert_eq!(alerts.len(), expected.len(), "each alert delivered once: {alerts:#?}");
    let ids: BTreeSet<&str> = alerts.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), alerts.len(), "stable, distinct alert ids");
}
