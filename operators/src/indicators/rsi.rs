//! Relative strength index, TA-Lib `RSI` (Wilder): first value at bar n; the first average
//! gain/loss is the plain mean of the first n changes, then `avg = (avg·(n−1) + x)/n`.
//! `RSI = 100·gain/(gain+loss)`, and 0 when `gain+loss` is within ±1e-14 of zero (TA-Lib's
//! choice: a flat series gives 0, not 50).

use serde::{Deserialize, Serialize};

use super::{Indicator, PeriodError, check_period};
use crate::bar::Bar;

/// RSI(n) over closes.
///
/// ```
/// use tickflow_operators::indicators::Rsi;
/// let mut rsi = Rsi::new(2).unwrap();
/// let out: Vec<_> = [1.0, 2.0, 3.0, 2.0].into_iter().map(|x| rsi.next(x)).collect();
/// // gains 1,1 then a loss of 1: avg gain (1·1+0)/2 = 0.5, avg loss (0·1+1)/2 = 0.5
/// assert_eq!(out, vec![None, None, Some(100.0), Some(50.0)]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rsi {
    period: usize,
    prev: Option<f64>,
    changes: usize,
    gain: f64,
    loss: f64,
}

impl Rsi {
    /// RSI with `period ≥ 2`.
    pub fn new(period: usize) -> Result<Rsi, PeriodError> {
        let period = check_period("rsi", period, 2)?;
        Ok(Rsi { period, prev: None, changes: 0, gain: 0.0, loss: 0.0 })
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.period
    }

    /// Feeds the next close.
    pub fn next(&mut self, x: f64) -> Option<f64> {
        let prev = self.prev.replace(x)?;
        let d = x - prev;
        let n = self.period as f64;
        self.changes += 1;
        if self.changes <= self.period {
            if d < 0.0 {
                self.loss -= d;
            } else {
                self.gain += d;
            }
            if self.changes < self.period {
                return None;
            }
            self.loss /= n;
            self.gain /= n;
        } else {
            self.changes = self.period + 1; // saturate: no overflow on endless streams
            self.loss *= n - 1.0;
            self.gain *= n - 1.0;
            if d < 0.0 {
                self.loss -= d;
            } else {
                self.gain += d;
            }
            self.loss /= n;
            self.gain /= n;
        }
        let total = self.gain + self.loss;
        Some(if total > -1e-14 && total < 1e-14 { 0.0 } else { 100.0 * (self.gain / total) })
    }
}

impl Indicator for Rsi {
    type Output = f64;
    fn update(&mut self, bar: &Bar) -> Option<f64> {
        self.next(bar.close)
    }
}
