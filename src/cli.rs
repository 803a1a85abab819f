//! What every `tickflow` subcommand shares at the edge of the binary: the log setup (colour
//! only on a terminal, `NO_COLOR`, `--log-format json`), usage errors (exit code 2) and the
//! one-line error text printed before exiting.

use std::fmt;
use std::io::IsTerminal;

/// A mistake in how the command was called (a missing input file, an output extension
/// tickflow cannot write, a run that would flood a terminal): the binary prints it on one
/// line and exits with code 2, before any worker starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The exit code for a failed command: 2 for usage and configuration errors (the command
/// can never succeed as called), 1 for everything else (a failure while running).
pub fn exit_code(e: &anyhow::Error) -> u8 {
    let usage = e.chain().any(|c| {
        c.is::<UsageError>()
            || c.is::<crate::config::ConfigErrors>()
            || c.is::<crate::checkpoint::cli::CheckpointsError>()
            || matches!(
                c.downcast_ref::<crate::generate::GenerateError>(),
                Some(crate::generate::GenerateError::Args(_))
            )
    });
    if usage { 2 } else { 1 }
}

/// The error and its causes on one line, `outer: cause: root cause`, each text once: many
/// errors (ours and the libraries') already include their cause's text in their own
/// message and also return the cause from `source()`, which `{:#}` would print twice
/// (`Address already in use (os error 98): Address already in use (os error 98)`).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        let c = c.trim();
        if c.is_empty() || text.contains(c) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(c);
    }
    text
}

/// `tickflow replay`'s paths, checked before any worker starts or any file is created:
/// every input can be opened, and the output's extension names a format tickflow writes.
pub fn check_replay_paths(inputs: &[std::path::PathBuf], output: &std::path::Path) -> Result<(), UsageError> {
    for input in inputs {
        if input.is_dir() {
            return Err(UsageError(format!(
                "--input {}: is a directory; expected a CSV or NDJSON file",
                input.display()
            )));
        }
        if let Err(e) = std::fs::File::open(input) {
            return Err(UsageError(format!("--input {}: {e}", input.display())));
        }
    }
    if crate::config::FileFormat::from_path(output).is_none() {
        return Err(UsageError(format!(
            "--output {}: unknown extension; expected .csv or .ndjson (or .jsonl, .json)",
            output.display()
        )));
    }
    Ok(())
}

/// How log lines are written (`--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; coloured only when standard error is a terminal and
    /// `NO_COLOR` is not set.
    #[default]
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

/// Whether log lines get ANSI colours: only on a terminal, and never when `NO_COLOR` is set
/// to a non-empty value (<https://no-color.org>).
pub fn use_colour(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the global tracing subscriber on standard error. The level comes from
/// `RUST_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_current_span(false).init(),
        LogFormat::Text => {
            let colour = use_colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
            builder.with_ansi(colour).init()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))), "an empty NO_COLOR does not count");
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None), "a log file gets no escapes");
    }

    #[test]
    fn bind_error_text_is_not_doubled() {
        let io = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let io_text = io.to_string();
        let e = crate::status::StatusError::Bind { addr: "127.0.0.1:9100".parse().unwrap(), source: io };
        let e = anyhow::Error::new(e);
        let text = error_text(&e);
        assert_eq!(text, format!("status server: cannot bind 127.0.0.1:9100: {io_text}"));
        assert_eq!(text.matches(&io_text).count(), 1, "{text}");
    }

    #[test]
    fn context_and_causes_each_once() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let text_io = io.to_string();
        let e = anyhow::Error::new(io).context("writing stdout");
        assert_eq!(error_text(&e), format!("writing stdout: {text_io}"));
    }

    #[test]
    fn usage_and_config_errors_exit_with_2() {
        assert_eq!(exit_code(&anyhow::Error::new(UsageError("x".into()))), 2);
        assert_eq!(exit_code(&anyhow::Error::new(crate::config::ConfigErrors(vec!["y".into()]))), 2);
        assert_eq!(exit_code(&anyhow::anyhow!("the sink failed")), 1);
        assert_eq!(exit_code(&anyhow::Error::new(UsageError("x".into())).context("replay")), 2);
    }
}
