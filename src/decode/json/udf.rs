//! Nobitex UDF history bodies (`{"s":"ok","t":[..],"o":[..],..}`).

use std::borrow::Cow;

use tickflow_operators::{Bar, Symbol, TimeBounds};

use crate::decode::error::{DecodeError, DecodeErrorKind, Location, show_bytes, show_str};
use crate::decode::timestamp::{self, TsUnit};

use super::number::{NUMBER, parse_f64};
use super::scanner::{Found, Scanner, Syntax, Value};

/// Decodes a Nobitex UDF history body (`{"s":"ok","t":[..],"o":[..],"h":[..],"l":[..],
/// "c":[..],"v":[..]}`, `t` in unix seconds) for `symbol`: one result per row (record =
/// 1-based row). `"s":"no_data"` gives no bars; `"s":"error"` (with its `errmsg`), arrays
/// of unequal length and invalid JSON fail the whole body (record 1).
///
/// ```
/// use tickflow::decode::decode_udf;
/// use tickflow_operators::{Symbol, TimeBounds};
/// let body = br#"{"s":"ok","t":[1700000000],"o":[10],"h":[11],"l":[9],"c":[10.5],"v":["3.5"]}"#;
/// let bars = decode_udf(body, Symbol::new("BTCIRT").unwrap(), &TimeBounds::default()).unwrap();
/// assert_eq!(bars[0].as_ref().unwrap().volume, 3.5);
/// ```
pub fn decode_udf(
    body: &[u8],
    symbol: Symbol,
    bounds: &TimeBounds,
) -> Result<Vec<Result<Bar, DecodeError>>, DecodeError> {
    let whole = |kind| DecodeError::new(Location::Record(1), kind);
    let udf = parse_udf(body).map_err(|e| whole(e.into_kind()))?.map_err(whole)?;
    match udf.status.as_deref() {
        Some("ok") => {}
        Some("no_data") => return Ok(Vec::new()),
        Some("error") => {
            let msg = udf.errmsg.as_deref().unwrap_or("(no errmsg)");
            return Err(whole(DecodeErrorKind::Udf { message: format!("error: {}", show_str(msg)) }));
        }
        Some(other) => {
            let message = format!("unknown status \"s\": {}", show_str(other));
            return Err(whole(DecodeErrorKind::Udf { message }));
        }
        None => return Err(whole(DecodeErrorKind::Missing { names: &["s"] })),
    }
    let cols = [&udf.t, &udf.o, &udf.h, &udf.l, &udf.c, &udf.v];
    const NAMES: [&str; 6] = ["t", "o", "h", "l", "c", "v"];
    for (name, col) in NAMES.iter().zip(cols) {
        if col.is_none() {
            return Err(whole(DecodeErrorKind::Missing { names: std::slice::from_ref(name) }));
        }
    }
    let lens: Vec<usize> = cols.iter().map(|c| c.as_ref().map_or(0, Vec::len)).collect();
    if lens.iter().any(|&l| l != lens[0]) {
        let parts: Vec<String> = NAMES.iter().zip(&lens).map(|(n, l)| format!("{n}={l}")).collect();
        let message = format!("arrays differ in length ({})", parts.join(", "));
        return Err(whole(DecodeErrorKind::Udf { message }));
    }
    fn get<'a>(col: &Option<Vec<UdfValue<'a>>>, i: usize) -> Option<UdfValue<'a>> {
        col.as_ref().map(|c| c[i].clone())
    }
    let mut out = Vec::with_capacity(lens[0]);
    for i in 0..lens[0] {
        let at = |kind| DecodeError::new(Location::Record(i as u64 + 1), kind);
        let row = (|| {
            let (text, shown) = match get(&udf.t, i) {
                Some(UdfValue::Num(text)) => (Cow::Borrowed(text), show_bytes(text.as_bytes())),
                Some(UdfValue::Str(text)) => {
                    let shown = show_str(&text);
                    (text, shown)
                }
                Some(UdfValue::Bad(f)) => {
                    return Err(f.into_kind("t", "a number or a numeric string"));
                }
                // Every column was checked to be present above.
                None => return Err(DecodeErrorKind::Missing { names: &["t"] }),
            };
            let ts = timestamp::parse_numeric_in(&text, TsUnit::Seconds)
                .map_err(|reason| DecodeErrorKind::Timestamp { field: "t".into(), value: shown, reason })?;
            let num = |col, name| get(col, i).map_or(Ok(0.0), |v: UdfValue<'_>| v.number(name));
            let bar = Bar::new(
                symbol,
                ts,
                num(&udf.o, "o")?,
                num(&udf.h, "h")?,
                num(&udf.l, "l")?,
                num(&udf.c, "c")?,
                num(&udf.v, "v")?,
            );
            bar.validate(bounds)?;
            Ok(bar)
        })();
        out.push(row.map_err(at));
    }
    Ok(out)
}

#[derive(Clone)]
pub(super) enum UdfValue<'a> {
    Num(&'a str),
    Str(Cow<'a, str>),
    Bad(Found),
}

impl UdfValue<'_> {
    fn number(self, name: &str) -> Result<f64, DecodeErrorKind> {
        match self {
            UdfValue::Num(n) => parse_f64(name, n, false),
            UdfValue::Str(s) => parse_f64(name, &s, true),
            UdfValue::Bad(f) => Err(f.into_kind(name, NUMBER)),
        }
    }
}

pub(super) struct Udf<'a> {
    status: Option<Cow<'a, str>>,
    errmsg: Option<Cow<'a, str>>,
    t: Option<Vec<UdfValue<'a>>>,
    o: Option<Vec<UdfValue<'a>>>,
    h: Option<Vec<UdfValue<'a>>>,
    l: Option<Vec<UdfValue<'a>>>,
    c: Option<Vec<UdfValue<'a>>>,
    v: Option<Vec<UdfValue<'a>>>,
}

pub(super) fn parse_udf(body: &[u8]) -> Result<Result<Udf<'_>, DecodeErrorKind>, Syntax> {
    let mut s = Scanner::new(body);
    let mut udf = Udf { status: None, errmsg: None, t: None, o: None, h: None, l: None, c: None, v: None };
    let mut err = None;
    s.skip_bom();
    s.ws();
    s.object(|s, key| {
        let col = match key.as_ref() {
            b"t" => Some((&mut udf.t, "t")),
            b"o" => Some((&mut udf.o, "o")),
            b"h" => Some((&mut udf.h, "h")),
            b"l" => Some((&mut udf.l, "l")),
            b"c" => Some((&mut udf.c, "c")),
            b"v" => Some((&mut udf.v, "v")),
            _ => None,
        };
        if let Some((col, name)) = col {
            if s.peek() == Some(b'[') {
                let values = udf_array(s)?;
                if col.is_some() && err.is_none() {
                    err = Some(DecodeErrorKind::Duplicate { field: name, first: name });
                }
                *col = Some(values);
            } else {
                let found = match s.field_value()? {
                    Ok(Value::Num(n)) => show_bytes(n.as_bytes()),
                    Ok(Value::Str(v)) => show_str(&v),
                    Err(Found::Type(t)) => t.to_string(),
                    Err(Found::NonFinite(v)) => v,
                };
                err.get_or_insert(DecodeErrorKind::WrongType { field: name.into(), expected: "an array", found });
            }
        } else if let b"s" | b"errmsg" = key.as_ref() {
            let v = if s.peek() == Some(b'"') {
                Some(s.string()?)
            } else {
                s.skip_value(0)?;
                let field = String::from_utf8_lossy(&key).into_owned();
                err.get_or_insert(DecodeErrorKind::WrongType {
                    field,
                    expected: "a string",
                    found: "another type".into(),
                });
                None
            };
            if key.as_ref() == b"s" { udf.status = v } else { udf.errmsg = v }
        } else {
            s.skip_value(0)?;
        }
        Ok(())
    })?;
    s.ws();
    if !s.eof() {
        return Err(s.syntax("unexpected text after the object"));
    }
    Ok(match err {
        Some(e) => Err(e),
        None => Ok(udf),
    })
}

pub(super) fn udf_array<'a>(s: &mut Scanner<'a>) -> Result<Vec<UdfValue<'a>>, Syntax> {
    let mut out = Vec::new();
    s.expect(b'[', "expected '['")?;
    s.ws();
    if s.peek() == Some(b']') {
        s.pos += 1;
        return Ok(out);
    }
    loop {
        s.ws();
        out.push(match s.field_value()? {
            Ok(Value::Num(n)) => UdfValue::Num(n),
            Ok(Value::Str(v)) => UdfValue::Str(v),
            Err(f) => UdfValue::Bad(f),
        });
        s.ws();
        match s.peek() {
            Some(b',') => s.pos += 1,
            Some(b']') => {
                s.pos += 1;
                return Ok(out);
            }
            _ => return Err(s.syntax("expected ',' or ']'")),
        }
    }
}
