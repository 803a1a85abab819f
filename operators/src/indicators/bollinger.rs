//! Bollinger bands, TA-Lib `BBANDS(n, k, k)` with an SMA middle: middle = SMA(n),
//! upper/lower = middle ± k·σ with the population σ (divides by n), σ = 0 when the variance
//! is below 1e-14. First value at bar n−1.
//!
//! TA-Lib computes the variance as E[x²] − E[x]², which cancels catastrophically for large
//! prices (at 1e10 the squares are 1e20). Here the window's mean and sum of squared deviations
//! are updated with the sliding-window Welford recurrence, which is exact on flat series and
//! accurate to the deviations' scale; the results agree with TA-Lib within its own error.
//! The window itself is the set's ring of closes, shared with the middle band's SMA.

use serde::{Deserialize, Serialize};

use super::layout::{Solo, Step, get, put, value, value_bar};
use super::{Indicator, PeriodError, RESYNC_EVERY, check_period, sma};
use crate::bar::Bar;
use crate::set::IndicatorSpec;

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
    params: (usize, f64),
    solo: Solo,
}

impl Bollinger {
    /// Bands over `period ≥ 2` closes, `k` standard deviations wide (finite, ≥ 0).
    pub fn new(period: usize, k: f64) -> Result<Bollinger, PeriodError> {
        let period = check_period("bollinger", period, 2)?;
        if !(k.is_finite() && k >= 0.0) {
            return Err(PeriodError { name: "bollinger k (must be finite and >= 0)", period: 0, min: 0 });
        }
        Ok(Bollinger { params: (period, k), solo: Solo::new(IndicatorSpec::Bollinger(period, k)) })
    }

    /// (period, k).
    pub fn params(&self) -> (usize, f64) {
        self.params
    }

    /// Feeds the next close.
    pub fn next(&mut self, x: f64) -> Option<Bands> {
        bands(self.solo.update(&value_bar(x, 0.0)))
    }
}

fn bands(out: [f64; 3]) -> Option<Bands> {
    let [upper, middle, lower] = out;
    value(middle).map(|middle| Bands { upper, middle, lower })
}

impl Indicator for Bollinger {
    type Output = Bands;
    fn update(&mut self, bar: &Bar) -> Option<Bands> {
        bands(self.solo.update(bar))
    }
}

/// Bollinger(p, k): four words, the middle band's running sum, the window's mean and sum of
/// squared deviations, and how many of the latest closes are identical (a flat window has
/// σ = 0 exactly, whatever rounding residue the running sums hold). The window is the closes
/// ring, which must hold `p + 1` closes.
#[inline]
pub(crate) fn step(p: usize, k: f64, s: &Step<'_>, w: &mut [u64]) -> Option<[f64; 3]> {
    const SUM: usize = 0;
    const MEAN: usize = 1;
    const M2: usize = 2;
    const FLAT: usize = 3;
    let x = s.bar.close;
    let middle = sma::running_mean(p, s, w, SUM);
    let flat_run = if w[FLAT] > 0 && x == s.closes.back(1) { w[FLAT] + 1 } else { 1 };
    w[FLAT] = flat_run;
    let seen = s.n + 1;
    let (p64, n) = (p as u64, p as f64);
    let resync = |w: &mut [u64]| {
        let mean = s.closes.sum(p) / n;
        put(w, MEAN, mean);
        put(w, M2, s.closes.window(p).map(|x| (x - mean) * (x - mean)).sum());
    };
    if seen <= p64 {
        if seen == p64 {
            resync(w);
        }
    } else {
        let old = s.closes.back(p);
        let old_mean = get(w, MEAN);
        let mean = old_mean + (x - old) / n;
        put(w, MEAN, mean);
        put(w, M2, get(w, M2) + (x - old) * (x - mean + old - old_mean));
        // Re-summed exactly every RESYNC_EVERY evictions.
        if (seen - p64) % RESYNC_EVERY as u64 == 0 {
            resync(w);
        }
    }
    let middle = middle?;
    if flat_run >= p64 {
        put(w, MEAN, x);
        put(w, M2, 0.0);
    }
    let var = get(w, M2) / n;
    let sd = if var < 1e-14 { 0.0 } else { var.sqrt() };
    let width = k * sd;
    Some([middle + width, middle, middle - width])
}
