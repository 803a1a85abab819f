//! The QuestDB sink's benchmark tools (used by `scripts/bench.sh questdb`; not part of the
//! product).
//!
//! - `receive ADDR OUT.json [CAPTURE]`: an ILP-over-HTTP receiver that answers like QuestDB
//!   (`POST /write` → 204, `GET /exec` → 200 with a JSON body, anything else 404, HTTP/1.1
//!   keep-alive, `Content-Length` bodies), counting requests, rows (lines) and bytes, and the
//!   connections they came on. With CAPTURE every `/write` body is appended there (a
//!   little-endian u32 length, then the body) for `blast`. Stops when standard input closes;
//!   then writes the counts to OUT.json.
//! - `blast ADDR CAPTURE CONNECTIONS`: sends the captured bodies to ADDR as fast as it can
//!   over CONNECTIONS keep-alive connections (body `i` on connection `i % CONNECTIONS`), each
//!   waiting for its answer like a QuestDB client; prints `{"rows","bytes","secs"}`. Against
//!   the receiver this is the ceiling the sink is measured against: the same rows, the same
//!   requests, no engine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, bail};

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    rows: AtomicU64,
    bytes: AtomicU64,
    connections: AtomicU64,
    /// First and last `/write` arrival, µs since the receiver started (0: none).
    first_us: AtomicU64,
    last_us: AtomicU64,
}

/// Reads one request head; `None` at a clean end of the connection. Returns (target, length).
fn read_head(r: &mut BufReader<TcpStream>, line: &mut Vec<u8>) -> anyhow::Result<Option<(String, usize)>> {
    line.clear();
    if r.read_until(b'\n', line)? == 0 {
        return Ok(None);
    }
    let head = String::from_utf8_lossy(line);
    let target = head.split(' ').nth(1).unwrap_or("").to_string();
    let mut len = 0usize;
    loop {
        line.clear();
        if r.read_until(b'\n', line)? == 0 {
            bail!("connection closed inside a request head");
        }
        let h = std::str::from_utf8(line).unwrap_or("").trim_end();
        if h.is_empty() {
            return Ok(Some((target, len)));
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().context("Content-Length")?;
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                bail!("chunked bodies are not supported by this receiver");
            }
        }
    }
}

fn serve(
    conn: TcpStream,
    counts: &Counts,
    started: Instant,
    capture: Option<&Mutex<std::io::BufWriter<std::fs::File>>>,
) -> anyhow::Result<()> {
    conn.set_nodelay(true)?;
    let mut r = BufReader::with_capacity(1 << 20, conn.try_clone()?);
    let mut w = conn;
    let (mut line, mut body) = (Vec::new(), Vec::new());
    while let Some((target, len)) = read_head(&mut r, &mut line)? {
        body.resize(len, 0);
        r.read_exact(&mut body)?;
        if target.starts_with("/write") {
            let rows = body.iter().filter(|&&c| c == b'\n').count() as u64;
            counts.requests.fetch_add(1, Relaxed);
            counts.rows.fetch_add(rows, Relaxed);
            counts.bytes.fetch_add(len as u64, Relaxed);
            let now = started.elapsed().as_micros() as u64 + 1;
            let _ = counts.first_us.compare_exchange(0, now, Relaxed, Relaxed);
            counts.last_us.fetch_max(now, Relaxed);
            if let Some(c) = capture {
                let mut c = c.lock().map_err(|_| anyhow::anyhow!("capture lock poisoned"))?;
                c.write_all(&(len as u32).to_le_bytes())?;
                c.write_all(&body)?;
            }
            w.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")?;
        } else if target.starts_with("/exec") {
            w.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"ddl\":\"OK\"}",
            )?;
        } else {
            w.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")?;
        }
    }
    Ok(())
}

fn receive(args: &[String]) -> anyhow::Result<()> {
    let [addr, out, rest @ ..] = args else { bail!("usage: tickflow-ilp-bench receive ADDR OUT.json [CAPTURE]") };
    let listener = TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    let capture = match rest.first() {
        Some(p) => Some(Arc::new(Mutex::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(p).with_context(|| format!("creating {p}"))?,
        )))),
        None => None,
    };
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    {
        let (counts, capture) = (counts.clone(), capture.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                counts.connections.fetch_add(1, Relaxed);
                let (counts, capture) = (counts.clone(), capture.clone());
                std::thread::spawn(move || {
                    if let Err(e) = serve(conn, &counts, started, capture.as_deref()) {
                        eprintln!("receiver: connection: {e:#}");
                    }
                });
            }
        });
    }
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    if let Some(c) = capture {
        c.lock().map_err(|_| anyhow::anyhow!("capture lock poisoned"))?.flush()?;
    }
    let (first, last) = (counts.first_us.load(Relaxed), counts.last_us.load(Relaxed));
    let text = format!(
        "{{\"requests\":{},\"rows\":{},\"bytes\":{},\"connections\":{},\"write_secs\":{:.3}}}",
        counts.requests.load(Relaxed),
        counts.rows.load(Relaxed),
        counts.bytes.load(Relaxed),
        counts.connections.load(Relaxed),
        last.saturating_sub(first) as f64 / 1e6
    );
    std::fs::write(out, &text).with_context(|| format!("writing {out}"))?;
    eprintln!("receiver: {text}");
    Ok(())
}

fn blast(args: &[String]) -> anyhow::Result<()> {
    let [addr, capture, conns] = args else { bail!("usage: tickflow-ilp-bench blast ADDR CAPTURE CONNECTIONS") };
    let conns: usize = conns.parse().context("CONNECTIONS")?;
    let data = std::fs::read(capture).with_context(|| format!("reading {capture}"))?;
    let mut bodies: Vec<&[u8]> = Vec::new();
    let mut at = 0;
    while at + 4 <= data.len() {
        let len = u32::from_le_bytes(data[at..at + 4].try_into()?) as usize;
        bodies.push(data.get(at + 4..at + 4 + len).context("truncated capture")?);
        at += 4 + len;
    }
    let rows: u64 = bodies.iter().map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64).sum();
    let bytes: u64 = bodies.iter().map(|b| b.len() as u64).sum();
    let started = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let mut joins = Vec::new();
        for c in 0..conns.max(1) {
            let mine: Vec<&[u8]> = bodies.iter().skip(c).step_by(conns.max(1)).copied().collect();
            joins.push(s.spawn(move || -> anyhow::Result<()> {
                let stream = TcpStream::connect(addr)?;
                stream.set_nodelay(true)?;
                let mut r = BufReader::new(stream.try_clone()?);
                let mut w = stream;
                let mut line = Vec::new();
                for body in mine {
                    let head = format!(
                        "POST /write?precision=n HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    w.write_all(head.as_bytes())?;
                    w.write_all(body)?;
                    // The answer: status line, headers up to the blank line (no body on 204).
                    line.clear();
                    r.read_until(b'\n', &mut line)?;
                    if !line.starts_with(b"HTTP/1.1 2") {
                        bail!("answer: {}", String::from_utf8_lossy(&line));
                    }
                    loop {
                        line.clear();
                        if r.read_until(b'\n', &mut line)? == 0 || line == b"\r\n" {
                            break;
                        }
                    }
                }
                Ok(())
            }));
        }
        for j in joins {
            j.join().map_err(|_| anyhow::anyhow!("a blast thread panicked"))??;
        }
        Ok(())
    })?;
    let secs = started.elapsed().as_secs_f64();
    println!("{{\"rows\":{rows},\"bytes\":{bytes},\"requests\":{},\"secs\":{secs:.3}}}", bodies.len());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("receive") => receive(&args[1..]),
        Some("blast") => blast(&args[1..]),
        _ => bail!("usage: tickflow-ilp-bench receive ADDR OUT.json [CAPTURE] | blast ADDR CAPTURE CONNECTIONS"),
    }
}
