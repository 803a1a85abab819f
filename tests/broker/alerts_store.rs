//! The rules topic on a real Kafka-protocol broker (Tansu): writes are visible in the
//! writer's mirror when they return, in another process's mirror, and after a restart;
//! a delete is a tombstone.

use std::time::{Duration, Instant};

use crate::support::kafka::Broker;
use tickflow::alerts::{AlertsConfig, RuleDef, RuleStore};

fn rule(id: &str, condition: &str) -> RuleDef {
    serde_json::from_str(&format!(
        r#"{{"id":"{id}","symbol":"AAPL","condition":"{condition}","channel":{{"type":"webhook","url":"http://h/x"}}}}"#
    ))
    .unwrap()
}

fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn rules_topic_is_shared_by_processes_and_survives_restarts() {
    let broker = Broker::start();
    broker.create_topic("rules", 2);
    let mut cfg = AlertsConfig::new(&broker.brokers());
    cfg.rules_topic = "rules".into();
    let a = RuleStore::start(&cfg).unwrap();
    let b = RuleStore::start(&cfg).unwrap(); // another process of the cluster
    a.put(&rule("r1", "price > 1")).unwrap();
    a.put(&rule("r2", "price < 1")).unwrap();
    b.put(&rule("r1", "price > 2")).unwrap(); // replace, via the other process
    a.delete("r2").unwrap();
    let ids = |s: &RuleStore| s.mirror().list().into_iter().map(|r| (r.id, r.condition)).collect::<Vec<_>>();
    let want = vec![("r1".to_string(), "price > 2".to_string())];
    eventually("both mirrors agree", || ids(&a) == want && ids(&b) == want);
    drop((a, b));
    let restarted = RuleStore::start(&cfg).unwrap();
    eventually("a restarted process reads the same rules", || ids(&restarted) == want);
    assert_eq!(restarted.mirror().invalid(), 0);
}
