//! On-balance volume, TA-Lib `OBV`: starts at bar 0's volume, adds the volume on a higher
//! close, subtracts it on a lower close; an unchanged close adds nothing.

use serde::{Deserialize, Serialize};

use super::Indicator;
use super::layout::{Solo, Step, get, put, value_bar};
use crate::bar::Bar;
use crate::set::IndicatorSpec;

/// OBV over bars. Has no warm-up.
///
/// ```
/// use tickflow_operators::indicators::Obv;
/// let mut obv = Obv::default();
/// let out: Vec<_> = [(10.0, 5.0), (11.0, 2.0), (11.0, 7.0), (9.0, 1.0)]
///     .into_iter().map(|(c, v)| obv.next(c, v)).collect();
/// assert_eq!(out, vec![5.0, 7.0, 7.0, 6.0]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Obv {
    solo: Solo,
}

impl Default for Obv {
    fn default() -> Self {
        Obv { solo: Solo::new(IndicatorSpec::Obv) }
    }
}

impl Obv {
    /// Feeds the next close and volume.
    pub fn next(&mut self, close: f64, volume: f64) -> f64 {
        self.solo.update(&value_bar(close, volume))[0]
    }
}

impl Indicator for Obv {
    type Output = f64;
    fn update(&mut self, bar: &Bar) -> Option<f64> {
        Some(self.solo.update(bar)[0])
    }
}

/// OBV: one word, the running value (the previous close is in the closes ring).
#[inline]
pub(crate) fn step(s: &Step<'_>, w: &mut [u64]) -> f64 {
    let (close, volume) = (s.bar.close, s.bar.volume);
    let mut value = get(w, 0);
    if s.n == 0 {
        value = volume;
    } else {
        let p = s.closes.back(1);
        if close > p {
            value += volume;
        } else if close < p {
            value -= volume;
        }
    }
    put(w, 0, value);
    value
}
