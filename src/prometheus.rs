//! The Prometheus text exposition format 0.0.4: the one writer behind every `/metrics` (the
//! cluster's status server, the gateway, the connectors, the alert notifier).
//!
//! A [`Family`] is opened once with its name, [`Kind`] and help, which writes `# HELP` and
//! `# TYPE` once; its samples follow it, so a family's lines stay together as the format
//! requires. Label values are escaped (`\`, `"`, newline), histograms get their
//! `_bucket{le}` series, the `+Inf` bucket, `_sum` and `_count`. Names are checked against
//! the metric-name grammar in debug builds, and so is that no family is opened twice.
//!
//! ```
//! use tickflow::prometheus::{Exposition, Kind};
//! let mut e = Exposition::new("tickflow_");
//! e.family("requests_total", Kind::Counter, "Requests.").sample(&[("code", "200")], 3).sample(&[("code", "500")], 0);
//! e.family("latency_seconds", Kind::Histogram, "Latency.").histogram(&[], [("0.1", 2), ("1", 3)], "0.75", 4);
//! // `\x23` is `#`: rustdoc would hide a line that starts with one.
//! assert_eq!(
//!     e.finish(),
//!     "# HELP tickflow_requests_total Requests.\n# TYPE tickflow_requests_total counter\n\
//!      tickflow_requests_total{code=\"200\"} 3\ntickflow_requests_total{code=\"500\"} 0\n\
//!      \x23 HELP tickflow_latency_seconds Latency.\n# TYPE tickflow_latency_seconds histogram\n\
//!      tickflow_latency_seconds_bucket{le=\"0.1\"} 2\ntickflow_latency_seconds_bucket{le=\"1\"} 3\n\
//!      tickflow_latency_seconds_bucket{le=\"+Inf\"} 4\n\
//!      tickflow_latency_seconds_sum 0.75\ntickflow_latency_seconds_count 4\n"
//! );
//! ```

use std::fmt::{Display, Write as _};

/// The prefix of every tickflow metric name.
pub const NAMESPACE: &str = "tickflow_";

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A family's `# TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (reset on restart); named `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Cumulative buckets, a sum and a count.
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Builds one exposition text, family by family.
#[derive(Debug)]
pub struct Exposition {
    out: String,
    namespace: &'static str,
    /// Families opened so far (debug builds: each at most once).
    #[cfg(debug_assertions)]
    opened: std::collections::BTreeSet<String>,
}

impl Exposition {
    /// An empty exposition whose [`family`](Self::family) names start with `namespace`
    /// (`"tickflow_"`).
    pub fn new(namespace: &'static str) -> Exposition {
        Exposition {
            out: String::new(),
            namespace,
            #[cfg(debug_assertions)]
            opened: Default::default(),
        }
    }

    /// Opens the family `{namespace}{name}`: writes its HELP and TYPE lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> Family<'_> {
        let full = format!("{}{name}", self.namespace);
        self.open(full, kind, help)
    }

    /// Opens a family named exactly `name`, outside the namespace: the standard names that
    /// dashboards expect (`process_cpu_seconds_total`).
    pub fn standard_family(&mut self, name: &str, kind: Kind, help: &str) -> Family<'_> {
        self.open(name.to_owned(), kind, help)
    }

    fn open(&mut self, name: String, kind: Kind, help: &str) -> Family<'_> {
        debug_assert!(is_metric_name(&name), "{name:?} is not a Prometheus metric name");
        #[cfg(debug_assertions)]
        debug_assert!(self.opened.insert(name.clone()), "family {name} opened twice");
        self.out.push_str("# HELP ");
        self.out.push_str(&name);
        self.out.push(' ');
        escape_help(help, &mut self.out);
        // Writing to a String cannot fail.
        let _ = writeln!(self.out, "\n# TYPE {name} {}", kind.name());
        Family { out: &mut self.out, name }
    }

    /// The text so far.
    pub fn text(&self) -> &str {
        &self.out
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// One open family: its samples.
#[derive(Debug)]
pub struct Family<'a> {
    out: &'a mut String,
    name: String,
}

impl Family<'_> {
    /// A sample of the family itself (`name{labels} value`).
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl Display) -> &mut Self {
        self.line("", labels, None, value);
        self
    }

    /// One histogram series: a `_bucket` per `(le, cumulative count)` (ascending, without
    /// `+Inf`), the `+Inf` bucket (`count`), `_sum` and `_count`.
    pub fn histogram<L: Display>(
        &mut self,
        labels: &[(&str, &str)],
        buckets: impl IntoIterator<Item = (L, u64)>,
        sum: impl Display,
        count: u64,
    ) -> &mut Self {
        for (le, n) in buckets {
            self.line("_bucket", labels, Some(&le as &dyn Display), n);
        }
        self.line("_bucket", labels, Some(&"+Inf" as &dyn Display), count);
        self.line("_sum", labels, None, sum);
        self.line("_count", labels, None, count);
        self
    }

    fn line(&mut self, suffix: &str, labels: &[(&str, &str)], le: Option<&dyn Display>, value: impl Display) {
        let out = &mut *self.out;
        out.push_str(&self.name);
        out.push_str(suffix);
        if !labels.is_empty() || le.is_some() {
            out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                debug_assert!(is_label_name(k), "{k:?} is not a Prometheus label name");
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                escape_label_value(v, out);
                out.push('"');
            }
            if let Some(le) = le {
                if !labels.is_empty() {
                    out.push(',');
                }
                // Writing to a String cannot fail.
                let _ = write!(out, "le=\"{le}\"");
            }
            out.push('}');
        }
        let _ = writeln!(out, " {value}");
    }
}

/// Escapes `\`, `"` and newline as the 0.0.4 format requires of label values.
pub fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escapes `\` and newline, as the format requires of help text.
fn escape_help(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn is_metric_name(n: &str) -> bool {
    let mut b = n.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved).
fn is_label_name(n: &str) -> bool {
    let mut b = n.bytes();
    !n.starts_with("__")
        && b.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// `value / 10^digits` as an exact decimal without trailing zeros (`1500, 3` → `1.5`).
fn fixed_point(value: i128, digits: u32) -> String {
    let scale = 10i128.pow(digits);
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    let (int, frac) = (abs / scale as u128, abs % scale as u128);
    if frac == 0 {
        return format!("{sign}{int}");
    }
    let frac = format!("{frac:0width$}", width = digits as usize);
    format!("{sign}{int}.{}", frac.trim_end_matches('0'))
}

/// Milliseconds as exact seconds (Prometheus' base unit): `1500` → `1.5`.
pub fn ms_as_seconds(ms: i64) -> String {
    fixed_point(i128::from(ms), 3)
}

/// Nanoseconds as exact seconds: `1_000_000_001` → `1.000000001`.
pub fn ns_as_seconds(ns: u64) -> String {
    fixed_point(i128::from(ns), 9)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Checks `text` the way a scraper reads it, strictly: every line a comment or a sample,
    /// `# HELP` and `# TYPE` once per family and before its samples, a family's samples
    /// together, names and label names by the grammar, label values properly quoted, values
    /// numbers, histogram buckets ascending and cumulative, ending with `+Inf` equal to
    /// `_count`. Returns the samples as `(series with labels, value)`.
    pub(crate) fn parse_exposition(text: &str) -> Result<Vec<(String, f64)>, String> {
        use std::collections::{BTreeMap, BTreeSet};
        let mut samples = Vec::new();
        let mut types: BTreeMap<String, String> = BTreeMap::new();
        let mut helped = BTreeSet::new();
        let mut closed = BTreeSet::new();
        let mut current: Option<String> = None;
        // Per histogram series (labels without le): last le and count, +Inf seen.
        let mut buckets: BTreeMap<String, (f64, f64, Option<f64>)> = BTreeMap::new();
        let mut counts: BTreeMap<String, f64> = BTreeMap::new();
        let family_of = |name: &str, types: &BTreeMap<String, String>| -> String {
            for suffix in ["_bucket", "_sum", "_count"] {
                if let Some(stem) = name.strip_suffix(suffix) {
                    if types.get(stem).is_some_and(|t| t == "histogram") {
                        return stem.to_owned();
                    }
                }
            }
            name.to_owned()
        };
        for (n, line) in text.lines().enumerate() {
            let at = |m: String| format!("line {}: {m}: {line:?}", n + 1);
            if let Some(rest) = line.strip_prefix("# ") {
                let mut p = rest.splitn(3, ' ');
                let (what, name) = (p.next().unwrap_or(""), p.next().unwrap_or(""));
                if !is_metric_name(name) {
                    return Err(at(format!("bad family name {name:?}")));
                }
                if current.as_deref() != Some(name) {
                    if let Some(c) = current.take() {
                        closed.insert(c);
                    }
                    if closed.contains(name) {
                        return Err(at(format!("family {name} is split")));
                    }
                    current = Some(name.to_owned());
                }
                match what {
                    "HELP" if !helped.insert(name.to_owned()) => return Err(at("second HELP".into())),
                    "HELP" => {}
                    "TYPE" => {
                        let kind = p.next().unwrap_or("");
                        if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                            return Err(at(format!("unknown type {kind:?}")));
                        }
                        if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                            return Err(at("second TYPE".into()));
                        }
                    }
                    _ => return Err(at("unknown comment".into())),
                }
                continue;
            }
            if line.is_empty() || line.starts_with('#') {
                return Err(at("not a sample".into()));
            }
            let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
            let name = &line[..name_end];
            if !is_metric_name(name) {
                return Err(at(format!("bad metric name {name:?}")));
            }
            let family = family_of(name, &types);
            if current.as_deref() != Some(family.as_str()) {
                if let Some(c) = current.take() {
                    closed.insert(c);
                }
                if closed.contains(&family) {
                    return Err(at(format!("family {family} is split")));
                }
                current = Some(family.clone());
            }
            let mut rest = &line[name_end..];
            let mut labels = Vec::new();
            if let Some(r) = rest.strip_prefix('{') {
                let mut r = r;
                loop {
                    if let Some(after) = r.strip_prefix('}') {
                        r = after;
                        break;
                    }
                    let eq = r.find("=\"").ok_or_else(|| at("label without =\"".into()))?;
                    let key = &r[..eq];
                    if !is_label_name(key) {
                        return Err(at(format!("bad label name {key:?}")));
                    }
                    let mut value = String::new();
                    let mut chars = r[eq + 2..].char_indices();
                    let end = loop {
                        match chars.next() {
                            Some((i, '"')) => break eq + 2 + i + 1,
                            Some((_, '\\')) => match chars.next() {
                                Some((_, '\\')) => value.push('\\'),
                                Some((_, '"')) => value.push('"'),
                                Some((_, 'n')) => value.push('\n'),
                                _ => return Err(at("bad escape".into())),
                            },
                            Some((_, '\n')) | None => return Err(at("unterminated label value".into())),
                            Some((_, c)) => value.push(c),
                        }
                    };
                    labels.push((key.to_owned(), value));
                    r = &r[end..];
                    r = r.strip_prefix(',').unwrap_or(r);
                }
                rest = r;
            }
            let value = rest.strip_prefix(' ').ok_or_else(|| at("no space before the value".into()))?;
            let v: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                "NaN" => f64::NAN,
                v => v.parse().map_err(|_| at(format!("value {v:?} is not a number")))?,
            };
            let others: Vec<String> =
                labels.iter().filter(|(k, _)| k != "le").map(|(k, v)| format!("{k}={v:?}")).collect();
            let series = format!("{family}{{{}}}", others.join(","));
            if name.ends_with("_bucket") && family != name {
                let le = labels.iter().find(|(k, _)| k == "le").ok_or_else(|| at("bucket without le".into()))?;
                let le: f64 = if le.1 == "+Inf" {
                    f64::INFINITY
                } else {
                    le.1.parse().map_err(|_| at("le is not a number".into()))?
                };
                let b = buckets.entry(series.clone()).or_insert((f64::NEG_INFINITY, 0.0, None));
                if le <= b.0 || v < b.1 || b.2.is_some() {
                    return Err(at("buckets not ascending and cumulative".into()));
                }
                *b = (le, v, le.is_infinite().then_some(v));
            } else if name.ends_with("_count") && family != name {
                counts.insert(series.clone(), v);
            }
            let shown: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            samples.push((format!("{name}{{{}}}", shown.join(",")), v));
        }
        for (series, (_, _, inf)) in &buckets {
            match (inf, counts.get(series)) {
                (Some(i), Some(c)) if i == c => {}
                _ => return Err(format!("{series}: +Inf bucket missing or not equal to _count")),
            }
        }
        Ok(samples)
    }

    #[test]
    fn a_small_family_set_exactly() {
        let mut e = Exposition::new("t_");
        e.standard_family("process_open_fds", Kind::Gauge, "Open file descriptors.").sample(&[("process", "0")], 7);
        e.family("up_total", Kind::Counter, "Ups \\ downs\nand more.")
            .sample(&[("a", "x\"y"), ("b", "back\\slash\nnl")], 2)
            .sample(&[], 1);
        e.family("empty", Kind::Gauge, "No samples yet.");
        e.family("wait_seconds", Kind::Histogram, "Waits.")
            .histogram(&[("process", "0")], [("0.5", 1), ("1", 1)], "0.25", 1)
            .histogram(&[("process", "1")], [("0.5", 0), ("1", 2)], 1.5, 3);
        let text = e.finish();
        assert_eq!(
            text,
            r#"# HELP process_open_fds Open file descriptors.
# TYPE process_open_fds gauge
process_open_fds{process="0"} 7
# HELP t_up_total Ups \\ downs\nand more.
# TYPE t_up_total counter
t_up_total{a="x\"y",b="back\\slash\nnl"} 2
t_up_total 1
# HELP t_empty No samples yet.
# TYPE t_empty gauge
# HELP t_wait_seconds Waits.
# TYPE t_wait_seconds histogram
t_wait_seconds_bucket{process="0",le="0.5"} 1
t_wait_seconds_bucket{process="0",le="1"} 1
t_wait_seconds_bucket{process="0",le="+Inf"} 1
t_wait_seconds_sum{process="0"} 0.25
t_wait_seconds_count{process="0"} 1
t_wait_seconds_bucket{process="1",le="0.5"} 0
t_wait_seconds_bucket{process="1",le="1"} 2
t_wait_seconds_bucket{process="1",le="+Inf"} 3
t_wait_seconds_sum{process="1"} 1.5
t_wait_seconds_count{process="1"} 3
"#
        );
        let samples = parse_exposition(&text).unwrap();
        assert_eq!(samples.len(), 13);
        assert_eq!(samples[1], ("t_up_total{a=\"x\\\"y\",b=\"back\\\\slash\\nnl\"}".to_owned(), 2.0));
        // The independent parser reads the same samples and values.
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
        assert_eq!(scrape.docs.get("t_up_total").map(String::as_str), Some("Ups \\\\ downs\\nand more."));
        let up: Vec<_> = scrape.samples.iter().filter(|s| s.metric == "t_up_total").collect();
        // prometheus-parse keeps label values as escaped on the wire (our checker unescapes).
        assert_eq!(up[0].labels.get("a"), Some(r#"x\"y"#));
        assert_eq!(up[0].labels.get("b"), Some(r"back\\slash\nnl"));
        assert!(matches!(up[0].value, prometheus_parse::Value::Counter(v) if v == 2.0));
        let waits: Vec<_> = scrape.samples.iter().filter(|s| s.metric == "t_wait_seconds").collect();
        assert_eq!(waits.len(), 2, "{waits:?}");
        let p1 = waits.iter().find(|s| s.labels.get("process") == Some("1")).unwrap();
        let prometheus_parse::Value::Histogram(h) = &p1.value else { panic!("{p1:?}") };
        assert_eq!(
            h.iter().map(|b| (b.less_than, b.count)).collect::<Vec<_>>(),
            [(0.5, 0.0), (1.0, 2.0), (f64::INFINITY, 3.0)]
        );
    }

    #[test]
    fn the_checker_refuses_what_a_scraper_would() {
        let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n";
        assert!(parse_exposition(ok).is_ok());
        for bad in [
            "# HELP a A.\n# HELP a A.\n",
            "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n",
            "a{b=\"c} 1\n",
            "a{b=\"c\"} one\n",
            "1a 1\n",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n",
        ] {
            assert!(parse_exposition(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn fixed_point_is_exact_and_trimmed() {
        assert_eq!(ms_as_seconds(1_500), "1.5");
        assert_eq!(ms_as_seconds(2_000), "2");
        assert_eq!(ms_as_seconds(-1_250), "-1.25");
        assert_eq!(ms_as_seconds(7), "0.007");
        assert_eq!(ns_as_seconds(1_000_000_001), "1.000000001");
        assert_eq!(ns_as_seconds(0), "0");
    }
}
