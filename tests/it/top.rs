//! `tickflow top` against a real 2-process cluster (2 × 2 workers, built-in market at a fixed
//! rate) whose status server requires a read token: the snapshot (`--once`, stdout not a
//! terminal) lists every process and every worker with a positive rate, taking the token from
//! the config; explicit `--url`s without a token are refused with a message that says what to
//! set.

use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::support::cluster::{free_port_pair, process_list, spawn_cluster};

const TOKEN: &str = "top-test-read-token-0123456789";

/// Kills the cluster when the test ends, passing or not.
struct Cluster(Vec<Child>);

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Whether `GET /ready` on `port` answers 200.
fn ready(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if std::io::Write::write_all(&mut s, b"GET /ready HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.0 200")
}

fn top(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tickflow"))
        .arg("top")
        .args(args)
        .env_remove("TICKFLOW_STATUS_READ_TOKEN")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn top_once_lists_every_process_and_worker_with_a_rate() {
    let _heavy = crate::support::heavy();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port_pair();
    let config = dir.path().join("cluster.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[cluster]
workers = 2
processes = [{}]

[status]
listen = "127.0.0.1:{port}"
read-token = "{TOKEN}"

[source]
kind = "generator"

[source.generator]
symbols = 20
rate = 400

[windows]
timeframes = ["1m"]

[checkpoint]
enabled = false

[sinks.file]
dir = "{}"
"#,
            process_list(2),
            dir.path().join("out").display()
        ),
    )
    .unwrap();
    let _cluster = Cluster(spawn_cluster(&config, 2));
    let started = Instant::now();
    while !(ready(port) && ready(port + 1)) {
        assert!(started.elapsed() < Duration::from_secs(60), "the cluster did not become ready in 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }

    let (ok, stdout, stderr) = top(&["--config", config.to_str().unwrap(), "--once", "--interval", "1s"]);
    assert!(ok, "top --once failed:\n{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("tickflow top · 2 process(es) · 4 worker(s) · "), "title: {}", lines[0]);
    assert!(lines[1].starts_with("PROCESS WORKER STATE"), "header: {}", lines[1]);
    let rows: Vec<Vec<&str>> = lines[2..].iter().map(|l| l.split_whitespace().collect()).collect();
    let rate = |row: &[&str]| row[3].parse::<f64>().unwrap_or_else(|_| panic!("no rate in {row:?}\n{stdout}"));
    for (process, workers) in [("0", ["0", "1"]), ("1", ["2", "3"])] {
        let total = rows
            .iter()
            .find(|r| r[0] == process && r[1] == "all")
            .unwrap_or_else(|| panic!("no row for process {process}:\n{stdout}"));
        assert_eq!(total[2], "ready", "{stdout}");
        assert!(rate(total) > 0.0, "process {process} shows no input rate:\n{stdout}");
        assert!(total.last().unwrap().ends_with(&format!(":{}/status", port + process.parse::<u16>().unwrap())));
        for w in workers {
            let row = rows
                .iter()
                .find(|r| r[0] == process && r[1] == w)
                .unwrap_or_else(|| panic!("no row for worker {w} of process {process}:\n{stdout}"));
            assert_eq!(row[2], "running", "{stdout}");
            assert!(rate(row) > 0.0, "worker {w} shows no input rate:\n{stdout}");
            assert!(row[4].parse::<f64>().is_ok(), "worker {w} shows no output rate:\n{stdout}");
        }
    }

    // The same endpoints by URL, but no config and so no token: refused, and top says why.
    let urls = [format!("127.0.0.1:{port}"), format!("http://127.0.0.1:{}/status", port + 1)];
    let (ok, stdout, stderr) = top(&["--url", &urls[0], "--url", &urls[1], "--once", "--interval", "200ms"]);
    assert!(!ok, "top without the token should fail:\n{stdout}");
    assert!(stderr.contains("2 of 2 process(es) could not be read"), "{stderr}");
    assert!(
        stdout.contains("401 unauthorized: the status server needs a read token; set TICKFLOW_STATUS_READ_TOKEN"),
        "{stdout}"
    );
}
