//! Throughput measurements, not tests: ignored by default, print numbers, assert only
//! that every bar arrived. Run with
//! `cargo test --release --test gateway_throughput -- --ignored --nocapture --test-threads 1`.

use crate::support::gateway::*;
use tickflow::generate::{Format, GenerateArgs, ProgressMode, run_plan};

fn args(to: &str, count: u64) -> GenerateArgs {
    GenerateArgs { to: to.into(), count: Some(count), progress: ProgressMode::None, ..GenerateArgs::default() }
}

#[test]
#[ignore = "measurement; run by hand"]
fn measure_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w1.ndjson");
    let s = run_plan(&args(file.to_str().unwrap(), 2_000_000).plan().unwrap()).unwrap();
    assert_eq!(s.confirmed, 2_000_000);
    println!("generate → file (W1, 2M bars): {:.0} bars/s in {:.2} s", s.rate(), s.elapsed.as_secs_f64());

    let stack = Stack::start(4, |c| c.queue_capacity = 200_000);
    let url = format!("http://{}", stack.addr());
    let kafka = format!("kafka://{}/bars", stack.tansu.brokers());
    let s = run_plan(&args(&kafka, 500_000).plan().unwrap()).unwrap();
    assert_eq!(s.confirmed, 500_000);
    println!("generate → kafka (500k bars): {:.0} bars/s in {:.2} s", s.rate(), s.elapsed.as_secs_f64());

    for (batch, concurrency, count) in [(1000usize, 4usize, 500_000u64), (1, 16, 20_000)] {
        let plan = GenerateArgs { batch, concurrency, format: Format::Canonical, ..args(&url, count) }.plan().unwrap();
        let s = run_plan(&plan).unwrap();
        assert_eq!(s.confirmed, count);
        println!(
            "generate → gateway (batch {batch}, {concurrency} concurrent, {count} bars): {:.0} bars/s in {:.2} s",
            s.rate(),
            s.elapsed.as_secs_f64()
        );
    }
}
