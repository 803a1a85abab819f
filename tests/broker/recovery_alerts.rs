//! An alert fired just before a crash is delivered after the restart, with the same id.
//!
//! A 1-process cluster reads a fixed Kafka topic (Tansu) with one rule. The webhook answers
//! 503 at first, so the alert fires and is retried but not delivered; once checkpoints newer
//! than the firing are complete (so the restored state says it has fired and will not fire it
//! again), the process is killed with SIGKILL. Restarted with the webhook answering 200, the
//! notifier delivers it from its outbox: the receiver gets the same alert id.

use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::cluster::{process_list, spawn_cluster};
use crate::support::kafka::{Broker, Msg, produce};
use tickflow::alerts::{AlertsConfig, RuleDef, RuleStore};

const T0: i64 = 1_700_000_000_000;

fn newest_manifest(dir: &Path) -> Option<u64> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix("manifest-")?.strip_suffix(".json")?.parse().ok()
        })
        .max()
}

fn wait_until(what: &str, children: &mut [Child], mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        if Instant::now() > deadline || children.iter_mut().any(|c| c.try_wait().ok().flatten().is_some()) {
            for c in children.iter_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
            panic!("{what}: not within a minute (or the cluster exited)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_alert_fired_before_a_kill_is_delivered_after_the_restart_with_the_same_id() {
    let _heavy = crate::support::heavy();
    let broker = Broker::start();
    broker.create_topic("bars", 1);
    broker.create_topic("rules", 1);
    // AAA at 100, a crossing to 110 at bar 50, then 100 again.
    let msgs: Vec<Msg> = (0..150)
        .map(|i| {
            let px = if i == 50 { 110.0 } else { 100.0 };
            let ts = T0 + i * 1000;
            Msg {
                partition: 0,
                key: "AAA".into(),
                payload: Some(
                    format!(
                        r#"{{"symbol":"AAA","timestamp":{ts},"open":{px},"high":{px},"low":{px},"close":{px},"volume":1}}"#
                    )
                    .into_bytes(),
                ),
            }
        })
        .collect();
    produce(&broker.brokers(), "bars", &msgs);
    let ok = Arc::new(AtomicBool::new(false));
    let (hook, seen) = crate::support::webhook::receiver(ok.clone());
    let mut acfg = AlertsConfig::new(&broker.brokers());
    acfg.rules_topic = "rules".into();
    let store = RuleStore::start(&acfg).unwrap();
    let rule: RuleDef = serde_json::from_str(&format!(
        r#"{{"id":"above105","owner":"t","symbol":"AAA","condition":"price > 105","timeframe":"bar",
            "channel":{{"type":"webhook","url":"http://{hook}/hook"}},"cooldown":"0s"}}"#
    ))
    .unwrap();
    store.put(&rule).unwrap();

    let root = tempfile::tempdir().unwrap();
    let ck = root.path().join("ck");
    let cfg = format!(
        r#"
[cluster]
workers = 1
processes = [{}]
[status]
listen = "127.0.0.1:0"
[source]
kind = "kafka"
[source.kafka]
brokers = "{brokers}"
topic = "bars"
group-id = "alerts-recovery"
idle-timeout = "1s"
[windows]
timeframes = []
[sinks.file]
dir = "out"
[checkpoint]
url = "{}"
interval = "150ms"
[alerts]
brokers = "{brokers}"
rules-topic = "rules"
alerts-topic = ""
min-interval = "0s"
allowed-hosts = ["127.0.0.1"]
max-attempts = 1000
initial-backoff = "200ms"
max-backoff = "200ms"
dead-letter = "dead.ndjson"
outbox = "outbox.ndjson"
"#,
        process_list(1),
        ck.display(),
        brokers = broker.brokers(),
    );
    let cfg_path = root.path().join("cluster.toml");
    std::fs::write(&cfg_path, cfg).unwrap();

    // 1. Fired, refused by the webhook, covered by complete checkpoints: then SIGKILL.
    let mut children = spawn_cluster(&cfg_path, 1);
    wait_until("the alert is attempted", &mut children, || !seen.lock().unwrap().is_empty());
    let fired_id = seen.lock().unwrap()[0].0["id"].as_str().unwrap_or_default().to_string();
    assert!(!fired_id.is_empty(), "the webhook body carries the alert id");
    let after = newest_manifest(&ck).unwrap_or(0);
    wait_until("two more checkpoints", &mut children, || newest_manifest(&ck).is_some_and(|n| n >= after + 2));
    for c in &mut children {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    assert!(seen.lock().unwrap().iter().all(|(_, good)| !good), "nothing was delivered before the kill");

    // 2. Restarted from the newest checkpoint with the webhook accepting: delivered, same id.
    ok.store(true, Ordering::SeqCst);
    let mut children = spawn_cluster(&cfg_path, 1);
    wait_until("the alert is delivered after the restart", &mut children, || {
        seen.lock().unwrap().iter().any(|(body, good)| *good && body["id"] == fired_id.as_str())
    });
    for c in &children {
        let _ = std::process::Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
    }
    for mut c in children {
        assert!(c.wait().unwrap().success(), "the restarted cluster stops cleanly on SIGTERM");
    }
    let delivered: Vec<_> = seen.lock().unwrap().iter().filter(|(_, good)| *good).map(|(b, _)| b.clone()).collect();
    assert!(delivered.iter().all(|b| b["id"] == fired_id.as_str()), "only that alert fired: {delivered:?}");
}
