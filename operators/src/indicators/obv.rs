//! On-balance volume, TA-Lib `OBV`: starts at bar 0's volume, adds the volume on a higher
//! close, subtracts it on a lower close; an unchanged close adds nothing.

use serde::{Deserialize, Serialize};

use super::Indicator;
use crate::bar::Bar;

/// OBV over bars. Has no warm-up.
///
/// ```
/// use tickflow_operators::indicators::Obv;
/// let mut obv = Obv::default();
/// let out: Vec<_> = [(10.0, 5.0), (11.0, 2.0), (11.0, 7.0), (9.0, 1.0)]
///     .into_iter().map(|(c, v)| obv.next(c, v)).collect();
/// assert_eq!(out, vec![5.0, 7.0, 7.0, 6.0]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Obv {
    prev_close: Option<f64>,
    value: f64,
}

impl Obv {
    /// Feeds the next close and volume.
    pub fn next(&mut self, close: f64, volume: f64) -> f64 {
        match self.prev_close.replace(close) {
            None => self.value = volume,
            Some(p) if close > p => self.value += volume,
            Some(p) if close < p => self.value -= volume,
            Some(_) => {}
        }
        self.value
    }
}

impl Indicator for Obv {
    type Output = f64;
    fn update(&mut self, bar: &Bar) -> Option<f64> {
        Some(self.next(bar.close, bar.volume))
    }
}
