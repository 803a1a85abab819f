//! The strict RFC 8259 scanner behind the general path: syntax errors at a byte offset,
//! strings with escapes decoded, values of ignored keys skipped.

use std::borrow::Cow;

use crate::decode::error::{DecodeErrorKind, show_bytes};

/// A syntax error at a byte offset.
pub(super) struct Syntax {
    pub(super) pos: usize,
    pub(super) message: Cow<'static, str>,
}

impl Syntax {
    pub(super) fn into_kind(self) -> DecodeErrorKind {
        DecodeErrorKind::Syntax { format: "JSON", column: self.pos + 1, message: self.message.into_owned() }
    }
}

pub(super) struct Scanner<'a> {
    pub(super) b: &'a [u8],
    pub(super) pos: usize,
}

/// Nesting depth at which an ignored value is rejected (guards the recursion).
pub(super) const MAX_DEPTH: usize = 64;

impl<'a> Scanner<'a> {
    pub(super) fn new(b: &'a [u8]) -> Self {
        Scanner { b, pos: 0 }
    }

    pub(super) fn syntax(&self, message: impl Into<Cow<'static, str>>) -> Syntax {
        let message = message.into();
        if self.eof() {
            Syntax { pos: self.pos, message: format!("unexpected end of input, {message}").into() }
        } else {
            Syntax { pos: self.pos, message }
        }
    }

    pub(super) fn eof(&self) -> bool {
        self.pos >= self.b.len()
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    pub(super) fn skip_bom(&mut self) {
        if self.b[self.pos..].starts_with(b"\xEF\xBB\xBF") {
            self.pos += 3;
        }
    }

    /// Walks the object at the current `{` to its `}`: for each member, reads the key and the
    /// `:` and calls `value` with the scanner at the value, which must consume it.
    pub(super) fn object(
        &mut self,
        mut value: impl FnMut(&mut Self, Cow<'a, [u8]>) -> Result<(), Syntax>,
    ) -> Result<(), Syntax> {
        self.expect(b'{', "expected '{'")?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.syntax("expected '\"' (a key)"));
            }
            let key = self.key()?;
            self.ws();
            self.expect(b':', "expected ':'")?;
            self.ws();
            value(self, key)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.syntax("expected ',' or '}'")),
            }
        }
    }

    #[inline]
    pub(super) fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.pos) {
            self.pos += 1;
        }
    }

    pub(super) fn expect(&mut self, c: u8, message: &'static str) -> Result<(), Syntax> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.syntax(message))
        }
    }

    /// A string starting at the current `"`; borrowed unless it has escapes.
    pub(super) fn string(&mut self) -> Result<Cow<'a, str>, Syntax> {
        let start = self.pos + 1;
        let mut i = start;
        let mut high = 0u8;
        loop {
            match self.b.get(i) {
                Some(b'"') => break,
                Some(b'\\') => return self.string_escaped(start, i),
                Some(&c) if c < 0x20 => {
                    self.pos = i;
                    return Err(self.syntax("control character in string"));
                }
                Some(&c) => {
                    high |= c;
                    i += 1;
                }
                None => {
                    self.pos = i;
                    return Err(self.syntax("unterminated string"));
                }
            }
        }
        let raw = &self.b[start..i];
        let s = if high < 0x80 {
            // All bytes are ASCII, which is valid UTF-8.
            std::str::from_utf8(raw).map_err(|_| Syntax { pos: start, message: "invalid UTF-8".into() })?
        } else {
            std::str::from_utf8(raw)
                .map_err(|e| Syntax { pos: start + e.valid_up_to(), message: "invalid UTF-8 in string".into() })?
        };
        self.pos = i + 1;
        Ok(Cow::Borrowed(s))
    }

    /// An object key as bytes: keys are only compared with known ASCII names, so an escape-free
    /// ASCII key needs no UTF-8 validation (non-ASCII keys are still validated, and keys with
    /// escapes decoded, by [`Scanner::string`]).
    pub(super) fn key(&mut self) -> Result<Cow<'a, [u8]>, Syntax> {
        let start = self.pos + 1;
        let mut i = start;
        while let Some(&c) = self.b.get(i) {
            if c == b'"' {
                self.pos = i + 1;
                return Ok(Cow::Borrowed(&self.b[start..i]));
            }
            if c == b'\\' || !(0x20..0x80).contains(&c) {
                break;
            }
            i += 1;
        }
        Ok(match self.string()? {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        })
    }

    /// The slow path of [`Scanner::string`]: decodes escapes into an owned string.
    pub(super) fn string_escaped(&mut self, start: usize, first_escape: usize) -> Result<Cow<'a, str>, Syntax> {
        let mut out: Vec<u8> = self.b[start..first_escape].to_vec();
        let mut i = first_escape;
        loop {
            match self.b.get(i) {
                Some(b'"') => break,
                Some(b'\\') => {
                    let e = self.b.get(i + 1).copied();
                    i += 2;
                    let simple = match e {
                        Some(b'"') => b'"',
                        Some(b'\\') => b'\\',
                        Some(b'/') => b'/',
                        Some(b'b') => 8,
                        Some(b'f') => 12,
                        Some(b'n') => b'\n',
                        Some(b'r') => b'\r',
                        Some(b't') => b'\t',
                        Some(b'u') => {
                            let hi = self.hex4(i)?;
                            i += 4;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                if self.b.get(i..i + 2) != Some(b"\\u") {
                                    self.pos = i;
                                    return Err(self.syntax("unpaired surrogate in \\u escape"));
                                }
                                let lo = self.hex4(i + 2)?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    self.pos = i;
                                    return Err(self.syntax("unpaired surrogate in \\u escape"));
                                }
                                i += 6;
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&hi) {
                                self.pos = i - 6;
                                return Err(self.syntax("unpaired surrogate in \\u escape"));
                            } else {
                                hi
                            };
                            // Surrogates were excluded above, so the code point is valid.
                            let ch = char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER);
                            let mut tmp = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                            continue;
                        }
                        _ => {
                            self.pos = i - 2;
                            return Err(self.syntax("invalid escape in string"));
                        }
                    };
                    out.push(simple);
                }
                Some(&c) if c < 0x20 => {
                    self.pos = i;
                    return Err(self.syntax("control character in string"));
                }
                Some(&c) => {
                    out.push(c);
                    i += 1;
                }
                None => {
                    self.pos = i;
                    return Err(self.syntax("unterminated string"));
                }
            }
        }
        self.pos = i + 1;
        String::from_utf8(out)
            .map(Cow::Owned)
            .map_err(|_| Syntax { pos: start, message: "invalid UTF-8 in string".into() })
    }

    pub(super) fn hex4(&mut self, at: usize) -> Result<u32, Syntax> {
        let digits = self.b.get(at..at + 4).filter(|d| d.iter().all(u8::is_ascii_hexdigit));
        match digits {
            Some(d) => Ok(d.iter().fold(0, |acc, &c| acc * 16 + (c as char).to_digit(16).unwrap_or(0))),
            None => {
                self.pos = at;
                Err(self.syntax("expected 4 hex digits after \\u"))
            }
        }
    }

    /// A number token (JSON grammar); returns its text.
    #[inline]
    pub(super) fn number(&mut self) -> Result<&'a str, Syntax> {
        let start = self.pos;
        let b = self.b;
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let digits = |i: &mut usize| {
            let s = *i;
            while *i < b.len() && b[*i].is_ascii_digit() {
                *i += 1;
            }
            *i - s
        };
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                digits(&mut i);
            }
            _ => {
                self.pos = i;
                return Err(self.syntax("expected a digit"));
            }
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if digits(&mut i) == 0 {
                self.pos = i;
                return Err(self.syntax("expected a digit after '.'"));
            }
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                self.pos = i;
                return Err(self.syntax("expected a digit in the exponent"));
            }
        }
        self.pos = i;
        // The token is ASCII (sign, digits, '.', 'e', '+'), hence valid UTF-8.
        std::str::from_utf8(&b[start..i]).map_err(|_| Syntax { pos: start, message: "invalid number".into() })
    }

    /// A run of ASCII letters (after an optional sign) at the current position, for the
    /// literals `true`, `false`, `null` and the non-JSON `NaN` / `Infinity` spellings.
    pub(super) fn word(&mut self) -> &'a [u8] {
        let start = self.pos;
        let mut i = start;
        if let Some(b'-' | b'+') = self.b.get(i) {
            i += 1;
        }
        while i < self.b.len() && self.b[i].is_ascii_alphabetic() {
            i += 1;
        }
        self.pos = i;
        &self.b[start..i]
    }

    /// Skips any JSON value (for ignored fields), checking its syntax.
    pub(super) fn skip_value(&mut self, depth: usize) -> Result<(), Syntax> {
        if depth > MAX_DEPTH {
            return Err(self.syntax("nesting too deep"));
        }
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'-' | b'0'..=b'9') if !self.sign_then_letter() => self.number().map(drop),
            Some(b'{') => self.object(|s, _| s.skip_value(depth + 1)),
            Some(b'[') => {
                self.pos += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(());
                        }
                        _ => return Err(self.syntax("expected ',' or ']'")),
                    }
                }
            }
            _ => {
                let start = self.pos;
                match self.word() {
                    b"true" | b"false" | b"null" | b"NaN" | b"Infinity" | b"-Infinity" => Ok(()),
                    _ => {
                        self.pos = start;
                        Err(self.syntax("expected a value"))
                    }
                }
            }
        }
    }

    pub(super) fn sign_then_letter(&self) -> bool {
        self.peek() == Some(b'-') && self.b.get(self.pos + 1).is_some_and(u8::is_ascii_alphabetic)
    }

    /// Reads a value for a numeric field: a number, a numeric string, or a NaN/Infinity
    /// spelling. `Ok(Err(_))` is a field error (the value was skipped, scanning can go on).
    pub(super) fn field_value(&mut self) -> Result<Result<Value<'a>, Found>, Syntax> {
        match self.peek() {
            Some(b'"') => Ok(Ok(Value::Str(self.string()?))),
            Some(b'-' | b'0'..=b'9') if !self.sign_then_letter() => Ok(Ok(Value::Num(self.number()?))),
            Some(b'{') => {
                self.skip_value(0)?;
                Ok(Err(Found::Type("an object")))
            }
            Some(b'[') => {
                self.skip_value(0)?;
                Ok(Err(Found::Type("an array")))
            }
            _ => {
                let start = self.pos;
                let w = self.word();
                match w {
                    b"true" => Ok(Err(Found::Type("true"))),
                    b"false" => Ok(Err(Found::Type("false"))),
                    b"null" => Ok(Err(Found::Type("null"))),
                    _ if is_non_finite_word(w) => Ok(Err(Found::NonFinite(show_bytes(w)))),
                    _ => {
                        self.pos = start;
                        Err(self.syntax("expected a value"))
                    }
                }
            }
        }
    }
}

/// `nan`, `inf`, `infinity` in any case, with an optional sign.
pub(super) fn is_non_finite_word(w: &[u8]) -> bool {
    let w = w.strip_prefix(b"-").or_else(|| w.strip_prefix(b"+")).unwrap_or(w);
    w.eq_ignore_ascii_case(b"nan") || w.eq_ignore_ascii_case(b"inf") || w.eq_ignore_ascii_case(b"infinity")
}

/// A scalar value of a recognised field.
#[derive(Clone)]
pub(super) enum Value<'a> {
    Num(&'a str),
    Str(Cow<'a, str>),
}

/// A value that is not acceptable for the field: its type, or a NaN/Infinity token.
#[derive(Clone)]
pub(super) enum Found {
    Type(&'static str),
    NonFinite(String),
}

impl Found {
    pub(super) fn into_kind(self, field: &str, expected: &'static str) -> DecodeErrorKind {
        match self {
            Found::Type(t) => DecodeErrorKind::WrongType { field: field.into(), expected, found: t.into() },
            Found::NonFinite(v) => DecodeErrorKind::NotFinite { field: field.into(), value: v },
        }
    }
}
