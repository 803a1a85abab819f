//! Exponential moving average, TA-Lib `EMA`: `k = 2/(n+1)`, seeded at bar n-1 with the SMA of
//! the first n values, then `ema = prev + k·(x − prev)` evaluated as a fused multiply-add.

use serde::{Deserialize, Serialize};

use super::{Indicator, PeriodError, check_period};
use crate::bar::Bar;

/// EMA(n) over closes (or any value stream via [`Ema::next`]).
///
/// ```
/// use tickflow_operators::indicators::Ema;
/// let mut ema = Ema::new(3).unwrap(); // k = 0.5
/// let out: Vec<_> = [1.0, 2.0, 3.0, 5.0].into_iter().map(|x| ema.next(x)).collect();
/// assert_eq!(out, vec![None, None, Some(2.0), Some(3.5)]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ema {
    period: usize,
    k: f64,
    seen: usize,
    /// Sum of the seed values while warming up, then the EMA itself.
    value: f64,
}

impl Ema {
    /// EMA with `period ≥ 1`.
    pub fn new(period: usize) -> Result<Ema, PeriodError> {
        let period = check_period("ema", period, 1)?;
        Ok(Ema::with_k(period, 2.0 / (period as f64 + 1.0)))
    }

    pub(crate) fn with_k(period: usize, k: f64) -> Ema {
        Ema { period, k, seen: 0, value: 0.0 }
    }

    /// An EMA already seeded with `seed` (used by MACD, whose seeds TA-Lib computes specially).
    pub(crate) fn seeded(period: usize, seed: f64) -> Ema {
        let mut e = Ema::with_k(period, 2.0 / (period as f64 + 1.0));
        e.seen = period;
        e.value = seed;
        e
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.period
    }

    /// The current value, if warmed up.
    pub fn value(&self) -> Option<f64> {
        (self.seen >= self.period).then_some(self.value)
    }

    /// Feeds the next value.
    pub fn next(&mut self, x: f64) -> Option<f64> {
        if self.seen < self.period {
            self.value += x;
            self.seen += 1;
            if self.seen < self.period {
                return None;
            }
            self.value /= self.period as f64;
        } else {
            self.value = (x - self.value).mul_add(self.k, self.value);
        }
        Some(self.value)
    }
}

impl Indicator for Ema {
    type Output = f64;
    fn update(&mut self, bar: &Bar) -> Option<f64> {
        self.next(bar.close)
    }
}
