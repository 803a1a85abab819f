//! `tickflow top`'s command line: where the status endpoints are, and which mode to run in.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::sample::read_all;
use super::view::Frame;
use crate::config::Config;
use crate::status_cli::{StatusClient, read_token, status_urls};

/// `tickflow top`.
#[derive(clap::Args, Debug, Clone)]
pub struct TopArgs {
    /// The cluster config: every process of `cluster.processes`, whose status is on
    /// `status.listen` + process index. Default `cluster.toml` when no `--url` is given; with
    /// `--url` only its read token is used.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A status endpoint (`host:port`, `http://host:port` or `.../status`), repeatable;
    /// instead of the config's process list.
    #[arg(long = "url", value_name = "URL")]
    pub urls: Vec<String>,
    /// Time between refreshes (and, for a snapshot, between its two reads).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Print one plain snapshot and exit (what `top` does anyway when stdout is not a terminal).
    #[arg(long)]
    pub once: bool,
}

/// Why `tickflow top` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum TopError {
    /// The config could not be read or is invalid.
    #[error("{path}: {message}")]
    Config {
        /// The config file.
        path: String,
        /// What is wrong (every problem, one per line).
        message: String,
    },
    /// A `--url` that is not an address.
    #[error("--url {url:?}: {why}; expected e.g. \"127.0.0.1:9100\" or \"http://127.0.0.1:9100/status\"")]
    BadUrl {
        /// The argument.
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// `--interval 0s`.
    #[error("--interval: must be at least 100ms; expected e.g. \"1s\"")]
    BadInterval,
    /// The terminal could not be set up or written.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    /// Some processes could not be read (the snapshot was printed).
    #[error("{down} of {total} process(es) could not be read")]
    Down {
        /// How many could not be read.
        down: usize,
        /// How many were asked.
        total: usize,
    },
}

/// The `/status` URL for a `--url` argument.
///
/// ```
/// use tickflow::top::args::status_url;
/// assert_eq!(status_url("127.0.0.1:9100").unwrap(), "http://127.0.0.1:9100/status");
/// assert_eq!(status_url("https://h:9100/").unwrap(), "https://h:9100/status");
/// assert_eq!(status_url("http://h:9100/status").unwrap(), "http://h:9100/status");
/// assert!(status_url("ftp://h:9100").is_err());
/// ```
pub fn status_url(arg: &str) -> Result<String, TopError> {
    let bad = |why| TopError::BadUrl { url: arg.to_owned(), why };
    let with_scheme = if arg.contains("://") { arg.to_owned() } else { format!("http://{arg}") };
    let mut url = url::Url::parse(&with_scheme).map_err(|_| bad("not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if url.path() == "/" || url.path().is_empty() {
        url.set_path("/status");
    }
    Ok(url.to_string())
}

fn load(path: &PathBuf) -> Result<Config, TopError> {
    let err = |message: String| TopError::Config { path: path.display().to_string(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    Config::parse(&text).map_err(|e| err(e.to_string()))
}

/// The endpoints and the read token `args` ask for.
pub fn endpoints(args: &TopArgs) -> Result<(Vec<String>, Option<String>), TopError> {
    let config = match (&args.config, args.urls.is_empty()) {
        (Some(p), _) => Some((p.clone(), load(p)?)),
        (None, true) => {
            let p = PathBuf::from("cluster.toml");
            Some((p.clone(), load(&p)?))
        }
        (None, false) => None,
    };
    let token = read_token(config.as_ref().map(|(_, c)| c));
    let urls = if args.urls.is_empty() {
        // Only reached with a config (see above).
        let Some((path, cfg)) = &config else { return Ok((Vec::new(), token)) };
        let built =
            cfg.build().map_err(|e| TopError::Config { path: path.display().to_string(), message: e.to_string() })?;
        status_urls(&built, cfg.status.tls.is_some())
    } else {
        args.urls.iter().map(|u| status_url(u)).collect::<Result<_, _>>()?
    };
    Ok((urls, token))
}

/// The first line of the view.
fn title(frame: &Frame, interval: Duration, interactive: bool) -> String {
    let now = humantime::format_rfc3339_seconds(SystemTime::now());
    let keys = if interactive { " · q quits" } else { "" };
    format!(
        "tickflow top · {} process(es) · {} worker(s) · {now} · every {}{keys}",
        frame.processes.len(),
        frame.workers(),
        humantime::format_duration(interval)
    )
}

/// Runs `tickflow top`: the live view on a terminal, else (or with `--once`) one snapshot.
pub fn run_top(args: TopArgs) -> Result<(), TopError> {
    if args.interval < Duration::from_millis(100) {
        return Err(TopError::BadInterval);
    }
    let (urls, token) = endpoints(&args)?;
    tracing::debug!(endpoints = urls.len(), token = token.is_some(), "tickflow top");
    // A read that takes longer than a refresh is shown as down rather than stalling the view.
    let client = StatusClient::new(args.interval.clamp(Duration::from_millis(500), Duration::from_secs(3)), token);
    if args.once || !std::io::stdout().is_terminal() {
        return snapshot(&client, &urls, args.interval);
    }
    super::screen::run(&client, &urls, args.interval, |f, i| title(f, i, true))
}

/// Two reads `interval` apart, printed once as plain text.
fn snapshot(client: &StatusClient, urls: &[String], interval: Duration) -> Result<(), TopError> {
    let first = read_all(client, urls);
    std::thread::sleep(interval);
    let second = read_all(client, urls);
    let frame = Frame::build(urls, &first, &second);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", title(&frame, interval, false))?;
    for line in frame.lines() {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    match frame.down() {
        0 => Ok(()),
        down => Err(TopError::Down { down, total: urls.len() }),
    }
}
