//! Output must not depend on the cluster shape: the same input through 1×1, 1×4 and 2×2
//! (processes × workers) gives the same bars, candles and signal changes. The 2×2 run starts
//! two real `tickflow run` processes talking over loopback.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::cluster::{process_list, read_outputs, run_cluster};
use tickflow::sources::generator::{GeneratorConfig, MarketGenerator};

fn write_input(dir: &Path) -> PathBuf {
    let path = dir.join("input.ndjson");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let cfg = GeneratorConfig { symbols: 37, seed: 7, records: None, ..GeneratorConfig::default() };
    MarketGenerator::new(cfg).unwrap().write_ndjson(&mut f, 37 * 150).unwrap();
    drop(f);
    path
}

fn config(input: &Path, out: &Path, processes: usize, workers: usize) -> String {
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
        process_list(processes),
        input.display(),
        out.display()
    )
}

fn run_shape(input: &Path, root: &Path, processes: usize, workers: usize) -> BTreeMap<String, Vec<String>> {
    let out = root.join(format!("out-{processes}x{workers}"));
    run_cluster(root, &format!("cluster-{processes}x{workers}"), processes, &config(input, &out, processes, workers));
    read_outputs(&out)
}

#[test]
fn output_does_not_depend_on_cluster_shape() {
    let _heavy = crate::support::heavy();
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
