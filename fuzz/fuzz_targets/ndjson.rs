//! JSON request bodies (object, array, NDJSON): the streaming NDJSON reader (through a tiny
//! buffer) and the whole-body decoder agree line by line; every decoded bar reads back
//! identical; record numbers are in range and errors name their field.
#![no_main]

use std::io::BufReader;

use libfuzzer_sys::fuzz_target;
use tickflow::decode::{JsonBodyKind, NdjsonReader, decode_json_body, decode_json_line, detect_json_body};
use tickflow_fuzz::{bounds, check_bar, check_error};

fuzz_target!(|data: &[u8]| {
    let permissive = data.first().is_some_and(|b| b & 1 == 1);
    let b = bounds(permissive);
    // The lines as the body decoder splits them, decoded one by one.
    let lines: Vec<_> = data
        .split(|&c| c == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.trim_ascii().is_empty())
        .map(|(i, l)| (l, decode_json_line(l, i as u64 + 1, &b)))
        .collect();
    let streamed: Vec<_> = NdjsonReader::new(BufReader::with_capacity(5, data), b).collect();
    assert_eq!(streamed.len(), lines.len(), "the reader and the split see different line counts");
    for ((line, one), s) in lines.iter().zip(&streamed) {
        assert_eq!(one, s, "the reader and the split decode a line differently");
        match one {
            Ok(bar) => check_bar(bar, &b),
            Err(e) => check_error(e, line.len()),
        }
    }
    let kind = detect_json_body(data);
    let body = decode_json_body(data, &b);
    match kind {
        JsonBodyKind::Empty => assert!(body.is_empty()),
        JsonBodyKind::Ndjson => {
            let same: Vec<_> = lines.into_iter().map(|(_, r)| r).collect();
            assert_eq!(body, same, "an NDJSON body decodes unlike its lines");
        }
        JsonBodyKind::Object => assert_eq!(body.len(), 1),
        JsonBodyKind::Array => {
            for (i, r) in body.iter().enumerate() {
                match r {
                    Ok(bar) => check_bar(bar, &b),
                    Err(e) => {
                        assert_eq!(e.record(), i as u64 + 1, "array element {} has record {}", i + 1, e.record());
                        check_error(e, data.len());
                    }
                }
            }
        }
    }
});
