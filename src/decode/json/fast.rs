//! One pass over the common shape: a flat object of the seven bar fields (any order, any
//! recognised spelling), plain decimal numbers, an ASCII symbol without escapes. Bytes are
//! read eight at a time as little-endian words (zero past the line's end, and a zero byte is
//! no digit, quote or letter, so nothing past the end reads as text): digit runs are found
//! and converted a word at a time (SWAR), a key is recognised by a table lookup on its first
//! letter and one or two masked compares, the symbol's closing quote by a zero-byte test.
//! No UTF-8 check: every accepted byte is ASCII. Anything else — escapes, exponents, strings
//! for numbers, unknown keys, ticks, duplicates, more digits than are exact, an invalid bar —
//! gives `None`, and the general path decodes the line (and names what is wrong). So this
//! only decides how fast, never what: when it returns a bar it is the general path's bar
//! (tests: `fast_path_agrees_with_the_general_path`).

use super::TsUnit;
use super::object::Slot;
use tickflow_operators::{Bar, Symbol, TimeBounds};

/// Powers of ten that are exact doubles.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// The powers of ten that fit a u64.
const POW10_U64: [u64; 20] = {
    let mut p = [1u64; 20];
    let mut k = 1;
    while k < 20 {
        p[k] = p[k - 1] * 10;
        k += 1;
    }
    p
};

/// A byte repeated in every byte of a word.
const fn splat(c: u8) -> u64 {
    u64::from_le_bytes([c; 8])
}

/// The 8 bytes at `b[i..]` as a little-endian word (`b[i]` lowest), zero past the end of `b`.
#[inline(always)]
fn load8(b: &[u8], i: usize) -> u64 {
    if let Some(w) = b.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        return u64::from_le_bytes(*w);
    }
    // Fewer than 8 bytes left (the line's end): its last 8 bytes, shifted so that `b[i]`
    // comes lowest; the shift is 8 to 56 bits, as 0 < `b.len() - i` < 8.
    match b.last_chunk::<8>() {
        Some(w) if i < b.len() => u64::from_le_bytes(*w) >> (8 * (i + 8 - b.len())),
        _ => load_short(b, i),
    }
}

/// [`load8`] on a line of fewer than 8 bytes, or at or past its end.
#[cold]
fn load_short(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    for (d, &s) in w.iter_mut().zip(b.get(i..).unwrap_or_default()) {
        *d = s;
    }
    u64::from_le_bytes(w)
}

/// The 16 bytes at `b[i..]` as two little-endian words, zero past the end of `b`.
#[inline(always)]
fn load16(b: &[u8], i: usize) -> (u64, u64) {
    if let Some(w) = b.get(i..).and_then(<[u8]>::first_chunk::<16>) {
        let w = u128::from_le_bytes(*w);
        return (w as u64, (w >> 64) as u64);
    }
    (load8(b, i), load8(b, i + 8))
}

/// How many of the bytes of `x` (a word XOR `'0'`s, so digits are 0 to 9), from the lowest,
/// are digits: 0 to 8.
#[inline(always)]
fn digit_run(x: u64) -> usize {
    // A byte's top bit ends up set when it is 0x80 or more, or when its low 7 bits plus
    // 0x76 reach 0x80, i.e. they are 10 or more. The sums stay within their bytes (at most
    // 0x7f + 0x76 = 0xf5), so no carry crosses into the next byte.
    let non_digit = (x | ((x & splat(0x7f)) + splat(0x76))) & splat(0x80);
    (non_digit.trailing_zeros() / 8) as usize
}

/// The value of the lowest `n` (1 to 8) bytes of `x`, each a digit 0 to 9, the lowest the
/// most significant.
#[inline(always)]
fn digits_value(x: u64, n: usize) -> u64 {
    debug_assert!((1..=8).contains(&n));
    // The digits to the top bytes: the zero bytes below them are leading zeros, the bytes
    // after them are shifted out. Then pairs, fours and eights are combined (as
    // fast_float's `parse_eight_digits_unrolled`): no step carries across its lanes, as
    // every lane holds at most 99, 9999, 99999999.
    let v = x << (64 - 8 * n);
    let v = v * 10 + (v >> 8);
    let v1 = (v & 0x0000_00ff_0000_00ff).wrapping_mul(100 + (1_000_000 << 32));
    let v2 = ((v >> 16) & 0x0000_00ff_0000_00ff).wrapping_mul(1 + (10_000 << 32));
    u64::from((v1.wrapping_add(v2) >> 32) as u32)
}

/// The digits at `b[*i..]`, moving `*i` past them: how many, their value (wrapping past
/// 19 digits; callers bound the count) and the byte after them (0 at the end of `b`).
#[inline(always)]
fn digits(b: &[u8], i: &mut usize) -> (usize, u64, u8) {
    let start = *i;
    let mut m = 0u64;
    loop {
        let w = load8(b, *i);
        let x = w ^ splat(b'0');
        let n = digit_run(x);
        if n < 8 {
            if n > 0 {
                m = m.wrapping_mul(POW10_U64[n]).wrapping_add(digits_value(x, n));
                *i += n;
            }
            // `n < 8`: the shift is at most 56 bits.
            return (*i - start, m, (w >> (8 * n)) as u8);
        }
        m = m.wrapping_mul(POW10_U64[8]).wrapping_add(digits_value(x, 8));
        *i += 8;
    }
}

/// A plain decimal number token `-?(0|[1-9][0-9]*)(.[0-9]+)?` of at most 19 digits (so
/// its digits fit a u64 exactly), read as it is scanned.
struct Num {
    neg: bool,
    /// The integer part's value.
    int: u64,
    /// The fraction's digits as an integer.
    frac: u64,
    /// How many fraction digits there are.
    frac_digits: usize,
    /// Where the token ends.
    end: usize,
    /// The bytes after the token as far as they were loaded, lowest first, then zeros
    /// (`rest as u8` is the byte after the token, 0 at the end of the input).
    rest: u64,
}

/// The digits at `b[p..]` whose first word `w` (XOR `'0'`s: `x`) is loaded: their value,
/// how many, and the bytes after them as in [`Num::rest`]. The first word has the up to 7
/// digits of most numbers; longer runs go on word by word.
#[inline(always)]
fn run(b: &[u8], p: usize, w: u64) -> (u64, usize, u64) {
    let x = w ^ splat(b'0');
    let n = digit_run(x);
    if n == 0 {
        return (0, 0, w);
    }
    if n < 8 {
        // `n < 8`: the shift is at most 56 bits.
        return (digits_value(x, n), n, w >> (8 * n));
    }
    let mut i = p + 8;
    let (len, m, _) = digits(b, &mut i);
    let rest = load8(b, i);
    (digits_value(x, 8).wrapping_mul(POW10_U64[len.min(19)]).wrapping_add(m), 8 + len, rest)
}

#[inline(always)]
fn number(b: &[u8], at: usize) -> Option<Num> {
    let mut p = at;
    let mut w = load8(b, p);
    let neg = w as u8 == b'-';
    if neg {
        p += 1;
        w = load8(b, p);
    }
    let (int, int_len, mut rest) = run(b, p, w);
    // No digit, or a leading zero (`01`): not JSON.
    if int_len == 0 || (int_len > 1 && w as u8 == b'0') {
        return None;
    }
    p += int_len;
    let (mut frac, mut frac_len) = (0, 0);
    if rest as u8 == b'.' {
        p += 1;
        (frac, frac_len, rest) = run(b, p, load8(b, p));
        if frac_len == 0 {
            return None;
        }
        p += frac_len;
    }
    // `c | 0x20` is `e` for `e` and `E` only.
    if int_len + frac_len > 19 || rest as u8 | 0x20 == b'e' {
        return None;
    }
    Some(Num { neg, int, frac, frac_digits: frac_len, end: p, rest })
}

impl Num {
    /// Clinger's fast path: the digits as one integer `m` and `10^frac_digits` are exact
    /// doubles, so one IEEE division is correctly rounded (the same double as `str::parse`).
    #[inline(always)]
    fn f64(&self) -> Option<f64> {
        // At most 19 digits in all: `m` < 10^19 does not overflow.
        let m = self.int * POW10_U64[self.frac_digits] + self.frac;
        if m >= 1 << 53 || self.frac_digits >= POW10.len() {
            return None;
        }
        let v = m as f64 / POW10[self.frac_digits];
        Some(if self.neg { -v } else { v })
    }

    /// As [`crate::decode::timestamp::parse_numeric`]: the unit from the integer part's order of
    /// magnitude, the value floored to milliseconds (non-negative values only here).
    #[inline(always)]
    fn ts(&self) -> Option<(i64, TsUnit)> {
        if self.neg {
            return None;
        }
        let (int, frac, f) = (self.int, self.frac, self.frac_digits);
        let (unit, ms) = if int < POW10_U64[11] {
            // The first three fraction digits, floored.
            let frac_ms = if f <= 3 { frac * POW10_U64[3 - f] } else { frac / POW10_U64[f - 3] };
            (TsUnit::Seconds, int * 1000 + frac_ms)
        } else if int < POW10_U64[14] {
            (TsUnit::Millis, int)
        } else if int < POW10_U64[17] {
            (TsUnit::Micros, int / 1000)
        } else {
            (TsUnit::Nanos, int / 1_000_000)
        };
        Some((i64::try_from(ms).ok()?, unit))
    }
}

/// `b`, all of it, as a plain decimal number (this path's grammar: no exponent, at most 19
/// digits) read exactly as [`super::parse_f64`] reads it; `None` for anything else. For
/// readers of other formats (CSV fields) that want the same fast path.
#[inline]
pub(in crate::decode) fn plain_f64(b: &[u8]) -> Option<f64> {
    let (buf, len) = padded(b)?;
    let n = number(&buf, 0)?;
    if n.end != len {
        return None;
    }
    n.f64()
}

/// A short field (a CSV cell) copied into a zero-padded 48-byte buffer, so the word loads
/// of [`number`] take their fast path instead of gathering bytes one at a time near the
/// field's end; `None` for a field too long to be a plain number of this path anyway.
#[inline(always)]
fn padded(b: &[u8]) -> Option<([u8; 48], usize)> {
    if b.len() > 32 {
        return None;
    }
    let mut buf = [0u8; 48];
    buf[..b.len()].copy_from_slice(b);
    Some((buf, b.len()))
}

/// `b`, all of it, as a plain non-negative decimal timestamp read as [`super::parse_ts`]
/// reads it (unit from the magnitude, floored to milliseconds); `None` for anything else.
#[inline]
pub(in crate::decode) fn plain_ts(b: &[u8]) -> Option<(i64, TsUnit)> {
    let (buf, len) = padded(b)?;
    let n = number(&buf, 0)?;
    if n.end != len {
        return None;
    }
    n.ts()
}

#[inline(always)]
fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t')
}

#[inline(always)]
fn ws(b: &[u8], i: &mut usize) {
    while let Some(&c) = b.get(*i)
        && is_ws(c)
    {
        *i += 1;
    }
}

/// The bytes of the string at `b[*i] == '"'` up to the next `"`, moving `*i` past it.
/// Escapes are not decoded (a `\` ends up in the bytes, and a `\"` ends them early): callers
/// accept only bytes that are no escape.
#[inline(always)]
fn raw_string<'a>(b: &'a [u8], i: &mut usize) -> Option<&'a [u8]> {
    let start = *i + 1;
    let mut j = start;
    loop {
        // The zero bytes of `q` are the quotes (the padding past the end is none); the
        // lowest set bit of `found` is the first of them (the borrow of the subtraction only
        // runs upwards, past it).
        let q = load8(b, j) ^ splat(b'"');
        let found = q.wrapping_sub(splat(1)) & !q & splat(0x80);
        if found != 0 {
            j += (found.trailing_zeros() / 8) as usize;
            break;
        }
        if j + 8 >= b.len() {
            return None;
        }
        j += 8;
    }
    *i = j + 1;
    b.get(start..j)
}

/// A key spelling, with its quotes, as a little-endian 16-byte pattern and mask, so a key is
/// recognised with one load and compare; and the same followed by W1's `: `, so that the
/// key and its colon are one compare (a mask of 0 where that does not fit in 16 bytes).
#[derive(Clone, Copy)]
struct KeyWord {
    pat: u128,
    mask: u128,
    colon_pat: u128,
    colon_mask: u128,
    slot: Slot,
    /// The length with the quotes.
    len: usize,
}

/// `text` as a little-endian pattern and its mask.
const fn pattern(text: &[u8]) -> (u128, u128) {
    let (mut pat, mut mask) = (0u128, 0u128);
    let mut k = 0;
    while k < text.len() {
        pat |= (text[k] as u128) << (8 * k);
        mask |= 0xff << (8 * k);
        k += 1;
    }
    (pat, mask)
}

const fn key_word(name: &[u8], slot: Slot) -> KeyWord {
    // The name in its quotes, then `: `: at most 16 bytes, else no colon pattern.
    let mut text = [0u8; 18];
    let len = name.len() + 2;
    // A longer name fails to compile (it does not fit the 16-byte window).
    assert!(len <= 16);
    text[0] = b'"';
    let mut k = 0;
    while k < name.len() {
        text[k + 1] = name[k];
        k += 1;
    }
    text[len - 1] = b'"';
    text[len] = b':';
    text[len + 1] = b' ';
    let (pat, mask) = pattern(text.split_at(len).0);
    let (colon_pat, colon_mask) = if len + 2 <= 16 { pattern(text.split_at(len + 2).0) } else { (1, 0) };
    KeyWord { pat, mask, colon_pat, colon_mask, slot, len }
}

/// The spellings of [`super::object::slot_of`] (`price` aside: a tick goes to the general
/// path), most common first within each first letter.
const KEYS: [KeyWord; 13] = [
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
    key_word(b"opening_price", Slot::Open),
    key_word(b"closing_price", Slot::Close),
];

/// Matches nothing (`w & 0` is never 1).
const NO_KEY: KeyWord = KeyWord { pat: 1, mask: 0, colon_pat: 1, colon_mask: 0, slot: Slot::Price, len: 0 };

/// How many spellings share a bucket at most.
const BUCKET: usize = 3;

/// The bucket of a key: the low 5 bits of its first letter (distinct for the letters the
/// spellings start with).
const fn bucket_of(w: u128) -> usize {
    ((w >> 8) & 31) as usize
}

/// [`KEYS`] by [`bucket_of`], in their order, the rest of each bucket [`NO_KEY`]. Built at
/// compile time; a fourth spelling in a bucket fails to compile.
const BUCKETS: [[KeyWord; BUCKET]; 32] = {
    let mut t = [[NO_KEY; BUCKET]; 32];
    let mut k = 0;
    while k < KEYS.len() {
        let b = bucket_of(KEYS[k].pat);
        let mut j = 0;
        while t[b][j].mask != 0 {
            j += 1;
        }
        t[b][j] = KEYS[k];
        k += 1;
    }
    t
};

/// The slot of the key at `b[*i..]` (with its quotes), moving `*i` past it, and whether
/// `: ` followed (and `*i` is past that too); `None` for anything but the spellings of
/// [`KEYS`] (another key, a key with escapes, no `"`).
#[inline(always)]
fn key(b: &[u8], i: &mut usize) -> Option<(Slot, bool)> {
    let (lo, hi) = load16(b, *i);
    let w = u128::from(lo) | u128::from(hi) << 64;
    for k in &BUCKETS[bucket_of(w)] {
        if w & k.colon_mask == k.colon_pat {
            *i += k.len + 2;
            return Some((k.slot, true));
        }
        if w & k.mask == k.pat {
            *i += k.len;
            return Some((k.slot, false));
        }
    }
    None
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
    ws(b, &mut i);
    let mut seen = 0u8;
    let mut nums = [0f64; 8];
    let mut symbol: &[u8] = &[];
    let mut ts = (0i64, TsUnit::Millis);
    loop {
        // At a key's opening quote (checked by `key`).
        // `"key": ` (W1) in one compare, else any whitespace around the colon.
        let (slot, colon) = key(b, &mut i)?;
        let bit = 1u8 << slot as u8;
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        if !colon {
            ws(b, &mut i);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i += 1;
        }
        if b.get(i).is_some_and(|&c| is_ws(c)) {
            ws(b, &mut i);
        }
        // The bytes after the value, lowest first, as far as they are known (zeros then).
        let rest = match slot {
            Slot::Symbol => {
                if b.get(i) != Some(&b'"') {
                    return None;
                }
                symbol = raw_string(b, &mut i)?;
                load8(b, i)
            }
            Slot::Ts => {
                let n = number(b, i)?;
                ts = n.ts()?;
                i = n.end;
                n.rest
            }
            _ => {
                let n = number(b, i)?;
                nums[slot as usize] = n.f64()?;
                i = n.end;
                n.rest
            }
        };
        // `, "` (W1) at once, else any whitespace around the comma.
        if rest & 0xff_ffff == u64::from(u32::from_le_bytes(*b", \"\0")) {
            i += 2;
            continue;
        }
        match rest as u8 {
            b',' => {
                i += 1;
                ws(b, &mut i);
            }
            b'}' => {
                i += 1;
                break;
            }
            _ => {
                ws(b, &mut i);
                match b.get(i) {
                    Some(b',') => {
                        i += 1;
                        ws(b, &mut i);
                    }
                    Some(b'}') => {
                        i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The digits of `b` one at a time: the reference for [`digits`].
    fn digits_bytewise(b: &[u8]) -> (usize, u64, u8) {
        let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let m = b[..n].iter().fold(0u64, |m, &c| m.wrapping_mul(10).wrapping_add(u64::from(c - b'0')));
        (n, m, b.get(n).copied().unwrap_or(0))
    }

    /// Pseudo-random digits (a fixed LCG), so every run length sees varied digits.
    fn some_digits(len: usize, seed: u64) -> Vec<u8> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                b'0' + ((s >> 33) % 10) as u8
            })
            .collect()
    }

    #[test]
    fn digit_runs_of_every_length_and_terminator_match_the_bytewise_reading() {
        // Runs across the 8-byte word boundaries (0..=25 digits), at each offset of a word,
        // ended by every non-digit byte or by the end of the input (the zero padding).
        let mut terminators: Vec<Option<u8>> = (0..=255u8).filter(|c| !c.is_ascii_digit()).map(Some).collect();
        terminators.push(None);
        for len in 0..=25 {
            for (seed, &term) in terminators.iter().enumerate() {
                for offset in 0..8 {
                    let mut b = vec![b'x'; offset];
                    b.extend(some_digits(len, seed as u64));
                    b.extend(term);
                    let tail = &b[offset..];
                    let mut i = offset;
                    assert_eq!(digits(&b, &mut i), digits_bytewise(tail), "{:?}", String::from_utf8_lossy(tail));
                    assert_eq!(i, offset + len);
                }
            }
        }
        // The largest values of every length, all nines (the lanes' upper bounds).
        for len in 1..=19 {
            let b = vec![b'9'; len];
            assert_eq!(digits(&b, &mut 0), (len, POW10_U64[len] - 1, 0));
        }
    }

    #[test]
    fn loads_pad_the_line_end_with_zeros() {
        let b: Vec<u8> = (1..=20).collect();
        for i in 0..=22 {
            let want =
                |k: usize| (0..8).fold(0u64, |w, j| w | u64::from(b.get(i + j + k).copied().unwrap_or(0)) << (8 * j));
            assert_eq!(load8(&b, i), want(0), "at {i}");
            assert_eq!(load16(&b, i), (want(0), want(8)), "at {i}");
        }
        // Lines shorter than a word.
        assert_eq!(load8(b"ab", 0), u64::from_le_bytes(*b"ab\0\0\0\0\0\0"));
        assert_eq!(load8(b"ab", 1), u64::from(b'b'));
        assert_eq!(load8(b"", 0), 0);
    }

    /// A plain decimal of `int_len` integer digits (no leading zero) and `frac_len` fraction
    /// digits, the fraction's digits seeded `seed + frac_seed`.
    fn plain_number(int_len: usize, frac_len: usize, seed: u64, frac_seed: u64) -> Vec<u8> {
        let mut text = some_digits(int_len, seed);
        if int_len > 1 && text[0] == b'0' {
            text[0] = b'1';
        }
        if frac_len > 0 {
            text.push(b'.');
            text.extend(some_digits(frac_len, seed + frac_seed));
        }
        text
    }

    #[test]
    fn plain_numbers_read_as_str_parse_reads_them() {
        // Integer and fraction parts of 1 to 20 digits (the 19-digit limit, the 8-digit
        // words): exactly the values `str::parse` gives, or `None`.
        let mut accepted = 0;
        for int_len in 1..=20 {
            for frac_len in 0..=20 {
                for seed in 0..4 {
                    let text = plain_number(int_len, frac_len, seed, 100);
                    for neg in [false, true] {
                        let t = format!("{}{}", if neg { "-" } else { "" }, String::from_utf8_lossy(&text));
                        let want: f64 = t.parse().unwrap();
                        match plain_f64(t.as_bytes()) {
                            Some(v) => {
                                assert_eq!(v.to_bits(), want.to_bits(), "{t}");
                                assert!(int_len + frac_len <= 19, "{t}");
                                accepted += 1;
                            }
                            // Only too many digits, or a mantissa not exact as a double.
                            None => assert!(int_len + frac_len > 15, "{t}"),
                        }
                    }
                }
            }
        }
        assert!(accepted > 1000, "{accepted}");
        for (t, want) in [("0", Some(0.0)), ("-0", Some(-0.0)), ("-0.0", Some(-0.0)), ("0.5", Some(0.5))] {
            assert_eq!(plain_f64(t.as_bytes()).map(f64::to_bits), want.map(f64::to_bits), "{t}");
        }
        // 19 digits: read when exact, none at 20.
        assert_eq!(plain_f64(b"0.000000000000000001"), Some(1e-18));
        assert_eq!(plain_f64(b"0.0000000000000000001"), None);
        for t in
            ["", "-", "01", "00", "-01", "00.5", "1.", ".5", "1e5", "1E5", "1.5e3", "+1", "1 ", " 1", "1.2.3", "--1"]
        {
            assert_eq!(plain_f64(t.as_bytes()), None, "{t:?}");
        }
    }

    #[test]
    fn plain_timestamps_read_as_parse_numeric_reads_them() {
        use crate::decode::timestamp::parse_numeric;
        for int_len in 1..=20 {
            for frac_len in 0..=8 {
                for seed in 0..3 {
                    let t = String::from_utf8(plain_number(int_len, frac_len, seed, 7)).unwrap();
                    if let Some(got) = plain_ts(t.as_bytes()) {
                        assert_eq!(Ok(got), parse_numeric(&t), "{t}");
                    } else {
                        assert!(int_len + frac_len > 19, "{t}");
                    }
                }
            }
        }
        // The unit boundaries, and 19 digits (nanoseconds).
        for t in ["99999999999.9999", "100000000000", "99999999999999", "100000000000000", "99999999999999999"] {
            assert_eq!(plain_ts(t.as_bytes()).map(Ok), Some(parse_numeric(t)), "{t}");
        }
        assert_eq!(plain_ts(b"1700000000000000000"), Some((1_700_000_000_000, TsUnit::Nanos)));
        assert_eq!(plain_ts(b"1700000000.123456789"), Some((1_700_000_000_123, TsUnit::Seconds)));
        assert_eq!(plain_ts(b"-1"), None);
    }

    #[test]
    fn the_key_table_holds_every_spelling_of_slot_of_but_price() {
        use crate::decode::json::object::slot_of;
        let names = [
            "symbol",
            "stock_symbol",
            "timestamp",
            "ts",
            "local_time",
            "open",
            "opening_price",
            "high",
            "low",
            "close",
            "closing_price",
            "volume",
            "size",
        ];
        for name in names {
            let (slot, _) = slot_of(name.as_bytes()).unwrap();
            // Followed by the usual colon, by another key's text, or by the line's end.
            for after in ["", ":", ":1", ": 1", ": ", ":  1", " : 1", ",\"open\": 2,\"high\":3"] {
                let text = format!("\"{name}\"{after}");
                let mut i = 0;
                let got = key(text.as_bytes(), &mut i);
                // `: ` is taken with the key when it fits the 16-byte window.
                let colon = after.starts_with(": ") && name.len() + 4 <= 16;
                assert!(got == Some((slot, colon)), "{text}");
                assert_eq!(i, name.len() + 2 + if colon { 2 } else { 0 }, "{text}");
            }
        }
        // Prefixes and extensions of spellings, other keys, escapes, a missing quote.
        for text in [
            "\"price\":",
            "\"t\":",
            "\"tsx\":",
            "\"time\":",
            "\"timestamps\":",
            "\"sym\":",
            "\"symbols\":",
            "\"stock_symbo\":",
            "\"stock_symbol_\":",
            "\"lo\":",
            "\"lows\":",
            "\"local\":",
            "\"opening\":",
            "\"opens\":",
            "\"clos\":",
            "\"closing_prices\":",
            "\"volumes\":",
            "\"siz\":",
            "\"\\u0074s\":",
            "\"Open\":",
            "open\":",
            "'open':",
            "\"ts",
            "\"",
            "",
        ] {
            assert!(key(text.as_bytes(), &mut 0).is_none(), "{text}");
        }
    }

    #[test]
    fn raw_strings_end_at_the_first_quote_within_the_line() {
        for len in 0..=40 {
            let s: String = (0..len).map(|k| char::from(b'A' + (k % 26) as u8)).collect();
            for tail in ["", ",", ", \"open\": 1}"] {
                let text = format!("\"{s}\"{tail}");
                let mut i = 0;
                assert_eq!(raw_string(text.as_bytes(), &mut i), Some(s.as_bytes()), "{text}");
                assert_eq!(i, len + 2);
            }
            // Unterminated, or ended by nothing but the padding past the end.
            assert_eq!(raw_string(format!("\"{s}").as_bytes(), &mut 0), None, "{s}");
        }
    }
}
