//! Symbols as small inline values, a stable hash for routing, and a per-worker interner.
//!
//! A symbol is at most [`Symbol::MAX_LEN`] bytes of `[A-Za-z0-9._:-]`, so it fits inline in a
//! 33-byte `Copy` value: bars can cross threads and processes without a heap allocation, and
//! the routing hash ([`Symbol::route_hash`]) is the same in every process of a cluster.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::bar::BarError;

/// A validated ticker symbol stored inline (no heap allocation).
///
/// ```
/// use tickflow_operators::Symbol;
/// let s = Symbol::new("BTC-USD").unwrap();
/// assert_eq!(s.as_str(), "BTC-USD");
/// assert!(Symbol::new("bad symbol").is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Symbol {
    len: u8,
    bytes: [u8; Symbol::MAX_LEN],
}

impl Symbol {
    /// The longest symbol accepted, in bytes.
    pub const MAX_LEN: usize = 32;

    /// Validates `s` (1–32 characters of `[A-Za-z0-9._:-]`, at least one a letter or digit)
    /// and stores it inline.
    ///
    /// ```
    /// use tickflow_operators::Symbol;
    /// assert_eq!(
    ///     Symbol::new("..").unwrap_err().to_string(),
    ///     "symbol: \"..\" has no letter or digit; a symbol needs at least one of A-Z a-z 0-9"
    /// );
    /// assert!(Symbol::new("-").is_err() && Symbol::new("BRK.B").is_ok() && Symbol::new("_1").is_ok());
    /// ```
    pub fn new(s: &str) -> Result<Symbol, BarError> {
        Self::from_ascii(s.as_bytes()).ok_or_else(|| Self::why_invalid(s))
    }

    /// Why [`Symbol::from_ascii`] refused `s`.
    fn why_invalid(s: &str) -> BarError {
        let b = s.as_bytes();
        if b.is_empty() || b.len() > Self::MAX_LEN {
            BarError::SymbolLength { len: s.chars().count() }
        } else if let Some((pos, ch)) = s.char_indices().find(|&(_, c)| !Self::allowed(c)) {
            BarError::SymbolChar { symbol: truncate_for_error(s), ch, pos }
        } else {
            BarError::SymbolNoAlphanumeric { symbol: s.to_string() }
        }
    }

    /// The symbol of the bytes `b` when [`Symbol::new`] accepts them, `None` when it does not
    /// (it says why): one table lookup a byte, for decoders' hot paths.
    ///
    /// ```
    /// use tickflow_operators::Symbol;
    /// assert_eq!(Symbol::from_ascii(b"BRK.B"), Some(Symbol::new("BRK.B").unwrap()));
    /// assert_eq!(Symbol::from_ascii(b".."), None);
    /// assert_eq!(Symbol::from_ascii("É".as_bytes()), None);
    /// ```
    #[inline]
    pub fn from_ascii(b: &[u8]) -> Option<Symbol> {
        // 1: allowed; 2: allowed and a letter or digit.
        const CLASS: [u8; 256] = {
            let mut t = [0u8; 256];
            let mut c = 0;
            while c < 256 {
                let b = c as u8;
                t[c] = if b.is_ascii_alphanumeric() {
                    3
                } else if matches!(b, b'.' | b'_' | b':' | b'-') {
                    1
                } else {
                    0
                };
                c += 1;
            }
            t
        };
        if b.is_empty() || b.len() > Self::MAX_LEN {
            return None;
        }
        let (mut all, mut any) = (1u8, 0u8);
        for &c in b {
            let k = CLASS[c as usize];
            all &= k;
            any |= k;
        }
        if all == 0 || any & 2 == 0 {
            return None;
        }
        let mut bytes = [0u8; Self::MAX_LEN];
        bytes[..b.len()].copy_from_slice(b);
        // The length is at most 32, so it fits in a u8.
        Some(Symbol { len: b.len() as u8, bytes })
    }

    fn allowed(c: char) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
    }

    /// The symbol's bytes (ASCII): what writers of rows copy, with no UTF-8 check.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The symbol as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored (checked in `new`), so this cannot fail.
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("symbol bytes are ASCII")
    }

    /// A hash of the symbol's bytes that is identical in every process and on every run
    /// (FNV-1a followed by a 64-bit finalizer so the low bits are well mixed, as timely's
    /// `Exchange` routes by the low bits when the worker count is a power of two).
    ///
    /// ```
    /// use tickflow_operators::Symbol;
    /// let a = Symbol::new("AAPL").unwrap();
    /// assert_eq!(a.route_hash(), Symbol::new("AAPL").unwrap().route_hash());
    /// assert_ne!(a.route_hash(), Symbol::new("MSFT").unwrap().route_hash());
    /// ```
    pub fn route_hash(&self) -> u64 {
        stable_hash(&self.bytes[..self.len as usize])
    }

    /// The index of the worker that owns this symbol among `peers` workers.
    pub fn owner(&self, peers: usize) -> usize {
        (self.route_hash() % peers.max(1) as u64) as usize
    }
}

fn truncate_for_error(s: &str) -> String {
    if s.chars().count() <= 40 { s.to_string() } else { s.chars().take(40).collect::<String>() + "…" }
}

impl std::hash::Hash for Symbol {
    /// Hashes only the used bytes (the padding is always zero), as one `u64` write when the
    /// symbol is at most 8 bytes long (most tickers).
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let b = &self.bytes[..self.len as usize];
        if b.len() <= 8 {
            let mut w = [0u8; 8];
            w[..b.len()].copy_from_slice(b);
            state.write_u64(u64::from_le_bytes(w) ^ (u64::from(self.len) << 59));
        } else {
            state.write(b);
        }
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Maps symbols to dense `u32` ids on one worker, so per-symbol state lives in a `Vec`
/// indexed by id instead of a map keyed by strings.
///
/// ```
/// use tickflow_operators::{Symbol, SymbolTable};
/// let mut t = SymbolTable::default();
/// let a = t.intern(Symbol::new("AAPL").unwrap());
/// let b = t.intern(Symbol::new("MSFT").unwrap());
/// assert_eq!((a, b), (0, 1));
/// assert_eq!(t.intern(Symbol::new("AAPL").unwrap()), 0);
/// assert_eq!(t.symbol(1).as_str(), "MSFT");
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SymbolTable {
    ids: HashMap<Symbol, u32, foldhash::fast::RandomState>,
    symbols: Vec<Symbol>,
}

impl SymbolTable {
    /// Returns the id of `symbol`, assigning the next free one on first sight.
    pub fn intern(&mut self, symbol: Symbol) -> u32 {
        let next = self.symbols.len() as u32;
        let id = *self.ids.entry(symbol).or_insert(next);
        if id == next {
            self.symbols.push(symbol);
        }
        id
    }

    /// The id of `symbol`, if it was interned.
    pub fn get(&self, symbol: &Symbol) -> Option<u32> {
        self.ids.get(symbol).copied()
    }

    /// The symbol with id `id`. Panics if `id` was never handed out by [`SymbolTable::intern`].
    pub fn symbol(&self, id: u32) -> Symbol {
        self.symbols[id as usize]
    }

    /// How many symbols are interned.
    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    /// Whether no symbol is interned.
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }
}

/// A hash of `bytes` that is identical in every process, on every platform and in every
/// release (unlike std's hasher): FNV-1a followed by the splitmix64 finalizer, so the low bits,
/// which `% workers` uses, are well mixed. [`Symbol::route_hash`], the Kafka source's topic
/// placement and alert ids ([`StableHasher`], several fields) use it.
///
/// ```
/// use tickflow_operators::symbol::stable_hash;
/// assert_eq!(stable_hash(b"AAPL"), tickflow_operators::Symbol::new("AAPL").unwrap().route_hash());
/// // Routing and checkpointed state depend on it: the value never changes.
/// assert_eq!(stable_hash(b"AAPL"), 0xcedc_d565_6acd_33a8);
/// ```
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h = StableHasher::new();
    h.write(bytes);
    h.finish()
}

/// [`stable_hash`] over bytes given in pieces: the same value as over their concatenation.
///
/// ```
/// use tickflow_operators::symbol::{StableHasher, stable_hash};
/// let mut h = StableHasher::new();
/// h.write(b"AA");
/// h.write(b"PL");
/// assert_eq!(h.finish(), stable_hash(b"AAPL"));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct StableHasher(u64);

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher::new()
    }
}

impl StableHasher {
    /// The FNV-1a offset basis.
    pub const fn new() -> StableHasher {
        StableHasher(0xcbf2_9ce4_8422_2325)
    }

    /// Feeds `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash: the FNV-1a state through the splitmix64 finalizer.
    pub fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 30;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 27;
        h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^ (h >> 31)
    }
}
