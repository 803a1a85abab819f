//! Where generated batches go: a file, the gateway over HTTP (concurrent requests), or
//! Kafka. Each sink takes encoded batches and applies backpressure by blocking.

use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use tickflow_operators::Bar;

use super::args::Format;
use super::error::GenerateError;
use crate::decode::TsUnit;
use crate::kafka::encode_bar;
use crate::kafka::producer::kafka_config;
use crate::retry::{Jitter, Policy, parse_retry_after};
use crate::sources::generator::{CSV_HEADER, write_csv_row, write_w1_line};

/// A destination for batches of bars.
pub trait BatchSink {
    /// Writes (or hands off) one batch; blocks when the destination is behind.
    fn send(&mut self, bars: &[Bar]) -> Result<(), GenerateError>;
    /// Bars the destination has confirmed so far.
    fn confirmed(&self) -> u64;
    /// Waits for everything handed off; returns the confirmed total.
    fn finish(self: Box<Self>) -> Result<u64, GenerateError>;
}

/// Appends `bars` in `format` as lines (each ending in `\n`) to `out`.
pub fn encode_lines(bars: &[Bar], format: Format, out: &mut Vec<u8>, text: &mut String) {
    for bar in bars {
        match format {
            Format::Canonical => encode_bar(bar, out),
            Format::W1 | Format::Csv => {
                text.clear();
                if format == Format::W1 {
                    write_w1_line(text, bar);
                } else {
                    write_csv_row(text, bar, TsUnit::Seconds);
                }
                out.extend_from_slice(text.as_bytes());
            }
        }
        out.push(b'\n');
    }
}

/// NDJSON or CSV to a file or stdout.
pub struct FileSink {
    out: BufWriter<Box<dyn Write + Send>>,
    name: String,
    format: Format,
    buf: Vec<u8>,
    text: String,
    written: u64,
}

impl FileSink {
    /// Creates (truncates) `path`, or writes to stdout for `None`.
    pub fn create(path: Option<&std::path::Path>, format: Format) -> Result<FileSink, GenerateError> {
        let (w, name): (Box<dyn Write + Send>, String) = match path {
            None => (Box::new(std::io::stdout()), "stdout".into()),
            Some(p) => {
                let f = std::fs::File::create(p)
                    .map_err(|source| GenerateError::Io { path: p.display().to_string(), source })?;
                (Box::new(f), p.display().to_string())
            }
        };
        let mut sink = FileSink {
            out: BufWriter::with_capacity(1 << 20, w),
            name,
            format,
            buf: Vec::with_capacity(1 << 16),
            text: String::with_capacity(256),
            written: 0,
        };
        if format == Format::Csv {
            sink.write(format!("{CSV_HEADER}\n").as_bytes())?;
        }
        Ok(sink)
    }

    fn write(&mut self, b: &[u8]) -> Result<(), GenerateError> {
        self.out.write_all(b).map_err(|source| GenerateError::Io { path: self.name.clone(), source })
    }
}

impl BatchSink for FileSink {
    fn send(&mut self, bars: &[Bar]) -> Result<(), GenerateError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        encode_lines(bars, self.format, &mut buf, &mut self.text);
        let r = self.write(&buf);
        self.buf = buf;
        r?;
        self.written += bars.len() as u64;
        Ok(())
    }

    fn confirmed(&self) -> u64 {
        self.written
    }

    fn finish(mut self: Box<Self>) -> Result<u64, GenerateError> {
        self.out.flush().map_err(|source| GenerateError::Io { path: self.name.clone(), source })?;
        Ok(self.written)
    }
}

/// Shared between the HTTP workers and the generating thread.
#[derive(Default)]
struct HttpShared {
    confirmed: AtomicU64,
    failed: AtomicBool,
    error: Mutex<Option<String>>,
}

/// Batches as NDJSON `POST`s to the gateway from `concurrency` threads, retrying `503`,
/// `429` and connection errors after `Retry-After` (or a backoff) up to 60 times.
pub struct HttpSink {
    url: String,
    format: Format,
    tx: Option<crossbeam_channel::Sender<(Vec<u8>, u64)>>,
    workers: Vec<std::thread::JoinHandle<()>>,
    shared: Arc<HttpShared>,
    text: String,
}

impl HttpSink {
    /// Starts the workers.
    pub fn start(url: &str, format: Format, concurrency: usize, token: Option<String>) -> HttpSink {
        let (tx, rx) = crossbeam_channel::bounded::<(Vec<u8>, u64)>(concurrency * 2);
        let shared = Arc::new(HttpShared::default());
        let auth = token.map(|t| format!("Bearer {t}"));
        let workers = (0..concurrency)
            .map(|i| {
                let (rx, shared, url, auth) = (rx.clone(), Arc::clone(&shared), url.to_string(), auth.clone());
                std::thread::Builder::new()
                    .name(format!("tickflow-generate-http-{i}"))
                    .spawn(move || http_worker(&url, auth.as_deref(), &rx, &shared))
                    // Spawning fails only when the OS is out of threads: nothing to recover.
                    .expect("spawn HTTP worker thread")
            })
            .collect();
        HttpSink { url: url.into(), format, tx: Some(tx), workers, shared, text: String::with_capacity(256) }
    }

    fn error(&self) -> GenerateError {
        let message = self.shared.error.lock().ok().and_then(|e| e.clone()).unwrap_or_default();
        GenerateError::Http { url: self.url.clone(), message }
    }
}

/// Retries of one body: a busy gateway (503, 429) after its `Retry-After` or 200 ms, a
/// failed request after 200 ms doubling to 2 s with jitter; 60 attempts in all.
const HTTP_RETRY: Policy = Policy::exponential(Duration::from_millis(200), Duration::from_secs(2))
    .with_jitter(Jitter::Equal)
    .with_max_attempts(60);

/// The wall clock in ms (for `Retry-After` dates).
fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn http_worker(url: &str, auth: Option<&str>, rx: &crossbeam_channel::Receiver<(Vec<u8>, u64)>, shared: &HttpShared) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(60))).build(),
    );
    let fail = |m: String| {
        if let Ok(mut e) = shared.error.lock() {
            e.get_or_insert(m);
        }
        shared.failed.store(true, Ordering::Relaxed);
    };
    let mut backoff = HTTP_RETRY.backoff(crate::retry::clock_seed());
    for (body, n) in rx {
        if shared.failed.load(Ordering::Relaxed) {
            return;
        }
        backoff.reset();
        loop {
            let attempt = backoff.failures() + 1;
            let mut req = agent.post(url).header("content-type", "application/x-ndjson");
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let wait = match req.send(&body[..]) {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    if (200..300).contains(&status) {
                        shared.confirmed.fetch_add(n, Ordering::Relaxed);
                        break;
                    }
                    let retry_after =
                        resp.headers().get("retry-after").and_then(|v| parse_retry_after(v.to_str().ok()?, now_ms()));
                    let text =
                        resp.body_mut().with_config().limit(4096).lossy_utf8(true).read_to_string().unwrap_or_default();
                    if status != 503 && status != 429 {
                        fail(format!("HTTP {status}: {text}"));
                        return;
                    }
                    tracing::debug!(status, attempt, "gateway busy; retrying");
                    // A busy gateway is retried soon (its queue drains in milliseconds)
                    // unless it asked for longer; the attempt still counts.
                    backoff.next_within(Duration::ZERO).map(|_| retry_after.unwrap_or(HTTP_RETRY.initial))
                }
                Err(e) => {
                    tracing::debug!(error = %e, attempt, "request failed; retrying");
                    backoff.next_within(Duration::ZERO)
                }
            };
            let Some(wait) = wait else {
                fail(format!("gave up after {attempt} attempts"));
                return;
            };
            std::thread::sleep(wait);
        }
    }
}

impl BatchSink for HttpSink {
    fn send(&mut self, bars: &[Bar]) -> Result<(), GenerateError> {
        if self.shared.failed.load(Ordering::Relaxed) {
            return Err(self.error());
        }
        let mut body = Vec::with_capacity(bars.len() * 160);
        encode_lines(bars, self.format, &mut body, &mut self.text);
        let tx = self.tx.as_ref().ok_or_else(|| self.error())?;
        // Blocks while every worker is busy and the channel is full: backpressure.
        tx.send((body, bars.len() as u64)).map_err(|_| self.error())
    }

    fn confirmed(&self) -> u64 {
        self.shared.confirmed.load(Ordering::Relaxed)
    }

    fn finish(mut self: Box<Self>) -> Result<u64, GenerateError> {
        drop(self.tx.take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        if self.shared.failed.load(Ordering::Relaxed) {
            return Err(self.error());
        }
        Ok(self.confirmed())
    }
}

/// Counts Kafka deliveries.
#[derive(Default)]
struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
    error: Mutex<Option<String>>,
}

struct KafkaContext(Arc<Deliveries>);

impl ClientContext for KafkaContext {}

impl ProducerContext for KafkaContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.0.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut slot) = self.0.error.lock() {
                    slot.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

/// Canonical JSON bars keyed by symbol, produced like the gateway does (idempotent,
/// acks=all, murmur2); blocks while the producer queue is full.
pub struct KafkaSink {
    producer: ThreadedProducer<KafkaContext>,
    topic: String,
    deliveries: Arc<Deliveries>,
    buf: Vec<u8>,
}

impl KafkaSink {
    /// A producer for `brokers` writing to `topic`.
    pub fn new(brokers: &str, topic: &str, linger: Duration) -> Result<KafkaSink, GenerateError> {
        let deliveries = Arc::new(Deliveries::default());
        let producer = kafka_config(brokers, Duration::from_secs(30), linger, 500_000)
            .create_with_context(KafkaContext(Arc::clone(&deliveries)))
            .map_err(|e| GenerateError::Kafka(e.to_string()))?;
        Ok(KafkaSink { producer, topic: topic.into(), deliveries, buf: Vec::with_capacity(256) })
    }

    fn failure(&self) -> Option<GenerateError> {
        (self.deliveries.failed.load(Ordering::Relaxed) > 0).then(|| {
            let e = self.deliveries.error.lock().ok().and_then(|e| e.clone()).unwrap_or_default();
            GenerateError::Kafka(format!("{} records failed: {e}", self.deliveries.failed.load(Ordering::Relaxed)))
        })
    }
}

impl BatchSink for KafkaSink {
    fn send(&mut self, bars: &[Bar]) -> Result<(), GenerateError> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        for bar in bars {
            self.buf.clear();
            encode_bar(bar, &mut self.buf);
            loop {
                let record = BaseRecord::to(&self.topic).key(bar.symbol.as_str()).payload(&self.buf[..]);
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((e, _)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err((e, _)) => return Err(GenerateError::Kafka(e.to_string())),
                }
            }
        }
        Ok(())
    }

    fn confirmed(&self) -> u64 {
        self.deliveries.ok.load(Ordering::Relaxed)
    }

    fn finish(self: Box<Self>) -> Result<u64, GenerateError> {
        self.producer.flush(Duration::from_secs(60)).map_err(|e| GenerateError::Kafka(e.to_string()))?;
        match self.failure() {
            Some(e) => Err(e),
            None => Ok(self.confirmed()),
        }
    }
}
