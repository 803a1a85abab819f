//! Average true range, TA-Lib `ATR(n)`: the true range `max(h−l, |h−c₋₁|, |l−c₋₁|)` starts at
//! bar 1; ATR is seeded at bar n with the mean of TR 1..n, then Wilder-smoothed
//! `atr = (atr·(n−1) + tr)/n`.

use serde::{Deserialize, Serialize};

use super::layout::{Solo, Step, get, put, value};
use super::{Indicator, PeriodError, check_period};
use crate::bar::Bar;
use crate::set::IndicatorSpec;

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
    solo: Solo,
}

impl Atr {
    /// ATR with `period ≥ 1`.
    pub fn new(period: usize) -> Result<Atr, PeriodError> {
        let period = check_period("atr", period, 1)?;
        Ok(Atr { period, solo: Solo::new(IndicatorSpec::Atr(period)) })
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
        value(self.solo.update(bar)[0])
    }
}

/// ATR(p): one word, the sum of the true ranges while warming up, then the ATR (the ranges
/// so far are the bars seen − 1).
#[inline]
pub(crate) fn step(p: usize, s: &Step<'_>, w: &mut [u64]) -> Option<f64> {
    if s.n == 0 {
        return None;
    }
    let tr = Atr::true_range(s.bar, s.closes.back(1));
    let n = p as f64;
    let mut value = get(w, 0);
    // The number of ranges, this one included.
    let ranges = s.n;
    if ranges <= p as u64 {
        value += tr;
        if ranges < p as u64 {
            put(w, 0, value);
            return None;
        }
        value /= n;
    } else {
        value *= n - 1.0;
        value += tr;
        value /= n;
    }
    put(w, 0, value);
    Some(value)
}
