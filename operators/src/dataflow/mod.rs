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

use crate::time::Millis;

pub use alerts::Alerts;
pub use candles::{CandleOut, Candles, WindowConfig};
pub use enrich::Enrich;

/// The timely timestamp of the application: `(epoch, watermark)`, ordered lexicographically.
///
/// The watermark is event time in ms since the Unix epoch, stored through the
/// order-preserving [`watermark_of`](crate::time::watermark_of) map so that times before
/// 1970 (negative) are representable; [`EventTime::watermark`] gives it back in ms. The epoch numbers checkpoints: a
/// source moves to epoch `k + 1` when checkpoint `k` is cut, so the frontier passing
/// `(k + 1, 0)` means every record read before the cut has been processed (see
/// `tickflow::checkpoint`). The operators here are generic over [`EventTime`], so they also
/// run on plain `u64` watermarks (the doc examples do).
pub type Time = (u64, u64);

/// A timely timestamp that carries an event-time watermark (ms since the Unix epoch).
pub trait EventTime: timely::progress::Timestamp + timely::order::TotalOrder + Copy {
    /// The watermark part, in ms (negative before 1970).
    fn watermark(&self) -> Millis;
    /// The same time (same epoch) with watermark `ms`.
    fn with_watermark(&self, ms: Millis) -> Self;
}

/// Plain `u64` times are ms themselves (from 1970 on): the doc examples' times.
impl EventTime for u64 {
    fn watermark(&self) -> Millis {
        Millis::try_from(*self).unwrap_or(Millis::MAX)
    }
    fn with_watermark(&self, ms: Millis) -> Self {
        ms.max(0) as u64
    }
}

impl EventTime for (u64, u64) {
    fn watermark(&self) -> Millis {
        crate::time::ms_of_watermark(self.1)
    }
    fn with_watermark(&self, ms: Millis) -> Self {
        (self.0, crate::time::watermark_of(ms))
    }
}

/// The event-time watermark of a frontier: the watermark of its least element (`None` when
/// the frontier is empty: the input is complete).
pub fn frontier_watermark<T: EventTime>(frontier: &timely::progress::frontier::MutableAntichain<T>) -> Option<Millis> {
    frontier.frontier().first().map(EventTime::watermark)
}

/// The routing key of a bar: the stable hash of its symbol (same in every process).
pub fn route(bar: &crate::Bar) -> u64 {
    bar.symbol.route_hash()
}
