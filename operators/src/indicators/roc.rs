//! Rate of change, TA-Lib `ROC(n)`: `(close / close₋ₙ − 1)·100`, first value at bar n; 0 when
//! the earlier close is 0 (TA-Lib's zero-division rule).

use serde::{Deserialize, Serialize};

use super::layout::{Solo, Step, value, value_bar};
use super::{Indicator, PeriodError, check_period};
use crate::bar::Bar;
use crate::set::IndicatorSpec;

/// ROC(n) over closes, in percent.
///
/// ```
/// use tickflow_operators::indicators::Roc;
/// let mut roc = Roc::new(2).unwrap();
/// let out: Vec<_> = [100.0, 50.0, 110.0, 100.0].into_iter().map(|x| roc.next(x)).collect();
/// assert_eq!(out, vec![None, None, Some(10.000000000000009), Some(100.0)]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Roc {
    solo: Solo,
}

impl Roc {
    /// ROC over `period ≥ 1` bars.
    pub fn new(period: usize) -> Result<Roc, PeriodError> {
        let period = check_period("roc", period, 1)?;
        Ok(Roc { solo: Solo::new(IndicatorSpec::Roc(period)) })
    }

    /// Feeds the next close.
    pub fn next(&mut self, x: f64) -> Option<f64> {
        value(self.solo.update(&value_bar(x, 0.0))[0])
    }
}

impl Indicator for Roc {
    type Output = f64;
    fn update(&mut self, bar: &Bar) -> Option<f64> {
        value(self.solo.update(bar)[0])
    }
}

/// ROC(p): no state of its own; the close p bars back is in the closes ring.
#[inline]
pub(crate) fn step(p: usize, s: &Step<'_>) -> Option<f64> {
    if s.n < p as u64 {
        return None;
    }
    let (x, then) = (s.bar.close, s.closes.back(p));
    Some(if then != 0.0 { (x / then - 1.0) * 100.0 } else { 0.0 })
}
