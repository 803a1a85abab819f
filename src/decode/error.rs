//! The decode error: which record, which field, the value seen and why it was rejected.
//!
//! Every message reads `<where>: <what>`, e.g.
//! `record 17: high: 9 is below max(open, close) = 10.5 (rule: high >= max(open, close))` or
//! `line 5, column 3: high: "abc" is not a number`. The raw payload is not copied into the
//! error (that would allocate per bad record and double the memory of a dead-letter batch):
//! the caller still holds it (the readers expose the last raw line).

use std::fmt;

use thiserror::Error;
use tickflow_operators::BarError;

/// Where in the input a decode error happened. Numbers are 1-based and given by the caller
/// (for the streaming readers: the line number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// The n-th record (an NDJSON line, an array element, a UDF row), 1-based.
    Record(u64),
    /// A line of a CSV file, 1-based (the header is line 1).
    Line(u64),
    /// A field of a CSV line: line and column, both 1-based.
    LineColumn(u64, usize),
    /// The record starting at this byte offset of a file (0-based): NDJSON files are read
    /// in chunks by several workers, so a worker knows where a line starts, not its number.
    ByteOffset(u64),
    /// A Kafka message, by its offset in the partition.
    Offset(u64),
}

impl Location {
    /// The record or line number.
    pub fn number(self) -> u64 {
        match self {
            Location::Record(n)
            | Location::Line(n)
            | Location::LineColumn(n, _)
            | Location::ByteOffset(n)
            | Location::Offset(n) => n,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Record(n) => write!(f, "record {n}"),
            Location::Line(n) => write!(f, "line {n}"),
            Location::LineColumn(n, c) => write!(f, "line {n}, column {c}"),
            Location::ByteOffset(n) => write!(f, "byte offset {n}"),
            Location::Offset(n) => write!(f, "offset {n}"),
        }
    }
}

/// A record that could not be turned into a valid bar.
#[derive(Clone, Debug, PartialEq, Error)]
#[error("{location}: {kind}")]
pub struct DecodeError {
    /// Where the record is in the input.
    pub location: Location,
    /// What is wrong with it.
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    /// An error at `location`.
    pub fn new(location: Location, kind: DecodeErrorKind) -> DecodeError {
        DecodeError { location, kind }
    }

    /// The record (or line) number the error is about.
    pub fn record(&self) -> u64 {
        self.location.number()
    }

    /// The name of the input field the error is about, as spelled in the input, if any.
    pub fn field(&self) -> Option<&str> {
        self.kind.field()
    }
}

/// What is wrong with a record. Field names are spelled as in the input (`"stock_symbol"`,
/// `"opening_price"`, a CSV header), values as seen and cut at [`MAX_VALUE_CHARS`] characters.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum DecodeErrorKind {
    /// The payload is not well-formed JSON (or CSV). `column` is the 1-based byte column.
    #[error("invalid {format} at column {column}: {message}")]
    Syntax {
        /// `"JSON"` or `"CSV"`.
        format: &'static str,
        /// 1-based byte offset in the record.
        column: usize,
        /// What was expected or found.
        message: String,
    },
    /// A required field is absent.
    #[error("{} missing", quote_names(.names))]
    Missing {
        /// The accepted spellings of the field; the first is the canonical one.
        names: &'static [&'static str],
    },
    /// A field appears twice (possibly under two accepted spellings).
    #[error("{} duplicates {}", quoted(.field), quoted(.first))]
    Duplicate {
        /// The second occurrence.
        field: &'static str,
        /// The first occurrence.
        first: &'static str,
    },
    /// Two fields that exclude each other (a price tick's `"price"` and a bar's `"open"`).
    #[error("{} cannot be combined with {}", quoted(.field), quoted(.other))]
    Conflict {
        /// The later field.
        field: &'static str,
        /// The earlier one.
        other: &'static str,
    },
    /// A field has a JSON type that cannot hold its value.
    #[error("{field}: expected {expected}, found {found}")]
    WrongType {
        /// The field.
        field: String,
        /// What is accepted, e.g. `a number or a numeric string`.
        expected: &'static str,
        /// What was seen (a type name or the value, truncated).
        found: String,
    },
    /// A string where a number is expected does not hold a number.
    #[error("{field}: {value} is not a number")]
    NotANumber {
        /// The field.
        field: String,
        /// The value seen (truncated, quoted if it was a string).
        value: String,
    },
    /// NaN or an infinity, in any spelling, or a literal that overflows `f64` (`1e999`).
    #[error("{field}: {value} is not a finite number")]
    NotFinite {
        /// The field.
        field: String,
        /// The value seen (truncated, quoted if it was a string).
        value: String,
    },
    /// A literal too small for `f64` (`1e-400`), which would silently become 0.
    #[error(
        "{field}: {value} underflows to 0: its magnitude is below 5e-324, the smallest number above 0 that can be stored"
    )]
    Underflow {
        /// The field.
        field: String,
        /// The value seen (truncated, quoted if it was a string).
        value: String,
    },
    /// A timestamp that is not one of the accepted forms or does not fit in i64 milliseconds.
    #[error("{field}: {value} is not a valid timestamp: {reason}")]
    Timestamp {
        /// The field.
        field: String,
        /// The value seen (truncated, quoted if it was a string).
        value: String,
        /// Why.
        reason: String,
    },
    /// The decoded bar breaks a rule of the bar model (or the symbol is not a valid symbol).
    #[error(transparent)]
    Invalid(#[from] BarError),
    /// A CSV header that lacks a required column or repeats one.
    #[error("header: {message}")]
    Header {
        /// What is wrong.
        message: String,
    },
    /// A CSV line with a different number of fields than the header.
    #[error("{found} fields, the header has {expected}")]
    FieldCount {
        /// Fields in the header.
        expected: usize,
        /// Fields on this line.
        found: usize,
    },
    /// A UDF history body that is not usable as a whole (`"s":"error"`, unequal arrays).
    #[error("UDF body: {message}")]
    Udf {
        /// What is wrong.
        message: String,
    },
    /// Reading the input failed; the reader stops after reporting it.
    #[error("read error: {message}")]
    Io {
        /// The I/O error's text.
        message: String,
    },
}

impl DecodeErrorKind {
    /// The name of the input field the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            DecodeErrorKind::Missing { names } => names.first().copied(),
            DecodeErrorKind::Duplicate { field, .. } | DecodeErrorKind::Conflict { field, .. } => Some(field),
            DecodeErrorKind::WrongType { field, .. }
            | DecodeErrorKind::NotANumber { field, .. }
            | DecodeErrorKind::NotFinite { field, .. }
            | DecodeErrorKind::Underflow { field, .. }
            | DecodeErrorKind::Timestamp { field, .. } => Some(field),
            DecodeErrorKind::Invalid(e) => Some(e.field().name()),
            _ => None,
        }
    }
}

/// Values quoted in error messages are cut at this many characters (then `…` is appended).
pub const MAX_VALUE_CHARS: usize = 80;

/// `s` cut at [`MAX_VALUE_CHARS`] characters, with `…` appended when cut.
pub(crate) fn truncate(s: &str) -> String {
    match s.char_indices().nth(MAX_VALUE_CHARS) {
        None => s.to_string(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// Raw input bytes for a message: lossy UTF-8, truncated.
pub(crate) fn show_bytes(b: &[u8]) -> String {
    let cut = &b[..b.len().min(MAX_VALUE_CHARS * 4)];
    truncate(&String::from_utf8_lossy(cut))
}

/// A string value for a message: quoted like JSON (`"abc"`), truncated inside the quotes.
pub(crate) fn show_str(s: &str) -> String {
    format!("{:?}", truncate(s))
}

fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

fn quote_names(names: &[&str]) -> String {
    match names {
        [] => String::from("field"),
        [one] => quoted(one),
        [first, rest @ ..] => {
            let alts: Vec<String> = rest.iter().map(|n| quoted(n)).collect();
            format!("{} (or {})", quoted(first), alts.join(", "))
        }
    }
}
