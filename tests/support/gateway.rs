//! The gateway tests' pieces: a gateway over a broker ([`Stack`]), a reader of a topic,
//! Kafka's partitioner, and a small HTTP client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tickflow::gateway::{Gateway, GatewayConfig};

use super::kafka::Broker;
use super::wait_for;

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub key: Option<String>,
    pub payload: String,
}

/// Reads every record of `topic` (partitions 0..`partitions`) until `expected` were read
/// and then nothing more arrives for a short while (to catch duplicates), at most `limit`.
pub fn read_topic(brokers: &str, topic: &str, partitions: i32, expected: usize, limit: Duration) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "tickflow-test-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let start = Instant::now();
    let mut quiet_since: Option<Instant> = None;
    while start.elapsed() < limit {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                out.push(Record {
                    partition: m.partition(),
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    payload: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                });
                quiet_since = None;
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {
                if out.len() >= expected {
                    let q = *quiet_since.get_or_insert_with(Instant::now);
                    if q.elapsed() > Duration::from_millis(500) {
                        break;
                    }
                }
            }
        }
    }
    out
}

/// Kafka's murmur2 partitioner (the Java client's default, librdkafka's `murmur2_random`
/// for keyed records).
pub fn murmur2_partition(key: &[u8], partitions: i32) -> i32 {
    let seed: u32 = 0x9747_b28c;
    let m: u32 = 0x5bd1_e995;
    let r = 24;
    let len = key.len();
    let mut h: u32 = seed ^ (len as u32);
    let mut chunks = key.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(m);
        k ^= k >> r;
        k = k.wrapping_mul(m);
        h = h.wrapping_mul(m);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(m);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(m);
    h ^= h >> 15;
    ((h & 0x7fff_ffff) % partitions as u32) as i32
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(60))).build(),
    )
}

/// POSTs `body` to `http://addr{path}` with the given headers.
pub fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut req = agent().post(&format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.send(body).expect("HTTP request");
    answer(&mut resp)
}

pub fn get(addr: SocketAddr, path: &str) -> Answer {
    let mut resp = agent().get(&format!("http://{addr}{path}")).call().expect("HTTP request");
    answer(&mut resp)
}

fn answer(resp: &mut ureq::http::Response<ureq::Body>) -> Answer {
    let status = resp.status().as_u16();
    let retry_after = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    let body = resp.body_mut().with_config().limit(64 << 20).read_to_string().unwrap();
    Answer { status, retry_after, body }
}

/// A gateway config for tests: port 0, the given brokers, short timeouts.
pub fn test_config(brokers: &str) -> GatewayConfig {
    GatewayConfig {
        listen: "127.0.0.1:0".into(),
        brokers: brokers.into(),
        request_timeout: "5s".into(),
        probe_interval: "200ms".into(),
        shutdown_grace: "5s".into(),
        linger: "1ms".into(),
        ..GatewayConfig::default()
    }
}

/// A broker with `bars` (`partitions`) and `bars.dlq` (1 partition), and a gateway in
/// front of it that reports ready.
pub struct Stack {
    pub tansu: Broker,
    pub gateway: Gateway,
}

impl Stack {
    pub fn start(partitions: u32, tweak: impl FnOnce(&mut GatewayConfig)) -> Stack {
        let tansu = Broker::start();
        tansu.create_topic("bars", partitions);
        tansu.create_topic("bars.dlq", 1);
        let mut cfg = test_config(&tansu.brokers());
        tweak(&mut cfg);
        let gateway = Gateway::start(&cfg).unwrap();
        let addr = gateway.local_addr();
        wait_for(Duration::from_secs(30), "gateway /ready", || (get(addr, "/ready").status == 200).then_some(()));
        Stack { tansu, gateway }
    }

    pub fn addr(&self) -> SocketAddr {
        self.gateway.local_addr()
    }
}

/// Sends `head` (request line and headers, ending in a blank line) and then `body` on a
/// plain TCP connection, ignoring write errors (the server may answer and close before
/// the body is through), and returns the status and body of the answer.
pub fn raw_http(addr: SocketAddr, head: &str, body: Vec<u8>) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let head = head.to_string();
    let w = std::thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes());
        let _ = writer.write_all(&body);
    });
    let text = read_answer(&mut stream);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = w.join();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let retry_after =
        head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("retry-after:").map(|v| v.trim().to_string()));
    Answer { status, retry_after, body: body.to_string() }
}

/// Reads one HTTP answer from `stream`: until its headers and declared body are in, or the
/// server closes (or the stream's read timeout passes).
pub fn read_answer(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        let text = String::from_utf8_lossy(&buf);
        if let Some((h, b)) = text.split_once("\r\n\r\n") {
            let len = h.lines().find_map(|l| {
                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap())
            });
            if len.is_some_and(|n| b.len() >= n) {
                break;
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}
