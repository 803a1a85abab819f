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

/// The timely timestamp: event-time watermark in ms since the epoch.
pub type Time = u64;

/// The routing key of a bar: the stable hash of its symbol (same in every process).
pub fn route(bar: &crate::Bar) -> u64 {
    bar.symbol.route_hash()
}
