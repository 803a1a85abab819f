//! CSV bodies: decoded bars are valid and read back identical; errors are at a line (and
//! column) that exists and name their field; the reader agrees with itself through a tiny
//! buffer.
#![no_main]

use std::io::BufReader;

use libfuzzer_sys::fuzz_target;
use tickflow::decode::{CsvReader, DecodeError, Location};
use tickflow_fuzz::{bounds, check_bar, check_error};
use tickflow_operators::{Bar, Symbol};

fn read(
    r: impl std::io::BufRead,
    symbol: Option<Symbol>,
    permissive: bool,
) -> Result<Vec<(u64, Result<Bar, DecodeError>)>, DecodeError> {
    let mut reader = CsvReader::new(r, symbol, bounds(permissive))?;
    let mut out = Vec::new();
    while let Some(r) = reader.next() {
        out.push((reader.line_number(), r));
    }
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, data)) = data.split_first() else { return };
    let permissive = flags & 1 == 1;
    let symbol = (flags & 2 == 2).then(|| Symbol::new("FZ").unwrap());
    let lines: Vec<&[u8]> = data.split(|&c| c == b'\n').collect();
    let whole = read(data, symbol, permissive);
    let small = read(BufReader::with_capacity(3, data), symbol, permissive);
    assert_eq!(whole, small, "the buffer size changed the result");
    match whole {
        Err(e) => {
            assert!(
                e.record() >= 1 && e.record() as usize <= lines.len().max(1),
                "header error at line {}",
                e.record()
            );
            check_error(&e, data.len());
        }
        Ok(rows) => {
            let mut last = 1;
            for (line_no, r) in rows {
                assert!(
                    line_no > last && line_no as usize <= lines.len(),
                    "line {line_no} after {last} of {}",
                    lines.len()
                );
                last = line_no;
                match r {
                    Ok(bar) => check_bar(&bar, &bounds(permissive)),
                    Err(e) => {
                        assert_eq!(e.record(), line_no, "an error of line {line_no} says line {}", e.record());
                        let line = lines[line_no as usize - 1];
                        if let Location::LineColumn(_, col) = e.location {
                            assert!(col >= 1, "column 0");
                        }
                        check_error(&e, line.len());
                    }
                }
            }
        }
    }
});
