//! One JSON bar object (an NDJSON line): decoded bars are valid and read back identical from
//! their canonical JSON and CSV forms; errors say where and name their field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickflow::decode::{decode_json_line, decode_json_line_with_unit};
use tickflow_fuzz::{assert_same_bar, bounds, check_bar, check_error};

fuzz_target!(|data: &[u8]| {
    for permissive in [false, true] {
        let b = bounds(permissive);
        let plain = decode_json_line(data, 7, &b);
        let with_unit = decode_json_line_with_unit(data, 7, &b);
        match (&plain, &with_unit) {
            (Ok(bar), Ok((same, unit))) => {
                assert_same_bar(bar, same, "decode_json_line_with_unit");
                check_bar(bar, &b);
                // Written back in the unit it came in, the timestamp reads back the same.
                let ts = unit.format(bar.ts);
                let line = format!(
                    r#"{{"symbol":"{}","ts":"{ts}","open":{:?},"high":{:?},"low":{:?},"close":{:?},"volume":{:?}}}"#,
                    bar.symbol.as_str(),
                    bar.open,
                    bar.high,
                    bar.low,
                    bar.close,
                    bar.volume
                );
                match decode_json_line(line.as_bytes(), 1, &b) {
                    Ok(back) => assert_same_bar(bar, &back, "timestamp in its own unit"),
                    Err(e) => panic!("{line:?} (ts {} in {}) does not decode: {e}", bar.ts, unit.name()),
                }
            }
            (Err(e), Err(f)) => {
                assert_eq!(e, f, "the two entry points disagree");
                assert_eq!(e.record(), 7);
                check_error(e, data.len());
            }
            _ => panic!("the two entry points disagree: {plain:?} vs {with_unit:?}"),
        }
    }
});
