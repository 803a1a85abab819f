//! Bollinger bands, TA-Lib `BBANDS(n, k, k)` with an SMA middle: middle = SMA(n),
//! upper/lower = middle ± k·σ with the population σ (divides by n), σ = 0 when the variance
//! is below 1e-14. First value at bar n−1.
//!
//! TA-Lib computes the variance as E[x²] − E[x]², which cancels catastrophically for large
//! prices (at 1e10 the squares are 1e20). Here the window's mean and sum of squared deviations
//! are updated with the sliding-window Welford recurrence, which is exact on flat series and
//! accurate to the deviations' scale; the results agree with TA-Lib within its own error.

use serde::{Deserialize, Serialize};

use super::ring::Ring;
use super::sma::Sma;
use super::{Indicator, PeriodError, RESYNC_EVERY, check_period};
use crate::bar::Bar;

/// Upper, middle and lower band at one bar.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bands {
    /// middle + k·σ.
    pub upper: f64,
    /// SMA(n).
    pub middle: f64,
    /// middle − k·σ.
    pub lower: f64,
}

/// Bollinger bands over closes.
///
/// ```
/// use tickflow_operators::indicators::Bollinger;
/// let mut bb = Bollinger::new(4, 2.0).unwrap();
/// let out: Vec<_> = [1.0, 2.0, 3.0, 4.0].into_iter().map(|x| bb.next(x)).collect();
/// let b = out[3].unwrap(); // mean 2.5, population σ = sqrt(1.25)
/// assert_eq!(b.middle, 2.5);
/// assert!((b.upper - (2.5 + 2.0 * 1.25f64.sqrt())).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bollinger {
    k: f64,
    sma: Sma,
    window: Ring,
    mean: f64,
    /// Sum of squared deviations from `mean` over the window.
    m2: f64,
    /// How many of the latest closes are identical (a flat window has σ = 0 exactly,
    /// whatever rounding residue the running sums hold).
    flat_run: usize,
    last: f64,
    since_resync: u32,
}

impl Bollinger {
    /// Bands over `period ≥ 2` closes, `k` standard deviations wide (finite, ≥ 0).
    pub fn new(period: usize, k: f64) -> Result<Bollinger, PeriodError> {
        let period = check_period("bollinger", period, 2)?;
        if !(k.is_finite() && k >= 0.0) {
            return Err(PeriodError { name: "bollinger k (must be finite and >= 0)", period: 0, min: 0 });
        }
        Ok(Bollinger {
            k,
            sma: Sma::new(period)?,
            window: Ring::new(period),
            mean: 0.0,
            m2: 0.0,
            flat_run: 0,
            last: 0.0,
            since_resync: 0,
        })
    }

    /// (period, k).
    pub fn params(&self) -> (usize, f64) {
        (self.sma.period(), self.k)
    }

    fn resync(&mut self) {
        let n = self.window.len() as f64;
        self.mean = self.window.sum() / n;
        let mean = self.mean;
        self.m2 = self.window.iter().map(|x| (x - mean) * (x - mean)).sum();
    }

    /// Feeds the next close.
    pub fn next(&mut self, x: f64) -> Option<Bands> {
        let middle = self.sma.next(x);
        self.flat_run = if self.flat_run > 0 && x == self.last { self.flat_run + 1 } else { 1 };
        self.last = x;
        match self.window.push(x) {
            None => {
                if self.window.is_full() {
                    self.resync();
                }
            }
            Some(old) => {
                let n = self.window.len() as f64;
                let old_mean = self.mean;
                self.mean += (x - old) / n;
                self.m2 += (x - old) * (x - self.mean + old - old_mean);
                self.since_resync += 1;
                if self.since_resync >= RESYNC_EVERY {
                    self.since_resync = 0;
                    self.resync();
                }
            }
        }
        let middle = middle?;
        if self.flat_run >= self.window.len() {
            self.mean = x;
            self.m2 = 0.0;
        }
        let var = self.m2 / self.window.len() as f64;
        let sd = if var < 1e-14 { 0.0 } else { var.sqrt() };
        let w = self.k * sd;
        Some(Bands { upper: middle + w, middle, lower: middle - w })
    }
}

impl Indicator for Bollinger {
    type Output = Bands;
    fn update(&mut self, bar: &Bar) -> Option<Bands> {
        self.next(bar.close)
    }
}
