//! Simple moving average, TA-Lib `SMA`: the mean of the last `n` closes; first value at bar n-1.

use serde::{Deserialize, Serialize};

use super::layout::{Solo, Step, get, put, value, value_bar};
use super::{Indicator, PeriodError, RESYNC_EVERY, check_period};
use crate::bar::Bar;
use crate::set::IndicatorSpec;

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
    solo: Solo,
}

impl Sma {
    /// SMA over `period ≥ 1` values.
    pub fn new(period: usize) -> Result<Sma, PeriodError> {
        let period = check_period("sma", period, 1)?;
        Ok(Sma { period, solo: Solo::new(IndicatorSpec::Sma(period)) })
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.period
    }

    /// Feeds the next value.
    pub fn next(&mut self, x: f64) -> Option<f64> {
        value(self.solo.update(&value_bar(x, 0.0))[0])
    }
}

impl Indicator for Sma {
    type Output = f64;
    fn update(&mut self, bar: &Bar) -> Option<f64> {
        value(self.solo.update(bar)[0])
    }
}

/// The running sum of the last `p` closes in `w[sum]`, kept as TA-Lib keeps it; the mean once
/// `p` closes were seen. The closes ring must hold `p + 1` closes.
#[inline]
pub(crate) fn running_mean(p: usize, s: &Step<'_>, w: &mut [u64], sum: usize) -> Option<f64> {
    let x = s.bar.close;
    let seen = s.n + 1;
    let p64 = p as u64;
    if seen <= p64 {
        put(w, sum, get(w, sum) + x);
    } else {
        // TA-Lib subtracts the trailing value before adding the new one.
        let old = s.closes.back(p);
        put(w, sum, get(w, sum) - old + x);
        // Re-summed exactly every RESYNC_EVERY evictions.
        if (seen - p64) % RESYNC_EVERY as u64 == 0 {
            put(w, sum, s.closes.sum(p));
        }
    }
    (seen >= p64).then(|| get(w, sum) / p as f64)
}

/// SMA(p): one word, the running sum.
#[inline]
pub(crate) fn step(p: usize, s: &Step<'_>, w: &mut [u64]) -> Option<f64> {
    running_mean(p, s, w, 0)
}
