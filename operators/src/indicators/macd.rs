//! MACD(fast, slow, signal), TA-Lib `MACD`: macd = EMA(fast) − EMA(slow), signal = EMA(signal)
//! of macd, hist = macd − signal; all three first appear at bar `slow + signal − 2`.
//!
//! TA-Lib's quirk, reproduced: the fast EMA is not seeded at bar fast−1 but at bar slow−1,
//! from the mean of the `fast` closes ending there, so both EMAs start together. The signal
//! EMA is seeded with the mean of the first `signal` macd values.

use serde::{Deserialize, Serialize};

use super::layout::{MacdParams, Solo, Step, get, put, value, value_bar};
use super::{Indicator, PeriodError, check_period, ema};
use crate::bar::Bar;
use crate::set::IndicatorSpec;

/// The three MACD lines at one bar.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MacdValue {
    /// EMA(fast) − EMA(slow).
    pub macd: f64,
    /// EMA(signal) of `macd`.
    pub signal: f64,
    /// `macd − signal`.
    pub hist: f64,
}

/// MACD over closes.
///
/// ```
/// use tickflow_operators::indicators::Macd;
/// let mut m = Macd::new(2, 3, 2).unwrap();
/// let out: Vec<_> = [1.0, 2.0, 3.0, 4.0, 5.0].into_iter().map(|x| m.next(x)).collect();
/// assert!(out[..3].iter().all(Option::is_none)); // first value at bar 3 + 2 - 2 = 3
/// let v = out[3].unwrap();
/// assert!((v.macd - 0.5).abs() < 1e-12 && v.hist.abs() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Macd {
    periods: (usize, usize, usize),
    solo: Solo,
}

impl Macd {
    /// MACD with `2 ≤ fast < slow` and `signal ≥ 1` (TA-Lib swaps fast and slow if reversed;
    /// here that is an error, so a typo in a config is not silently "fixed").
    pub fn new(fast: usize, slow: usize, signal: usize) -> Result<Macd, PeriodError> {
        let fast = check_period("macd fast", fast, 2)?;
        let slow = check_period("macd slow", slow, fast + 1)?;
        let signal = check_period("macd signal", signal, 1)?;
        Ok(Macd { periods: (fast, slow, signal), solo: Solo::new(IndicatorSpec::Macd(fast, slow, signal)) })
    }

    /// (fast, slow, signal).
    pub fn periods(&self) -> (usize, usize, usize) {
        self.periods
    }

    /// Feeds the next close.
    pub fn next(&mut self, x: f64) -> Option<MacdValue> {
        lines(self.solo.update(&value_bar(x, 0.0)))
    }
}

fn lines(out: [f64; 3]) -> Option<MacdValue> {
    let [macd, signal, hist] = out;
    value(macd).map(|macd| MacdValue { macd, signal, hist })
}

impl Indicator for Macd {
    type Output = MacdValue;
    fn update(&mut self, bar: &Bar) -> Option<MacdValue> {
        lines(self.solo.update(bar))
    }
}

/// MACD: three words, the slow, fast and signal EMAs. Until the slow EMA is seeded the fast
/// word sums the closes that seed the fast EMA (the `fast` closes ending at bar slow−1, added
/// oldest first as TA-Lib does), so no window of closes is kept.
#[inline]
pub(crate) fn step(m: &MacdParams, s: &Step<'_>, w: &mut [u64]) -> Option<[f64; 3]> {
    const FAST: usize = 1;
    let (fast_p, slow_p) = (m.fast as u64, m.slow as u64);
    let x = s.bar.close;
    let seeded = s.n >= slow_p;
    let slow = ema::step(slow_p as usize, m.ks, s.n, x, &mut w[0]);
    let fast = if seeded {
        ema::step(fast_p as usize, m.kf, fast_p, x, &mut w[FAST])
    } else {
        if s.n >= slow_p - fast_p {
            put(w, FAST, get(w, FAST) + x);
        }
        slow?; // the fast EMA is seeded together with the slow one
        let seed = get(w, FAST) / fast_p as f64;
        put(w, FAST, seed);
        Some(seed)
    };
    let macd = fast? - slow?;
    // The signal EMA has seen one macd value per bar since bar slow−1.
    let signal = ema::step(m.signal as usize, m.kg, s.n - (slow_p - 1), macd, &mut w[2])?;
    Some([macd, signal, macd - signal])
}
