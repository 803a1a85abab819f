//! Average true range, TA-Lib `ATR(n)`: the true range `max(h−l, |h−c₋₁|, |l−c₋₁|)` starts at
//! bar 1; ATR is seeded at bar n with the mean of TR 1..n, then Wilder-smoothed
//! `atr = (atr·(n−1) + tr)/n`.

use serde::{Deserialize, Serialize};

use super::{Indicator, PeriodError, check_period};
use crate::bar::Bar;

/// ATR(n) over bars.
///
/// ```
/// use tickflow_operators::{Bar, Symbol, indicators::{Atr, Indicator}};
/// let s = Symbol::new("X").unwrap();
/// let mut atr = Atr::new(2).unwrap();
/// let bars = [(10.0, 9.0, 9.5), (11.0, 9.5, 10.5), (10.5, 10.0, 10.2), (12.0, 10.0, 11.0)];
/// let out: Vec<_> = bars.iter().map(|&(h, l, c)| atr.update(&Bar::new(s, 0, c, h, l, c, 1.0))).collect();
/// // TR: -, 1.5, 0.5, 2.0 → seed (1.5+0.5)/2 = 1.0 at bar 2, then (1.0·1 + 2.0)/2 = 1.5
/// assert_eq!(out, vec![None, None, Some(1.0), Some(1.5)]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Atr {
    period: usize,
    prev_close: Option<f64>,
    ranges: usize,
    value: f64,
}

impl Atr {
    /// ATR with `period ≥ 1`.
    pub fn new(period: usize) -> Result<Atr, PeriodError> {
        let period = check_period("atr", period, 1)?;
        Ok(Atr { period, prev_close: None, ranges: 0, value: 0.0 })
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.period
    }

    /// True range of `bar` after a bar that closed at `prev_close` (TA-Lib `TRANGE`).
    pub fn true_range(bar: &Bar, prev_close: f64) -> f64 {
        let mut tr = bar.high - bar.low;
        let a = (prev_close - bar.high).abs();
        if a > tr {
            tr = a;
        }
        let b = (prev_close - bar.low).abs();
        if b > tr {
            tr = b;
        }
        tr
    }
}

impl Indicator for Atr {
    type Output = f64;
    fn update(&mut self, bar: &Bar) -> Option<f64> {
        let prev = self.prev_close.replace(bar.close)?;
        let tr = Atr::true_range(bar, prev);
        let n = self.period as f64;
        if self.ranges < self.period {
            self.ranges += 1;
            self.value += tr;
            if self.ranges < self.period {
                return None;
            }
            self.value /= n;
        } else {
            self.value *= n - 1.0;
            self.value += tr;
            self.value /= n;
        }
        Some(self.value)
    }
}
