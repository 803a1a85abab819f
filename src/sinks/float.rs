//! Doubles as text for every writer of results: the shortest digits that read back as the
//! same double, laid out as `ryu` lays them out (`67.8041`, `1.0`, `1e16`, `1.5e-7`).
//!
//! The digits come from `zmij` (Żmij, a Schubfach-based shortest-digits algorithm, already in
//! the tree through serde_json). On W2's rows it executes about half of `ryu`'s instructions
//! (callgrind of `replay --workers 1` on a 100 k-bar prefix: 826 M against 1,542 M; see
//! BENCHMARKS.md). Both give the shortest round-trip digits; their layouts differ only in the
//! sign of a positive exponent (`1e+16` against `1e16`), which is written `ryu`'s way so the
//! bytes of every result are what they were (test: `same_text_as_ryu`).

/// A reusable formatter (a 24-byte stack buffer).
#[derive(Default)]
pub struct FloatText(zmij::Buffer);

impl FloatText {
    /// A formatter.
    pub fn new() -> FloatText {
        FloatText(zmij::Buffer::new())
    }

    /// Appends finite `v` to `out`; with `trim_zero`, an integral value loses its `.0`
    /// (`12` rather than `12.0`, as CSV cells are written).
    #[inline]
    pub fn write(&mut self, v: f64, out: &mut Vec<u8>, trim_zero: bool) {
        let s = self.0.format_finite(v);
        // Only magnitudes of at least 1e16 get a positive exponent.
        if v.abs() >= 1e16 {
            if let Some((m, e)) = s.split_once("e+") {
                out.extend_from_slice(m.as_bytes());
                out.push(b'e');
                out.extend_from_slice(e.as_bytes());
                return;
            }
        }
        let s = if trim_zero { s.strip_suffix(".0").unwrap_or(s) } else { s };
        out.extend_from_slice(s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: f64) -> String {
        let mut out = Vec::new();
        FloatText::new().write(v, &mut out, false);
        String::from_utf8(out).unwrap()
    }

    /// Byte for byte what `ryu` writes, over random bit patterns (every exponent), values of
    /// the shape of prices and indicators, and the edges of the layouts.
    #[test]
    fn same_text_as_ryu() {
        let mut r = ryu::Buffer::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut cases = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            1e15,
            1e16,
            -1e16,
            9_999_999_999_999_998.0,
            1e17,
            1e-4,
            1e-5,
            1e-6,
            1e-7,
            5e-324,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            f64::EPSILON,
            123_456_789_012_345_680.0,
        ];
        for _ in 0..300_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let bits = f64::from_bits(x);
            if bits.is_finite() {
                cases.push(bits);
            }
            let price = (x >> 11) as f64 / (1u64 << 53) as f64 * 1000.0;
            cases.push(price);
            cases.push((price * 10_000.0).round() / 10_000.0);
        }
        for v in cases {
            assert_eq!(text(v), r.format_finite(v), "{v:e}");
        }
    }

    #[test]
    fn trims_an_integral_values_zero_only_when_asked() {
        let mut out = Vec::new();
        let mut f = FloatText::new();
        f.write(12.0, &mut out, true);
        out.push(b' ');
        f.write(12.0, &mut out, false);
        out.push(b' ');
        f.write(12.5, &mut out, true);
        out.push(b' ');
        f.write(1e20, &mut out, true);
        assert_eq!(String::from_utf8(out).unwrap(), "12 12.0 12.5 1e20");
    }
}
