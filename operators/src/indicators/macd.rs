//! MACD(fast, slow, signal), TA-Lib `MACD`: macd = EMA(fast) − EMA(slow), signal = EMA(signal)
//! of macd, hist = macd − signal; all three first appear at bar `slow + signal − 2`.
//!
//! TA-Lib's quirk, reproduced: the fast EMA is not seeded at bar fast−1 but at bar slow−1,
//! from the mean of the `fast` closes ending there, so both EMAs start together. The signal
//! EMA is seeded with the mean of the first `signal` macd values.

use serde::{Deserialize, Serialize};

use super::ema::Ema;
use super::ring::Ring;
use super::{Indicator, PeriodError, check_period};
use crate::bar::Bar;

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
    fast_period: usize,
    slow_period: usize,
    signal_period: usize,
    /// The last `fast` closes, kept only until the fast EMA is seeded.
    recent: Ring,
    slow: Ema,
    fast: Option<Ema>,
    /// Seeds the signal line from the first `signal` macd values.
    signal: Ema,
}

impl Macd {
    /// MACD with `2 ≤ fast < slow` and `signal ≥ 1` (TA-Lib swaps fast and slow if reversed;
    /// here that is an error, so a typo in a config is not silently "fixed").
    pub fn new(fast: usize, slow: usize, signal: usize) -> Result<Macd, PeriodError> {
        let fast = check_period("macd fast", fast, 2)?;
        let slow = check_period("macd slow", slow, fast + 1)?;
        let signal = check_period("macd signal", signal, 1)?;
        Ok(Macd {
            fast_period: fast,
            slow_period: slow,
            signal_period: signal,
            recent: Ring::new(fast),
            slow: Ema::new(slow)?,
            fast: None,
            signal: Ema::new(signal)?,
        })
    }

    /// (fast, slow, signal).
    pub fn periods(&self) -> (usize, usize, usize) {
        (self.fast_period, self.slow_period, self.signal_period)
    }

    /// Feeds the next close.
    pub fn next(&mut self, x: f64) -> Option<MacdValue> {
        let slow = self.slow.next(x);
        let fast = match &mut self.fast {
            Some(f) => f.next(x),
            None => {
                self.recent.push(x);
                slow?; // the fast EMA is seeded together with the slow one
                let seed = self.recent.sum() / self.fast_period as f64;
                self.fast = Some(Ema::seeded(self.fast_period, seed));
                self.recent = Ring::new(0); // release the seeding window
                Some(seed)
            }
        };
        let macd = fast? - slow?;
        let signal = self.signal.next(macd)?;
        Some(MacdValue { macd, signal, hist: macd - signal })
    }
}

impl Indicator for Macd {
    type Output = MacdValue;
    fn update(&mut self, bar: &Bar) -> Option<MacdValue> {
        self.next(bar.close)
    }
}
