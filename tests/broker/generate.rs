//! `tickflow generate` through the gateway and straight to Kafka (Tansu, started here):
//! every bar read back exactly once, on its symbol's partition.

use std::time::Duration;

use crate::support::gateway::{Stack, murmur2_partition, read_topic};
use crate::support::generate::{args, by_symbol, expected};
use tickflow::decode::decode_json_line;
use tickflow::generate::{GenerateArgs, run_plan};
use tickflow_operators::TimeBounds;

#[test]
fn through_the_gateway_and_straight_to_kafka_every_bar_arrives_once() {
    let stack = Stack::start(3, |c| c.tokens = vec!["generate-token-0123456789".into()]);
    let url = format!("http://{}", stack.addr());
    let plan = GenerateArgs {
        batch: 250,
        concurrency: 3,
        token: Some("generate-token-0123456789".into()),
        ..args(&url, 30, 3000)
    }
    .plan()
    .unwrap();
    let s = run_plan(&plan).unwrap();
    assert_eq!(s.confirmed, 3000);
    let got = read_topic(&stack.tansu.brokers(), "bars", 3, 3000, Duration::from_secs(60));
    let bars = got.iter().map(|r| decode_json_line(r.payload.as_bytes(), 1, &TimeBounds::default()).unwrap());
    // Concurrent requests may interleave symbols' batches, so compare as sets per symbol.
    let mut got_by = by_symbol(bars);
    for v in got_by.values_mut() {
        v.sort_by_key(|b| b.ts);
    }
    assert_eq!(got_by, by_symbol(expected(30, 3000)));

    // Without a token the gateway refuses, and generate says so.
    let err = run_plan(&args(&url, 3, 10).plan().unwrap()).unwrap_err().to_string();
    assert!(err.contains("HTTP 401"), "{err}");

    // Straight to Kafka: another topic, canonical records keyed by symbol, in order.
    stack.tansu.create_topic("direct", 2);
    let s = run_plan(&args(&format!("kafka://{}/direct", stack.tansu.brokers()), 20, 2000).plan().unwrap()).unwrap();
    assert_eq!(s.confirmed, 2000);
    let got = read_topic(&stack.tansu.brokers(), "direct", 2, 2000, Duration::from_secs(60));
    for r in &got {
        assert_eq!(r.partition, murmur2_partition(r.key.as_deref().unwrap().as_bytes(), 2));
    }
    let bars = got.iter().map(|r| decode_json_line(r.payload.as_bytes(), 1, &TimeBounds::default()).unwrap());
    assert_eq!(by_symbol(bars), by_symbol(expected(20, 2000)));
}
