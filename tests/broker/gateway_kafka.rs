//! The gateway against a real Kafka-protocol broker (Tansu, started by the test): records
//! read back exactly and on the right partition, dead letters, broker down → 503 → recovery.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::cluster::free_port;
use crate::support::gateway::*;
use crate::support::kafka::Broker;
use crate::support::wait_for;
use tickflow::decode::decode_json_line;
use tickflow::gateway::Gateway;
use tickflow::kafka::encode_bar;
use tickflow::sources::generator::{GeneratorConfig, MarketGenerator, write_w1_line};
use tickflow_operators::{Bar, TimeBounds};

const NDJSON: (&str, &str) = ("content-type", "application/x-ndjson");
const JSON: (&str, &str) = ("content-type", "application/json");

fn bars(symbols: usize, records: u64, seed: u64) -> Vec<Bar> {
    let cfg = GeneratorConfig { symbols, records: Some(records), seed, ..GeneratorConfig::default() };
    MarketGenerator::new(cfg).unwrap().collect()
}

fn w1_ndjson(bars: &[Bar]) -> Vec<u8> {
    let mut s = String::new();
    for b in bars {
        write_w1_line(&mut s, b);
        s.push('\n');
    }
    s.into_bytes()
}

/// Decodes every payload and checks key and partition; returns the bars per symbol in
/// topic order.
fn check_records(records: &[Record], partitions: i32) -> BTreeMap<String, Vec<Bar>> {
    let mut by_symbol: BTreeMap<String, Vec<Bar>> = BTreeMap::new();
    for r in records {
        let bar = decode_json_line(r.payload.as_bytes(), 1, &TimeBounds::default())
            .unwrap_or_else(|e| panic!("payload {:?} does not decode: {e}", r.payload));
        let mut canonical = Vec::new();
        encode_bar(&bar, &mut canonical);
        assert_eq!(r.payload.as_bytes(), &canonical[..], "payload is not the canonical form");
        assert_eq!(r.key.as_deref(), Some(bar.symbol.as_str()), "keyed by symbol");
        assert_eq!(
            r.partition,
            murmur2_partition(bar.symbol.as_str().as_bytes(), partitions),
            "{}",
            bar.symbol.as_str()
        );
        by_symbol.entry(bar.symbol.as_str().to_string()).or_default().push(bar);
    }
    by_symbol
}

fn group(bars: &[Bar]) -> BTreeMap<String, Vec<Bar>> {
    let mut m: BTreeMap<String, Vec<Bar>> = BTreeMap::new();
    for b in bars {
        m.entry(b.symbol.as_str().to_string()).or_default().push(*b);
    }
    m
}

#[test]
fn produced_records_read_back_exactly_keyed_to_the_right_partition() {
    let stack = Stack::start(4, |_| {});
    let sent = bars(25, 500, 7);
    // Half as W1 NDJSON, half as a JSON array of canonical objects.
    let (a, b) = sent.split_at(250);
    let r = post(stack.addr(), "/ingest", &[NDJSON], &w1_ndjson(a));
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["accepted"], 250);
    let mut arr = b"[".to_vec();
    for (i, bar) in b.iter().enumerate() {
        if i > 0 {
            arr.push(b',');
        }
        encode_bar(bar, &mut arr);
    }
    arr.push(b']');
    let r = post(stack.addr(), "/ingest", &[JSON], &arr);
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["accepted"], 250);

    let got = read_topic(&stack.tansu.brokers(), "bars", 4, 500, Duration::from_secs(30));
    assert_eq!(got.len(), 500, "every bar exactly once");
    assert_eq!(check_records(&got, 4), group(&sent), "per-symbol order and values preserved");
    let dlq = read_topic(&stack.tansu.brokers(), "bars.dlq", 1, 0, Duration::from_secs(2));
    assert!(dlq.is_empty(), "{dlq:?}");
    assert_eq!(stack.gateway.requests(202), 2);
}

#[test]
fn mixed_batch_produces_good_records_once_and_dead_letters_the_bad_ones() {
    let stack = Stack::start(2, |_| {});
    let good = bars(3, 6, 11);
    let mut body = w1_ndjson(&good[..3]);
    body.extend_from_slice(
        b"{\"symbol\":\"BAD\",\"timestamp\":1700000000,\"open\":10,\"high\":9,\"low\":8,\"close\":10,\"volume\":1}\n",
    );
    body.extend_from_slice(&w1_ndjson(&good[3..]));
    body.extend_from_slice(b"not json at all\n");
    let r = post(stack.addr(), "/ingest", &[NDJSON], &body);
    assert_eq!(r.status, 400, "{}", r.body);
    let j = r.json();
    assert_eq!(
        (j["accepted"].as_u64(), j["rejected"].as_u64(), j["dead_lettered"].as_u64()),
        (Some(6), Some(2), Some(2))
    );
    assert_eq!(j["errors"][0]["index"], 3);
    assert_eq!(j["errors"][0]["field"], "high");
    assert_eq!(j["errors"][0]["reason"], "high: 9 is below max(open, close) = 10 (rule: high >= max(open, close))");
    assert_eq!(j["errors"][1]["index"], 7);

    // All-or-nothing: nothing reaches the bars topic, the bad record is still dead-lettered.
    let r = post(stack.addr(), "/ingest?all_or_nothing=true", &[NDJSON], &body);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["accepted"], 0);

    let got = read_topic(&stack.tansu.brokers(), "bars", 2, 6, Duration::from_secs(30));
    assert_eq!(check_records(&got, 2), group(&good), "good records exactly once");
    let dlq = read_topic(&stack.tansu.brokers(), "bars.dlq", 1, 4, Duration::from_secs(30));
    assert_eq!(dlq.len(), 4);
    let first: serde_json::Value = serde_json::from_str(&dlq[0].payload).unwrap();
    assert_eq!(first["index"], 3);
    assert_eq!(first["field"], "high");
    assert_eq!(first["source"], "gateway");
    assert!(first["raw"].as_str().unwrap().starts_with("{\"symbol\":\"BAD\""), "{first}");
    let second: serde_json::Value = serde_json::from_str(&dlq[1].payload).unwrap();
    assert_eq!(second["raw"], "not json at all");
    assert!(second["reason"].as_str().unwrap().starts_with("invalid JSON at column 1"), "{second}");
}

#[test]
fn broker_down_answers_503_then_recovers_without_loss() {
    // The gateway starts before any broker exists on its port.
    let port = free_port();
    let mut cfg = test_config(&format!("127.0.0.1:{port}"));
    cfg.request_timeout = "2s".into();
    let gateway = Gateway::start(&cfg).unwrap();
    let addr = gateway.local_addr();
    let sent = bars(5, 50, 3);
    let body = w1_ndjson(&sent);

    let r = post(addr, "/ingest", &[NDJSON], &body);
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.retry_after.as_deref(), Some("1"));
    assert!(r.json()["error"].as_str().unwrap().starts_with("Kafka broker unreachable"), "{}", r.body);
    assert_eq!(get(addr, "/ready").status, 503);
    assert_eq!(get(addr, "/health").status, 200);

    // The broker comes up; the client retries as told until it is accepted.
    let tansu = Broker::start_on(port);
    tansu.create_topic("bars", 3);
    tansu.create_topic("bars.dlq", 1);
    wait_for(Duration::from_secs(30), "gateway ready after broker start", || {
        (get(addr, "/ready").status == 200).then_some(())
    });
    let r = wait_for(Duration::from_secs(30), "a 202 after recovery", || {
        let r = post(addr, "/ingest", &[NDJSON], &body);
        assert!(r.status == 202 || r.status == 503, "{} {}", r.status, r.body);
        (r.status == 202).then_some(r)
    });
    assert_eq!(r.json()["accepted"], 50);
    let got = read_topic(&tansu.brokers(), "bars", 3, 50, Duration::from_secs(30));
    assert_eq!(check_records(&got, 3), group(&sent));

    // A paused broker: requests time out into 503, and resuming it brings 202 back.
    tansu.signal("-STOP");
    let more = bars(5, 10, 99);
    let r = wait_for(Duration::from_secs(30), "a 503 while paused", || {
        let r = post(addr, "/ingest", &[NDJSON], &w1_ndjson(&more));
        (r.status == 503).then_some(r)
    });
    assert_eq!(r.retry_after.as_deref(), Some("1"));
    tansu.signal("-CONT");
    wait_for(Duration::from_secs(60), "a 202 after resuming", || {
        let r = post(addr, "/ingest", &[NDJSON], &w1_ndjson(&more));
        assert!(r.status == 202 || r.status == 503, "{} {}", r.status, r.body);
        (r.status == 202).then_some(())
    });
    let got = read_topic(&tansu.brokers(), "bars", 3, 60, Duration::from_secs(30));
    let by = check_records(&got, 3);
    // At-least-once across client retries: every bar is there; a bar whose request timed
    // out may appear again.
    for bar in sent.iter().chain(&more) {
        assert!(by[bar.symbol.as_str()].contains(bar), "{bar:?} lost");
    }
    gateway.shutdown().unwrap();
}
