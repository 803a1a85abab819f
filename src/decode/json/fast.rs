//! One pass over the common shape: a flat object of the seven bar fields (any order, any
//! recognised spelling), plain decimal numbers, an ASCII symbol without escapes. Digits are
//! accumulated while they are scanned (no second pass, no UTF-8 check: every accepted byte
//! is ASCII), keys are dispatched by [`slot_of`]. Anything else — escapes, exponents, strings
//! for numbers, unknown keys, ticks, duplicates, more digits than are exact, an invalid bar —
//! gives `None`, and the general path decodes the line (and names what is wrong). So this
//! only decides how fast, never what: when it returns a bar it is the general path's bar
//! (tests: `fast_path_agrees_with_the_general_path`).

use super::TsUnit;
use super::object::{Slot, slot_of};
use tickflow_operators::{Bar, Symbol, TimeBounds};

/// Powers of ten that are exact doubles.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// A plain decimal number token `-?(0|[1-9][0-9]*)(.[0-9]+)?` of at most 19 digits (so
/// its digits fit a u64 exactly), read as it is scanned.
struct Num {
    neg: bool,
    /// All digits, the fraction's included, as one integer.
    mantissa: u64,
    /// How many of them are fraction digits.
    frac_digits: u32,
}

/// Digits at `b[*i..]`: how many, and their value (wrapping; callers bound the count).
#[inline(always)]
fn digits(b: &[u8], i: &mut usize, mut m: u64) -> (usize, u64) {
    let start = *i;
    while let Some(&c) = b.get(*i) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        m = m.wrapping_mul(10).wrapping_add(u64::from(d));
        *i += 1;
    }
    (*i - start, m)
}

#[inline(always)]
fn number(b: &[u8], i: &mut usize) -> Option<Num> {
    let neg = b.get(*i) == Some(&b'-');
    *i += usize::from(neg);
    let first = *b.get(*i)?;
    let (int_len, mut m) = digits(b, i, 0);
    // No digit, or a leading zero (`01`): not JSON.
    if int_len == 0 || (first == b'0' && int_len > 1) {
        return None;
    }
    let mut frac_len = 0;
    if b.get(*i) == Some(&b'.') {
        *i += 1;
        (frac_len, m) = digits(b, i, m);
        if frac_len == 0 {
            return None;
        }
    }
    if int_len + frac_len > 19 || matches!(b.get(*i), Some(b'e' | b'E')) {
        return None;
    }
    Some(Num { neg, mantissa: m, frac_digits: frac_len as u32 })
}

const POW10_U64: [u64; 20] = {
    let mut p = [1u64; 20];
    let mut k = 1;
    while k < 20 {
        p[k] = p[k - 1] * 10;
        k += 1;
    }
    p
};

impl Num {
    /// Clinger's fast path: `mantissa` and `10^frac_digits` are exact doubles, so one
    /// IEEE division is correctly rounded (the same double as `str::parse`).
    #[inline(always)]
    fn f64(&self) -> Option<f64> {
        if self.mantissa >= 1 << 53 || self.frac_digits as usize >= POW10.len() {
            return None;
        }
        let v = self.mantissa as f64 / POW10[self.frac_digits as usize];
        Some(if self.neg { -v } else { v })
    }

    /// As [`crate::decode::timestamp::parse_numeric`]: the unit from the integer part's order of
    /// magnitude, the value floored to milliseconds (non-negative values only here).
    #[inline(always)]
    fn ts(&self) -> Option<(i64, TsUnit)> {
        if self.neg {
            return None;
        }
        let f = self.frac_digits as usize;
        let scale = POW10_U64[f];
        let (int, frac) = (self.mantissa / scale, self.mantissa % scale);
        let int_digits = POW10_U64.iter().take_while(|&&p| p <= int).count();
        let (unit, ms) = match int_digits {
            0..=11 => {
                // The first three fraction digits, floored.
                let frac_ms = if f <= 3 { frac * POW10_U64[3 - f] } else { frac / POW10_U64[f - 3] };
                (TsUnit::Seconds, int * 1000 + frac_ms)
            }
            12..=14 => (TsUnit::Millis, int),
            15..=17 => (TsUnit::Micros, int / 1000),
            _ => (TsUnit::Nanos, int / 1_000_000),
        };
        Some((i64::try_from(ms).ok()?, unit))
    }
}

/// `b`, all of it, as a plain decimal number (this path's grammar: no exponent, at most 19
/// digits) read exactly as [`super::parse_f64`] reads it; `None` for anything else. For
/// readers of other formats (CSV fields) that want the same fast path.
#[inline]
pub(in crate::decode) fn plain_f64(b: &[u8]) -> Option<f64> {
    let mut i = 0;
    let n = number(b, &mut i)?;
    if i != b.len() {
        return None;
    }
    n.f64()
}

/// `b`, all of it, as a plain non-negative decimal timestamp read as [`super::parse_ts`]
/// reads it (unit from the magnitude, floored to milliseconds); `None` for anything else.
#[inline]
pub(in crate::decode) fn plain_ts(b: &[u8]) -> Option<(i64, TsUnit)> {
    let mut i = 0;
    let n = number(b, &mut i)?;
    if i != b.len() {
        return None;
    }
    n.ts()
}

#[inline(always)]
fn ws(b: &[u8], i: &mut usize) {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(*i) {
        *i += 1;
    }
}

/// The bytes of a string at `b[*i] == '"'` when they are printable ASCII without
/// escapes; `None` otherwise.
#[inline(always)]
fn ascii_string<'a>(b: &'a [u8], i: &mut usize) -> Option<&'a [u8]> {
    let start = *i + 1;
    let mut j = start;
    loop {
        match *b.get(j)? {
            b'"' => break,
            b'\\' => return None,
            0x20..=0x7e => j += 1,
            _ => return None,
        }
    }
    *i = j + 1;
    Some(&b[start..j])
}

/// A key spelling with its closing quote as two little-endian words and masks, so a key
/// is recognised with two loads and compares.
struct KeyWord {
    lo: u64,
    lo_mask: u64,
    hi: u64,
    hi_mask: u64,
    slot: Slot,
    len: usize,
}

const fn key_word(name: &[u8], slot: Slot) -> KeyWord {
    let (mut lo, mut lo_mask, mut hi, mut hi_mask) = (0u64, 0u64, 0u64, 0u64);
    let mut k = 0;
    // The name and its closing quote, at most 16 bytes.
    while k <= name.len() {
        let c = if k < name.len() { name[k] } else { b'"' };
        if k < 8 {
            lo |= (c as u64) << (8 * k);
            lo_mask |= 0xff << (8 * k);
        } else {
            hi |= (c as u64) << (8 * (k - 8));
            hi_mask |= 0xff << (8 * (k - 8));
        }
        k += 1;
    }
    KeyWord { lo, lo_mask, hi, hi_mask, slot, len: name.len() }
}

/// The spellings of the bar fields of at most 15 bytes, most common first.
const KEYS: [KeyWord; 11] = [
    key_word(b"stock_symbol", Slot::Symbol),
    key_word(b"timestamp", Slot::Ts),
    key_word(b"open", Slot::Open),
    key_word(b"high", Slot::High),
    key_word(b"low", Slot::Low),
    key_word(b"close", Slot::Close),
    key_word(b"volume", Slot::Volume),
    key_word(b"symbol", Slot::Symbol),
    key_word(b"ts", Slot::Ts),
    key_word(b"size", Slot::Volume),
    key_word(b"local_time", Slot::Ts),
];

/// The slot of the key at `b[*i] == '"'`, compared with the known spellings word-wise (a
/// key with escapes or of another spelling goes by [`slot_of`], or gives `None`).
#[inline(always)]
fn key(b: &[u8], i: &mut usize) -> Option<Slot> {
    if let Some(head) = b.get(*i + 1..*i + 17) {
        let (lo, hi) = head.split_at(8);
        // Both halves are 8 bytes long (split of a 16-byte slice).
        let lo = u64::from_le_bytes(lo.try_into().ok()?);
        let hi = u64::from_le_bytes(hi.try_into().ok()?);
        for k in &KEYS {
            if lo & k.lo_mask == k.lo && hi & k.hi_mask == k.hi {
                *i += k.len + 2;
                return Some(k.slot);
            }
        }
    }
    // The other spellings (`opening_price`, ...), or a key near the end of the line.
    let key = ascii_string(b, i)?;
    slot_of(key).map(|(slot, _)| slot)
}

/// The bar of `line` when it has the common shape and is valid; `None` sends the line
/// to the general path.
#[inline]
pub(super) fn decode(line: &[u8], bounds: &TimeBounds) -> Option<(Bar, TsUnit)> {
    let b = line;
    let mut i = 0;
    ws(b, &mut i);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut seen = 0u8;
    let mut nums = [0f64; 8];
    let mut symbol: &[u8] = &[];
    let mut ts = (0i64, TsUnit::Millis);
    loop {
        ws(b, &mut i);
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let slot = key(b, &mut i)?;
        let bit = 1u8 << slot as u8;
        if seen & bit != 0 || slot == Slot::Price {
            return None;
        }
        seen |= bit;
        ws(b, &mut i);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i += 1;
        ws(b, &mut i);
        match slot {
            Slot::Symbol => {
                if b.get(i) != Some(&b'"') {
                    return None;
                }
                symbol = ascii_string(b, &mut i)?;
            }
            Slot::Ts => ts = number(b, &mut i)?.ts()?,
            _ => nums[slot as usize] = number(b, &mut i)?.f64()?,
        }
        ws(b, &mut i);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => {
                i += 1;
                break;
            }
            _ => return None,
        }
    }
    ws(b, &mut i);
    const ALL: u8 = (1 << Slot::Symbol as u8)
        | (1 << Slot::Ts as u8)
        | (1 << Slot::Open as u8)
        | (1 << Slot::High as u8)
        | (1 << Slot::Low as u8)
        | (1 << Slot::Close as u8)
        | (1 << Slot::Volume as u8);
    if i != b.len() || seen != ALL {
        return None;
    }
    let symbol = Symbol::from_ascii(symbol)?;
    let n = |s: Slot| nums[s as usize];
    let bar = Bar::new(symbol, ts.0, n(Slot::Open), n(Slot::High), n(Slot::Low), n(Slot::Close), n(Slot::Volume));
    bar.validate(bounds).ok()?;
    Some((bar, ts.1))
}
