//! Validation and building: every problem is collected, then reported at once.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use tickflow_operators::dataflow::WindowConfig;
use tickflow_operators::signal::{Combine, Rule};
use tickflow_operators::time::{self, Millis};
use tickflow_operators::{IndicatorSet, IndicatorSpec, Symbol, TimeBounds};

use super::model::*;

/// Every problem found in a config, one line each.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} problem(s) in the configuration:", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Where bars come from, checked.
#[derive(Clone, Debug)]
pub enum SourceSpec {
    /// The synthetic market.
    Generator {
        /// Symbols.
        symbols: usize,
        /// Bars/s for the whole cluster (0 = max).
        rate: u64,
        /// Seed.
        seed: u64,
        /// Event-time step per symbol, ms.
        interval: Millis,
        /// Total bars, 0 = unbounded.
        count: u64,
    },
    /// Kafka topics of bars.
    Kafka(crate::sources::kafka::KafkaSpec),
    /// File replay.
    File {
        /// Files.
        paths: Vec<PathBuf>,
        /// Symbol for CSVs without a symbol column.
        symbol: Option<Symbol>,
        /// Bars/s for the whole cluster (0 = max).
        rate: u64,
    },
}

/// Output file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// Comma-separated with a header.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

impl FileFormat {
    /// The format a file name asks for: `.csv` is CSV; `.ndjson`, `.jsonl` and `.json` are
    /// NDJSON; anything else is `None` (never silently CSV).
    pub fn from_path(path: &std::path::Path) -> Option<FileFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(FileFormat::Csv),
            "ndjson" | "jsonl" | "json" => Some(FileFormat::Ndjson),
            _ => None,
        }
    }
}

/// A validated configuration, ready to run.
#[derive(Clone, Debug)]
pub struct Built {
    /// Workers per process.
    pub workers: usize,
    /// Process addresses.
    pub processes: Vec<String>,
    /// Status address of process 0.
    pub status_listen: SocketAddr,
    /// Read token and limits of the status server.
    pub status_options: crate::status::ServerOptions,
    /// The source.
    pub source: SourceSpec,
    /// Accepted event times.
    pub bounds: TimeBounds,
    /// Watermark delay, ms.
    pub watermark_delay: Millis,
    /// Windows.
    pub windows: WindowConfig,
    /// Indicators and rules.
    pub set: IndicatorSet,
    /// File sink: directory and format.
    pub file_sink: Option<(PathBuf, FileFormat)>,
    /// The columns of `bars` rows in result files (`sinks.file.columns`; every column by default).
    pub file_columns: crate::sinks::file::BarColumns,
    /// Write every result to standard output.
    pub stdout: bool,
    /// Alert rules and notifications.
    pub alerts: Option<crate::alerts::AlertsConfig>,
    /// QuestDB sink.
    pub questdb: Option<crate::sinks::questdb::QuestDbConfig>,
    /// Checkpoints (`None`: off).
    pub checkpoint: Option<CheckpointSpec>,
    /// When transactional result parts are closed.
    pub roll: crate::sinks::file::RollPolicy,
    /// `output.ts-unit`: `None` = the input's unit.
    pub ts_unit: Option<crate::decode::TsUnit>,
    /// The query API and dashboard (`None`: off).
    pub serve: Option<crate::serve::ServeSpec>,
}

/// `[checkpoint]`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointSpec {
    /// Store URL.
    pub url: String,
    /// Interval.
    pub interval: std::time::Duration,
    /// Checkpoints kept.
    pub retain: usize,
}

impl Built {
    /// The status address of process `n`.
    pub fn status_addr(&self, n: usize) -> SocketAddr {
        let mut a = self.status_listen;
        if a.port() != 0 {
            a.set_port(a.port() + n as u16);
        }
        a
    }
}

fn duration_ms(errs: &mut Vec<String>, key: &str, v: &str) -> Millis {
    match humantime::parse_duration(v.trim()) {
        Ok(d) => d.as_millis() as Millis,
        Err(e) => {
            errs.push(format!("{key}: {v:?} is not a duration ({e}); expected e.g. \"250ms\", \"5s\", \"1m\""));
            0
        }
    }
}

/// Parses `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` to ms; `None` for a date that does not
/// exist (February 31).
fn date_ms(s: &str) -> Option<Millis> {
    let s = s.trim();
    let (date, clock) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (s, None),
    };
    let day = time::parse_date(date)? * time::DAY_MS;
    match clock {
        Some(t) => Some(day + time::parse_time_of_day(t, false)?),
        None => Some(day),
    }
}

/// The key path (`source.generator.rate`) and the message of a deserialization error.
fn split_type_error(e: &toml::de::Error) -> (Vec<String>, String) {
    let text = e.to_string();
    let path = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("in `").and_then(|p| p.strip_suffix('`')))
        .map(|p| p.split('.').map(str::to_owned).collect())
        .unwrap_or_default();
    (path, e.message().trim().to_owned())
}

/// `key: what was wrong; expected <kind>, e.g. <example>`.
fn describe_type_error(path: &[String], message: &str) -> String {
    let key = if path.is_empty() { "(top level)".to_owned() } else { path.join(".") };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or("");
        let expected = rest.split_once(", expected ").map_or(String::new(), |(_, e)| format!("; expected {e}"));
        let at = if path.is_empty() { field.to_owned() } else { format!("{key}.{field}") };
        return format!("{at}: unknown field `{field}`{expected}");
    }
    let leaf = path.last().map_or("key", String::as_str);
    let expected = message.rsplit_once("expected ").map_or("", |(_, e)| e);
    let example = match expected.trim_start_matches("a ").trim_start_matches("an ") {
        "u8" | "u16" | "u32" | "u64" | "usize" => format!("a whole number >= 0, e.g. {leaf} = 100"),
        "i8" | "i16" | "i32" | "i64" | "isize" => format!("a whole number, e.g. {leaf} = 100"),
        "f32" | "f64" => format!("a number, e.g. {leaf} = 1.5"),
        "boolean" | "bool" => format!("true or false, e.g. {leaf} = true"),
        "string" => format!("a quoted string, e.g. {leaf} = \"1s\""),
        "sequence" => format!("a list, e.g. {leaf} = [\"1m\", \"5m\"]"),
        e if e.starts_with("struct") || e == "map" || e == "table" => {
            format!("a table, e.g. [{key}] or {leaf} = {{ ... }}")
        }
        _ => "a value as in the commented cluster.toml".to_owned(),
    };
    format!("{key}: {message}; expected {example}")
}

/// Sets the key an error is about aside (for an unknown field, that field), so the rest of
/// the file can still be checked. `false` when there is nothing to remove (stop).
fn remove_key(table: &mut toml::Table, path: &[String], message: &str) -> bool {
    let mut path = path.to_vec();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        path.push(rest.split('`').next().unwrap_or("").to_owned());
    }
    let Some((last, parents)) = path.split_last() else { return false };
    let mut t = table;
    for p in parents {
        match t.get_mut(p) {
            Some(toml::Value::Table(inner)) => t = inner,
            _ => return false,
        }
    }
    t.remove(last).is_some()
}

impl Config {
    /// Parses TOML text. A syntax error is reported alone (with its line and column); type
    /// errors and unknown keys are all reported, each with its key path, what was found and
    /// an example, together with the semantic problems of the rest of the file (what
    /// [`Config::build`] finds once the bad keys are set aside), so one run lists everything.
    pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigErrors(vec![e.to_string().trim().replace('\n', "\n    ")]))?;
        let mut errs = Vec::new();
        // Each round sets one bad key aside; a file has far fewer keys than this.
        for _ in 0..256 {
            match toml::Value::Table(table.clone()).try_into::<Config>() {
                Ok(config) if errs.is_empty() => return Ok(config),
                Ok(config) => {
                    if let Err(more) = config.build() {
                        errs.extend(more.0);
                    }
                    return Err(ConfigErrors(errs));
                }
                Err(e) => {
                    let (path, message) = split_type_error(&e);
                    errs.push(describe_type_error(&path, &message));
                    if !remove_key(&mut table, &path, &message) {
                        return Err(ConfigErrors(errs));
                    }
                }
            }
        }
        Err(ConfigErrors(errs))
    }

    /// Checks every value and builds the runnable form; reports every problem at once.
    pub fn build(&self) -> Result<Built, ConfigErrors> {
        let mut errs = Vec::new();
        let c = &self.cluster;
        if c.workers == 0 || c.workers > 256 {
            errs.push(format!("cluster.workers: {} is outside 1..=256; expected e.g. 2", c.workers));
        }
        if c.processes.is_empty() {
            errs.push("cluster.processes: empty; expected e.g. [\"127.0.0.1:2101\"]".into());
        }
        for (i, p) in c.processes.iter().enumerate() {
            match p.rsplit_once(':') {
                Some((h, port)) if !h.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {}
                _ => errs
                    .push(format!("cluster.processes[{i}]: {p:?} is not host:port; expected e.g. \"127.0.0.1:2101\"")),
            }
        }
        let status_listen = self.status.listen.parse::<SocketAddr>().unwrap_or_else(|_| {
            errs.push(format!(
                "status.listen: {:?} is not an ip:port address; expected e.g. \"127.0.0.1:9100\"",
                self.status.listen
            ));
            SocketAddr::from(([127, 0, 0, 1], 9100))
        });

        let source = match self.source.kind.as_str() {
            "generator" => {
                let g = &self.source.generator;
                if g.symbols == 0 || g.symbols > 1_000_000 {
                    errs.push(format!(
                        "source.generator.symbols: {} is outside 1..=1000000; expected e.g. 100",
                        g.symbols
                    ));
                }
                let interval = if g.interval.trim() == "auto" {
                    // Event time advances with the wall clock: one round of all symbols per
                    // symbols/rate seconds.
                    if g.rate > 0 { (g.symbols as i64 * 1000 / g.rate as i64).max(1) } else { 1000 }
                } else {
                    duration_ms(&mut errs, "source.generator.interval", &g.interval)
                };
                if interval <= 0 && !g.interval.is_empty() {
                    errs.push(format!(
                        "source.generator.interval: {:?} must be at least 1ms; expected e.g. \"1s\"",
                        g.interval
                    ));
                }
                SourceSpec::Generator { symbols: g.symbols, rate: g.rate, seed: g.seed, interval, count: g.count }
            }
            "file" => {
                let f = &self.source.file;
                if f.paths.is_empty() {
                    errs.push("source.file.paths: empty; expected e.g. [\"data/bars.ndjson\"]".into());
                }
                let symbol = f.symbol.as_deref().and_then(|s| match Symbol::new(s) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        errs.push(format!("source.file.symbol: {e}; expected e.g. \"AAPL\""));
                        None
                    }
                });
                SourceSpec::File { paths: f.paths.iter().map(PathBuf::from).collect(), symbol, rate: f.rate }
            }
            "kafka" => match self.source.kafka.validate() {
                Ok(spec) => SourceSpec::Kafka(spec),
                Err(e) => {
                    errs.extend(e);
                    SourceSpec::Kafka(crate::sources::kafka::KafkaSpec::for_topic("127.0.0.1:9092", "bars"))
                }
            },
            other => {
                errs.push(format!(
                    "source.kind: {other:?} is not a source; expected \"generator\", \"file\" or \"kafka\""
                ));
                SourceSpec::Generator { symbols: 1, rate: 0, seed: 0, interval: 1000, count: 0 }
            }
        };

        let t = &self.time;
        let watermark_delay = duration_ms(&mut errs, "time.watermark-delay", &t.watermark_delay);
        let allowed_lateness = duration_ms(&mut errs, "time.allowed-lateness", &t.allowed_lateness);
        let mut bound = |key: &str, v: &str| {
            date_ms(v).unwrap_or_else(|| {
                errs.push(format!(
                    "{key}: {v:?} is not a date; expected e.g. \"1990-01-01\" or \"2100-01-01T00:00:00Z\""
                ));
                0
            })
        };
        let bounds = TimeBounds {
            min: bound("time.min-timestamp", &t.min_timestamp),
            max: bound("time.max-timestamp", &t.max_timestamp),
            allow_non_positive_prices: self.source.allow_non_positive_prices,
        };
        if bounds.min >= bounds.max {
            errs.push(format!(
                "time.min-timestamp: {:?} is not before time.max-timestamp {:?}",
                t.min_timestamp, t.max_timestamp
            ));
        }

        let mut specs = Vec::new();
        for (i, s) in self.indicators.list.iter().enumerate() {
            match s.parse::<IndicatorSpec>() {
                Ok(spec) => specs.push(spec),
                Err(e) => errs.push(format!("indicators.list[{i}]: {e}")),
            }
        }
        let combine = match self.signals.combine.as_str() {
            "first-match" => Combine::FirstMatch,
            "majority" => Combine::Majority,
            "unanimous" => Combine::Unanimous,
            other => {
                errs.push(format!("signals.combine: {other:?} is not a combination; expected \"first-match\", \"majority\" or \"unanimous\""));
                Combine::FirstMatch
            }
        };
        let mut rules = Vec::new();
        for (i, r) in self.signals.rules.iter().enumerate() {
            let key = format!("signals.rules[{i}]");
            let mut need = |name: &str, v: Option<usize>, example: usize| {
                v.unwrap_or_else(|| {
                    errs.push(format!("{key}.{name}: missing for kind {:?}; expected e.g. {name} = {example}", r.kind));
                    example
                })
            };
            match r.kind.as_str() {
                "rsi" => rules.push(Rule::Rsi {
                    period: need("period", r.period, 14),
                    buy_below: r.buy_below.unwrap_or(30.0),
                    sell_above: r.sell_above.unwrap_or(70.0),
                }),
                "ma-cross" => {
                    rules.push(Rule::MaCross { fast: need("fast", r.fast, 5), slow: need("slow", r.slow, 20) })
                }
                "macd-cross" => rules.push(Rule::MacdCross {
                    fast: need("fast", r.fast, 12),
                    slow: need("slow", r.slow, 26),
                    signal: need("signal", r.signal, 9),
                }),
                other => errs.push(format!(
                    "{key}.kind: {other:?} is not a rule; expected \"rsi\", \"ma-cross\" or \"macd-cross\""
                )),
            }
        }
        let set = IndicatorSet::new(specs, rules, combine).unwrap_or_else(|e| {
            errs.push(format!("indicators/signals: {e}"));
            IndicatorSet::standard()
        });

        let mut timeframes = Vec::new();
        for (i, tf) in self.windows.timeframes.iter().enumerate() {
            let ms = duration_ms(&mut errs, &format!("windows.timeframes[{i}]"), tf);
            if ms > 0 && 86_400_000 % ms != 0 && ms % 86_400_000 != 0 {
                errs.push(format!("windows.timeframes[{i}]: {tf:?} does not divide a day, so windows would drift across days; expected e.g. \"1m\", \"5m\", \"1h\""));
            }
            if ms > 0 {
                timeframes.push(ms);
            }
        }
        let windows = WindowConfig { timeframes, allowed_lateness };

        let mut roll = crate::sinks::file::RollPolicy::default();
        if let Some(f) = &self.sinks.file {
            roll.interval = std::time::Duration::from_millis(
                duration_ms(&mut errs, "sinks.file.roll-interval", &f.roll_interval).max(0) as u64,
            );
            if f.roll_bytes == 0 {
                errs.push(
                    "sinks.file.roll-bytes: 0 would close a part at every checkpoint; expected e.g. 134217728".into(),
                );
            }
            roll.bytes = f.roll_bytes.max(1);
        }
        let ck = &self.checkpoint;
        let checkpoint = ck.enabled.then(|| {
            let ms = duration_ms(&mut errs, "checkpoint.interval", &ck.interval);
            if ms <= 0 {
                errs.push(format!("checkpoint.interval: {:?} must be positive; expected e.g. \"10s\"", ck.interval));
            }
            if ck.url.trim().is_empty() {
                errs.push(
                    "checkpoint.url: empty; expected a directory such as \"run/checkpoints\" or \"s3://bucket/prefix\""
                        .into(),
                );
            }
            if ck.retain == 0 {
                errs.push("checkpoint.retain: 0 would delete every checkpoint; expected e.g. 3".into());
            }
            CheckpointSpec {
                url: ck.url.trim().to_string(),
                interval: std::time::Duration::from_millis(ms.max(1) as u64),
                retain: ck.retain.max(1),
            }
        });
        let file_sink = self.sinks.file.as_ref().map(|f| {
            let format = match f.format.as_str() {
                "csv" => FileFormat::Csv,
                "ndjson" => FileFormat::Ndjson,
                other => {
                    errs.push(format!("sinks.file.format: {other:?} is not a format; expected \"csv\" or \"ndjson\""));
                    FileFormat::Csv
                }
            };
            let dir = f.dir.clone().unwrap_or_else(|| {
                errs.push(
                    "sinks.file.dir: missing; expected a directory such as \"run/out\" (only `tickflow replay`, \
                     which writes to --output, goes without)"
                        .into(),
                );
                String::new()
            });
            (PathBuf::from(dir), format)
        });
        let file_columns = match self.sinks.file.as_ref().and_then(|f| f.columns.as_ref()) {
            None => crate::sinks::file::BarColumns::all(&set),
            Some(names) => crate::sinks::file::BarColumns::parse(names, &set).unwrap_or_else(|e| {
                errs.extend(e);
                crate::sinks::file::BarColumns::all(&set)
            }),
        };

        if self.sinks.stdout.is_some() && self.sinks.file.is_some() {
            errs.push(
                "sinks.stdout: configured together with sinks.file; choose one (e.g. remove [sinks.stdout])".into(),
            );
        }
        let st = &self.status;
        let mut status_options = crate::status::ServerOptions::from_config(
            st.read_token.as_deref(),
            st.require_read_token,
            &st.limits,
            st.tls.as_ref(),
            &mut errs,
        );
        let alerts = self.alerts.clone().map(crate::alerts::AlertsConfig::with_env);
        if let Some(a) = &alerts {
            errs.extend(a.validate());
            errs.extend(a.validate_exposure(status_listen));
            // The rules token is the admin token: it reads too.
            if !status_options.read_tokens.is_empty() {
                status_options.read_tokens = status_options.read_tokens.union(&a.write_tokens());
            }
        }
        let serve = self.serve.build(&windows.timeframes, c.processes.len(), &mut errs);
        if let Some(q) = &self.sinks.questdb {
            errs.extend(
                q.validate().into_iter().map(|e| {
                    if e.starts_with("questdb.") { format!("sinks.{e}") } else { format!("sinks.questdb: {e}") }
                }),
            );
        }

        let ts_unit = match self.output.ts_unit.trim() {
            "input" => None,
            "s" => Some(crate::decode::TsUnit::Seconds),
            "ms" => Some(crate::decode::TsUnit::Millis),
            "rfc3339" => Some(crate::decode::TsUnit::Rfc3339),
            other => {
                errs.push(format!(
                    "output.ts-unit: {other:?} is not a unit; expected \"input\", \"s\", \"ms\" or \"rfc3339\""
                ));
                None
            }
        };

        if !errs.is_empty() {
            return Err(ConfigErrors(errs));
        }
        Ok(Built {
            ts_unit,
            workers: c.workers,
            processes: c.processes.clone(),
            status_listen,
            status_options,
            source,
            bounds,
            watermark_delay,
            windows,
            set,
            file_sink,
            file_columns,
            stdout: self.sinks.stdout.is_some(),
            alerts,
            questdb: self.sinks.questdb.clone(),
            checkpoint,
            roll,
            serve,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_build() {
        let b = Config::parse("").unwrap().build().unwrap();
        assert_eq!(b.windows.timeframes, vec![60_000, 300_000, 3_600_000]);
        assert_eq!(b.set.columns().len(), 15);
        assert_eq!(b.bounds, TimeBounds::default());
    }

    #[test]
    fn time_bounds_reject_dates_that_do_not_exist() {
        // Regression: `date_ms` checked only `day <= 31`, so February 31 became March 3.
        for bad in ["2024-02-30", "2023-02-29", "2024-02-31", "2024-04-31", "2024-13-01", "2024-02-31T00:00:00Z"] {
            let text = format!("[time]\nmin-timestamp = {bad:?}\n");
            let e = Config::parse(&text).unwrap().build().unwrap_err();
            assert_eq!(
                e.0,
                [format!(
                    "time.min-timestamp: {bad:?} is not a date; expected e.g. \"1990-01-01\" or \"2100-01-01T00:00:00Z\""
                )]
            );
        }
        let b = Config::parse("[time]\nmin-timestamp = \"2024-02-29T12:00:00Z\"\n").unwrap().build().unwrap();
        assert_eq!(b.bounds.min, 1_709_208_000_000);
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let text = r#"
            [cluster]
            workers = 0
            processes = ["nohost"]
            [status]
            listen = "9100"
            [time]
            allowed-lateness = "soon"
            [indicators]
            list = ["sma:0", "wma:3"]
            [signals]
            combine = "vote"
            [windows]
            timeframes = ["7m"]
        "#;
        let e = Config::parse(text).unwrap().build().unwrap_err();
        let msgs = e.0.join("\n");
        for want in [
            "cluster.workers: 0 is outside 1..=256; expected e.g. 2",
            "cluster.processes[0]: \"nohost\" is not host:port; expected e.g. \"127.0.0.1:2101\"",
            "status.listen: \"9100\" is not an ip:port address; expected e.g. \"127.0.0.1:9100\"",
            "time.allowed-lateness: \"soon\" is not a duration",
            "indicators.list[0]: \"sma:0\": sma: period 0 is outside 1..=100000",
            "indicators.list[1]: \"wma:3\": unknown indicator \"wma\"",
            "signals.combine: \"vote\" is not a combination",
            "windows.timeframes[0]: \"7m\" does not divide a day",
        ] {
            assert!(msgs.contains(want), "missing {want:?} in:\n{msgs}");
        }
        assert_eq!(e.0.len(), 8, "{msgs}");
    }

    #[test]
    fn type_errors_name_the_key_and_an_example_and_do_not_hide_other_problems() {
        let text = r#"
            [cluster]
            workers = 0
            [source.generator]
            rate = -5
            symbols = "many"
            [windows]
            timeframes = "1m"
            [sinks.file]
            dir = "out"
            bogus = 1
        "#;
        let e = Config::parse(text).unwrap_err();
        assert_eq!(
            e.0,
            // Sections in key order (TOML tables are sorted), then the semantic problems.
            [
                "sinks.file.bogus: unknown field `bogus`; expected one of `dir`, `columns`, `format`, `roll-interval`, `roll-bytes`",
                "source.generator.rate: invalid value: integer `-5`, expected u64; expected a whole number >= 0, e.g. rate = 100",
                "source.generator.symbols: invalid type: string \"many\", expected usize; expected a whole number >= 0, e.g. symbols = 100",
                "windows.timeframes: invalid type: string \"1m\", expected a sequence; expected a list, e.g. timeframes = [\"1m\", \"5m\"]",
                "cluster.workers: 0 is outside 1..=256; expected e.g. 2",
            ],
            "{e}"
        );
        let syntax = Config::parse("[cluster\nworkers = 2").unwrap_err();
        assert_eq!(syntax.0.len(), 1);
        assert!(syntax.0[0].contains("line 1"), "{syntax}");
    }

    #[test]
    fn file_columns_are_checked_against_the_bars_columns() {
        let text = r#"
            [indicators]
            list = ["sma:20", "rsi:14"]
            [sinks.file]
            columns = ["symbol", "timestamp", "rsi_14", "sma_20", "rsi_14"]
        "#;
        let e = Config::parse(text).unwrap().build().unwrap_err();
        assert_eq!(
            e.0,
            [
                "sinks.file.dir: missing; expected a directory such as \"run/out\" (only `tickflow replay`, which \
                 writes to --output, goes without)",
                "sinks.file.columns[1]: \"timestamp\" is not a column of the bars rows of this config; expected one \
                 of: symbol, ts, open, high, low, close, volume, sma_20, rsi_14, sma_5, ema_20, macd, macd_signal, \
                 macd_hist, signal",
                "sinks.file.columns[4]: \"rsi_14\" is listed twice; list each column once",
            ],
            "{e}"
        );
        let ok = "[indicators]\nlist = [\"ema:5\"]\n[sinks.file]\ndir = \"out\"\ncolumns = [\"symbol\", \"ema_5\", \"ts\"]\n";
        let built = Config::parse(ok).unwrap().build().unwrap();
        assert_eq!(
            built.file_columns,
            crate::sinks::file::BarColumns::parse(&["symbol".into(), "ema_5".into(), "ts".into()], &built.set).unwrap()
        );
        let fmt = crate::sinks::file::RowFormat::with_columns(
            FileFormat::Csv,
            &built.set,
            crate::decode::TsUnit::Millis,
            built.file_columns.clone(),
        );
        assert_eq!(fmt.bars_header().as_deref(), Some("symbol,ema_5,ts\n"));
        // All columns: the bar, every value column of the set (ema_5 and the default signal
        // rules' sma_5, ema_20, macd...), the signal.
        let mut all: Vec<String> = ["symbol", "ts", "open", "high", "low", "close", "volume"].map(String::from).into();
        all.extend(built.set.columns().iter().cloned());
        all.push("signal".into());
        assert_eq!(all[7], "ema_5");
        assert_eq!(
            crate::sinks::file::BarColumns::all(&built.set),
            crate::sinks::file::BarColumns::parse(&all, &built.set).unwrap()
        );
        let empty = "[sinks.file]\ndir = \"out\"\ncolumns = []\n";
        let e = Config::parse(empty).unwrap().build().unwrap_err();
        assert!(e.0[0].starts_with("sinks.file.columns: empty; expected some of: symbol, ts,"), "{e}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = Config::parse("[cluster]\nworkerz = 2\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `workerz`"), "{e}");
    }
}
