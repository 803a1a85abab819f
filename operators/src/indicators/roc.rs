//! Rate of change, TA-Lib `ROC(n)`: `(close / close₋ₙ − 1)·100`, first value at bar n; 0 when
//! the earlier close is 0 (TA-Lib's zero-division rule).

use serde::{Deserialize, Serialize};

use super::ring::Ring;
use super::{Indicator, PeriodError, check_period};
use crate::bar::Bar;

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
    window: Ring,
}

impl Roc {
    /// ROC over `period ≥ 1` bars.
    pub fn new(period: usize) -> Result<Roc, PeriodError> {
        let period = check_period("roc", period, 1)?;
        Ok(Roc { window: Ring::new(period) })
    }

    /// Feeds the next close.
    pub fn next(&mut self, x: f64) -> Option<f64> {
        let then = self.window.push(x)?;
        Some(if then != 0.0 { (x / then - 1.0) * 100.0 } else { 0.0 })
    }
}

impl Indicator for Roc {
    type Output = f64;
    fn update(&mut self, bar: &Bar) -> Option<f64> {
        self.next(bar.close)
    }
}
