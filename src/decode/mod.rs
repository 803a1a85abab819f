//! Bar payloads to validated bars, one `Result` per record.
//!
//! Every decoder turns raw input (an NDJSON line, a JSON array, a Nobitex UDF history body,
//! a CSV file) into [`Bar`](tickflow_operators::Bar)s that passed
//! [`Bar::validate`](tickflow_operators::Bar::validate), or into a [`DecodeError`] naming
//! the record, the field, the value and the rule. Nothing here counts or logs: sources split
//! the results (`ok_err`), count per batch and dead-letter the raw record, which the
//! streaming readers keep available ([`NdjsonReader::line`], [`CsvReader::line`]).
//!
//! - [`json`]: the JSON object shapes, arrays, NDJSON, UDF bodies (hand-written scanner).
//! - [`csv`]: CSV with a header, streaming.
//! - `lines`: the non-blank lines of a reader, numbered, one buffer (both streaming readers).
//! - [`timestamp`]: numeric and RFC 3339 timestamps, unit detection, writing back.
//! - [`error`]: [`DecodeError`] and its kinds.
pub mod csv;
pub mod error;
pub mod json;
mod lines;
pub mod timestamp;

pub use csv::CsvReader;
pub use error::{DecodeError, DecodeErrorKind, Location};
pub use json::{
    JsonBodyKind, NdjsonReader, decode_json_array, decode_json_body, decode_json_line, decode_json_line_with_unit,
    decode_udf, detect_json_body,
};
pub use timestamp::TsUnit;
