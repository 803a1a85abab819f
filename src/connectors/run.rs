//! `tickflow connect`: a [`Poller`] stepped with the real clock, its output handed to a
//! [`BarSink`] before the next step, until asked to stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tickflow_operators::time::Millis;

use super::config::ConnectorArgs;
use super::error::ConnectorError;
use super::http::{Fetch, UreqFetch};
use super::poller::Poller;
use super::sink::{BarSink, KafkaSink, StdoutSink};

/// Milliseconds since the epoch by the system clock.
pub fn now_ms() -> Millis {
    // A clock before 1970 is a broken host; 0 keeps the arithmetic sane.
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX))
}

/// Runs `tickflow connect <exchange>` until Ctrl-C / SIGTERM (the binary's signal handler
/// sets [`super::STOP`]).
pub fn run_connector(args: ConnectorArgs) -> anyhow::Result<()> {
    let built = args.to_config()?.build()?;
    tracing::info!(
        exchange = built.exchange.name(),
        symbols = built.symbols.len(),
        resolution = %built.resolution,
        base_url = %built.base_url,
        backfill_s = built.backfill.as_secs(),
        "connector starting"
    );
    let mut sink: Box<dyn BarSink> = if args.stdout {
        Box::new(StdoutSink::default())
    } else {
        let sink = KafkaSink::from_config(&built)?;
        if !sink.probe() {
            tracing::warn!(reason = %sink.broker_reason(), "kafka not reachable yet; batches wait for it");
        }
        Box::new(sink)
    };
    let seed = now_ms() as u64 ^ u64::from(std::process::id()).rotate_left(32);
    let fetch = UreqFetch::new(built.http_timeout);
    let mut poller = Poller::new(built, fetch, seed);
    run_until(&mut poller, sink.as_mut(), &super::STOP, now_ms)?;
    let m = poller.metrics();
    tracing::info!(
        bars = m.bars(),
        dead_letters = m.dead_letters(),
        ok = m.requests("ok"),
        rate_limited = m.requests("rate_limited"),
        "connector stopped"
    );
    Ok(())
}

/// Steps `poller` with `clock` and hands every poll's output to `sink` (retrying with
/// backoff until it is taken: a batch is never dropped while running) until `stop` is set.
pub fn run_until<F: Fetch>(
    poller: &mut Poller<F>,
    sink: &mut dyn BarSink,
    stop: &AtomicBool,
    clock: impl Fn() -> Millis,
) -> Result<(), ConnectorError> {
    let exchange = poller.config().exchange;
    let mut retry = poller.config().backoff_policy().backoff(clock() as u64);
    while !stop.load(Ordering::Relaxed) {
        let poll = poller.poll_once(clock());
        if !poll.bars.is_empty() || !poll.dead_letters.is_empty() {
            loop {
                match sink.send(exchange, &poll.bars, &poll.dead_letters, clock()) {
                    Ok(()) => {
                        retry.reset();
                        break;
                    }
                    Err(e) => {
                        let delay = retry.next_delay();
                        let (bars, delay_ms) = (poll.bars.len(), delay.as_millis() as u64);
                        tracing::warn!(error = %e, bars, delay_ms, "batch not taken by the sink; retrying");
                        if !sleep_until(clock() + delay.as_millis() as Millis, &clock, stop) {
                            // Not acknowledged: a restart's back-fill fetches these bars again
                            // while they are within the window.
                            tracing::error!(
                                bars,
                                dead_letters = poll.dead_letters.len(),
                                "stopping with a batch unsent"
                            );
                            return sink.flush();
                        }
                    }
                }
            }
        }
        sleep_until(poll.next_poll_at, &clock, stop);
    }
    sink.flush()
}

/// Sleeps until `deadline` by `clock`, in short steps so `stop` is seen; false if stopped.
fn sleep_until(deadline: Millis, clock: &impl Fn() -> Millis, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let left = deadline - clock();
        if left <= 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(left.clamp(1, 200) as u64));
    }
}
