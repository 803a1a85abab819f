//! The gateway under faults, against a real Kafka-protocol broker (Tansu, started here):
//! the broker restarted under load (every acknowledged record is on the topic, new requests
//! succeed again, 503s name exactly the records not acknowledged), many clients holding big
//! bodies (memory stays bounded, the excess gets 503), and more half-sent requests than the
//! open-file limit allows (no fd exhaustion, the gateway keeps answering).
//!
//! The last two run the real `tickflow gateway` binary, to read its memory from /proc and to
//! give it its own open-file limit.

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::cluster::free_port;
use crate::support::gateway::*;
use crate::support::kafka::Broker;
use crate::support::wait_for;
use tickflow::gateway::Gateway;
use tickflow::kafka::encode_bar;
use tickflow_operators::{Bar, Symbol};

const NDJSON: (&str, &str) = ("content-type", "application/x-ndjson");

/// Ten bars no other request has (symbol by request, a timestamp per record).
fn batch(k: u64) -> Vec<Bar> {
    (0..10)
        .map(|i| {
            let sym = Symbol::new(&format!("R{}", k % 7)).unwrap();
            let p = 100.0 + (k % 50) as f64 + i as f64 / 100.0;
            Bar::new(sym, 1_700_000_000_000 + (k * 10 + i) as i64 * 1000, p, p + 1.0, p - 1.0, p, 1.0)
        })
        .collect()
}

fn encode(bars: &[Bar]) -> Vec<Vec<u8>> {
    bars.iter()
        .map(|b| {
            let mut v = Vec::new();
            encode_bar(b, &mut v);
            v
        })
        .collect()
}

/// One request of the load and how it ended.
struct Outcome {
    epoch: usize,
    lines: Vec<Vec<u8>>,
    status: u16,
    retry_after: Option<String>,
    body: serde_json::Value,
}

#[test]
fn broker_restart_under_load_loses_no_acknowledged_record_and_recovers() {
    let tansu = Broker::start();
    let port = tansu.port;
    tansu.create_topic("bars", 4);
    tansu.create_topic("bars.dlq", 1);
    let mut cfg = test_config(&tansu.brokers());
    cfg.request_timeout = "3s".into();
    let gateway = Gateway::start(&cfg).unwrap();
    let addr = gateway.local_addr();
    wait_for(Duration::from_secs(30), "gateway /ready", || (get(addr, "/ready").status == 200).then_some(()));

    // A light load: one request of ten bars every 20 ms, each remembered with the broker's
    // epoch when it started (0: first broker, 1: none, 2: second broker).
    let epoch = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let loader = {
        let (epoch, stop, outcomes) = (epoch.clone(), stop.clone(), outcomes.clone());
        std::thread::spawn(move || {
            let mut k = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let e = epoch.load(Ordering::SeqCst);
                let lines = encode(&batch(k));
                let body = lines.join(&b'\n');
                let r = post(addr, "/ingest", &[NDJSON], &body);
                let json = serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null);
                let outcome = Outcome { epoch: e, lines, status: r.status, retry_after: r.retry_after, body: json };
                outcomes.lock().unwrap().push(outcome);
                k += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.lock().unwrap().iter().filter(|o| f(o)).count();
    wait_for(Duration::from_secs(60), "five accepted requests", || (count(&|o| o.status == 202) >= 5).then_some(()));

    // Stop the broker (SIGTERM, then gone); from now on no acknowledgement can come from it.
    tansu.signal("-TERM");
    drop(tansu);
    epoch.store(1, Ordering::SeqCst);
    let down = wait_for(Duration::from_secs(60), "/ready to report the broker down", || {
        let r = get(addr, "/ready");
        (r.status == 503).then_some(r)
    });
    assert!(down.body.contains("kafka"), "{}", down.body);
    wait_for(Duration::from_secs(60), "requests during the outage", || (count(&|o| o.epoch == 1) >= 3).then_some(()));

    // The same port, the topics recreated: new requests must be accepted again.
    let tansu = Broker::start_on(port);
    tansu.create_topic("bars", 4);
    tansu.create_topic("bars.dlq", 1);
    epoch.store(2, Ordering::SeqCst);
    wait_for(Duration::from_secs(120), "a 202 from the restarted broker", || {
        (count(&|o| o.epoch == 2 && o.status == 202) >= 1).then_some(())
    });
    wait_for(Duration::from_secs(60), "five more 202s", || {
        (count(&|o| o.epoch == 2 && o.status == 202) >= 5).then_some(())
    });
    assert_eq!(get(addr, "/ready").status, 200);
    stop.store(true, Ordering::SeqCst);
    loader.join().unwrap();

    // Every record acknowledged since the first broker went away is on the new topic: whole
    // requests answered 2xx, and the records a 503 did not list as unacknowledged.
    let outcomes = outcomes.lock().unwrap();
    let mut summary = std::collections::BTreeMap::new();
    for o in outcomes.iter() {
        *summary.entry((o.epoch, o.status, o.body.get("unacknowledged").is_some())).or_insert(0) += 1;
    }
    eprintln!("requests by (epoch, status, lists unacknowledged): {summary:?}");
    let mut expected: BTreeSet<Vec<u8>> = BTreeSet::new();
    for o in outcomes.iter().filter(|o| o.epoch >= 1) {
        match o.status {
            202 => expected.extend(o.lines.iter().cloned()),
            503 => {
                assert_eq!(o.retry_after.as_deref(), Some("1"), "503 without Retry-After: {}", o.body);
                assert_eq!(o.body["retry_after_s"], 1, "{}", o.body);
                if let Some(missing) = o.body.get("unacknowledged") {
                    let missing: BTreeSet<u64> =
                        missing.as_array().unwrap().iter().map(|i| i.as_u64().unwrap()).collect();
                    let acked = o.body["acknowledged"].as_u64().unwrap();
                    assert_eq!(acked as usize + missing.len(), o.lines.len(), "{}", o.body);
                    assert!(missing.iter().all(|&i| i < 10), "indices are record indices: {}", o.body);
                    expected.extend(
                        o.lines
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| !missing.contains(&(*i as u64)))
                            .map(|(_, l)| l.clone()),
                    );
                } else {
                    let e = o.body["error"].as_str().unwrap();
                    assert!(e.starts_with("Kafka broker unreachable"), "a 503 that is neither: {}", o.body);
                }
            }
            s => panic!("unexpected status {s}: {}", o.body),
        }
    }
    let records = read_topic(&tansu.brokers(), "bars", 4, expected.len(), Duration::from_secs(60));
    let on_topic: BTreeSet<Vec<u8>> = records.iter().map(|r| r.payload.clone().into_bytes()).collect();
    let lost: Vec<String> = expected.difference(&on_topic).map(|l| String::from_utf8_lossy(l).into_owned()).collect();
    assert!(lost.is_empty(), "{} acknowledged records are not on the topic, e.g. {:?}", lost.len(), lost.first());
    assert!(outcomes.iter().any(|o| o.epoch == 1 && o.status == 503), "the outage was seen as 503s");
    drop(outcomes);
    gateway.shutdown().unwrap();
}

/// A spawned `tickflow gateway` (killed on drop) with its log.
struct Process {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Process {
    /// Starts the binary with `[gateway]` = `section` (listen and brokers added) under
    /// `ulimit -n fds` when given.
    fn start(brokers: &str, section: &str, fds: Option<u32>) -> Process {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("gateway.toml");
        std::fs::write(
            &config,
            format!("[gateway]\nlisten = \"127.0.0.1:{port}\"\nbrokers = \"{brokers}\"\nprobe-interval = \"200ms\"\n{section}"),
        )
        .unwrap();
        let log = dir.path().join("gateway.log");
        let out = std::fs::File::create(&log).unwrap();
        let bin = env!("CARGO_BIN_EXE_tickflow");
        let cmd = format!(
            "{}exec '{bin}' gateway --config '{}'",
            fds.map(|n| format!("ulimit -n {n} && ")).unwrap_or_default(),
            config.display()
        );
        let child = Command::new("sh")
            .args(["-c", &cmd])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let p = Process { child, addr, log, _dir: dir };
        wait_for(Duration::from_secs(60), "the gateway process to be ready", || {
            TcpStream::connect(addr).ok().and_then(|_| (get(addr, "/ready").status == 200).then_some(()))
        });
        p
    }

    fn status_field(&self, name: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = text.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const MIB: u64 = 1 << 20;

#[test]
fn many_held_bodies_keep_memory_bounded_and_the_excess_gets_503() {
    let tansu = Broker::start();
    tansu.create_topic("bars", 1);
    tansu.create_topic("bars.dlq", 1);
    let budget = 64 * MIB;
    let section = format!(
        "max-body-bytes = 16777216\n[gateway.limits]\nmax-buffered-body-bytes = {budget}\nmax-connections = 200\n\
         body-read-timeout = \"300s\"\nheader-read-timeout = \"120s\"\n"
    );
    let gw = Process::start(&tansu.brokers(), &section, None);
    let baseline = gw.status_field("VmRSS:");

    // 60 clients, each sending a 15 MiB body but its last byte (the attack).
    let clients = 60usize;
    let size = 15 * MIB as usize;
    let body = Arc::new(vec![b'\n'; size]);
    let release = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let answers: Arc<Mutex<Vec<(u16, String)>>> = Arc::default();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (body, release, written, answers, addr) =
                (body.clone(), release.clone(), written.clone(), answers.clone(), gw.addr);
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                let head = format!(
                    "POST /ingest HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-ndjson\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                let mut w = s.try_clone().unwrap();
                let writer = std::thread::spawn(move || {
                    let ok = w.write_all(head.as_bytes()).and_then(|()| w.write_all(&body[..body.len() - 1])).is_ok();
                    written.fetch_add(1, Ordering::SeqCst);
                    (ok, w)
                });
                s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let mut writer = Some(writer);
                let mut sent_last = false;
                let deadline = Instant::now() + Duration::from_secs(300);
                while Instant::now() < deadline {
                    match s.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => {
                            buf.extend_from_slice(&chunk[..n]);
                            if String::from_utf8_lossy(&buf).contains("\r\n\r\n{") && buf.ends_with(b"}") {
                                break;
                            }
                        }
                        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                            if release.load(Ordering::SeqCst) && !sent_last {
                                let (_, mut w) = writer.take().unwrap().join().unwrap();
                                w.write_all(b"\n").unwrap();
                                sent_last = true;
                            }
                        }
                        Err(_) => break,
                    }
                }
                let text = String::from_utf8_lossy(&buf).into_owned();
                let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                answers.lock().unwrap().push((status, text));
                if let Some(w) = writer {
                    let _ = w.join();
                }
            })
        })
        .collect();

    let held = 4; // 64 MiB of budget holds four 15 MiB bodies
    let got = |code: u16| answers.lock().unwrap().iter().filter(|(s, _)| *s == code).count();
    wait_for(Duration::from_secs(300), "the bodies beyond the budget to be refused", || {
        (got(503) == clients - held).then_some(())
    });
    // Wait until every byte the clients sent is in: the held bodies are complete but the
    // last byte, the refused ones drained.
    wait_for(Duration::from_secs(300), "every client to have written its body", || {
        (written.load(Ordering::SeqCst) == clients).then_some(())
    });
    let rss = gw.status_field("VmRSS:");
    let peak = gw.status_field("VmHWM:");
    eprintln!(
        "held bodies: baseline VmRSS {} MiB, now {} MiB, peak VmHWM {} MiB, budget {} MiB",
        baseline / MIB,
        rss / MIB,
        peak / MIB,
        budget / MIB
    );
    // The documented bound: baseline + 2 x the budget (the bodies plus allocator slack).
    assert!(
        peak < baseline + 2 * budget,
        "peak RSS {} MiB over the bound ({} MiB baseline)",
        peak / MIB,
        baseline / MIB
    );

    release.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let answers = answers.lock().unwrap();
    for (status, text) in answers.iter().filter(|(s, _)| *s == 503) {
        assert_eq!(*status, 503);
        assert!(text.to_ascii_lowercase().contains("retry-after: 1"), "{text}");
        assert!(
            text.contains("server busy: 15728640 more body bytes do not fit in the 67108864 bytes buffered for all requests at once"),
            "{text}"
        );
    }
    // The held ones were served once complete (a body of newlines has no records: 400).
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 400).count(),
        held,
        "{:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
}

#[test]
fn more_half_sent_requests_than_file_descriptors_do_not_exhaust_them() {
    let tansu = Broker::start();
    tansu.create_topic("bars", 1);
    tansu.create_topic("bars.dlq", 1);
    let section = "[gateway.limits]\nmax-connections = 1000\nheader-read-timeout = \"2s\"\n";
    let mut gw = Process::start(&tansu.brokers(), section, Some(256));
    assert!(
        gw.log().contains("gateway.limits.max-connections is above what the open-file limit allows; lowered"),
        "{}",
        gw.log()
    );

    // 300 requests whose headers never end.
    let mut conns: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut s = TcpStream::connect(gw.addr).unwrap();
            s.write_all(b"POST /ingest HTTP/1.1\r\nhost: x\r\n").unwrap();
            s
        })
        .collect();
    // Each is either held (until the header timeout closes it) or answered 503 at once.
    let mut refused = 0;
    let mut cut = 0;
    for s in &mut conns {
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        if text.starts_with("HTTP/1.1 503") {
            assert!(text.contains("retry-after: 1"), "{text}");
            refused += 1;
        } else {
            cut += 1;
        }
    }
    eprintln!(
        "300 half-sent requests under ulimit -n 256: {refused} answered 503 at once, {cut} held until the header timeout"
    );
    assert!(refused >= 300 - 128, "only {refused} of the connections over the cap were answered 503");
    assert!(cut <= 128, "{cut} connections were held, more than the cap");
    drop(conns);
    // Afterwards the gateway serves as before.
    wait_for(Duration::from_secs(60), "/health after the storm", || {
        (get(gw.addr, "/health").status == 200).then_some(())
    });
    assert!(gw.alive());
    assert!(!gw.log().contains("Too many open files"), "{}", gw.log());
}

/// An NDJSON body of `lines` bars of client `k`, each line padded to ~`line_bytes` with an
/// ignored field (big bodies, few records: the broker sees little of it).
fn padded_body(k: usize, lines: usize, line_bytes: usize) -> Vec<u8> {
    let pad = "x".repeat(line_bytes.saturating_sub(120));
    let mut body = Vec::with_capacity(lines * line_bytes);
    for i in 0..lines {
        let ts = 1_700_000_000_000i64 + (k * lines + i) as i64 * 1000;
        body.extend_from_slice(
            format!(
                "{{\"symbol\":\"BIG{k}\",\"ts\":{ts},\"open\":1,\"high\":1,\"low\":1,\"close\":1,\"volume\":1,\"note\":\"{pad}\"}}\n"
            )
            .as_bytes(),
        );
    }
    body
}

/// `body` in the chunked transfer coding, 64 KiB a chunk.
fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 8192 + 16);
    for c in body.chunks(64 << 10) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn metric(addr: SocketAddr, name: &str) -> u64 {
    let text = get(addr, "/metrics").body;
    let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in /metrics"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn many_concurrent_large_bodies_get_503_at_the_request_cap_and_good_requests_succeed() {
    let tansu = Broker::start();
    tansu.create_topic("bars", 1);
    tansu.create_topic("bars.dlq", 1);
    let budget = 32 * MIB;
    let slots = 3;
    let section = format!(
        "max-concurrent-requests = {slots}\n[gateway.limits]\nmax-buffered-body-bytes = {budget}\n\
         max-connections = 200\nbody-read-timeout = \"300s\"\nheader-read-timeout = \"120s\"\n"
    );
    let gw = Process::start(&tansu.brokers(), &section, None);
    let addr = gw.addr;
    let baseline = gw.status_field("VmRSS:");
    let (clients, lines) = (64usize, 64usize);
    let bodies: Vec<Arc<Vec<u8>>> = (0..clients).map(|k| Arc::new(padded_body(k, lines, 128 << 10))).collect();
    assert!(bodies.iter().all(|b| b.len() > 8_000_000));
    let head = |len: usize| {
        format!(
            "POST /ingest HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-ndjson\r\ncontent-length: {len}\r\n\r\n"
        )
    };

    // The first `slots` clients hold every request slot: all of their body but the last byte.
    let mut holders: Vec<TcpStream> = (0..slots)
        .map(|k| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(head(bodies[k].len()).as_bytes()).unwrap();
            s.write_all(&bodies[k][..bodies[k].len() - 1]).unwrap();
            s
        })
        .collect();
    wait_for(Duration::from_secs(120), "the holders to take every request slot", || {
        (metric(addr, "tickflow_gateway_requests_in_progress ") == slots as u64).then_some(())
    });

    // Every other client, all at once, is refused at once: before its body is read.
    let refused: Vec<_> = (slots..clients)
        .map(|k| {
            let (body, head) = (Arc::clone(&bodies[k]), head(bodies[k].len()));
            std::thread::spawn(move || raw_http(addr, &head, body.to_vec()))
        })
        .collect();
    for t in refused {
        let a = t.join().unwrap();
        assert_eq!(a.status, 503, "{}", a.body);
        assert_eq!(a.retry_after.as_deref(), Some("1"), "{}", a.body);
        assert!(a.body.contains("all 3 request slots (gateway.max-concurrent-requests) are in use"), "{}", a.body);
    }
    assert_eq!(
        metric(addr, "tickflow_gateway_requests_refused_total{limit=\"concurrent_requests\"}"),
        (clients - slots) as u64
    );

    // The holders finish their bodies and are served.
    for s in &mut holders {
        s.write_all(b"\n").unwrap();
    }
    for mut s in holders {
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut text = Vec::new();
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&text).contains("}") {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => text.extend_from_slice(&chunk[..n]),
            }
        }
        let text = String::from_utf8_lossy(&text);
        assert!(text.starts_with("HTTP/1.1 202"), "{text}");
        assert!(text.contains(&format!("\"accepted\":{lines}")), "{text}");
    }

    // The refused clients retry, all at once, half of them chunked (the budget then grows
    // with the body), honouring Retry-After, until served.
    let retries: Vec<_> = (slots..clients)
        .map(|k| {
            let body = Arc::clone(&bodies[k]);
            std::thread::spawn(move || {
                let (head, payload) = if k % 2 == 0 {
                    (head(body.len()), body.to_vec())
                } else {
                    let h = "POST /ingest HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-ndjson\r\n\
                             transfer-encoding: chunked\r\n\r\n";
                    (h.to_string(), chunked(&body))
                };
                for _ in 0..600 {
                    let a = raw_http(addr, &head, payload.clone());
                    match a.status {
                        202 => return a,
                        503 => {
                            assert!(a.body.contains("server busy"), "a 503 not from a limit: {}", a.body);
                            std::thread::sleep(Duration::from_secs(1));
                        }
                        _ => return a,
                    }
                }
                panic!("client {k} was never served");
            })
        })
        .collect();
    for t in retries {
        let a = t.join().unwrap();
        assert_eq!(a.status, 202, "{}", a.body);
        assert_eq!(a.json()["accepted"], lines as u64);
    }
    let peak = gw.status_field("VmHWM:");
    eprintln!(
        "64 x 8 MiB bodies, {slots} slots, budget {} MiB: baseline VmRSS {} MiB, peak VmHWM {} MiB; refused: {} at the \
         request cap, {} by the body budget",
        budget / MIB,
        baseline / MIB,
        peak / MIB,
        metric(addr, "tickflow_gateway_requests_refused_total{limit=\"concurrent_requests\"}"),
        metric(addr, "tickflow_gateway_requests_refused_total{limit=\"body_budget\"}"),
    );
    // The documented bound (SECURITY.md): baseline + 64 KiB per allowed connection (200 here:
    // their read buffers) + 2 x the budget.
    assert!(
        peak < baseline + 200 * 64 * 1024 + 2 * budget,
        "peak RSS {} MiB over the bound ({} MiB baseline)",
        peak / MIB,
        baseline / MIB
    );
    let records = read_topic(&tansu.brokers(), "bars", 1, clients * lines, Duration::from_secs(120));
    assert_eq!(records.len(), clients * lines, "every served record is on the topic");
}
