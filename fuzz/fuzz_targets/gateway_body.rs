//! The gateway's body decoder under every media type and query: one record number per
//! result, in order; good bars read back identical; the dead-letter index (a second,
//! lighter scanner of the same body) finds for every record the text that decodes to it.
//!
//! Input: one control byte (bits 0-1 media type, bits 2-4 `format=`, bit 5 `symbol=`,
//! bit 6 a symbol that is not valid, bit 7 permissive prices), then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickflow::decode::decode_json_line;
use tickflow::gateway::body::RawIndex;
use tickflow::gateway::{BodyError, BodyKind, IngestQuery, MediaType, decode_body};
use tickflow_fuzz::{bounds, check_bar, check_error};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, body)) = data.split_first() else { return };
    let media = [MediaType::Json, MediaType::Ndjson, MediaType::Csv, MediaType::Json][usize::from(ctl & 3)];
    let mut pairs = Vec::new();
    if let Some(f) = [None, Some("udf"), Some("json"), Some("ndjson"), Some("csv"), None, None, Some("xml")]
        [usize::from(ctl >> 2 & 7)]
    {
        pairs.push(("format".to_string(), f.to_string()));
    }
    if ctl & 32 != 0 {
        let sym = if ctl & 64 != 0 { "not a symbol" } else { "BTCIRT" };
        pairs.push(("symbol".to_string(), sym.to_string()));
    }
    let b = bounds(ctl & 128 != 0);
    let query = match IngestQuery::from_pairs(&pairs) {
        Ok(q) => q,
        Err(e) => {
            assert!(matches!(&e, BodyError::Query { name, .. } if name == "format"), "{e}");
            return;
        }
    };
    let decoded = match decode_body(media, &query, body, &b) {
        Ok(d) => d,
        Err(e) => {
            assert!(matches!(&e, BodyError::Query { name, .. } if name == "symbol"), "{e}");
            return;
        }
    };
    assert_eq!(decoded.records.len(), decoded.numbers.len(), "a result without a record number");
    assert!(decoded.numbers.windows(2).all(|w| w[0] < w[1]), "record numbers out of order: {:?}", decoded.numbers);
    let index = RawIndex::new(body, decoded.kind);
    for (r, &n) in decoded.records.iter().zip(&decoded.numbers) {
        let raw = index.raw(n);
        match r {
            Ok(bar) => {
                check_bar(bar, &b);
                // The dead-letter index must cut the same record out of the body.
                if matches!(decoded.kind, BodyKind::Ndjson | BodyKind::Array) {
                    match decode_json_line(&raw, n, &b) {
                        Ok(same) => {
                            assert_eq!(&same, bar, "record {n}: the raw index cut {:?}", String::from_utf8_lossy(&raw))
                        }
                        Err(e) => panic!(
                            "record {n}: the raw index cut {:?}, which does not decode: {e}",
                            String::from_utf8_lossy(&raw)
                        ),
                    }
                }
            }
            Err(e) => {
                assert_eq!(e.record(), n, "an error numbered {} filed as record {n}", e.record());
                check_error(e, body.len());
            }
        }
    }
});
