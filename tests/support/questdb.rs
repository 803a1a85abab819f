//! A fake QuestDB for tests: a std `TcpListener` on 127.0.0.1:0 speaking just enough HTTP/1.1
//! (Content-Length, chunked, keep-alive) for `/write` and `/exec`, with scriptable answers. By
//! default it behaves like QuestDB: a request is accepted whole (204), or rejected whole (400 with
//! QuestDB's JSON naming the line) when a line holds `POISON`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender};

/// What the fake does with the next `/write` request.
pub enum Step {
    /// Answer with this status (and a small body), accepting nothing.
    Status(u16),
    /// Read the request, then close the connection without answering.
    Drop,
    /// Signal `arrived`, wait for `release`, then behave normally.
    Stall { arrived: Sender<()>, release: Receiver<()> },
}

#[derive(Default)]
pub struct State {
    /// Lines accepted by `/write`, in order.
    pub accepted: Vec<String>,
    /// Decoded `/exec` queries.
    pub ddl: Vec<String>,
    /// `/write` requests seen.
    pub writes: usize,
    /// Authorization headers of `/write` requests.
    pub auth: Vec<Option<String>>,
    /// The client address (one per connection) of each `/write` request, with its lines.
    pub write_peers: Vec<(SocketAddr, Vec<String>)>,
    pub script: VecDeque<Step>,
}

#[derive(Clone)]
pub struct Fake {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
}

impl Fake {
    pub fn start(script: Vec<Step>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let state = Arc::new(Mutex::new(State { script: script.into(), ..State::default() }));
        let fake = Fake { addr: listener.local_addr().unwrap(), state };
        let f = fake.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let f = f.clone();
                std::thread::spawn(move || f.serve(conn.unwrap()));
            }
        });
        fake
    }

    pub fn accepted(&self) -> Vec<String> {
        self.state.lock().unwrap().accepted.clone()
    }

    fn serve(&self, conn: TcpStream) {
        let peer = conn.peer_addr().unwrap();
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut out = conn;
        loop {
            // Request line and headers.
            let mut head = String::new();
            if reader.read_line(&mut head).unwrap_or(0) == 0 {
                return;
            }
            let target = head.split(' ').nth(1).unwrap_or("").to_string();
            let (mut len, mut chunked, mut auth) = (0usize, false, None);
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (k, v) = h.split_once(':').unwrap();
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap(),
                    "transfer-encoding" => chunked = v.trim().eq_ignore_ascii_case("chunked"),
                    "authorization" => auth = Some(v.trim().to_string()),
                    _ => {}
                }
            }
            let body = if chunked { read_chunked(&mut reader) } else { read_exact(&mut reader, len) };
            let (status, reply) = if let Some(q) = target.strip_prefix("/exec?query=") {
                self.state.lock().unwrap().ddl.push(percent_decode(q));
                (200, r#"{"ddl":"OK"}"#.to_string())
            } else if target.starts_with("/write") {
                let step = {
                    let mut s = self.state.lock().unwrap();
                    s.writes += 1;
                    s.auth.push(auth);
                    let lines = String::from_utf8_lossy(&body).lines().map(str::to_string).collect();
                    s.write_peers.push((peer, lines));
                    s.script.pop_front()
                };
                match step {
                    Some(Step::Status(code)) => (code, format!(r#"{{"code":"status {code}"}}"#)),
                    Some(Step::Drop) => return,
                    Some(Step::Stall { arrived, release }) => {
                        arrived.send(()).unwrap();
                        release.recv().unwrap();
                        self.ingest(&body)
                    }
                    None => self.ingest(&body),
                }
            } else {
                (404, "{}".to_string())
            };
            let reason = match status {
                200 => "OK",
                204 => "No Content",
                400 => "Bad Request",
                _ => "Whatever",
            };
            let resp = if status == 204 {
                "HTTP/1.1 204 No Content\r\n\r\n".to_string()
            } else {
                format!(
                    "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
                    reply.len()
                )
            };
            if out.write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
    }

    /// QuestDB's behaviour: all or nothing; the first poisoned line is named (1-based).
    fn ingest(&self, body: &[u8]) -> (u16, String) {
        let text = std::str::from_utf8(body).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'), "lines must be newline-terminated");
        let lines: Vec<&str> = text.lines().collect();
        if let Some(i) = lines.iter().position(|l| l.contains("POISON")) {
            let message = format!(
                "failed to parse line protocol:errors encountered on line(s):\nerror in line {}: POISON marker found",
                i + 1
            );
            let json = serde_json::json!({"code": "invalid", "message": message, "line": i + 1, "errorId": "abc-1"});
            return (400, json.to_string());
        }
        self.state.lock().unwrap().accepted.extend(lines.iter().map(|l| l.to_string()));
        (204, String::new())
    }
}

fn read_exact(r: &mut impl Read, n: usize) -> Vec<u8> {
    let mut b = vec![0; n];
    r.read_exact(&mut b).unwrap();
    b
}

fn read_chunked(r: &mut BufReader<TcpStream>) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        r.read_line(&mut size).unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        body.extend(read_exact(r, n));
        read_exact(r, 2);
        if n == 0 {
            return body;
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}
