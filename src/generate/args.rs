//! `tickflow generate` arguments and where the bars go.

use std::path::PathBuf;
use std::time::Duration;

use tickflow_operators::time::Millis;

use super::error::GenerateError;
use crate::kafka::target::{validate_brokers, validate_topic};
use crate::sources::generator::GeneratorConfig;

/// `tickflow generate`: a deterministic synthetic market (random-walk OHLCV) written to the
/// gateway, to Kafka or to a file. The defaults write exactly the W1 benchmark input
/// (1000 symbols, 2 000 000 bars, W1 NDJSON lines).
#[derive(Clone, Debug, clap::Args)]
pub struct GenerateArgs {
    /// Where to write: `http://HOST:PORT` (the gateway; `/ingest` is appended when no path
    /// is given), `kafka://HOST:PORT[,HOST:PORT]/TOPIC`, a file path, or `-` for stdout.
    #[arg(long, default_value = "-")]
    pub to: String,
    /// Number of symbols (SYM0000 ..).
    #[arg(long, default_value_t = 1000)]
    pub symbols: usize,
    /// Seed: the same seed gives the same bars.
    #[arg(long, default_value_t = 20_240_601)]
    pub seed: u64,
    /// Total bars; default 2000000 (W1) unless --duration is given.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this long (e.g. 30s, 5m) instead of after --count.
    #[arg(long)]
    pub duration: Option<String>,
    /// Target rate in bars/s; omit (or 0) for as fast as possible.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Record format: w1 (the benchmark's NDJSON line), canonical (the gateway's JSON bar)
    /// or csv (files only). Kafka always gets canonical.
    #[arg(long, value_enum, default_value = "w1")]
    pub format: Format,
    /// Bars per HTTP request / write call.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Concurrent HTTP requests.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Bearer token for the gateway (or env TICKFLOW_GATEWAY_TOKEN).
    #[arg(long)]
    pub token: Option<String>,
    /// Event time of the first bar, ms since the epoch. Default: the wall clock when
    /// writing to the gateway or Kafka (a live cluster then shows a meaningful watermark
    /// lag), 1700000000000 (2023-11-14, the W1 shape) for files and stdout.
    #[arg(long)]
    pub start_ms: Option<Millis>,
    /// Event time between two bars of a symbol (e.g. 60s, 1m, 500ms). Default: 60s; to the
    /// gateway or Kafka with a --rate, `symbols / rate` seconds, so event time keeps pace
    /// with the wall clock.
    #[arg(long)]
    pub interval: Option<String>,
    /// Progress: auto (bar on a terminal, lines otherwise), bar, lines or none.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
    /// To Kafka: the producer's `linger.ms`, how long a record may wait to be batched (e.g.
    /// 20ms, the default, for throughput; 0ms to measure latency from the moment a bar is made).
    #[arg(long, default_value = "20ms")]
    pub linger: String,
    /// Event time of the first bar = the wall clock (to the millisecond) when the first batch is
    /// made, after the destination is set up: with --rate, a bar's event time is then the
    /// moment it is made, for latency measurements. Instead of --start-ms.
    #[arg(long, conflicts_with = "start_ms")]
    pub start_now: bool,
}

impl Default for GenerateArgs {
    fn default() -> Self {
        GenerateArgs {
            to: "-".into(),
            symbols: 1000,
            seed: 20_240_601,
            count: None,
            duration: None,
            rate: None,
            format: Format::W1,
            batch: 1000,
            concurrency: 4,
            token: None,
            start_ms: None,
            interval: None,
            progress: ProgressMode::Auto,
            linger: "20ms".into(),
            start_now: false,
        }
    }
}

/// How records are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `{"stock_symbol": "SYM0007", "timestamp": 1700000000.0, ...}` (W1).
    W1,
    /// `{"symbol":"SYM0007","timestamp":1700000000000,...}` (what the gateway produces).
    Canonical,
    /// `symbol,ts,open,high,low,close,volume` with a header (files only).
    Csv,
}

/// How progress is shown on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// A bar on a terminal, periodic lines otherwise.
    Auto,
    /// A redrawn bar.
    Bar,
    /// A line every few seconds.
    Lines,
    /// Only the final summary.
    None,
}

/// Where bars go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `POST` to this URL.
    Http(String),
    /// Produce to `topic` via `brokers`.
    Kafka {
        /// Bootstrap servers.
        brokers: String,
        /// Topic.
        topic: String,
    },
    /// A file (`None`: stdout).
    File(Option<PathBuf>),
}

impl Target {
    /// Parses `--to`.
    pub fn parse(to: &str) -> Result<Target, GenerateError> {
        let bad = |m: &str| GenerateError::Args(format!("--to {to:?}: {m}"));
        if to == "-" {
            Ok(Target::File(None))
        } else if let Some(rest) = to.strip_prefix("http://").or_else(|| to.strip_prefix("https://")) {
            if rest.is_empty() {
                return Err(bad("no host; expected e.g. http://127.0.0.1:8080"));
            }
            let url = if rest.contains('/') { to.to_string() } else { format!("{to}/ingest") };
            Ok(Target::Http(url))
        } else if let Some(rest) = to.strip_prefix("kafka://") {
            match rest.split_once('/') {
                Some((b, t)) if !b.is_empty() && !t.is_empty() && !t.contains('/') => {
                    let mut errs = validate_brokers("brokers", b);
                    errs.extend(validate_topic("topic", t, "bars"));
                    if errs.is_empty() {
                        Ok(Target::Kafka { brokers: b.to_string(), topic: t.to_string() })
                    } else {
                        Err(bad(&errs.join("; ")))
                    }
                }
                _ => Err(bad("expected kafka://HOST:PORT/TOPIC, e.g. kafka://127.0.0.1:9092/bars")),
            }
        } else if to.contains("://") {
            Err(bad("unknown scheme; expected http://, https://, kafka://, a path or -"))
        } else {
            Ok(Target::File(Some(PathBuf::from(to))))
        }
    }
}

/// Validated settings of a run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The generator's setup.
    pub generator: GeneratorConfig,
    /// Where to.
    pub target: Target,
    /// Record format.
    pub format: Format,
    /// Target rate (bars/s), `None` for unlimited.
    pub rate: Option<f64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Batch size.
    pub batch: usize,
    /// HTTP concurrency.
    pub concurrency: usize,
    /// Bearer token.
    pub token: Option<String>,
    /// Progress display.
    pub progress: ProgressMode,
    /// Kafka producer linger.
    pub linger: Duration,
    /// Start event time at the wall clock when the first batch is made.
    pub start_now: bool,
}

/// How many bars `generate` writes when neither `--count` nor `--duration` is given (W1).
pub const DEFAULT_COUNT: u64 = 2_000_000;
/// Event time of the first bar for files and stdout (2023-11-14T22:13:20Z, the W1 shape).
pub const FILE_START_MS: Millis = 1_700_000_000_000;

impl GenerateArgs {
    /// Checks every argument; the error lists every problem. Reads whether standard output
    /// is a terminal and the wall clock (see [`GenerateArgs::plan_with`]).
    pub fn plan(&self) -> Result<Plan, GenerateError> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(FILE_START_MS, |d| d.as_millis() as Millis);
        self.plan_with(std::io::IsTerminal::is_terminal(&std::io::stdout()), now_ms)
    }

    /// [`GenerateArgs::plan`] with the environment passed in: `stdout_is_terminal` (writing
    /// the default 2,000,000 lines to a terminal is refused: say `--count`, `--duration` or
    /// `--to`), and `now_ms`, the wall clock (the default start for the gateway and Kafka).
    pub fn plan_with(&self, stdout_is_terminal: bool, now_ms: Millis) -> Result<Plan, GenerateError> {
        let mut errs = Vec::new();
        let target = Target::parse(&self.to).map_err(|e| errs.push(e.to_string())).ok();
        let live = matches!(target, Some(Target::Http(_) | Target::Kafka { .. }));
        if target == Some(Target::File(None)) && stdout_is_terminal && self.count.is_none() && self.duration.is_none() {
            errs.push(format!(
                "standard output is a terminal: refusing to print {DEFAULT_COUNT} bars; \
                 give --count (e.g. --count 20), --duration, or --to FILE, or pipe the output"
            ));
        }
        let duration = match &self.duration {
            None => None,
            Some(d) => match humantime::parse_duration(d) {
                Ok(d) if !d.is_zero() => Some(d),
                _ => {
                    errs.push(format!("--duration {d:?} is not a positive duration; expected e.g. 30s"));
                    None
                }
            },
        };
        let rate = match self.rate {
            Some(r) if !(r.is_finite() && r >= 0.0) => {
                errs.push(format!("--rate {r} is not a non-negative number; expected e.g. 50000"));
                None
            }
            Some(r) if r > 0.0 => Some(r),
            _ => None,
        };
        let interval_ms = match (&self.interval, rate) {
            (Some(text), _) => match humantime::parse_duration(text) {
                Ok(d) if d.as_millis() > 0 => Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX),
                _ => {
                    errs.push(format!("--interval {text:?} is not a duration of at least 1ms; expected e.g. 60s"));
                    60_000
                }
            },
            // One round of every symbol per `symbols / rate` seconds of wall time.
            (None, Some(r)) if live => ((self.symbols as f64 * 1000.0 / r).round() as Millis).max(1),
            (None, _) => 60_000,
        };
        let linger = match humantime::parse_duration(&self.linger) {
            Ok(d) if d <= Duration::from_secs(5) => d,
            _ => {
                errs.push(format!("--linger {:?} is not a duration of at most 5s; expected e.g. 20ms", self.linger));
                Duration::from_millis(20)
            }
        };
        // Live targets start at the wall clock (whole seconds), files at the W1 start.
        let start_ms = self.start_ms.unwrap_or(if live { now_ms / 1000 * 1000 } else { FILE_START_MS });
        if self.batch == 0 {
            errs.push("--batch 0: expected at least 1, e.g. 1000".into());
        }
        if self.concurrency == 0 || self.concurrency > 1024 {
            errs.push(format!("--concurrency {}: expected 1 ..= 1024, e.g. 4", self.concurrency));
        }
        if self.format == Format::Csv && !matches!(target, Some(Target::File(_))) {
            errs.push("--format csv: only for files; use w1 or canonical over HTTP".into());
        }
        let records = match (self.count, duration) {
            (Some(n), _) => Some(n),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_COUNT),
        };
        let generator = GeneratorConfig {
            symbols: self.symbols,
            seed: self.seed,
            start_ms,
            interval_ms,
            records,
            ..GeneratorConfig::default()
        };
        if let Err(e) = generator.validate() {
            errs.push(e.to_string());
        }
        let Some(target) = target.filter(|_| errs.is_empty()) else {
            return Err(GenerateError::Args(errs.join("\n  ")));
        };
        Ok(Plan {
            generator,
            target,
            format: self.format,
            rate,
            duration,
            batch: self.batch,
            concurrency: self.concurrency,
            token: self.token.clone().or_else(|| std::env::var("TICKFLOW_GATEWAY_TOKEN").ok()),
            progress: self.progress,
            linger,
            start_now: self.start_now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            Target::parse("http://127.0.0.1:8080").unwrap(),
            Target::Http("http://127.0.0.1:8080/ingest".into())
        );
        assert_eq!(Target::parse("http://h:1/x?y=1").unwrap(), Target::Http("http://h:1/x?y=1".into()));
        assert_eq!(
            Target::parse("kafka://a:1,b:2/bars").unwrap(),
            Target::Kafka { brokers: "a:1,b:2".into(), topic: "bars".into() }
        );
        assert_eq!(Target::parse("-").unwrap(), Target::File(None));
        assert_eq!(Target::parse("out.ndjson").unwrap(), Target::File(Some("out.ndjson".into())));
        assert!(Target::parse("kafka://a:1").is_err());
        assert_eq!(
            Target::parse("kafka://a:1,b/bars").unwrap_err().to_string(),
            GenerateError::Args(
                "--to \"kafka://a:1,b/bars\": brokers: \"b\" has no port; expected e.g. \"127.0.0.1:9092\"".into()
            )
            .to_string()
        );
        assert!(Target::parse("kafka://a:1/bad topic").is_err());
        assert!(Target::parse("ftp://x").is_err());
    }

    #[test]
    fn defaults_are_the_w1_shape_and_every_problem_is_listed() {
        let plan = GenerateArgs::default().plan().unwrap();
        assert_eq!(plan.generator, GeneratorConfig::default());
        assert_eq!(plan.format, Format::W1);
        assert_eq!(plan.linger, Duration::from_millis(20));
        let bad = GenerateArgs {
            to: "ftp://x".into(),
            batch: 0,
            rate: Some(f64::NAN),
            linger: "1h".into(),
            ..GenerateArgs::default()
        };
        let msg = bad.plan().unwrap_err().to_string();
        assert!(msg.contains("--to \"ftp://x\"") && msg.contains("--batch 0") && msg.contains("--rate NaN"), "{msg}");
        assert!(msg.contains("--linger \"1h\" is not a duration of at most 5s"), "{msg}");
    }

    #[test]
    fn two_million_lines_are_not_printed_to_a_terminal() {
        let now = 1_750_000_000_123;
        let msg = GenerateArgs::default().plan_with(true, now).unwrap_err().to_string();
        assert!(msg.contains("standard output is a terminal: refusing to print 2000000 bars"), "{msg}");
        let few = GenerateArgs { count: Some(20), ..GenerateArgs::default() };
        assert_eq!(few.plan_with(true, now).unwrap().generator.records, Some(20));
        let file = GenerateArgs { to: "w1.ndjson".into(), ..GenerateArgs::default() };
        assert_eq!(file.plan_with(true, now).unwrap().generator.records, Some(DEFAULT_COUNT));
        assert!(GenerateArgs::default().plan_with(false, now).is_ok(), "a pipe gets the W1 shape");
    }

    #[test]
    fn live_targets_default_to_wall_clock_event_time() {
        let now = 1_750_000_000_123;
        let live = GenerateArgs {
            to: "http://127.0.0.1:8080".into(),
            symbols: 50,
            rate: Some(2000.0),
            ..GenerateArgs::default()
        };
        let g = live.plan_with(false, now).unwrap().generator;
        assert_eq!(
            (g.start_ms, g.interval_ms),
            (1_750_000_000_000, 25),
            "50 symbols at 2000 bars/s: a round per 25 ms"
        );
        let kafka = GenerateArgs { to: "kafka://h:1/bars".into(), ..GenerateArgs::default() };
        let g = kafka.plan_with(false, now).unwrap().generator;
        assert_eq!((g.start_ms, g.interval_ms), (1_750_000_000_000, 60_000));
        let file = GenerateArgs { to: "w1.ndjson".into(), rate: Some(2000.0), ..GenerateArgs::default() };
        let g = file.plan_with(false, now).unwrap().generator;
        assert_eq!((g.start_ms, g.interval_ms), (FILE_START_MS, 60_000), "files keep the W1 shape");
        let pinned = GenerateArgs { start_ms: Some(5), interval: Some("1s".into()), ..live };
        let g = pinned.plan_with(false, now).unwrap().generator;
        assert_eq!((g.start_ms, g.interval_ms), (5, 1000));
    }
}
