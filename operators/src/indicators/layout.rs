//! Where a symbol's indicator state lives: one exact-size buffer of 64-bit words per symbol,
//! laid out by a [`Layout`] that a set of indicators computes once.
//!
//! A symbol's state used to be one enum value per indicator, each as large as the largest
//! indicator, plus a heap ring per window: about 2.5 KiB for the standard set. Here every
//! indicator keeps only the words it needs, and what several indicators would each keep is
//! kept once:
//! - word 0 counts the symbol's bars, so warm-up phases, ring fill levels and re-summation
//!   times are derived from it instead of being counted per indicator;
//! - one ring of the latest closes, as long as the longest close window of the set plus one,
//!   serves every SMA, Bollinger band and ROC, and is where RSI, ATR and OBV find the previous
//!   close.
//!
//! Words hold `f64` bits (or counters); the state serializes as a plain list of integers, so
//! checkpoints restore it bit for bit. The standard set needs 45 words (360 bytes).

use serde::{Deserialize, Serialize};

use crate::bar::Bar;
use crate::set::IndicatorSpec;

/// One indicator's place in the state buffer and its first output column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Slot {
    kernel: Kernel,
    /// First word, counted from the end of the closes ring.
    at: u32,
    /// First output column.
    col: u32,
}

/// The indicator kinds with their parameters (periods and the derived constants).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
enum Kernel {
    Sma(u32),
    Ema(u32, f64),
    Rsi(u32),
    Macd(MacdParams),
    Bollinger(u32, f64),
    Atr(u32),
    Obv,
    Vwap,
    RollingVwap(u32),
    Donchian(u32),
    Roc(u32),
}

/// MACD's periods and its three EMAs' smoothing factors.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct MacdParams {
    pub(crate) fast: u32,
    pub(crate) slow: u32,
    pub(crate) signal: u32,
    pub(crate) kf: f64,
    pub(crate) ks: f64,
    pub(crate) kg: f64,
}

impl Kernel {
    fn of(spec: &IndicatorSpec) -> Kernel {
        use IndicatorSpec as S;
        // Periods are checked against MAX_PERIOD (100_000) before a layout is built.
        let p = |n: usize| n as u32;
        let k = |n: usize| 2.0 / (n as f64 + 1.0);
        match *spec {
            S::Sma(n) => Kernel::Sma(p(n)),
            S::Ema(n) => Kernel::Ema(p(n), k(n)),
            S::Rsi(n) => Kernel::Rsi(p(n)),
            S::Macd(f, s, g) => {
                Kernel::Macd(MacdParams { fast: p(f), slow: p(s), signal: p(g), kf: k(f), ks: k(s), kg: k(g) })
            }
            S::Bollinger(n, kk) => Kernel::Bollinger(p(n), kk),
            S::Atr(n) => Kernel::Atr(p(n)),
            S::Obv => Kernel::Obv,
            S::Vwap => Kernel::Vwap,
            S::RollingVwap(n) => Kernel::RollingVwap(p(n)),
            S::Donchian(n) => Kernel::Donchian(p(n)),
            S::Roc(n) => Kernel::Roc(p(n)),
        }
    }

    /// Words of state beyond the shared bar count and closes ring.
    fn words(self) -> usize {
        match self {
            Kernel::Sma(_) | Kernel::Ema(..) | Kernel::Atr(_) | Kernel::Obv => 1,
            Kernel::Rsi(_) | Kernel::Vwap => 2,
            Kernel::Macd(_) => 3,
            Kernel::Bollinger(..) => 4,
            Kernel::RollingVwap(n) => super::vwap::rolling_words(n as usize),
            Kernel::Donchian(n) => 2 * super::donchian::extreme_words(n as usize),
            Kernel::Roc(_) => 0,
        }
    }

    /// How many latest closes the kernel reads (the current one included).
    fn closes(self) -> usize {
        match self {
            // the window and the close leaving it
            Kernel::Sma(n) | Kernel::Bollinger(n, _) | Kernel::Roc(n) => n as usize + 1,
            // the previous close
            Kernel::Rsi(_) | Kernel::Atr(_) | Kernel::Obv => 2,
            _ => 1,
        }
    }
}

/// The latest closes of a symbol, newest included; read-only while the kernels run.
pub(crate) struct Closes<'a> {
    slots: &'a [u64],
    /// Index after the newest close.
    head: usize,
}

impl Closes<'_> {
    /// The close `i` bars back (0 = this bar's). The caller makes sure that many bars were
    /// seen and that the ring is long enough.
    #[inline]
    pub(crate) fn back(&self, i: usize) -> f64 {
        let j = if self.head > i { self.head - 1 - i } else { self.head + self.slots.len() - 1 - i };
        f64::from_bits(self.slots[j])
    }

    /// The latest `p` closes, oldest first (the order TA-Lib adds in).
    pub(crate) fn window(&self, p: usize) -> impl Iterator<Item = f64> + '_ {
        (0..p).rev().map(|i| self.back(i))
    }

    /// Their sum, added oldest first from 0.
    pub(crate) fn sum(&self, p: usize) -> f64 {
        self.window(p).fold(0.0, |acc, x| acc + x)
    }
}

/// What one kernel sees of the current bar.
pub(crate) struct Step<'a> {
    pub(crate) bar: &'a Bar,
    /// The symbol's bars before this one.
    pub(crate) n: u64,
    pub(crate) closes: Closes<'a>,
}

/// `f64` cells over state words.
#[inline]
pub(crate) fn get(w: &[u64], i: usize) -> f64 {
    f64::from_bits(w[i])
}

/// Sets cell `i` to `v`.
#[inline]
pub(crate) fn put(w: &mut [u64], i: usize, v: f64) {
    w[i] = v.to_bits();
}

/// Where each indicator of a set keeps its state, and the rule words after them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Layout {
    /// Length of the closes ring.
    ring: u32,
    slots: Vec<Slot>,
    /// Index of the first of the caller's extra words.
    extra_at: u32,
    /// All words.
    words: u32,
}

/// Words before the closes ring: the bar count and the ring's head.
const HEADER: usize = 2;

impl Layout {
    /// The layout of `specs` (valid: periods within `MAX_PERIOD`), their output columns one
    /// after the other, with `extra` words for the caller that start as NaN.
    pub(crate) fn new(specs: &[IndicatorSpec], extra: usize) -> Layout {
        let kernels: Vec<Kernel> = specs.iter().map(Kernel::of).collect();
        let ring = kernels.iter().map(|k| k.closes()).max().unwrap_or(1).max(2);
        let (mut at, mut col) = (0usize, 0usize);
        let mut slots = Vec::with_capacity(specs.len());
        for (kernel, spec) in kernels.into_iter().zip(specs) {
            slots.push(Slot { kernel, at: at as u32, col: col as u32 });
            at += kernel.words();
            col += spec.columns().len();
        }
        let extra_at = HEADER + ring + at;
        Layout { ring: ring as u32, slots, extra_at: extra_at as u32, words: (extra_at + extra) as u32 }
    }

    /// All words of a symbol's state (the size its buffer must have).
    pub(crate) fn words(&self) -> usize {
        self.words as usize
    }

    /// Index of the first extra word.
    pub(crate) fn extra_at(&self) -> usize {
        self.extra_at as usize
    }

    /// A fresh state: no bars seen.
    pub(crate) fn fresh(&self) -> Box<[u64]> {
        let mut w = vec![0u64; self.words()];
        for x in &mut w[self.extra_at()..] {
            *x = f64::NAN.to_bits();
        }
        w.into_boxed_slice()
    }

    /// Feeds `bar` to every indicator of `state` (made by [`Layout::fresh`]) and writes their
    /// outputs to `out` (NaN = no value yet).
    #[inline]
    pub(crate) fn update(&self, state: &mut [u64], bar: &Bar, out: &mut [f64]) {
        let (header, rest) = state.split_at_mut(HEADER);
        let (ring, cells) = rest.split_at_mut(self.ring as usize);
        let n = header[0];
        let mut head = header[1] as usize;
        ring[head] = bar.close.to_bits();
        head += 1;
        if head == ring.len() {
            head = 0;
        }
        header[0] = n + 1;
        header[1] = head as u64;
        let s = Step { bar, n, closes: Closes { slots: ring, head } };
        const NONE: f64 = f64::NAN;
        let one = |v: Option<f64>, out: &mut [f64]| out[0] = v.unwrap_or(NONE);
        let three = |v: Option<[f64; 3]>, out: &mut [f64]| match v {
            Some(v) => out[..3].copy_from_slice(&v),
            None => out[..3].fill(NONE),
        };
        for slot in &self.slots {
            let w = &mut cells[slot.at as usize..];
            let out = &mut out[slot.col as usize..];
            match slot.kernel {
                Kernel::Sma(p) => one(super::sma::step(p as usize, &s, w), out),
                Kernel::Ema(p, k) => one(super::ema::step(p as usize, k, s.n, s.bar.close, &mut w[0]), out),
                Kernel::Rsi(p) => one(super::rsi::step(p as usize, &s, w), out),
                Kernel::Macd(m) => three(super::macd::step(&m, &s, w), out),
                Kernel::Bollinger(p, k) => three(super::bollinger::step(p as usize, k, &s, w), out),
                Kernel::Atr(p) => one(super::atr::step(p as usize, &s, w), out),
                Kernel::Obv => one(Some(super::obv::step(&s, w)), out),
                Kernel::Vwap => one(super::vwap::step(&s, w), out),
                Kernel::RollingVwap(p) => one(super::vwap::rolling_step(p as usize, &s, w), out),
                Kernel::Donchian(p) => three(super::donchian::step(p as usize, &s, w), out),
                Kernel::Roc(p) => one(super::roc::step(p as usize, &s), out),
            }
        }
    }
}

/// One indicator on its own (the public indicator types): its layout and state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Solo {
    layout: Layout,
    state: Box<[u64]>,
}

impl Solo {
    /// `spec` must be valid (its period checked).
    pub(crate) fn new(spec: IndicatorSpec) -> Solo {
        let layout = Layout::new(std::slice::from_ref(&spec), 0);
        let state = layout.fresh();
        Solo { layout, state }
    }

    /// Feeds `bar`; the outputs, NaN while warming up (unused columns NaN too).
    pub(crate) fn update(&mut self, bar: &Bar) -> [f64; 3] {
        let mut out = [f64::NAN; 3];
        self.layout.update(&mut self.state, bar, &mut out);
        out
    }

    /// Bars seen.
    pub(crate) fn seen(&self) -> u64 {
        self.state[0]
    }

    /// The indicator's state cell `i` (e.g. an EMA's value).
    pub(crate) fn cell(&self, i: usize) -> f64 {
        get(&self.state, HEADER + self.layout.ring as usize + i)
    }
}

/// A bar that carries just one value (as close, high and low), for indicators fed values.
pub(crate) fn value_bar(x: f64, volume: f64) -> Bar {
    // A one-letter ASCII name is a valid symbol.
    let s = crate::symbol::Symbol::from_ascii(b"X").expect("valid symbol");
    Bar::new(s, 0, x, x, x, x, volume)
}

/// `Some` unless NaN (how the layout writes "no value").
pub(crate) fn value(x: f64) -> Option<f64> {
    (!x.is_nan()).then_some(x)
}
