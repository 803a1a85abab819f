//! Request bodies to bars: which media type, which decoder, and where each record's raw
//! text is (for dead letters).
//!
//! Pure functions over bytes (no I/O), so the fuzz harness can drive them directly.
//!
//! | `Content-Type` | body | records |
//! |---|---|---|
//! | `application/json` | one object, an array of objects, or NDJSON | per object |
//! | `application/x-ndjson` (also `application/ndjson`, `application/jsonl`) | one object per line | per non-blank line |
//! | `application/json` + `?symbol=S` (or `?format=udf`) | Nobitex UDF history | per row |
//! | `text/csv` (optional `?symbol=S` when there is no symbol column) | CSV with a header | per line |
//!
//! Object shapes are those of [`crate::decode::json`]: bars under every accepted spelling
//! (the seed formats included) and price ticks (`symbol`, `price`, optional `size`,
//! `timestamp`).

use std::ops::Range;

use tickflow_operators::{Bar, Symbol, TimeBounds};

use crate::decode::{
    CsvReader, DecodeError, JsonBodyKind, decode_json_array, decode_json_line, decode_udf, detect_json_body,
};

/// The accepted media types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaType {
    /// `application/json`.
    Json,
    /// `application/x-ndjson` and its aliases.
    Ndjson,
    /// `text/csv`.
    Csv,
}

impl MediaType {
    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            MediaType::Json => "application/json",
            MediaType::Ndjson => "application/x-ndjson",
            MediaType::Csv => "text/csv",
        }
    }

    /// Parses a `Content-Type` header value (parameters such as `charset` ignored, case
    /// insensitive). `None` for a missing or unsupported type.
    pub fn from_header(value: Option<&str>) -> Option<MediaType> {
        let essence = value?.split(';').next()?.trim();
        let is = |name: &str| essence.eq_ignore_ascii_case(name);
        if is("application/json") || is("text/json") {
            Some(MediaType::Json)
        } else if is("application/x-ndjson")
            || is("application/ndjson")
            || is("application/jsonl")
            || is("application/x-jsonlines")
            || is("application/jsonlines")
        {
            Some(MediaType::Ndjson)
        } else if is("text/csv") {
            Some(MediaType::Csv)
        } else {
            None
        }
    }
}

/// The accepted `Content-Type`s, for the `415` message.
pub const ACCEPTED_TYPES: &str = "application/json, application/x-ndjson, text/csv";

/// Query parameters of `POST /ingest`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestQuery {
    /// `symbol=`: the symbol of a UDF body or of a CSV body without a symbol column.
    pub symbol: Option<String>,
    /// `format=udf|json|ndjson|csv`: overrides what the content type implies.
    pub format: Option<String>,
    /// `all_or_nothing=true`: produce nothing unless every record is valid.
    pub all_or_nothing: bool,
}

/// A request that cannot be decoded at all (answered `400` or `415`, nothing produced).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// A query parameter is unknown or has a bad value.
    #[error("query parameter {name}: {message}")]
    Query {
        /// The parameter.
        name: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// The media type is not supported (`415`).
    #[error("unsupported Content-Type {0:?}; expected one of {ACCEPTED_TYPES}")]
    UnsupportedType(String),
}

impl IngestQuery {
    /// Parses decoded `(name, value)` pairs.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<IngestQuery, BodyError> {
        let mut q = IngestQuery::default();
        for (name, value) in pairs {
            match name.as_str() {
                "symbol" => q.symbol = Some(value.clone()),
                "format" => match value.as_str() {
                    "udf" | "json" | "ndjson" | "csv" => q.format = Some(value.clone()),
                    _ => {
                        return Err(BodyError::Query {
                            name: name.clone(),
                            message: format!("{:?} is not one of udf, json, ndjson, csv", cut(value)),
                        });
                    }
                },
                "all_or_nothing" => {
                    q.all_or_nothing = match value.as_str() {
                        "true" | "1" | "" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(BodyError::Query {
                                name: name.clone(),
                                message: format!("{:?} is not true or false", cut(value)),
                            });
                        }
                    }
                }
                _ => {
                    return Err(BodyError::Query {
                        name: cut(name).to_string(),
                        message: "unknown; expected symbol, format or all_or_nothing".into(),
                    });
                }
            }
        }
        Ok(q)
    }
}

fn cut(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// What the body is decoded as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// A single JSON object.
    Object,
    /// A JSON array of objects.
    Array,
    /// One JSON object per line.
    Ndjson,
    /// A Nobitex UDF history body for one symbol.
    Udf(Symbol),
    /// CSV with a header, with the symbol for files without a symbol column.
    Csv(Option<Symbol>),
}

/// A decoded request: one result per record, in order, and how it was read.
#[derive(Debug)]
pub struct Decoded {
    /// How the body was read.
    pub kind: BodyKind,
    /// One result per record.
    pub records: Vec<Result<Bar, DecodeError>>,
    /// The 1-based record number of each entry of `records`, as [`DecodeError::record`]
    /// counts them (lines for NDJSON and CSV, elements for arrays, rows for UDF).
    pub numbers: Vec<u64>,
}

impl Decoded {
    /// Records numbered 1, 2, 3, ... (objects, array elements, UDF rows).
    fn sequential(kind: BodyKind, records: Vec<Result<Bar, DecodeError>>) -> Decoded {
        let numbers = (1..=records.len() as u64).collect();
        Decoded { kind, records, numbers }
    }
}

/// A 400 for a request whose parameters cannot be used (before any record is read).
fn query_err(name: &str, message: String) -> BodyError {
    BodyError::Query { name: name.into(), message }
}

/// Decodes `body` sent as `media` with `query` (see the module docs for the table).
pub fn decode_body(
    media: MediaType,
    query: &IngestQuery,
    body: &[u8],
    bounds: &TimeBounds,
) -> Result<Decoded, BodyError> {
    let symbol = match &query.symbol {
        None => None,
        Some(s) => Some(Symbol::new(s).map_err(|e| query_err("symbol", e.to_string()))?),
    };
    let format = query.format.as_deref();
    let media = match format {
        Some("json") | Some("udf") => MediaType::Json,
        Some("ndjson") => MediaType::Ndjson,
        Some("csv") => MediaType::Csv,
        _ => media,
    };
    let udf = format == Some("udf") || (media == MediaType::Json && symbol.is_some() && format != Some("json"));
    if udf {
        let Some(symbol) = symbol else {
            return Err(query_err("symbol", "missing; a UDF body needs ?symbol=, e.g. ?symbol=BTCIRT".into()));
        };
        let records = match decode_udf(body, symbol, bounds) {
            Ok(rows) => rows,
            Err(e) => vec![Err(e)],
        };
        return Ok(Decoded::sequential(BodyKind::Udf(symbol), records));
    }
    match media {
        MediaType::Json => match detect_json_body(body) {
            JsonBodyKind::Empty => Ok(Decoded::sequential(BodyKind::Object, Vec::new())),
            JsonBodyKind::Object => Ok(Decoded::sequential(BodyKind::Object, vec![decode_json_line(body, 1, bounds)])),
            JsonBodyKind::Array => Ok(Decoded::sequential(BodyKind::Array, decode_json_array(body, bounds))),
            JsonBodyKind::Ndjson => Ok(decode_lines(body, bounds)),
        },
        MediaType::Ndjson => Ok(decode_lines(body, bounds)),
        MediaType::Csv => {
            let (mut records, mut numbers) = (Vec::new(), Vec::new());
            if !body.trim_ascii().is_empty() {
                match CsvReader::new(body, symbol, *bounds) {
                    Ok(mut reader) => {
                        while let Some(r) = reader.next() {
                            numbers.push(reader.line_number());
                            records.push(r);
                        }
                    }
                    Err(e) => {
                        numbers.push(e.record());
                        records.push(Err(e));
                    }
                }
            }
            Ok(Decoded { kind: BodyKind::Csv(symbol), records, numbers })
        }
    }
}

/// NDJSON: one result per non-blank line; record numbers are line numbers.
fn decode_lines(body: &[u8], bounds: &TimeBounds) -> Decoded {
    let (mut records, mut numbers) = (Vec::new(), Vec::new());
    for (i, line) in body.split(|&c| c == b'\n').enumerate() {
        if !line.trim_ascii().is_empty() {
            numbers.push(i as u64 + 1);
            records.push(decode_json_line(line, i as u64 + 1, bounds));
        }
    }
    Decoded { kind: BodyKind::Ndjson, records, numbers }
}

/// Finds the raw text of records by their decoder record number, for dead letters. Built
/// only when a request has bad records (the index costs one pass over the body).
pub struct RawIndex<'a> {
    body: &'a [u8],
    /// Byte ranges of lines (NDJSON, CSV) or array elements, by 0-based number.
    ranges: Vec<Range<usize>>,
    kind: BodyKind,
}

impl<'a> RawIndex<'a> {
    /// Indexes `body` as read as `kind`.
    pub fn new(body: &'a [u8], kind: BodyKind) -> RawIndex<'a> {
        let ranges = match kind {
            BodyKind::Ndjson | BodyKind::Csv(_) => line_ranges(body),
            BodyKind::Array => crate::decode::json::json_array_elements(body),
            BodyKind::Object | BodyKind::Udf(_) => Vec::new(),
        };
        RawIndex { body, ranges, kind }
    }

    /// The raw text of record `record` (1-based, as in [`DecodeError::record`]). For a
    /// UDF row, the row's values re-assembled as a JSON object; when the record cannot be
    /// delimited (a syntax error), the rest of the body from where it starts.
    pub fn raw(&self, record: u64) -> std::borrow::Cow<'a, [u8]> {
        use std::borrow::Cow;
        let i = record.saturating_sub(1) as usize;
        match self.kind {
            BodyKind::Object => Cow::Borrowed(self.body),
            BodyKind::Udf(_) => udf_row(self.body, i).map_or(Cow::Borrowed(self.body), Cow::Owned),
            _ => match self.ranges.get(i) {
                Some(r) => Cow::Borrowed(&self.body[r.clone()]),
                None => {
                    let start = self.ranges.last().map_or(0, |r| r.end);
                    Cow::Borrowed(&self.body[start.min(self.body.len())..])
                }
            },
        }
    }
}

/// Byte ranges of every line (without `\r\n`), including blank ones, so line `n` is `[n-1]`.
fn line_ranges(body: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &c) in body.iter().enumerate() {
        if c == b'\n' {
            let end = if i > start && body[i - 1] == b'\r' { i - 1 } else { i };
            out.push(start..end);
            start = i + 1;
        }
    }
    if start < body.len() {
        out.push(start..body.len());
    }
    out
}

/// Row `i` of a UDF body as `{"t":..,"o":..,..}` (the slow path: only for dead letters).
fn udf_row(body: &[u8], i: usize) -> Option<Vec<u8>> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut row = Vec::from(&b"{"[..]);
    for (n, k) in ["t", "o", "h", "l", "c", "v"].into_iter().enumerate() {
        if n > 0 {
            row.push(b',');
        }
        row.extend_from_slice(format!("\"{k}\":").as_bytes());
        row.extend_from_slice(&serde_json::to_vec(v.get(k)?.get(i)?).ok()?);
    }
    row.push(b'}');
    Some(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_ignore_parameters_and_case() {
        assert_eq!(MediaType::from_header(Some("Application/JSON; charset=utf-8")), Some(MediaType::Json));
        assert_eq!(MediaType::from_header(Some("application/x-ndjson")), Some(MediaType::Ndjson));
        assert_eq!(MediaType::from_header(Some("text/csv;header=present")), Some(MediaType::Csv));
        assert_eq!(MediaType::from_header(Some("text/plain")), None);
        assert_eq!(MediaType::from_header(None), None);
    }

    #[test]
    fn raw_index_finds_lines_elements_and_udf_rows() {
        let nd = b"{\"a\":1}\r\n\n{\"b\":2}";
        let idx = RawIndex::new(nd, BodyKind::Ndjson);
        assert_eq!(&*idx.raw(1), b"{\"a\":1}");
        assert_eq!(&*idx.raw(3), b"{\"b\":2}");
        let udf = br#"{"s":"ok","t":[1,2],"o":[1,2],"h":[1,2],"l":[1,2],"c":[1,2],"v":[1,"x"]}"#;
        let idx = RawIndex::new(udf, BodyKind::Udf(Symbol::new("A").unwrap()));
        assert_eq!(&*idx.raw(2), br#"{"t":2,"o":2,"h":2,"l":2,"c":2,"v":"x"}"#);
    }
}
