//! What the integration tests share, one module per concern; both test binaries
//! (`tests/it`, hermetic, and `tests/broker`, against a real Kafka-protocol broker) include
//! this tree with `#[path = "../support/mod.rs"] mod support;`.
//!
//! - [`questdb`]: a fake QuestDB (`/write`, `/exec`) with scriptable answers.
//! - [`cluster`]: free ports, running real `tickflow run` processes, reading their files.
//! - [`kafka`]: the Tansu broker (one launcher), an exact producer.
//! - [`gateway`]: a gateway over a broker, a topic reader, a small HTTP client.
//! - [`connectors`]: a scripted exchange, fixtures, connector configs.
//! - [`generate`]: `tickflow generate` plans and their expected bars.
//! - [`rules`], [`webhook`]: an in-memory rule store, a webhook receiver.
#![allow(dead_code)]

pub mod cluster;
pub mod connectors;
pub mod gateway;
pub mod generate;
pub mod kafka;
pub mod questdb;
pub mod rules;
pub mod webhook;

use std::time::{Duration, Instant};

/// Polls `f` every 20 ms until it returns `Some` or `limit` passes.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One CPU-heavy multi-process cluster at a time within a test binary. The tests that run
/// such clusters used to be alone in their own binaries; on a 2-core machine two of them
/// at once (each several processes of 2 workers) starve each other.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds [`HEAVY`] for the guard's life (a test that failed holding it does not poison it).
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}
