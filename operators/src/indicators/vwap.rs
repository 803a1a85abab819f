//! Volume-weighted average price over the typical price `(h+l+c)/3` (not in TA-Lib).
//! [`Vwap`] is cumulative from the first bar with no session reset; [`RollingVwap`] covers the
//! last n bars. Both yield no value while their volume sum is 0.

use serde::{Deserialize, Serialize};

use super::layout::{Solo, Step, get, put, value};
use super::{Indicator, PeriodError, RESYNC_EVERY, check_period};
use crate::bar::Bar;
use crate::set::IndicatorSpec;

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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vwap {
    solo: Solo,
}

impl Default for Vwap {
    fn default() -> Self {
        Vwap { solo: Solo::new(IndicatorSpec::Vwap) }
    }
}

impl Indicator for Vwap {
    type Output = f64;
    fn update(&mut self, bar: &Bar) -> Option<f64> {
        value(self.solo.update(bar)[0])
    }
}

/// VWAP: two words, Σ(tp·v) and Σv.
#[inline]
pub(crate) fn step(s: &Step<'_>, w: &mut [u64]) -> Option<f64> {
    let bar = s.bar;
    let pv = get(w, 0) + bar.typical_price() * bar.volume;
    let v = get(w, 1) + bar.volume;
    put(w, 0, pv);
    put(w, 1, v);
    (v != 0.0).then(|| pv / v)
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
    solo: Solo,
}

impl RollingVwap {
    /// Rolling VWAP over `period ≥ 1` bars.
    pub fn new(period: usize) -> Result<RollingVwap, PeriodError> {
        let period = check_period("vwap", period, 1)?;
        Ok(RollingVwap { period, solo: Solo::new(IndicatorSpec::RollingVwap(period)) })
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.period
    }
}

impl Indicator for RollingVwap {
    type Output = f64;
    fn update(&mut self, bar: &Bar) -> Option<f64> {
        value(self.solo.update(bar)[0])
    }
}

const HEAD: usize = 0;
/// How many bars in the window have a non-zero volume (Σv of zeros can leave a residue).
const NONZERO: usize = 1;
const PV: usize = 2;
const V: usize = 3;
const RINGS: usize = 4;

/// Words of a rolling VWAP(p): the rings' head, the non-zero count, the two sums, and the
/// rings of the window's tp·v and v.
pub(crate) fn rolling_words(p: usize) -> usize {
    RINGS + 2 * p
}

/// Rolling VWAP(p) over [`rolling_words`] words.
#[inline]
pub(crate) fn rolling_step(p: usize, s: &Step<'_>, w: &mut [u64]) -> Option<f64> {
    let bar = s.bar;
    let pv = bar.typical_price() * bar.volume;
    if bar.volume != 0.0 {
        w[NONZERO] += 1;
    }
    let head = w[HEAD] as usize;
    let (pvs, vs) = w[RINGS..RINGS + 2 * p].split_at_mut(p);
    let old = (f64::from_bits(pvs[head]), f64::from_bits(vs[head]));
    pvs[head] = pv.to_bits();
    vs[head] = bar.volume.to_bits();
    w[HEAD] = if head + 1 == p { 0 } else { head as u64 + 1 };
    let seen = s.n + 1;
    if seen > p as u64 {
        let (old_pv, old_v) = old;
        put(w, PV, get(w, PV) - old_pv + pv);
        put(w, V, get(w, V) - old_v + bar.volume);
        if old_v != 0.0 {
            w[NONZERO] -= 1;
        }
        // Re-summed exactly (oldest first) every RESYNC_EVERY evictions.
        if (seen - p as u64) % RESYNC_EVERY as u64 == 0 {
            let oldest = w[HEAD] as usize;
            let sum = |ring: &[u64]| {
                let (a, b) = ring.split_at(oldest);
                b.iter().chain(a).fold(0.0, |acc, x| acc + f64::from_bits(*x))
            };
            let (pvs, vs) = w[RINGS..RINGS + 2 * p].split_at(p);
            let (spv, sv) = (sum(pvs), sum(vs));
            put(w, PV, spv);
            put(w, V, sv);
        }
    } else {
        put(w, PV, get(w, PV) + pv);
        put(w, V, get(w, V) + bar.volume);
    }
    (seen >= p as u64 && w[NONZERO] > 0).then(|| get(w, PV) / get(w, V))
}
