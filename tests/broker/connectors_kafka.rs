//! The Nobitex connector against a real Kafka-protocol broker (Tansu, started by the test):
//! bars produced through the gateway's producer are read back exactly, keyed by symbol, in
//! the canonical form, one partition per symbol; invalid rows land on the dead-letter topic.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::connectors::*;
use crate::support::gateway::{Record, read_topic};
use tickflow::connectors::{BarSink, Exchange, KafkaSink, Poller, UreqFetch};
use tickflow::decode::decode_json_line;
use tickflow::kafka::encode_bar;
use tickflow_operators::{Bar, TimeBounds};

#[test]
fn polled_bars_are_read_back_exactly_keyed_by_symbol() {
    let broker = crate::support::kafka::Broker::start();
    broker.create_topic("bars", 3);
    broker.create_topic("bars.dlq", 1);
    let fake = FakeExchange::start(vec![
        Step::fixture("nobitex/btcirt_1m_page1.json"),
        Step::fixture("nobitex/btcirt_1m_page1.json"),
        Step::fixture("nobitex/btcirt_1m_page2_bad_row.json"),
        Step::fixture("nobitex/btcirt_1m_page2_bad_row.json"),
    ]);
    let cfg = nobitex_config(&fake.base_url(), &["BTCIRT", "ETHIRT"]).build().unwrap();
    let mut poller = Poller::new(cfg, UreqFetch::new(Duration::from_secs(5)), 7);
    let mut sink = KafkaSink::new(&broker.brokers(), "bars", "bars.dlq", Duration::from_secs(10)).unwrap();

    // Two pages per symbol, alternating: 9 bars and 1 dead letter each.
    let mut now = 1_704_067_200_000 + 630_000;
    let mut sent: BTreeMap<String, Vec<Bar>> = BTreeMap::new();
    for _ in 0..4 {
        let poll = poller.poll_once(now);
        assert!(poll.symbol.is_some(), "{poll:?}");
        sink.send(Exchange::Nobitex, &poll.bars, &poll.dead_letters, now).unwrap();
        for b in &poll.bars {
            sent.entry(b.symbol.as_str().to_string()).or_default().push(*b);
        }
        now = poll.next_poll_at;
    }
    sink.flush().unwrap();
    assert_eq!(sent.values().map(Vec::len).collect::<Vec<_>>(), [9, 9], "{sent:?}");

    let records = read_topic(&broker.brokers(), "bars", 3, 18, Duration::from_secs(30));
    assert_eq!(records.len(), 18, "{records:#?}");
    let mut got: BTreeMap<String, Vec<Bar>> = BTreeMap::new();
    let mut partition_of: BTreeMap<String, i32> = BTreeMap::new();
    for Record { partition, key, payload } in &records {
        let bar = decode_json_line(payload.as_bytes(), 1, &TimeBounds::default()).unwrap();
        let mut canonical = Vec::new();
        encode_bar(&bar, &mut canonical);
        assert_eq!(payload.as_bytes(), &canonical[..], "payload is not the canonical form");
        let symbol = bar.symbol.as_str().to_string();
        assert_eq!(key.as_deref(), Some(symbol.as_str()), "keyed by symbol");
        assert_eq!(*partition_of.entry(symbol.clone()).or_insert(*partition), *partition, "one partition per symbol");
        got.entry(symbol).or_default().push(bar);
    }
    // Exactly what was polled, in order, per symbol.
    assert_eq!(got, sent);

    let dead = read_topic(&broker.brokers(), "bars.dlq", 1, 2, Duration::from_secs(30));
    assert_eq!(dead.len(), 2, "{dead:#?}");
    let mut reasons: Vec<String> = dead
        .iter()
        .map(|Record { key, payload, .. }| {
            assert_eq!(*key, None);
            let v: serde_json::Value = serde_json::from_str(payload).unwrap();
            assert_eq!(
                (v["source"].as_str(), v["index"].as_u64(), v["field"].as_str()),
                (Some("nobitex"), Some(2), Some("high"))
            );
            assert_eq!(v["raw"].as_str().map(|r| r.contains("\"h\":21700000000")), Some(true), "{v}");
            v["reason"].as_str().unwrap().to_string()
        })
        .collect();
    reasons.sort();
    let rule = "high: 21700000000 is below max(open, close) = 21803000000 (rule: high >= max(open, close))";
    assert_eq!(reasons, [format!("BTCIRT: {rule}"), format!("ETHIRT: {rule}")]);
}
