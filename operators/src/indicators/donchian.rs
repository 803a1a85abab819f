//! Rolling maximum and minimum (TA-Lib `MAX`/`MIN`), and the Donchian channel built on them:
//! the highest high and lowest low of the last n bars, first value at bar n−1. Monotonic
//! deques make each update O(1) amortized; their capacity is fixed at n + 1 entries.

use serde::{Deserialize, Serialize};

use super::layout::{Solo, Step, value};
use super::{Indicator, PeriodError, check_period};
use crate::bar::Bar;
use crate::set::IndicatorSpec;

/// Rolling extreme over the last n values: the maximum when `MAX` is true, else the minimum.
///
/// ```
/// use tickflow_operators::indicators::RollingExtreme;
/// let mut max = RollingExtreme::<true>::new(3).unwrap();
/// let out: Vec<_> = [1.0, 3.0, 2.0, 0.0, 0.5].into_iter().map(|x| max.next(x)).collect();
/// assert_eq!(out, vec![None, None, Some(3.0), Some(3.0), Some(2.0)]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollingExtreme<const MAX: bool> {
    period: usize,
    seen: u64,
    /// The deque, as [`extreme`] keeps it.
    words: Box<[u64]>,
}

impl<const MAX: bool> RollingExtreme<MAX> {
    /// Over the last `period ≥ 1` values.
    pub fn new(period: usize) -> Result<Self, PeriodError> {
        let period = check_period(if MAX { "max" } else { "min" }, period, 1)?;
        Ok(RollingExtreme { period, seen: 0, words: vec![0; extreme_words(period)].into_boxed_slice() })
    }

    /// Feeds the next value.
    pub fn next(&mut self, x: f64) -> Option<f64> {
        let i = self.seen;
        self.seen += 1;
        extreme::<MAX>(self.period, i, x, &mut self.words)
    }
}

const FRONT: usize = 0;
const LEN: usize = 1;
const ENTRIES: usize = 2;

/// Words of one rolling extreme over `p` values: the deque's front and length, and its
/// `p + 1` entries of (index, value).
pub(crate) fn extreme_words(p: usize) -> usize {
    ENTRIES + 2 * (p + 1)
}

/// Feeds value `x`, the `i`-th (from 0), to a rolling extreme over `p` values kept in
/// [`extreme_words`] words: (index, value) entries, values monotonic from the front (the
/// extreme) to the back.
#[inline]
pub(crate) fn extreme<const MAX: bool>(p: usize, i: u64, x: f64, w: &mut [u64]) -> Option<f64> {
    let cap = p + 1;
    let (header, entries) = w.split_at_mut(ENTRIES);
    let wrap = |j: usize| if j >= cap { j - cap } else { j };
    let (mut front, mut len) = (header[FRONT] as usize, header[LEN] as usize);
    while len > 0 {
        let back = f64::from_bits(entries[2 * wrap(front + len - 1) + 1]);
        let dominated = if MAX { back <= x } else { back >= x };
        if !dominated {
            break;
        }
        len -= 1;
    }
    // At most p entries (indices i−p..i−1) remain, so there is room for x.
    let b = wrap(front + len);
    entries[2 * b] = i;
    entries[2 * b + 1] = x.to_bits();
    len += 1;
    while len > 0 {
        if entries[2 * front] + p as u64 > i {
            break;
        }
        front = wrap(front + 1);
        len -= 1;
    }
    header[FRONT] = front as u64;
    header[LEN] = len as u64;
    // The deque is non-empty: x was just pushed and is within the window.
    (i + 1 >= p as u64).then(|| f64::from_bits(entries[2 * front + 1]))
}

/// Highest high, lowest low and their midpoint over the last n bars.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// Highest high.
    pub upper: f64,
    /// (upper + lower) / 2.
    pub middle: f64,
    /// Lowest low.
    pub lower: f64,
}

/// The Donchian channel over the last n bars.
///
/// ```
/// use tickflow_operators::{Bar, Symbol, indicators::{Donchian, Indicator}};
/// let s = Symbol::new("X").unwrap();
/// let mut d = Donchian::new(2).unwrap();
/// assert_eq!(d.update(&Bar::new(s, 0, 5.0, 6.0, 4.0, 5.0, 1.0)), None);
/// let c = d.update(&Bar::new(s, 0, 5.0, 7.0, 4.5, 6.0, 1.0)).unwrap();
/// assert_eq!((c.upper, c.middle, c.lower), (7.0, 5.5, 4.0));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Donchian {
    period: usize,
    solo: Solo,
}

impl Donchian {
    /// Channel over `period ≥ 1` bars.
    pub fn new(period: usize) -> Result<Donchian, PeriodError> {
        let period = check_period("max", period, 1)?;
        Ok(Donchian { period, solo: Solo::new(IndicatorSpec::Donchian(period)) })
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.period
    }
}

impl Indicator for Donchian {
    type Output = Channel;
    fn update(&mut self, bar: &Bar) -> Option<Channel> {
        let [upper, middle, lower] = self.solo.update(bar);
        value(upper).map(|upper| Channel { upper, middle, lower })
    }
}

/// Donchian(p): a rolling maximum of highs and a rolling minimum of lows.
#[inline]
pub(crate) fn step(p: usize, s: &Step<'_>, w: &mut [u64]) -> Option<[f64; 3]> {
    let (high, low) = w.split_at_mut(extreme_words(p));
    let upper = extreme::<true>(p, s.n, s.bar.high, high);
    let lower = extreme::<false>(p, s.n, s.bar.low, low);
    let (upper, lower) = (upper?, lower?);
    Some([upper, (upper + lower) / 2.0, lower])
}
