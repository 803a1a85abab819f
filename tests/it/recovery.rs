//! Crash-exact recovery on real processes: a cluster killed with SIGKILL at seeded random
//! moments (some during checkpoint writes) and restarted each time, or stopped with SIGTERM
//! and restarted, must leave exactly the committed files of a run that never stopped: every
//! kind of row, every column. Also: a corrupt newest checkpoint falls back to the previous
//! one; an unwritable checkpoint location fails clearly and commits nothing past it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cluster::{assert_same, process_list, read_outputs, wait_ok};

/// The generator market: 40 symbols, 1 s apart per symbol, a fixed count; candles on.
fn config(out: &Path, checkpoints: &Path, processes: &str, workers: usize, interval: &str) -> String {
    format!(
        r#"
[cluster]
workers = {workers}
processes = [{processes}]
[status]
listen = "127.0.0.1:0"
[source]
kind = "generator"
[source.generator]
symbols = 40
rate = 0
seed = 7
interval = "1s"
count = 600000
[windows]
timeframes = ["1m", "5m"]
[sinks.file]
dir = "{}"
roll-interval = "0s"
[checkpoint]
url = "{}"
interval = "{interval}"
retain = 3
"#,
        out.display(),
        checkpoints.display()
    )
}

fn spawn(config: &Path, processes: usize, extra: &[&str]) -> Vec<Child> {
    (0..processes)
        .map(|p| {
            Command::new(env!("CARGO_BIN_EXE_tickflow"))
                .current_dir(config.parent().unwrap())
                .args(["run", "--config", config.to_str().unwrap(), "--process", &p.to_string()])
                .args(extra)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect()
}

fn signal(children: &[Child], sig: &str) {
    for c in children {
        let _ = Command::new("kill").args([sig, &c.id().to_string()]).status();
    }
}

/// How many complete checkpoints `dir` holds: published manifests only. A manifest being
/// published is first staged as `manifest-{id}.json#{n}` and renamed; counting the staged file
/// let a test kill the process before the rename and find one checkpoint fewer than it waited for.
fn manifests(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.filter(|e| {
            e.as_ref().is_ok_and(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with("manifest-") && name.ends_with(".json")
            })
        })
        .count()
    })
}

/// Waits (at most a minute) until `dir` holds at least `n` checkpoints.
fn wait_for_checkpoints(dir: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while manifests(dir) < n {
        assert!(Instant::now() < deadline, "no {n} checkpoints in {} within a minute", dir.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A small deterministic generator (splitmix64) for the kill moments.
fn moments(seed: u64, n: usize, lo_ms: u64, hi_ms: u64) -> Vec<u64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            lo_ms + (z ^ (z >> 31)) % (hi_ms - lo_ms)
        })
        .collect()
}

fn reference(root: &Path) -> BTreeMap<String, Vec<String>> {
    let out = root.join("out-ref");
    let cfg = root.join("ref.toml");
    std::fs::write(&cfg, config(&out, &root.join("ck-ref"), &process_list(1), 2, "250ms")).unwrap();
    wait_ok(spawn(&cfg, 1, &[]), "reference run");
    read_outputs(&out)
}

fn committed_parts(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).map_or(Vec::new(), |d| d.map(|e| e.unwrap().path()).collect())
}

#[test]
fn sigkill_at_random_moments_then_restart_writes_what_an_uninterrupted_run_writes() {
    let _one = crate::support::heavy();
    let root = tempfile::tempdir().unwrap();
    let want = reference(root.path());
    assert!(want["bars"].len() == 600_000 && !want["candles"].is_empty(), "the reference run wrote everything");

    let out = root.path().join("out-kill");
    let ck = root.path().join("ck-kill");
    let cfg = root.path().join("kill.toml");
    std::fs::write(&cfg, config(&out, &ck, &process_list(1), 2, "100ms")).unwrap();
    let mut kills = 0;
    for at in moments(0x5eed, 4, 150, 1200) {
        let children = spawn(&cfg, 1, &[]);
        std::thread::sleep(Duration::from_millis(at));
        signal(&children, "-KILL");
        for mut c in children {
            let _ = c.wait();
        }
        kills += 1;
        // Uncommitted rows are never visible: every file is a committed part.
        for p in committed_parts(&out) {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            assert!(name.starts_with('.') || !name.ends_with(".inprogress"), "{name}");
        }
    }
    assert_eq!(kills, 4);
    wait_ok(spawn(&cfg, 1, &[]), "the last restart");
    assert_same(&read_outputs(&out), &want, "killed 4 times");
}

#[test]
fn sigterm_takes_a_savepoint_and_the_next_run_continues_exactly() {
    let _one = crate::support::heavy();
    let root = tempfile::tempdir().unwrap();
    let want = reference(root.path());
    let out = root.path().join("out-term");
    let ck = root.path().join("ck-term");
    let cfg = root.path().join("term.toml");
    std::fs::write(&cfg, config(&out, &ck, &process_list(1), 2, "1s")).unwrap();
    let children = spawn(&cfg, 1, &[]);
    wait_for_checkpoints(&ck, 1);
    signal(&children, "-TERM");
    let started = Instant::now();
    wait_ok(children, "stop with a savepoint");
    assert!(started.elapsed() < Duration::from_secs(30));
    let list = Command::new(env!("CARGO_BIN_EXE_tickflow"))
        .args(["checkpoints", "list", "--url", ck.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success() && text.contains("savepoint"), "checkpoints list:\n{text}");
    // No partial candle was written at the stop: candles so far are a subset of the final ones.
    let partial = read_outputs(&out);
    for row in partial.get("candles").into_iter().flatten() {
        assert!(want["candles"].binary_search(row).is_ok(), "a candle written at the stop is not final: {row}");
    }
    wait_ok(spawn(&cfg, 1, &[]), "the restart");
    assert_same(&read_outputs(&out), &want, "SIGTERM + restart");
}

#[test]
fn a_corrupt_newest_checkpoint_falls_back_to_the_previous_one() {
    let _one = crate::support::heavy();
    let root = tempfile::tempdir().unwrap();
    let want = reference(root.path());
    let out = root.path().join("out-corrupt");
    let ck = root.path().join("ck-corrupt");
    let cfg = root.path().join("corrupt.toml");
    std::fs::write(&cfg, config(&out, &ck, &process_list(1), 2, "100ms")).unwrap();
    let children = spawn(&cfg, 1, &[]);
    wait_for_checkpoints(&ck, 2);
    signal(&children, "-KILL");
    for mut c in children {
        let _ = c.wait();
    }
    // Flip a byte in every part of the newest checkpoint.
    let mut dirs: Vec<PathBuf> = committed_parts(&ck).into_iter().filter(|p| p.is_dir()).collect();
    dirs.sort();
    let manifests: Vec<PathBuf> =
        committed_parts(&ck).into_iter().filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    assert!(manifests.len() >= 2, "at least two checkpoints were taken: {manifests:?}");
    let mut newest_manifest = manifests.clone();
    newest_manifest.sort();
    let newest = newest_manifest.last().unwrap().file_stem().unwrap().to_string_lossy().replace("manifest-", "");
    let part_dir = dirs.iter().find(|d| d.file_name().unwrap().to_string_lossy().ends_with(&newest)).unwrap();
    for p in committed_parts(part_dir) {
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        std::fs::write(&p, bytes).unwrap();
    }
    let restart = Command::new(env!("CARGO_BIN_EXE_tickflow"))
        .current_dir(root.path())
        .args(["run", "--config", cfg.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&restart.stderr);
    assert!(restart.status.success(), "restart failed:\n{log}");
    assert!(log.contains("skipping checkpoint") && log.contains(&newest.trim_start_matches('0').to_string()), "{log}");
    assert_same(&read_outputs(&out), &want, "corrupt newest checkpoint");
}

#[test]
fn an_unwritable_checkpoint_location_stops_the_run_with_a_clear_error() {
    let _one = crate::support::heavy();
    let root = tempfile::tempdir().unwrap();
    let blocker = root.path().join("not-a-dir");
    std::fs::write(&blocker, "a file").unwrap();
    let out = root.path().join("out-bad");
    let cfg = root.path().join("bad.toml");
    std::fs::write(&cfg, config(&out, &blocker.join("ck"), &process_list(1), 2, "100ms")).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_tickflow"))
        .current_dir(root.path())
        .args(["run", "--config", cfg.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "the run must fail");
    assert!(err.contains("not-a-dir"), "the error names the location:\n{err}");
    // Nothing was committed: no result part has a final name.
    let committed: Vec<_> = committed_parts(&out)
        .into_iter()
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert!(committed.is_empty(), "{committed:?}");
}
