//! Timely operators built on the pure logic of this crate.
//!
//! Time model: a record travels at the timely time of its source's *watermark* when it was
//! emitted (milliseconds since the epoch, `u64`), and carries its own event time in `bar.ts`.
//! An on-time bar has `bar.ts >= time`. So when an operator's input frontier passes `F`, every
//! on-time bar with `ts < F` has arrived: the operators here buffer bars, and release them in
//! event-time order once the frontier passes them ([`reorder`]).
//!
//! - [`enrich`]: per-bar indicators and signals, per symbol, in event-time order.
//! - [`alerts`]: run-time alert rules (a differential join of rules with the latest values
//!   per symbol) firing once per episode, with cooldowns.
//! - [`candles`]: event-time tumbling windows (candles, aggregates, candle indicators), closed
//!   by the watermark, corrected by late bars within the allowed lateness.
pub mod alerts;
pub mod candles;
pub mod enrich;
pub mod reorder;

pub use alerts::Alerts;
pub use candles::{CandleOut, Candles, WindowConfig};
pub use enrich::Enrich;

/// The timely timestamp of the application: `(epoch, watermark)`, ordered lexicographically.
///
/// The watermark is event time in ms since the Unix epoch. The epoch numbers checkpoints: a
/// source moves to epoch `k + 1` when checkpoint `k` is cut, so the frontier passing
/// `(k + 1, 0)` means every record read before the cut has been processed (see
/// `tickflow::checkpoint`). The operators here are generic over [`EventTime`], so they also
/// run on plain `u64` watermarks (the doc examples do).
pub type Time = (u64, u64);

/// A timely timestamp that carries an event-time watermark (ms since the Unix epoch).
pub trait EventTime: timely::progress::Timestamp + timely::order::TotalOrder + Copy {
    /// The watermark part, in ms.
    fn watermark(&self) -> u64;
    /// The same time (same epoch) with watermark `wm`.
    fn with_watermark(&self, wm: u64) -> Self;
}

impl EventTime for u64 {
    fn watermark(&self) -> u64 {
        *self
    }
    fn with_watermark(&self, wm: u64) -> Self {
        wm
    }
}

impl EventTime for (u64, u64) {
    fn watermark(&self) -> u64 {
        self.1
    }
    fn with_watermark(&self, wm: u64) -> Self {
        (self.0, wm)
    }
}

/// The event-time watermark of a frontier: the watermark of its least element (`None` when
/// the frontier is empty: the input is complete).
pub fn frontier_watermark<T: EventTime>(frontier: &timely::progress::frontier::MutableAntichain<T>) -> Option<u64> {
    frontier.frontier().first().map(EventTime::watermark)
}

/// The routing key of a bar: the stable hash of its symbol (same in every process).
pub fn route(bar: &crate::Bar) -> u64 {
    bar.symbol.route_hash()
}
