//! Relative strength index, TA-Lib `RSI` (Wilder): first value at bar n; the first average
//! gain/loss is the plain mean of the first n changes, then `avg = (avg·(n−1) + x)/n`.
//! `RSI = 100·gain/(gain+loss)`, and 0 when `gain+loss` is within ±1e-14 of zero (TA-Lib's
//! choice: a flat series gives 0, not 50).

use serde::{Deserialize, Serialize};

use super::layout::{Solo, Step, get, put, value, value_bar};
use super::{Indicator, PeriodError, check_period};
use crate::bar::Bar;
use crate::set::IndicatorSpec;

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
    solo: Solo,
}

impl Rsi {
    /// RSI with `period ≥ 2`.
    pub fn new(period: usize) -> Result<Rsi, PeriodError> {
        let period = check_period("rsi", period, 2)?;
        Ok(Rsi { period, solo: Solo::new(IndicatorSpec::Rsi(period)) })
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.period
    }

    /// Feeds the next close.
    pub fn next(&mut self, x: f64) -> Option<f64> {
        value(self.solo.update(&value_bar(x, 0.0))[0])
    }
}

impl Indicator for Rsi {
    type Output = f64;
    fn update(&mut self, bar: &Bar) -> Option<f64> {
        value(self.solo.update(bar)[0])
    }
}

/// RSI(p): two words, the average gain and loss (the changes so far are the bars seen − 1).
#[inline]
pub(crate) fn step(p: usize, s: &Step<'_>, w: &mut [u64]) -> Option<f64> {
    const GAIN: usize = 0;
    const LOSS: usize = 1;
    if s.n == 0 {
        return None;
    }
    let x = s.bar.close;
    let d = x - s.closes.back(1);
    let n = p as f64;
    let (mut gain, mut loss) = (get(w, GAIN), get(w, LOSS));
    // The number of changes, this one included.
    let changes = s.n;
    if changes <= p as u64 {
        if d < 0.0 {
            loss -= d;
        } else {
            gain += d;
        }
        if changes < p as u64 {
            put(w, GAIN, gain);
            put(w, LOSS, loss);
            return None;
        }
        loss /= n;
        gain /= n;
    } else {
        loss *= n - 1.0;
        gain *= n - 1.0;
        if d < 0.0 {
            loss -= d;
        } else {
            gain += d;
        }
        loss /= n;
        gain /= n;
    }
    put(w, GAIN, gain);
    put(w, LOSS, loss);
    let total = gain + loss;
    Some(if total > -1e-14 && total < 1e-14 { 0.0 } else { 100.0 * (gain / total) })
}
