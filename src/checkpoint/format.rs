//! The binary format of one checkpoint part: a fixed header, then a bincode payload.
//!
//! ```text
//! offset  size  field
//!      0     8  MAGIC            b"TFCKPT\0\x01"
//!      8     4  version          u32 little-endian, FORMAT_VERSION
//!     12     8  payload length   u64 little-endian
//!     20     8  checksum         u64 little-endian, xxh3-64 of the payload
//!     28     n  payload          bincode 1.3, fixed-width little-endian integers
//! ```
//!
//! The header carries the checksum so that the store can check a part from its first
//! [`HEADER_LEN`] bytes (a ranged read) against its manifest entry, and fully (every byte)
//! when it loads it. The payload is checked before bincode sees it, so a corrupt length
//! prefix inside the payload never reaches the decoder (bincode would trust it and allocate).

use bincode::Options;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The first 8 bytes of every part.
pub const MAGIC: [u8; 8] = *b"TFCKPT\0\x01";
/// The version written in every part's header and in every manifest. 2: a symbol's indicator
/// state is one exact-size word buffer laid out by its set, and an open candle window keeps
/// its aggregate only (version-1 checkpoints are refused by name, never misread).
pub const FORMAT_VERSION: u32 = 2;
/// Bytes before the payload: magic, version, payload length, checksum.
pub const HEADER_LEN: usize = 8 + 4 + 8 + 8;

/// Why bytes are not a valid part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The first 8 bytes are not [`MAGIC`]: not a tickflow checkpoint part.
    #[error("not a checkpoint part (bad magic)")]
    BadMagic,
    /// Written by a newer (or unknown) format version.
    #[error("unsupported checkpoint format version {0} (this build reads {FORMAT_VERSION})")]
    UnsupportedVersion(u32),
    /// Fewer bytes than the header says there are.
    #[error("truncated part: expected {expected} bytes, found {actual}")]
    Truncated {
        /// Header plus payload length, as the header says (or just the header length).
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// More bytes than the header says there are.
    #[error("trailing bytes after the part: expected {expected} bytes, found {actual}")]
    TrailingBytes {
        /// Header plus payload length, as the header says.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// The payload's checksum is not the one in the header.
    #[error("checksum mismatch: header says {expected:#018x}, payload has {actual:#018x}")]
    Checksum {
        /// The checksum in the header.
        expected: u64,
        /// The checksum of the payload as read.
        actual: u64,
    },
    /// The payload is intact but is not a value of the requested type (or the value could
    /// not be encoded).
    #[error("payload does not decode: {0}")]
    Decode(String),
}

/// The header of a part, read without touching the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartHeader {
    /// The format version.
    pub version: u32,
    /// Payload bytes after the header.
    pub payload_len: u64,
    /// xxh3-64 of the payload.
    pub checksum: u64,
}

impl PartHeader {
    /// Header plus payload: the size of the whole part.
    pub fn part_len(&self) -> u64 {
        HEADER_LEN as u64 + self.payload_len
    }
}

/// The bincode configuration, spelled out rather than taken from `bincode::serialize`'s
/// defaults, because these bytes outlive the binary that wrote them: fixed-width
/// little-endian integers (what `bincode::serialize` does) and no trailing bytes.
fn bincode_options() -> impl Options + Copy {
    bincode::DefaultOptions::new().with_fixint_encoding().with_little_endian().reject_trailing_bytes()
}

/// The checksum of a payload, as stored in the header.
pub fn checksum(payload: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(payload)
}

/// Encodes `value` as one part: header, then the bincode payload.
///
/// ```
/// use std::collections::BTreeMap;
/// use tickflow::checkpoint::{FormatError, HEADER_LEN, MAGIC, decode_part, encode_part};
///
/// let state: BTreeMap<String, (u64, f64)> =
///     [("BTC-USD".to_string(), (17, 64_000.5)), ("ETH-USD".to_string(), (3, 3_100.25))].into();
/// let bytes = encode_part(&state);
/// assert_eq!(&bytes[..8], &MAGIC);
/// assert!(bytes.len() > HEADER_LEN);
/// let back: BTreeMap<String, (u64, f64)> = decode_part(&bytes).unwrap();
/// assert_eq!(back, state);
///
/// // One flipped payload byte is caught by the checksum, before bincode sees it.
/// let mut bad = bytes.clone();
/// bad[HEADER_LEN + 3] ^= 0x40;
/// assert!(matches!(decode_part::<BTreeMap<String, (u64, f64)>>(&bad), Err(FormatError::Checksum { .. })));
/// ```
///
/// # Panics
/// If `value`'s `Serialize` implementation fails. bincode fails only on sequences of unknown
/// length (a hand-written `serialize_seq(None)`) or a custom error; derived implementations
/// and the std collections never do. Use [`try_encode_part`] for values that might.
pub fn encode_part<T: Serialize>(value: &T) -> Vec<u8> {
    match try_encode_part(value) {
        Ok(bytes) => bytes,
        Err(e) => panic!("encode_part: {e}"),
    }
}

/// [`encode_part`] that reports a failing `Serialize` implementation instead of panicking.
pub fn try_encode_part<T: Serialize>(value: &T) -> Result<Vec<u8>, FormatError> {
    let options = bincode_options();
    let payload_len = options.serialized_size(value).map_err(|e| FormatError::Decode(e.to_string()))?;
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload_len as usize);
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&payload_len.to_le_bytes());
    bytes.extend_from_slice(&[0; 8]); // the checksum, filled in below
    options.serialize_into(&mut bytes, value).map_err(|e| FormatError::Decode(e.to_string()))?;
    let sum = checksum(&bytes[HEADER_LEN..]);
    bytes[20..28].copy_from_slice(&sum.to_le_bytes());
    Ok(bytes)
}

/// Reads and checks the header (magic, version) from the first [`HEADER_LEN`] bytes; the
/// payload is neither needed nor checked.
pub fn read_header(bytes: &[u8]) -> Result<PartHeader, FormatError> {
    let n = bytes.len().min(MAGIC.len());
    if bytes[..n] != MAGIC[..n] {
        return Err(FormatError::BadMagic);
    }
    if bytes.len() < HEADER_LEN {
        return Err(FormatError::Truncated { expected: HEADER_LEN as u64, actual: bytes.len() as u64 });
    }
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes: HEADER_LEN checked"));
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes: HEADER_LEN checked"));
    if version != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion(version));
    }
    Ok(PartHeader { version, payload_len: word(12), checksum: word(20) })
}

/// Checks a whole part (header, length, checksum) without decoding the payload; returns the
/// header.
pub fn verify_part(bytes: &[u8]) -> Result<PartHeader, FormatError> {
    let header = read_header(bytes)?;
    let (expected, actual) = (header.part_len(), bytes.len() as u64);
    if actual < expected {
        return Err(FormatError::Truncated { expected, actual });
    }
    if actual > expected {
        return Err(FormatError::TrailingBytes { expected, actual });
    }
    let sum = checksum(&bytes[HEADER_LEN..]);
    if sum != header.checksum {
        return Err(FormatError::Checksum { expected: header.checksum, actual: sum });
    }
    Ok(header)
}

/// Checks a part (see [`verify_part`]) and decodes its payload. See [`encode_part`].
pub fn decode_part<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FormatError> {
    verify_part(bytes)?;
    bincode_options().deserialize(&bytes[HEADER_LEN..]).map_err(|e| FormatError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_is_the_documented_one() {
        let bytes = encode_part(&(1u32, "ab".to_string()));
        assert_eq!(&bytes[..8], b"TFCKPT\0\x01");
        assert_eq!(&bytes[8..12], &FORMAT_VERSION.to_le_bytes());
        // payload: u32 (4) + string length u64 (8) + 2 bytes
        assert_eq!(&bytes[12..20], &14u64.to_le_bytes());
        assert_eq!(&bytes[20..28], &checksum(&bytes[28..]).to_le_bytes());
        assert_eq!(&bytes[28..], &[1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, b'a', b'b']);
        assert_eq!(
            verify_part(&bytes).unwrap(),
            PartHeader { version: FORMAT_VERSION, payload_len: 14, checksum: checksum(&bytes[28..]) }
        );
    }

    #[test]
    fn short_input_is_bad_magic_or_truncated() {
        assert_eq!(read_header(b""), Err(FormatError::Truncated { expected: 28, actual: 0 }));
        assert_eq!(read_header(b"TFC"), Err(FormatError::Truncated { expected: 28, actual: 3 }));
        assert_eq!(read_header(b"TFX"), Err(FormatError::BadMagic));
        assert_eq!(read_header(b"{\"version\":1}"), Err(FormatError::BadMagic));
    }

    #[test]
    fn wrong_type_is_a_decode_error_not_a_panic() {
        let bytes = encode_part(&7u8);
        assert!(matches!(decode_part::<(u64, u64)>(&bytes), Err(FormatError::Decode(_))));
        // reject_trailing_bytes: a u8 payload is not a unit.
        assert!(matches!(decode_part::<()>(&bytes), Err(FormatError::Decode(_))));
    }
}
