//! Output must not depend on the cluster shape: the same input through 1×1, 1×4 and 2×2
//! (processes × workers) gives the same bars, candles and signal changes. The 2×2 run starts
//! two real `tickflow run` processes talking over loopback.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use tickflow::sources::generator::{GeneratorConfig, MarketGenerator};

fn write_input(dir: &Path) -> PathBuf {
    let path = dir.join("input.ndjson");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let cfg = GeneratorConfig { symbols: 37, seed: 7, records: None, ..GeneratorConfig::default() };
    MarketGenerator::new(cfg).unwrap().write_ndjson(&mut f, 37 * 150).unwrap();
    drop(f);
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn config(input: &Path, out: &Path, processes: usize, workers: usize) -> String {
    let procs: Vec<String> = (0..processes).map(|_| format!("\"127.0.0.1:{}\"", free_port())).collect();
    format!(
        r#"
[cluster]
workers = {workers}
processes = [{}]
[status]
listen = "127.0.0.1:0"
[source]
kind = "file"
[source.file]
paths = ["{}"]
[windows]
timeframes = ["5m", "1h"]
[sinks.file]
dir = "{}"
"#,
        procs.join(", "),
        input.display(),
        out.display()
    )
}

/// Every output file's lines (minus headers), grouped by kind and sorted.
fn outputs(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut by_kind: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let kind = name.split("-w").next().unwrap().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines = by_kind.entry(kind).or_default();
        lines.extend(text.lines().filter(|l| !l.starts_with("symbol,")).map(str::to_string));
    }
    for v in by_kind.values_mut() {
        v.sort();
    }
    by_kind
}

fn run_shape(input: &Path, root: &Path, processes: usize, workers: usize) -> BTreeMap<String, Vec<String>> {
    let out = root.join(format!("out-{processes}x{workers}"));
    let cfg_path = root.join(format!("cluster-{processes}x{workers}.toml"));
    std::fs::write(&cfg_path, config(input, &out, processes, workers)).unwrap();
    let children: Vec<_> = (0..processes)
        .map(|p| {
            Command::new(env!("CARGO_BIN_EXE_tickflow"))
                .args(["run", "--config", cfg_path.to_str().unwrap(), "--process", &p.to_string()])
                .env("RUST_LOG", "warn")
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "process of the {processes}x{workers} cluster failed");
    }
    outputs(&out)
}

#[test]
fn output_does_not_depend_on_cluster_shape() {
    let root = tempfile::tempdir().unwrap();
    let input = write_input(root.path());
    let one = run_shape(&input, root.path(), 1, 1);
    assert_eq!(one["bars"].len(), 37 * 150, "every bar comes out once");
    assert!(one["candles"].len() > 37, "candles were produced");
    assert!(!one["signal_changes"].is_empty(), "signals changed somewhere");
    assert!(one["dead_letters"].is_empty() && one["late"].is_empty());
    for (p, w) in [(1, 4), (2, 2)] {
        let other = run_shape(&input, root.path(), p, w);
        for kind in ["bars", "candles", "signal_changes", "late", "dead_letters"] {
            assert_eq!(one[kind].len(), other[kind].len(), "{kind}: row count differs for {p}x{w}");
            assert!(one[kind] == other[kind], "{kind}: rows differ for {p}x{w}");
        }
    }
}
