//! Simple moving average, TA-Lib `SMA`: the mean of the last `n` closes; first value at bar n-1.

use serde::{Deserialize, Serialize};

use super::ring::Ring;
use super::{Indicator, PeriodError, RESYNC_EVERY, check_period};
use crate::bar::Bar;

/// SMA(n) over closes (or any value stream via [`Sma::next`]).
///
/// ```
/// use tickflow_operators::indicators::Sma;
/// let mut sma = Sma::new(3).unwrap();
/// let out: Vec<_> = [1.0, 2.0, 3.0, 4.0].into_iter().map(|x| sma.next(x)).collect();
/// assert_eq!(out, vec![None, None, Some(2.0), Some(3.0)]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sma {
    period: usize,
    window: Ring,
    sum: f64,
    since_resync: u32,
}

impl Sma {
    /// SMA over `period ≥ 1` values.
    pub fn new(period: usize) -> Result<Sma, PeriodError> {
        let period = check_period("sma", period, 1)?;
        Ok(Sma { period, window: Ring::new(period), sum: 0.0, since_resync: 0 })
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.period
    }

    /// Feeds the next value.
    pub fn next(&mut self, x: f64) -> Option<f64> {
        // TA-Lib subtracts the trailing value before adding the new one.
        if let Some(old) = self.window.push(x) {
            self.sum -= old;
            self.sum += x;
            self.since_resync += 1;
            if self.since_resync >= RESYNC_EVERY {
                self.since_resync = 0;
                self.sum = self.window.sum();
            }
        } else {
            self.sum += x;
        }
        self.window.is_full().then(|| self.sum / self.period as f64)
    }
}

impl Indicator for Sma {
    type Output = f64;
    fn update(&mut self, bar: &Bar) -> Option<f64> {
        self.next(bar.close)
    }
}
