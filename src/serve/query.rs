//! What the API computes over retained rows: JSON rows, period windows, per-field summaries
//! (avg / highest / lowest, highest gain and loss of the close) and aggregates. Pure
//! functions over slices, so the tests check them against a recomputation from files.

use serde_json::{Map, Value, json};
use tickflow_operators::rows::{BarOut, Candle, SignalChange, timeframe_label};
use tickflow_operators::signal::Decision;
use tickflow_operators::time::{Millis, format_rfc3339};
use tickflow_operators::{IndicatorSet, Values};

/// A value of a row that can be summarised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// Open price.
    Open,
    /// High.
    High,
    /// Low.
    Low,
    /// Close.
    Close,
    /// Volume.
    Volume,
    /// An indicator column, by index in the set.
    Column(usize),
}

impl Field {
    /// `open`, `high`, `low`, `close`, `volume` or an indicator column of `set`.
    pub fn resolve(name: &str, set: &IndicatorSet) -> Option<Field> {
        Some(match name {
            "open" => Field::Open,
            "high" => Field::High,
            "low" => Field::Low,
            "close" => Field::Close,
            "volume" => Field::Volume,
            other => Field::Column(set.column(other)?),
        })
    }

    /// Every field name the API knows for `set`.
    pub fn names(set: &IndicatorSet) -> Vec<String> {
        ["open", "high", "low", "close", "volume"].iter().map(|s| s.to_string()).chain(set.columns().to_vec()).collect()
    }
}

/// A retained row: an enriched bar or a candle.
pub trait Row {
    /// Event time (a candle's window start).
    fn ts(&self) -> Millis;
    /// The value of `f`; `None` while an indicator warms up.
    fn get(&self, f: Field) -> Option<f64>;
}

fn pick(open: f64, high: f64, low: f64, close: f64, volume: f64, values: &Values, f: Field) -> Option<f64> {
    match f {
        Field::Open => Some(open),
        Field::High => Some(high),
        Field::Low => Some(low),
        Field::Close => Some(close),
        Field::Volume => Some(volume),
        // A column the row does not have (never, for rows of the configured set) is missing.
        Field::Column(i) => (i < values.len()).then(|| values.get(i)).flatten(),
    }
}

impl<R: Row> Row for &R {
    fn ts(&self) -> Millis {
        (*self).ts()
    }
    fn get(&self, f: Field) -> Option<f64> {
        (*self).get(f)
    }
}

impl Row for BarOut {
    fn ts(&self) -> Millis {
        self.bar.ts
    }
    fn get(&self, f: Field) -> Option<f64> {
        let b = &self.bar;
        pick(b.open, b.high, b.low, b.close, b.volume, &self.values, f)
    }
}

impl Row for Candle {
    fn ts(&self) -> Millis {
        self.start
    }
    fn get(&self, f: Field) -> Option<f64> {
        pick(self.open, self.high, self.low, self.close, self.volume, &self.values, f)
    }
}

/// The rows of a period ending at the newest row: `ts` in `(end - period, end]`.
pub fn period<R: Row + Copy>(rows: impl DoubleEndedIterator<Item = R>, period: Millis) -> Vec<R> {
    let mut out: Vec<R> = Vec::new();
    let mut end = None;
    for r in rows.rev() {
        let e = *end.get_or_insert(r.ts());
        if r.ts() <= e - period {
            break;
        }
        out.push(r);
    }
    out.reverse();
    out
}

/// The rows with `from <= ts <= to`, the newest `limit` of them, oldest first.
pub fn range<R: Row + Copy>(
    rows: impl DoubleEndedIterator<Item = R>,
    from: Option<Millis>,
    to: Option<Millis>,
    limit: usize,
) -> Vec<R> {
    let mut out: Vec<R> = rows
        .rev()
        .filter(|r| to.is_none_or(|t| r.ts() <= t))
        .take_while(|r| from.is_none_or(|f| r.ts() >= f))
        .take(limit)
        .collect();
    out.reverse();
    out
}

/// Avg / highest / lowest of one field over rows (values that are missing are skipped).
pub fn field_stats<R: Row>(rows: &[R], f: Field) -> Value {
    let (mut n, mut sum, mut hi, mut lo) = (0u64, 0.0, f64::NEG_INFINITY, f64::INFINITY);
    for v in rows.iter().filter_map(|r| r.get(f)) {
        n += 1;
        sum += v;
        hi = hi.max(v);
        lo = lo.min(v);
    }
    if n == 0 {
        return json!({ "count": 0, "avg": null, "highest": null, "lowest": null });
    }
    json!({ "count": n, "avg": sum / n as f64, "highest": hi, "lowest": lo })
}

/// The largest rise and the largest fall of the close from one row to the next, with the
/// time of the row that ends it; `null` when there is none.
pub fn close_moves<R: Row>(rows: &[R]) -> (Value, Value) {
    let mut gain: Option<(f64, Millis)> = None;
    let mut loss: Option<(f64, Millis)> = None;
    for w in rows.windows(2) {
        let (Some(a), Some(b)) = (w[0].get(Field::Close), w[1].get(Field::Close)) else { continue };
        let d = b - a;
        if d > 0.0 && gain.is_none_or(|(g, _)| d > g) {
            gain = Some((d, w[1].ts()));
        }
        if d < 0.0 && loss.is_none_or(|(l, _)| d < l) {
            loss = Some((d, w[1].ts()));
        }
    }
    let j = |m: Option<(f64, Millis)>| {
        m.map_or(Value::Null, |(change, ts)| json!({ "change": change, "ts": ts, "time": format_rfc3339(ts) }))
    };
    (j(gain), j(loss))
}

/// An aggregate function of `GET /api/v1/aggregate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Agg {
    /// Mean.
    Avg,
    /// Smallest.
    Min,
    /// Largest.
    Max,
    /// Sum.
    Sum,
    /// Oldest value.
    First,
    /// Newest value.
    Last,
    /// How many values.
    Count,
}

impl Agg {
    /// Parses `avg|min|max|sum|first|last|count`.
    pub fn parse(s: &str) -> Option<Agg> {
        Some(match s {
            "avg" => Agg::Avg,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "sum" => Agg::Sum,
            "first" => Agg::First,
            "last" => Agg::Last,
            "count" => Agg::Count,
            _ => return None,
        })
    }

    /// `fn` over the present values of `f` in `rows` (oldest first); `None` without values
    /// (except `count`, 0).
    pub fn apply<R: Row>(self, rows: &[R], f: Field) -> Option<f64> {
        let mut vals = rows.iter().filter_map(|r| r.get(f));
        match self {
            Agg::Count => Some(vals.count() as f64),
            Agg::First => vals.next(),
            Agg::Last => vals.next_back(),
            Agg::Sum => {
                let mut any = false;
                let s = vals.inspect(|_| any = true).sum::<f64>();
                any.then_some(s)
            }
            Agg::Avg => {
                let (n, s) = vals.fold((0u64, 0.0), |(n, s), v| (n + 1, s + v));
                (n > 0).then(|| s / n as f64)
            }
            Agg::Min => vals.reduce(f64::min),
            Agg::Max => vals.reduce(f64::max),
        }
    }
}

fn num(v: Option<f64>) -> Value {
    v.filter(|x| x.is_finite()).map_or(Value::Null, Value::from)
}

fn signal(m: &mut Map<String, Value>, d: &Decision, set: &IndicatorSet) {
    m.insert("signal".into(), d.action.as_str().into());
    m.insert("rule".into(), d.rule.map_or(Value::Null, |r| set.rule_name(r).into()));
}

fn columns(m: &mut Map<String, Value>, values: &Values, set: &IndicatorSet) {
    for (i, name) in set.columns().iter().enumerate() {
        m.insert(name.clone(), num((i < values.len()).then(|| values.get(i)).flatten()));
    }
}

/// An enriched bar as JSON: `ts`, `time`, OHLCV, every indicator column, `signal`, `rule`.
pub fn bar_json(r: &BarOut, set: &IndicatorSet) -> Map<String, Value> {
    let b = &r.bar;
    let mut m = Map::new();
    m.insert("ts".into(), b.ts.into());
    m.insert("time".into(), format_rfc3339(b.ts).into());
    for (k, v) in [("open", b.open), ("high", b.high), ("low", b.low), ("close", b.close), ("volume", b.volume)] {
        m.insert(k.into(), num(Some(v)));
    }
    columns(&mut m, &r.values, set);
    signal(&mut m, &r.decision, set);
    m
}

/// A candle as JSON: `ts` (window start), `time`, OHLCV, `count`, the averages, `window_vwap`,
/// `revision`, every indicator column over the timeframe's candles, `signal`, `rule`.
pub fn candle_json(c: &Candle, set: &IndicatorSet) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("ts".into(), c.start.into());
    m.insert("time".into(), format_rfc3339(c.start).into());
    for (k, v) in [("open", c.open), ("high", c.high), ("low", c.low), ("close", c.close), ("volume", c.volume)] {
        m.insert(k.into(), num(Some(v)));
    }
    m.insert("count".into(), c.count.into());
    m.insert("volume_avg".into(), num(Some(c.avg_volume())));
    m.insert("open_avg".into(), num(Some(c.avg_open())));
    m.insert("close_avg".into(), num(Some(c.avg_close())));
    m.insert("window_vwap".into(), num(c.vwap()));
    m.insert("revision".into(), c.revision.into());
    columns(&mut m, &c.values, set);
    signal(&mut m, &c.decision, set);
    m
}

/// A signal change as JSON.
pub fn change_json(c: &SignalChange, set: &IndicatorSet) -> Value {
    json!({
        "ts": c.ts,
        "time": format_rfc3339(c.ts),
        "timeframe": timeframe_label(c.timeframe),
        "from": c.from.as_str(),
        "to": c.to.action.as_str(),
        "rule": c.to.rule.map(|r| set.rule_name(r)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickflow_operators::{Bar, Symbol};

    fn rows(closes: &[f64]) -> Vec<BarOut> {
        let s = Symbol::new("A").unwrap();
        closes
            .iter()
            .enumerate()
            .map(|(i, &c)| BarOut {
                bar: Bar::new(s, i as i64 * 1000, c, c, c, c, 2.0),
                values: Values::default(),
                decision: Decision::default(),
                changed_from: None,
            })
            .collect()
    }

    #[test]
    fn a_period_ends_at_the_newest_row_and_excludes_its_start() {
        let r = rows(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let p = period(r.iter().copied(), 3000);
        assert_eq!(p.iter().map(|r| r.bar.ts).collect::<Vec<_>>(), vec![2000, 3000, 4000]);
    }

    #[test]
    fn range_keeps_the_newest_within_the_limit() {
        let r = rows(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let got = range(r.iter().copied(), Some(1000), Some(3000), 2);
        assert_eq!(got.iter().map(|r| r.bar.ts).collect::<Vec<_>>(), vec![2000, 3000]);
        assert_eq!(range(r.iter().copied(), None, None, 10).len(), 5);
    }

    #[test]
    fn stats_and_moves_of_the_close() {
        let r = rows(&[10.0, 12.0, 9.0, 9.5, 15.0]);
        assert_eq!(field_stats(&r, Field::Close), json!({"count": 5, "avg": 11.1, "highest": 15.0, "lowest": 9.0}));
        let (gain, loss) = close_moves(&r);
        assert_eq!(gain["change"], json!(5.5));
        assert_eq!(gain["ts"], json!(4000));
        assert_eq!(loss["change"], json!(-3.0));
        assert_eq!(loss["ts"], json!(2000));
        let flat = rows(&[1.0, 1.0]);
        assert_eq!(close_moves(&flat), (Value::Null, Value::Null));
        assert_eq!(field_stats(&r, Field::Column(0))["count"], json!(0));
    }

    #[test]
    fn aggregates() {
        let r = rows(&[1.0, 2.0, 6.0]);
        let f = Field::Close;
        let got: Vec<_> = ["avg", "min", "max", "sum", "first", "last", "count"]
            .iter()
            .map(|a| Agg::parse(a).unwrap().apply(&r, f))
            .collect();
        assert_eq!(got, vec![Some(3.0), Some(1.0), Some(6.0), Some(9.0), Some(1.0), Some(6.0), Some(3.0)]);
        assert_eq!(Agg::Avg.apply(&r, Field::Column(0)), None);
        assert_eq!(Agg::Count.apply(&r, Field::Column(0)), Some(0.0));
        assert_eq!(Agg::parse("median"), None);
    }
}
