//! The generate loop: pace, generate a batch, hand it to the sink, show progress.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::args::{GenerateArgs, Plan, ProgressMode, Target};
use super::error::GenerateError;
use super::sink::{BatchSink, FileSink, HttpSink, KafkaSink};
use crate::sources::generator::MarketGenerator;
use tickflow_operators::time::Millis;

/// Spreads `rate` bars/s evenly: how long to wait before the batch that starts with bar
/// number `sent` (pure, so it is tested without sleeping).
pub fn pace_delay(rate: Option<f64>, sent: u64, elapsed: Duration) -> Duration {
    let Some(rate) = rate else {
        return Duration::ZERO;
    };
    let due = Duration::from_secs_f64(sent as f64 / rate);
    due.saturating_sub(elapsed)
}

/// What a run did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Bars generated.
    pub generated: u64,
    /// Bars the destination confirmed (written, `2xx`, acknowledged).
    pub confirmed: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl Summary {
    /// Confirmed bars per second.
    pub fn rate(&self) -> f64 {
        self.confirmed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

struct Progress {
    mode: ProgressMode,
    total: Option<u64>,
    last: Instant,
    every: Duration,
}

impl Progress {
    fn new(mode: ProgressMode, total: Option<u64>, to_stdout: bool) -> Progress {
        let terminal = std::io::stderr().is_terminal() && !to_stdout;
        let mode = match mode {
            ProgressMode::Auto if terminal => ProgressMode::Bar,
            ProgressMode::Auto => ProgressMode::Lines,
            m => m,
        };
        let every = if mode == ProgressMode::Bar { Duration::from_millis(200) } else { Duration::from_secs(5) };
        Progress { mode, total, last: Instant::now(), every }
    }

    fn tick(&mut self, generated: u64, confirmed: u64, started: Instant) {
        if self.mode == ProgressMode::None || self.last.elapsed() < self.every {
            return;
        }
        self.last = Instant::now();
        let rate = confirmed as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let mut err = std::io::stderr().lock();
        // Progress output is best effort: a closed stderr must not stop the run.
        let _ = match (self.mode, self.total) {
            (ProgressMode::Bar, Some(total)) if total > 0 => {
                let frac = (confirmed as f64 / total as f64).min(1.0);
                let filled = (frac * 30.0) as usize;
                write!(
                    err,
                    "\r[{}{}] {:5.1}% {confirmed}/{total} bars, {rate:.0} bars/s ",
                    "#".repeat(filled),
                    " ".repeat(30 - filled),
                    frac * 100.0
                )
            }
            (ProgressMode::Bar, _) => write!(err, "\r{confirmed} bars, {rate:.0} bars/s "),
            _ => writeln!(err, "generate: {generated} generated, {confirmed} confirmed, {rate:.0} bars/s"),
        };
    }

    fn done(&self) {
        if self.mode == ProgressMode::Bar {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// Runs a validated plan to the end; the summary counts what the destination confirmed.
pub fn run_plan(plan: &Plan) -> Result<Summary, GenerateError> {
    let mut sink: Box<dyn BatchSink> = match &plan.target {
        Target::File(path) => Box::new(FileSink::create(path.as_deref(), plan.format)?),
        Target::Http(url) => Box::new(HttpSink::start(url, plan.format, plan.concurrency, plan.token.clone())),
        Target::Kafka { brokers, topic } => Box::new(KafkaSink::new(brokers, topic, plan.linger)?),
    };
    // With a rate, batches shrink so a second holds at least ~20 of them (smooth pacing).
    let batch = match plan.rate {
        Some(r) => plan.batch.min(((r / 20.0) as usize).max(1)),
        None => plan.batch,
    };
    let mut config = plan.generator.clone();
    if plan.start_now {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        config.start_ms = Millis::try_from(now.as_millis()).unwrap_or(Millis::MAX);
    }
    let mut generator = MarketGenerator::new(config).map_err(|e| GenerateError::Args(e.to_string()))?;
    let mut progress = Progress::new(plan.progress, plan.generator.records, plan.target == Target::File(None));
    let started = Instant::now();
    let mut bars = Vec::with_capacity(batch);
    let mut generated = 0u64;
    loop {
        if plan.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        let wait = pace_delay(plan.rate, generated, started.elapsed());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        bars.clear();
        if generator.fill(&mut bars, batch) == 0 {
            break;
        }
        sink.send(&bars)?;
        generated += bars.len() as u64;
        progress.tick(generated, sink.confirmed(), started);
    }
    let confirmed = sink.finish()?;
    progress.done();
    let summary = Summary { generated, confirmed, elapsed: started.elapsed() };
    tracing::info!(generated, confirmed, elapsed_ms = summary.elapsed.as_millis() as u64, "generate finished");
    Ok(summary)
}

/// `tickflow generate`: validates the arguments, runs, prints the achieved rate on stderr.
pub fn run_generate(args: GenerateArgs) -> anyhow::Result<()> {
    let plan = args.plan()?;
    let s = run_plan(&plan)?;
    eprintln!("generate: {} bars confirmed in {:.2} s ({:.0} bars/s)", s.confirmed, s.elapsed.as_secs_f64(), s.rate());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_now_stamps_the_first_bar_with_the_wall_clock() {
        let args = GenerateArgs { to: "-".into(), count: Some(3), start_now: true, ..GenerateArgs::default() };
        let mut plan = args.plan_with(false, 0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bars.ndjson");
        plan.target = Target::File(Some(path.clone()));
        let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        run_plan(&plan).unwrap();
        let after = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        let first = std::fs::read_to_string(&path).unwrap();
        let line: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
        let ms = (line["timestamp"].as_f64().unwrap() * 1000.0).round() as u128;
        assert!((before..=after).contains(&ms), "{before} <= {ms} <= {after}");
    }

    #[test]
    fn pacing_spreads_bars_over_time() {
        assert_eq!(pace_delay(None, 1_000_000, Duration::ZERO), Duration::ZERO);
        assert_eq!(pace_delay(Some(1000.0), 500, Duration::from_millis(200)), Duration::from_millis(300));
        assert_eq!(pace_delay(Some(1000.0), 500, Duration::from_secs(1)), Duration::ZERO, "behind: no wait");
    }
}
