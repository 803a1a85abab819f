//! Exponential moving average, TA-Lib `EMA`: `k = 2/(n+1)`, seeded at bar n-1 with the SMA of
//! the first n values, then `ema = prev + k·(x − prev)` evaluated as a fused multiply-add.

use serde::{Deserialize, Serialize};

use super::layout::{Solo, value, value_bar};
use super::{Indicator, PeriodError, check_period};
use crate::bar::Bar;
use crate::set::IndicatorSpec;

/// EMA(n) over closes (or any value stream via [`Ema::next`]).
///
/// ```
/// use tickflow_operators::indicators::Ema;
/// let mut ema = Ema::new(3).unwrap(); // k = 0.5
/// let out: Vec<_> = [1.0, 2.0, 3.0, 5.0].into_iter().map(|x| ema.next(x)).collect();
/// assert_eq!(out, vec![None, None, Some(2.0), Some(3.5)]);
/// assert_eq!(ema.value(), Some(3.5));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ema {
    period: usize,
    solo: Solo,
}

impl Ema {
    /// EMA with `period ≥ 1`.
    pub fn new(period: usize) -> Result<Ema, PeriodError> {
        let period = check_period("ema", period, 1)?;
        Ok(Ema { period, solo: Solo::new(IndicatorSpec::Ema(period)) })
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.period
    }

    /// The current value, if warmed up.
    pub fn value(&self) -> Option<f64> {
        (self.solo.seen() >= self.period as u64).then(|| self.solo.cell(0))
    }

    /// Feeds the next value.
    pub fn next(&mut self, x: f64) -> Option<f64> {
        value(self.solo.update(&value_bar(x, 0.0))[0])
    }
}

impl Indicator for Ema {
    type Output = f64;
    fn update(&mut self, bar: &Bar) -> Option<f64> {
        value(self.solo.update(bar)[0])
    }
}

/// EMA(p) with smoothing `k` of a stream of which `seen` values came before `x`; the state
/// is one word: the sum of the seed values while warming up, then the EMA itself.
#[inline]
pub(crate) fn step(p: usize, k: f64, seen: u64, x: f64, w: &mut u64) -> Option<f64> {
    let mut value = f64::from_bits(*w);
    if seen < p as u64 {
        value += x;
        if seen + 1 < p as u64 {
            *w = value.to_bits();
            return None;
        }
        value /= p as f64;
    } else {
        value = (x - value).mul_add(k, value);
    }
    *w = value.to_bits();
    Some(value)
}
