//! Exact incremental technical indicators, one per file, following TA-Lib's conventions.
//!
//! Every indicator is a small state machine: [`Indicator::update`] takes the next bar of one
//! symbol (in event-time order) and returns `None` while the indicator warms up, never `0` or
//! `NaN` in its place. Updates are O(1) amortized and never allocate: buffers are sized from
//! the period when the indicator is built. State is `serde`-serializable for checkpoints.
//!
//! Each file holds the indicator's step function over a few words of state, and a public type
//! that runs it alone. An [`IndicatorSet`](crate::IndicatorSet) runs the same step functions
//! over one exact-size buffer per symbol (see `layout.rs`), sharing the closes window.
//!
//! Conventions (warm-up length, seeding, smoothing, zero-division) are TA-Lib 0.8's; each
//! file says which. Running sums are re-summed from their window every
//! [`RESYNC_EVERY`] updates, so floating-point drift stays bounded on unbounded streams.

mod atr;
mod bollinger;
mod donchian;
mod ema;
mod layout;
mod macd;
mod obv;
mod roc;
mod rsi;
mod sma;
mod vwap;

pub use atr::Atr;
pub use bollinger::{Bands, Bollinger};
pub use donchian::{Channel, Donchian, RollingExtreme};
pub use ema::Ema;
pub use macd::{Macd, MacdValue};
pub use obv::Obv;
pub use roc::Roc;
pub use rsi::Rsi;
pub use sma::Sma;
pub use vwap::{RollingVwap, Vwap};

pub(crate) use layout::Layout;

use crate::bar::Bar;

/// How many updates pass between two exact re-summations of a running window sum.
pub const RESYNC_EVERY: u32 = 4096;

/// An incremental indicator over one symbol's bars, fed in event-time order.
pub trait Indicator {
    /// What one update yields once warmed up (`f64`, or a struct for multi-line indicators).
    type Output: Copy;

    /// Consumes the next bar; `None` while warming up.
    fn update(&mut self, bar: &Bar) -> Option<Self::Output>;
}

/// Checks an indicator period given by a user: at least `min`.
pub(crate) fn check_period(name: &'static str, period: usize, min: usize) -> Result<usize, PeriodError> {
    if period < min || period > MAX_PERIOD {
        return Err(PeriodError { name, period, min });
    }
    Ok(period)
}

/// The largest period accepted (state is O(period) per symbol).
pub const MAX_PERIOD: usize = 100_000;

/// An indicator parameter outside its valid range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name}: period {period} is outside {min}..={max}", max = MAX_PERIOD)]
pub struct PeriodError {
    /// Which indicator.
    pub name: &'static str,
    /// The period given.
    pub period: usize,
    /// The smallest accepted.
    pub min: usize,
}
