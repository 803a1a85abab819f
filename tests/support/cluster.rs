//! Running real `tickflow run` processes from tests, and reading what they wrote.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command};

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Two consecutive free loopback ports; returns the first. A cluster's process `p` serves its
/// status on `listen` + `p`, so a test that talks to process 1 needs both free.
pub fn free_port_pair() -> u16 {
    loop {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// `n` fresh `"127.0.0.1:PORT"` entries for `cluster.processes`, joined with ", ".
pub fn process_list(n: usize) -> String {
    (0..n).map(|_| format!("\"127.0.0.1:{}\"", free_port())).collect::<Vec<_>>().join(", ")
}

/// Starts every process of the cluster described by `config` (`n` processes), in the
/// config's directory (so relative paths such as the default `run/checkpoints` stay there).
pub fn spawn_cluster(config: &Path, n: usize) -> Vec<Child> {
    (0..n)
        .map(|p| {
            Command::new(env!("CARGO_BIN_EXE_tickflow"))
                .current_dir(config.parent().unwrap())
                .args(["run", "--config", config.to_str().unwrap(), "--process", &p.to_string()])
                .env("RUST_LOG", "warn")
                .spawn()
                .unwrap()
        })
        .collect()
}

/// Waits for every process; each must exit successfully.
pub fn wait_all(children: Vec<Child>, what: &str) {
    for mut c in children {
        assert!(c.wait().unwrap().success(), "{what}: a cluster process failed");
    }
}

/// Writes `config` next to the outputs and runs the cluster to completion.
pub fn run_cluster(root: &Path, tag: &str, processes: usize, config: &str) {
    let path = root.join(format!("{tag}.toml"));
    std::fs::write(&path, config).unwrap();
    wait_all(spawn_cluster(&path, processes), tag);
}

/// Every file sink output line (headers dropped), grouped by kind (`bars`, `candles`,
/// `signal_changes`, `late`, `dead_letters`) over all workers, sorted.
pub fn read_outputs(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut by_kind: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let kind = name.split("-w").next().unwrap().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        by_kind.entry(kind).or_default().extend(text.lines().filter(|l| !l.starts_with("symbol,")).map(str::to_string));
    }
    by_kind.values_mut().for_each(|v| v.sort());
    by_kind
}

/// Waits for every process of a run; each must exit successfully (`what` names the run).
pub fn wait_ok(children: Vec<Child>, what: &str) {
    for mut c in children {
        let status = c.wait().unwrap();
        assert!(status.success(), "{what}: a process exited with {status}");
    }
}

/// Asserts that two runs' outputs ([`read_outputs`]) are the same, naming the first difference.
pub fn assert_same(got: &BTreeMap<String, Vec<String>>, want: &BTreeMap<String, Vec<String>>, what: &str) {
    if let Some((kind, rows)) = got.iter().find(|(k, _)| !want.contains_key(*k)) {
        panic!(
            "{what}: {} {kind} rows the uninterrupted run does not have, e.g.\n{}",
            rows.len(),
            rows[..rows.len().min(5)].join("\n")
        );
    }
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{what}: kinds of output");
    for (kind, rows) in want {
        let g = &got[kind];
        assert_eq!(g.len(), rows.len(), "{what}: {kind} has {} rows, the uninterrupted run {}", g.len(), rows.len());
        if let Some(i) = (0..rows.len()).find(|&i| g[i] != rows[i]) {
            panic!("{what}: {kind} differs at sorted row {i}:\n got  {}\n want {}", g[i], rows[i]);
        }
    }
}
