//! The non-blank lines of a `BufRead` in one reused buffer, numbered from 1: what the NDJSON
//! and CSV readers iterate over.

use std::io::{self, BufRead};

/// Non-blank lines of `reader`. Blank lines (only ASCII white space) are skipped but
/// counted, so [`Lines::number`] is the line's number in the input. An I/O error is returned
/// once and ends the lines; `Interrupted` is retried.
pub(crate) struct Lines<R> {
    reader: R,
    buf: Vec<u8>,
    number: u64,
    done: bool,
}

impl<R: BufRead> Lines<R> {
    /// Lines of `reader`, the buffer sized for lines of about `capacity` bytes.
    pub(crate) fn new(reader: R, capacity: usize) -> Self {
        Lines { reader, buf: Vec::with_capacity(capacity), number: 0, done: false }
    }

    /// Reads the next non-blank line into the buffer: `Some(Ok(()))`, then [`Lines::text`]
    /// and [`Lines::line`] hold it; `None` at the end; `Some(Err)` once on an I/O error.
    pub(crate) fn advance(&mut self) -> Option<io::Result<()>> {
        while !self.done {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.number += 1;
                    if !self.buf.trim_ascii().is_empty() {
                        return Some(Ok(()));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }

    /// The line last read without its `\n`, a `\r` before it kept: what splitting the input
    /// at `\n` gives (as the body decoders split a request), for decoding.
    pub(crate) fn text(&self) -> &[u8] {
        self.buf.strip_suffix(b"\n").unwrap_or(&self.buf)
    }

    /// The line last read without its `\n` or `\r\n`.
    pub(crate) fn line(&self) -> &[u8] {
        let l = self.text();
        l.strip_suffix(b"\r").unwrap_or(l)
    }

    /// The 1-based number of the line last read (after the end: the number of lines).
    pub(crate) fn number(&self) -> u64 {
        self.number
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_blank_lines_but_counts_them() {
        let mut l = Lines::new("a\r\n\n  \nb".as_bytes(), 8);
        assert!(matches!(l.advance(), Some(Ok(()))));
        assert_eq!((l.line(), l.text(), l.number()), (&b"a"[..], &b"a\r"[..], 1));
        assert!(matches!(l.advance(), Some(Ok(()))));
        assert_eq!((l.line(), l.number()), (&b"b"[..], 4));
        assert!(l.advance().is_none());
        assert!(l.advance().is_none());
        assert_eq!(l.number(), 4);
    }

    #[test]
    fn an_io_error_is_reported_once_and_ends_the_lines() {
        struct Failing;
        impl io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk gone"))
            }
        }
        let mut l = Lines::new(io::BufReader::new(Failing), 8);
        assert_eq!(l.advance().unwrap().unwrap_err().to_string(), "disk gone");
        assert!(l.advance().is_none());
    }
}
