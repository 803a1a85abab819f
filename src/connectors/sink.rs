//! Where a poll's bars go: Kafka through the gateway's producer (bars keyed by symbol in
//! the canonical JSON form, invalid rows to the dead-letter topic), or stdout.

use std::io::Write as _;
use std::time::Duration;

use tickflow_operators::Bar;
use tickflow_operators::time::Millis;

use super::config::{BuiltConnector, Exchange};
use super::error::ConnectorError;
use super::poller::DeadRow;
use crate::kafka::{DeadLetter, ProduceError, Producer, dead_letter_raw, encode_bar};

/// A destination for the output of a poll.
pub trait BarSink {
    /// Hands over `bars` and `dead` and waits until the destination has them. On error
    /// some may have been taken: the caller retries all of them (the `(symbol, ts)` keys
    /// make a repeated bar an idempotent upsert downstream).
    fn send(
        &mut self,
        exchange: Exchange,
        bars: &[Bar],
        dead: &[DeadRow],
        received_ms: Millis,
    ) -> Result<(), ConnectorError>;

    /// Waits for anything still in flight (at shutdown).
    fn flush(&mut self) -> Result<(), ConnectorError>;
}

/// Records the producer may hold unacknowledged: far above one poll's output (at most
/// `max-bars-per-request` rows, or one Alpha Vantage `outputsize=full` answer).
pub const QUEUE_CAPACITY: usize = 200_000;

/// Kafka via the gateway's idempotent producer (acks=all, murmur2 partitioner: the same
/// partition per symbol as every other producer of the system).
pub struct KafkaSink {
    producer: Producer,
    runtime: tokio::runtime::Runtime,
    probe_timeout: Duration,
    buf: Vec<u8>,
}

impl KafkaSink {
    /// A producer to `cfg`'s brokers and topics.
    pub fn from_config(cfg: &BuiltConnector) -> Result<KafkaSink, ConnectorError> {
        KafkaSink::new(&cfg.brokers, &cfg.topic, &cfg.dead_letter_topic, Duration::from_secs(30))
    }

    /// A producer to `brokers` writing bars to `topic` and dead letters to
    /// `dead_letter_topic`; a batch not acknowledged within `message_timeout` fails.
    pub fn new(
        brokers: &str,
        topic: &str,
        dead_letter_topic: &str,
        message_timeout: Duration,
    ) -> Result<KafkaSink, ConnectorError> {
        let producer = Producer::new(
            brokers,
            topic,
            dead_letter_topic,
            QUEUE_CAPACITY,
            message_timeout,
            Duration::from_millis(5),
        )?;
        // The producer's `wait` is async (it serves the gateway); one small runtime of our
        // own blocks on it.
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_time().build().map_err(ConnectorError::Runtime)?;
        Ok(KafkaSink { producer, runtime, probe_timeout: Duration::from_secs(5), buf: Vec::with_capacity(160) })
    }

    /// Checks that the broker answers and both topics exist.
    pub fn probe(&self) -> bool {
        self.producer.probe(self.probe_timeout)
    }

    /// Why the broker is down ("" when up).
    pub fn broker_reason(&self) -> String {
        self.producer.health().reason()
    }
}

impl BarSink for KafkaSink {
    fn send(
        &mut self,
        exchange: Exchange,
        bars: &[Bar],
        dead: &[DeadRow],
        received_ms: Millis,
    ) -> Result<(), ConnectorError> {
        if bars.is_empty() && dead.is_empty() {
            return Ok(());
        }
        if !self.producer.health().is_up() && !self.probe() {
            return Err(ProduceError::BrokerDown(self.broker_reason()).into());
        }
        let mut r = self.producer.reserve(bars.len() + dead.len())?;
        for (i, bar) in bars.iter().enumerate() {
            self.buf.clear();
            encode_bar(bar, &mut self.buf);
            self.producer.send_bar(&mut r, i as u64, bar.symbol.as_str(), &self.buf);
        }
        for d in dead {
            let (raw, raw_truncated) = dead_letter_raw(d.raw.as_bytes());
            let letter = DeadLetter {
                source: exchange.name(),
                index: d.index,
                field: d.field.as_deref(),
                // The dead-letter record has no symbol field: the reason carries it.
                reason: format!("{}: {}", d.symbol.as_str(), d.reason),
                content_type: "application/json",
                received_ms,
                raw,
                raw_truncated,
            };
            self.producer.send_dead_letter(&mut r, d.index, &letter.to_json());
        }
        self.runtime.block_on(self.producer.wait(r))?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ConnectorError> {
        Ok(self.producer.flush(Duration::from_secs(10))?)
    }
}

/// Canonical NDJSON bars on stdout (`--stdout`); dead letters are logged.
#[derive(Debug, Default)]
pub struct StdoutSink {
    buf: Vec<u8>,
}

impl BarSink for StdoutSink {
    fn send(
        &mut self,
        exchange: Exchange,
        bars: &[Bar],
        dead: &[DeadRow],
        _received_ms: Millis,
    ) -> Result<(), ConnectorError> {
        self.buf.clear();
        for bar in bars {
            encode_bar(bar, &mut self.buf);
            self.buf.push(b'\n');
        }
        let mut out = std::io::stdout().lock();
        out.write_all(&self.buf).and_then(|()| out.flush()).map_err(ConnectorError::Stdout)?;
        for d in dead {
            let (exchange, symbol) = (exchange.name(), d.symbol.as_str());
            tracing::warn!(exchange, symbol, index = d.index, reason = %d.reason, raw = %d.raw, "invalid row");
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ConnectorError> {
        std::io::stdout().flush().map_err(ConnectorError::Stdout)
    }
}
