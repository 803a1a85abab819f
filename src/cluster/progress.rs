//! The progress line of `tickflow run` and `replay` on a terminal: bars so far, the input rate
//! and the watermark, redrawn in place on stderr once a second from the process's metrics.
//!
//! Only on a terminal (the caller decides, `RunOptions::progress`): in a log file or under a
//! supervisor a line rewritten with `\r` is noise. The final summary line is printed by the
//! binary either way.

use std::io::Write;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::status::ProcessMetrics;

/// How often the line is redrawn.
const EVERY: Duration = Duration::from_secs(1);

/// `n` with thousands separators (`1234567` → `1,234,567`).
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The line: bars in and out, bars in per second, the lowest watermark of the workers.
///
/// ```
/// use tickflow::cluster::progress::line;
/// assert_eq!(
///     line(1_234_567, 1_230_000, Some(2_000.4), Some(1_700_000_000_000)),
///     "bars 1,234,567 in, 1,230,000 out · 2,000 bars/s · watermark 2023-11-14T22:13:20Z"
/// );
/// assert_eq!(line(0, 0, None, None), "bars 0 in, 0 out · - bars/s · watermark -");
/// ```
pub fn line(bars_in: u64, bars_out: u64, rate: Option<f64>, watermark_ms: Option<i64>) -> String {
    let rate = rate.map_or_else(|| "-".to_owned(), |r| grouped(r.max(0.0).round() as u64));
    let watermark = watermark_ms
        .and_then(|ms| u64::try_from(ms).ok())
        .map(|ms| humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms)).to_string())
        .unwrap_or_else(|| "-".to_owned());
    format!("bars {} in, {} out · {rate} bars/s · watermark {watermark}", grouped(bars_in), grouped(bars_out))
}

/// The running progress line; dropping it stops the thread and clears the line.
#[derive(Debug)]
pub struct Progress {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts redrawing the line from `metrics` on stderr. If the thread cannot be started the
    /// run goes on without a progress line.
    pub fn start(metrics: Arc<ProcessMetrics>) -> Progress {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("tickflow-progress".to_owned())
            .spawn(move || draw_until(&metrics, &stopped))
            .map_err(|error| tracing::warn!(%error, "no progress line: cannot start its thread"))
            .ok();
        Progress { stop: Some(stop), thread }
    }
}

fn draw_until(metrics: &ProcessMetrics, stopped: &mpsc::Receiver<()>) {
    // The metrics are new with the run: the first rate is since the start.
    let mut last = (Instant::now(), metrics.totals().bars_in);
    // A message or a dropped sender both mean stop.
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
        let totals = metrics.totals();
        let now = Instant::now();
        let rate = totals.bars_in.saturating_sub(last.1) as f64 / now.duration_since(last.0).as_secs_f64();
        last = (now, totals.bars_in);
        let watermark = metrics.worker_values().iter().filter_map(|w| w.watermark_ms).min();
        // Best effort: a closed stderr must not stop the run. `\x1b[2K` clears what a longer
        // earlier line (or a log line) left.
        let _ = write!(std::io::stderr(), "\r\x1b[2K{}", line(totals.bars_in, totals.bars_out, Some(rate), watermark));
    }
    let _ = write!(std::io::stderr(), "\r\x1b[2K");
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(Err(_)) = self.thread.take().map(JoinHandle::join) {
            tracing::warn!("the progress line's thread panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!([0, 999, 1_000, 12_345, 1_000_000].map(grouped), ["0", "999", "1,000", "12,345", "1,000,000"]);
    }
}
