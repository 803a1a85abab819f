//! A real Kafka-protocol broker (Tansu) for tests, and an exact producer.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

// ---------------------------------------------------------------------------------------
// The broker.

/// The tansu binary: `$TANSU_BIN` or `$TANSU`, else `~/.cargo/bin/tansu` (where
/// scripts/install-tansu.sh puts it), else `tansu` on the PATH.
pub fn tansu_bin() -> String {
    if let Some(p) = ["TANSU_BIN", "TANSU"].iter().find_map(|v| std::env::var(v).ok()) {
        return p;
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let cargo = PathBuf::from(home).join(".cargo/bin/tansu");
    if cargo.exists() {
        return cargo.to_string_lossy().into_owned();
    }
    "tansu".to_owned()
}

/// A Tansu broker with in-memory storage on a loopback port, killed on drop (resumed first
/// if a test paused it).
pub struct Broker {
    child: Child,
    pub port: u16,
    pub bin: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a broker on a free port.
    pub fn start() -> Broker {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("binding port 0").port();
        Broker::start_on(port)
    }

    /// Starts a broker on `port` (a restart on the same address) and waits until it listens.
    pub fn start_on(port: u16) -> Broker {
        let bin = tansu_bin();
        if let Err(e) = Command::new(&bin).arg("--version").output() {
            panic!(
                "these tests need the Kafka-protocol broker Tansu, but `{bin} --version` failed: {e}. \
                 Install it with scripts/install-tansu.sh (or set TANSU_BIN to its path)."
            );
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("tansu.log");
        let out = std::fs::File::create(&log).expect("log file");
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting `{bin} broker` failed: {e}"));
        let mut broker = Broker { child, port, bin, log, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = broker.child.try_wait() {
                panic!("tansu exited ({status}) before listening:\n{}", broker.log_text());
            }
            assert!(Instant::now() < deadline, "tansu did not listen on {url} within 30 s:\n{}", broker.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        broker
    }

    /// Pauses (`-STOP`) or resumes (`-CONT`) the broker process: paused, it keeps its data
    /// but answers nothing.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([sig, &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill {sig}");
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        let mut s = String::new();
        let _ = std::fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut s));
        s
    }

    /// Creates `name` with `partitions` partitions.
    pub fn create_topic(&self, name: &str, partitions: impl std::fmt::Display) {
        let out = Command::new(&self.bin)
            .args(["topic", "create", name, "--partitions", &partitions.to_string()])
            .args(["--broker", &format!("tcp://127.0.0.1:{}", self.port)])
            .output()
            .expect("running tansu topic create");
        assert!(
            out.status.success(),
            "tansu topic create {name} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.child.id().to_string()]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// Producing.

/// One message to produce: partition, key, payload (`None` = tombstone).
pub struct Msg {
    pub partition: i32,
    pub key: String,
    pub payload: Option<Vec<u8>>,
}

/// Produces `msgs` in order (one producer, one request in flight: offsets follow the order)
/// and returns the number of messages per partition.
pub fn produce(brokers: &str, topic: &str, msgs: &[Msg]) -> BTreeMap<i32, i64> {
    let producer: BaseProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("max.in.flight.requests.per.connection", "1")
        .set("linger.ms", "5")
        .create_with_context(Deliveries::default())
        .expect("creating the producer");
    let mut counts = BTreeMap::new();
    for m in msgs {
        let mut record = BaseRecord::<str, [u8]>::to(topic).partition(m.partition).key(m.key.as_str());
        if let Some(p) = &m.payload {
            record = record.payload(p.as_slice());
        }
        let mut record = Some(record);
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(r) = record.take() {
            if let Err((e, r)) = producer.send(r) {
                assert!(Instant::now() < deadline, "producing to {topic}/{} failed: {e}", m.partition);
                producer.poll(Duration::from_millis(10)); // queue full: serve deliveries
                record = Some(r);
            }
        }
        *counts.entry(m.partition).or_insert(0) += 1;
    }
    producer.flush(Duration::from_secs(30)).expect("flushing the producer");
    // Not `fetch_watermarks`: Tansu 0.6.0 reports the last batch's base offset + 1 as the high
    // watermark. Delivery reports are exact.
    let failed = producer.context().failed.load(Ordering::Relaxed);
    let delivered = producer.context().delivered.load(Ordering::Relaxed);
    assert_eq!((failed, delivered), (0, msgs.len()), "delivery reports (failed, delivered) for {topic}");
    counts
}

/// Counts delivery reports.
#[derive(Default)]
pub struct Deliveries {
    pub delivered: AtomicUsize,
    pub failed: AtomicUsize,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}
