//! Volume-weighted average price over the typical price `(h+l+c)/3` (not in TA-Lib).
//! [`Vwap`] is cumulative from the first bar with no session reset; [`RollingVwap`] covers the
//! last n bars. Both yield no value while their volume sum is 0.

use serde::{Deserialize, Serialize};

use super::ring::Ring;
use super::{Indicator, PeriodError, RESYNC_EVERY, check_period};
use crate::bar::Bar;

/// Cumulative VWAP: `Σ(tp·v) / Σv` since the first bar.
///
/// ```
/// use tickflow_operators::{Bar, Symbol, indicators::{Indicator, Vwap}};
/// let s = Symbol::new("X").unwrap();
/// let mut vwap = Vwap::default();
/// assert_eq!(vwap.update(&Bar::new(s, 0, 3.0, 3.0, 3.0, 3.0, 0.0)), None); // no volume yet
/// assert_eq!(vwap.update(&Bar::new(s, 0, 3.0, 3.0, 3.0, 3.0, 1.0)), Some(3.0));
/// assert_eq!(vwap.update(&Bar::new(s, 0, 6.0, 6.0, 6.0, 6.0, 2.0)), Some(5.0));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Vwap {
    pv: f64,
    v: f64,
}

impl Indicator for Vwap {
    type Output = f64;
    fn update(&mut self, bar: &Bar) -> Option<f64> {
        self.pv += bar.typical_price() * bar.volume;
        self.v += bar.volume;
        (self.v != 0.0).then(|| self.pv / self.v)
    }
}

/// VWAP over the last n bars; first value at bar n−1.
///
/// ```
/// use tickflow_operators::{Bar, Symbol, indicators::{Indicator, RollingVwap}};
/// let s = Symbol::new("X").unwrap();
/// let mut vwap = RollingVwap::new(2).unwrap();
/// let mut feed = |p: f64, v: f64| vwap.update(&Bar::new(s, 0, p, p, p, p, v));
/// assert_eq!(feed(1.0, 1.0), None);
/// assert_eq!(feed(4.0, 1.0), Some(2.5));
/// assert_eq!(feed(10.0, 2.0), Some(8.0)); // (4·1 + 10·2) / 3
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollingVwap {
    period: usize,
    pvs: Ring,
    vs: Ring,
    pv: f64,
    v: f64,
    /// How many bars in the window have a non-zero volume (Σv of zeros can leave a residue).
    nonzero: u32,
    since_resync: u32,
}

impl RollingVwap {
    /// Rolling VWAP over `period ≥ 1` bars.
    pub fn new(period: usize) -> Result<RollingVwap, PeriodError> {
        let period = check_period("vwap", period, 1)?;
        Ok(RollingVwap {
            period,
            pvs: Ring::new(period),
            vs: Ring::new(period),
            pv: 0.0,
            v: 0.0,
            nonzero: 0,
            since_resync: 0,
        })
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.period
    }
}

impl Indicator for RollingVwap {
    type Output = f64;
    fn update(&mut self, bar: &Bar) -> Option<f64> {
        let pv = bar.typical_price() * bar.volume;
        if bar.volume != 0.0 {
            self.nonzero += 1;
        }
        if let (Some(old_pv), Some(old_v)) = (self.pvs.push(pv), self.vs.push(bar.volume)) {
            self.pv = self.pv - old_pv + pv;
            self.v = self.v - old_v + bar.volume;
            if old_v != 0.0 {
                self.nonzero -= 1;
            }
            self.since_resync += 1;
            if self.since_resync >= RESYNC_EVERY {
                self.since_resync = 0;
                self.pv = self.pvs.sum();
                self.v = self.vs.sum();
            }
        } else {
            self.pv += pv;
            self.v += bar.volume;
        }
        (self.pvs.is_full() && self.nonzero > 0).then(|| self.pv / self.v)
    }
}
