//! The checkpoint store against real storage: a temp directory, `memory://`, and an
//! S3-compatible server when `TICKFLOW_TEST_S3_URL` is set (`scripts/s3-test-server.sh`
//! starts one; `scripts/test.sh` does it for CI).
//!
//! The same scenarios run on every backend. Damage (truncation, flipped bytes, missing
//! parts, garbage manifests) is done behind the store's back through a second `object_store`
//! handle on the same place, as a crash or bit rot would.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tickflow::checkpoint::{
    CheckpointStore, FORMAT_VERSION, FormatError, HEADER_LEN, MAGIC, Manifest, PartInfo, SourcePosition, StoreError,
    decode_part, encode_part, verify_part,
};

/// The state a worker would snapshot: per symbol, a count and a running sum.
type State = BTreeMap<String, (u64, f64)>;

fn state(id: u64, worker: usize, symbols: usize) -> State {
    (0..symbols).map(|s| (format!("SYM{worker}-{s}"), (id * 100 + s as u64, id as f64 * 0.5 + s as f64))).collect()
}

fn manifest(id: u64, parts: Vec<PartInfo>) -> Manifest {
    Manifest {
        version: FORMAT_VERSION,
        id,
        created_ms: 1_764_620_000_000 + id as i64,
        processes: 1,
        workers: parts.len(),
        parts,
        watermark_ms: Some(1_764_619_000_000 + id as i64 * 1000),
        symbols: 3,
        sources: vec![SourcePosition {
            source: "kafka:bars/0".into(),
            position: format!("offset {}", id * 10),
            watermark_ms: Some(1_764_619_000_000),
        }],
        final_savepoint: false,
    }
}

fn part_name(worker: usize) -> String {
    format!("p0-w{worker}.state")
}

/// Writes a complete checkpoint of `workers` parts; returns its manifest.
fn write_checkpoint(store: &CheckpointStore, id: u64, workers: usize) -> Manifest {
    let parts =
        (0..workers).map(|w| store.put_part(id, &part_name(w), encode_part(&state(id, w, 3))).unwrap()).collect();
    let m = manifest(id, parts);
    store.put_manifest(&m).unwrap();
    m
}

fn latest_id(store: &CheckpointStore) -> Option<u64> {
    store.load_latest().unwrap().map(|l| l.manifest.id)
}

fn list_ids(store: &CheckpointStore) -> Vec<u64> {
    store.list().unwrap().iter().map(|m| m.id).collect()
}

/// A second handle on the store's objects, for damage and for looking at what is there.
struct Raw {
    store: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Runtime,
}

impl Raw {
    fn new(store: Arc<dyn ObjectStore>) -> Raw {
        Raw { store, rt: tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap() }
    }
    fn get(&self, key: &str) -> Vec<u8> {
        self.rt.block_on(async { self.store.get(&Path::from(key)).await.unwrap().bytes().await.unwrap().to_vec() })
    }
    fn put(&self, key: &str, bytes: Vec<u8>) {
        self.rt.block_on(self.store.put(&Path::from(key), PutPayload::from(bytes))).unwrap();
    }
    fn delete(&self, key: &str) {
        self.rt.block_on(self.store.delete(&Path::from(key))).unwrap();
    }
    /// Every object key, sorted.
    fn keys(&self) -> Vec<String> {
        self.rt.block_on(async {
            let root = self.store.list_with_delimiter(None).await.unwrap();
            let mut keys: Vec<String> = root.objects.iter().map(|o| o.location.to_string()).collect();
            for p in root.common_prefixes {
                let dir = self.store.list_with_delimiter(Some(&p)).await.unwrap();
                keys.extend(dir.objects.iter().map(|o| o.location.to_string()));
            }
            keys.sort();
            keys
        })
    }
}

fn part_key(id: u64, worker: usize) -> String {
    format!("ckpt-{id:020}/{}", part_name(worker))
}

fn manifest_key(id: u64) -> String {
    format!("manifest-{id:020}.json")
}

// ---------------------------------------------------------------------------------------
// Scenarios, run on every backend.

fn round_trip(store: &CheckpointStore) {
    assert_eq!(store.load_latest().unwrap().map(|l| l.manifest.id), None);
    let m = write_checkpoint(store, 1, 3);
    assert_eq!(
        m.parts.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["p0-w0.state", "p0-w1.state", "p0-w2.state"]
    );
    let bytes = encode_part(&state(1, 1, 3));
    assert_eq!(m.parts[1].bytes, bytes.len() as u64);
    assert_eq!(m.parts[1].checksum, verify_part(&bytes).unwrap().checksum);

    let loaded = store.load(1).unwrap();
    assert_eq!(loaded.manifest, m);
    for w in 0..3 {
        let got: State = decode_part(loaded.part(&part_name(w)).unwrap()).unwrap();
        assert_eq!(got, state(1, w, 3));
        assert_eq!(loaded.decode::<State>(&part_name(w)).unwrap(), state(1, w, 3));
    }
    assert_eq!(
        loaded.parts().map(|(n, b)| (n.to_string(), b.len())).collect::<Vec<_>>(),
        m.parts.iter().map(|p| (p.name.clone(), p.bytes as usize)).collect::<Vec<_>>()
    );
    assert!(loaded.part("nope").is_none());
    assert!(matches!(loaded.decode::<State>("nope"), Err(StoreError::Corrupt { id: 1, .. })));
    assert_eq!(store.load_latest().unwrap().unwrap().manifest, m);
    assert_eq!(store.list().unwrap(), vec![m]);
    assert!(matches!(store.load(2), Err(StoreError::NotFound { id: 2, .. })));
}

fn list_newest_first(store: &CheckpointStore) {
    for id in [3, 10, 7] {
        write_checkpoint(store, id, 2);
    }
    // An unfinished checkpoint (parts, no manifest) is not listed.
    store.put_part(11, "p0-w0.state", encode_part(&1u8)).unwrap();
    assert_eq!(list_ids(store), [10, 7, 3]);
    assert_eq!(latest_id(store), Some(10));
}

/// Each kind of damage to the newest checkpoint makes `load_latest` fall back to the one
/// before it, and `load` of the damaged one say what is wrong.
fn corrupt_checkpoints_are_skipped(store: &CheckpointStore, raw: &Raw) {
    let damage: [(&str, &dyn Fn(u64)); 5] = [
        ("truncated part", &|id| {
            let mut b = raw.get(&part_key(id, 1));
            b.truncate(b.len() - 5);
            raw.put(&part_key(id, 1), b);
        }),
        ("flipped payload byte", &|id| {
            let mut b = raw.get(&part_key(id, 1));
            b[HEADER_LEN + 2] ^= 0x01;
            raw.put(&part_key(id, 1), b);
        }),
        ("missing part", &|id| raw.delete(&part_key(id, 0))),
        ("manifest does not parse", &|id| {
            let mut b = raw.get(&manifest_key(id));
            b.truncate(b.len() / 2);
            raw.put(&manifest_key(id), b);
        }),
        ("manifest of another id", &|id| {
            let b = raw.get(&manifest_key(id - 1));
            raw.put(&manifest_key(id), b);
        }),
    ];
    let expect: [&str; 5] = [
        "bytes, the manifest says", // the size check comes before the checksum
        "checksum mismatch",
        "part \"p0-w0.state\" is missing",
        "does not parse",
        "says it is checkpoint",
    ];
    for (i, ((what, damage), reason)) in damage.iter().zip(expect).enumerate() {
        let good = 100 + 2 * i as u64;
        write_checkpoint(store, good, 2);
        assert_eq!(latest_id(store), Some(good), "{what}");
        write_checkpoint(store, good + 1, 2);
        assert_eq!(latest_id(store), Some(good + 1), "{what}");
        damage(good + 1);
        assert_eq!(latest_id(store), Some(good), "{what}: load_latest must skip {}", good + 1);
        let err = store.load(good + 1).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { id, .. } if id == good + 1), "{what}: {err}");
        assert!(err.to_string().contains(reason), "{what}: {err}");
        // The cheap check of `list` sees every damage but a flipped payload byte.
        let listed = list_ids(store).contains(&(good + 1));
        assert_eq!(listed, *what == "flipped payload byte", "{what}: list {:?}", list_ids(store));
    }
}

fn manifest_written_twice(store: &CheckpointStore) {
    let m = write_checkpoint(store, 5, 2);
    // The same again (a retry): harmless, even with another created time.
    store.put_manifest(&m).unwrap();
    store.put_manifest(&Manifest { created_ms: m.created_ms + 99, ..m.clone() }).unwrap();
    // A different checkpoint under the same id: refused; the first one stays.
    let other = Manifest { symbols: 999, ..m.clone() };
    let err = store.put_manifest(&other).unwrap_err();
    assert!(matches!(err, StoreError::Publish { id: 5, .. }), "{err}");
    assert!(err.to_string().contains("already published"), "{err}");
    assert_eq!(store.load(5).unwrap().manifest, m);

    // A manifest whose parts are not all stored is never published.
    let stored = store.put_part(6, &part_name(0), encode_part(&state(6, 0, 3))).unwrap();
    let missing = manifest(6, vec![stored, PartInfo { name: "p0-w9.state".into(), bytes: 30, checksum: 1 }]);
    let err = store.put_manifest(&missing).unwrap_err();
    assert!(err.to_string().contains("\"p0-w9.state\" is missing"), "{err}");
    assert!(matches!(store.load(6), Err(StoreError::NotFound { id: 6, .. })));

    // After a restore from an older checkpoint, the epoch is re-run and its parts rewritten
    // with other content: the stale manifest (its checksums no longer match) is replaced.
    let rewritten: Vec<PartInfo> =
        (0..2).map(|w| store.put_part(5, &part_name(w), encode_part(&state(50, w, 4))).unwrap()).collect();
    let again = manifest(5, rewritten);
    store.put_manifest(&again).unwrap();
    let loaded = store.load(5).unwrap();
    assert_eq!(loaded.manifest, again);
    assert_eq!(loaded.decode::<State>(&part_name(1)).unwrap(), state(50, 1, 4));
}

fn retain_keeps_the_newest(store: &CheckpointStore, raw: &Raw) {
    for id in [1, 2, 4, 6] {
        write_checkpoint(store, id, 2);
    }
    // Left by crashes: parts without a manifest, older than the newest complete checkpoint.
    store.put_part(3, "p0-w0.state", encode_part(&3u8)).unwrap();
    store.put_part(5, "p0-w0.state", encode_part(&5u8)).unwrap();
    // In progress: newer than every manifest.
    store.put_part(7, "p0-w0.state", encode_part(&7u8)).unwrap();

    let report = store.retain(2).unwrap();
    assert_eq!(report.kept, [6, 4]);
    assert_eq!(report.deleted, [1, 2]);
    assert_eq!(report.orphans, [3, 5]);
    assert_eq!(report.objects, 2 * 3 + 2); // two manifests with two parts each, two orphan parts
    assert_eq!(list_ids(store), [6, 4]);
    let mut expect = vec![
        part_key(4, 0),
        part_key(4, 1),
        part_key(6, 0),
        part_key(6, 1),
        part_key(7, 0),
        manifest_key(4),
        manifest_key(6),
    ];
    expect.sort();
    assert_eq!(raw.keys(), expect);
    // Idempotent.
    assert_eq!(store.retain(2).unwrap().objects, 0);
    // retain(0) still keeps the newest complete checkpoint.
    assert_eq!(store.retain(0).unwrap().kept, [6]);
    assert_eq!(list_ids(store), [6]);
    assert!(raw.keys().contains(&part_key(7, 0)));
}

fn tickets_poll_to_completion(store: &CheckpointStore) {
    let mut tickets: Vec<_> =
        (0..4).map(|w| store.submit_part(9, &part_name(w), encode_part(&state(9, w, 50)))).collect();
    let bad = store.submit_part(9, "../escape", encode_part(&0u8));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut done: Vec<Option<PartInfo>> = vec![None; tickets.len()];
    while done.iter().any(Option::is_none) {
        assert!(Instant::now() < deadline, "puts did not finish");
        for (t, d) in tickets.iter_mut().zip(done.iter_mut()) {
            if let Some(result) = t.poll() {
                *d = Some(result.unwrap());
            }
        }
        std::thread::yield_now();
    }
    // A finished ticket keeps answering the same.
    for (t, d) in tickets.iter_mut().zip(&done) {
        assert_eq!(t.poll().unwrap().unwrap(), *d.as_ref().unwrap());
    }
    let parts: Vec<PartInfo> = done.into_iter().map(Option::unwrap).collect();
    assert_eq!(parts[2].name, part_name(2));
    let mut publish = store.submit_manifest(manifest(9, parts.clone()));
    assert_eq!(publish.key(), manifest_key(9));
    let info = loop {
        assert!(Instant::now() < deadline, "manifest put did not finish");
        if let Some(r) = publish.poll() {
            break r.unwrap();
        }
        std::thread::yield_now();
    };
    assert_eq!(info.name, manifest_key(9));
    assert_eq!(store.load(9).unwrap().manifest.parts, parts);
    let err = bad.wait().unwrap_err();
    assert!(matches!(&err, StoreError::BadPart { name, .. } if name == "../escape"), "{err}");
    // Bytes that are not an encoded part are refused before anything is written.
    let err = store.put_part(9, "raw", b"hello".to_vec()).unwrap_err();
    assert!(err.to_string().contains("not an encoded part"), "{err}");
}

fn all_scenarios(make: &dyn Fn() -> (CheckpointStore, Raw)) {
    let (s, _) = make();
    round_trip(&s);
    let (s, _) = make();
    list_newest_first(&s);
    let (s, raw) = make();
    corrupt_checkpoints_are_skipped(&s, &raw);
    let (s, _) = make();
    manifest_written_twice(&s);
    let (s, raw) = make();
    retain_keeps_the_newest(&s, &raw);
    let (s, _) = make();
    tickets_poll_to_completion(&s);
}

// ---------------------------------------------------------------------------------------
// Backends.

#[test]
fn local_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let n = Mutex::new(0);
    all_scenarios(&|| {
        let mut n = n.lock().unwrap();
        *n += 1;
        // Relative to nothing: an absolute path that does not exist yet (open creates it).
        let dir = tmp.path().join(format!("store-{n}/checkpoints"));
        let store = CheckpointStore::open(dir.to_str().unwrap()).unwrap();
        assert_eq!(store.url(), dir.canonicalize().unwrap().to_str().unwrap());
        let raw = Raw::new(Arc::new(LocalFileSystem::new_with_prefix(&dir).unwrap()));
        (store, raw)
    });
}

#[test]
fn local_retain_removes_directories_and_crash_leftovers() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("file://{}", tmp.path().display());
    let store = CheckpointStore::open(&url).unwrap();
    write_checkpoint(&store, 1, 1);
    write_checkpoint(&store, 2, 1);
    // What a crash in the middle of a put leaves: a staging file (invisible to listings).
    std::fs::write(tmp.path().join(format!("{}#1", part_key(1, 0))), b"half").unwrap();
    std::fs::write(tmp.path().join(format!("{}#1", manifest_key(1))), b"{").unwrap();
    assert_eq!(list_ids(&store), [2, 1]);
    store.retain(1).unwrap();
    let mut names: Vec<String> =
        std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, [format!("ckpt-{:020}", 2), manifest_key(2)]);
}

#[test]
fn memory_store() {
    // `memory://` as a URL: the data lives as long as the store.
    let store = CheckpointStore::open("memory://").unwrap();
    assert_eq!(store.url(), "memory://");
    round_trip(&store);
    // With a handle kept on the same memory, every scenario.
    all_scenarios(&|| {
        let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        (CheckpointStore::from_object_store(mem.clone(), "memory://test").unwrap(), Raw::new(mem))
    });
}

#[test]
fn unwritable_locations_name_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    // Tests run as root, so permissions do not stop them: a path under a regular file does.
    let file = tmp.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let under = file.join("checkpoints");
    let err = CheckpointStore::open(under.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(err.to_string().contains(under.to_str().unwrap()), "{err}");
    assert!(err.to_string().contains("cannot create directory"), "{err}");

    // The store opens, but a part's directory cannot be made: a file is in the way.
    let dir = tmp.path().join("store");
    let store = CheckpointStore::open(dir.to_str().unwrap()).unwrap();
    let blocker = dir.join(format!("ckpt-{:020}", 1));
    std::fs::write(&blocker, b"x").unwrap();
    let err = store.put_part(1, "p0-w0.state", encode_part(&1u8)).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err}");
    assert!(err.to_string().contains(blocker.to_str().unwrap()), "{err}");
    assert!(!err.is_retryable());

    // open_existing does not create a missing directory.
    let missing = tmp.path().join("missing");
    let err = CheckpointStore::open_existing(missing.to_str().unwrap()).unwrap_err();
    assert!(err.to_string().contains(missing.to_str().unwrap()), "{err}");
    assert!(!missing.exists());

    for (url, says) in [("ftp://host/x", "ftp://host/x"), ("", "empty URL"), ("s3://", "s3://")] {
        let err = CheckpointStore::open(url).unwrap_err();
        assert!(err.to_string().contains(says), "{url}: {err}");
    }
}

#[test]
fn urls_in_errors_and_logs_have_no_credentials() {
    let err = CheckpointStore::open("ftp://user:secret@host/x?token=abc").unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("secret") && !text.contains("abc"), "{text}");
}

#[test]
fn format_errors() {
    let bytes = encode_part(&state(1, 0, 2));
    assert_eq!(&bytes[..8], &MAGIC);
    assert_eq!(decode_part::<State>(&bytes).unwrap(), state(1, 0, 2));

    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert_eq!(decode_part::<State>(&bad), Err(FormatError::BadMagic));
    assert_eq!(decode_part::<State>(b"{\"json\": true}"), Err(FormatError::BadMagic));

    let mut newer = bytes.clone();
    newer[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    assert_eq!(decode_part::<State>(&newer), Err(FormatError::UnsupportedVersion(FORMAT_VERSION + 1)));
    // A part of an older layout is refused, not misread.
    let mut older = bytes.clone();
    older[8..12].copy_from_slice(&(FORMAT_VERSION - 1).to_le_bytes());
    assert_eq!(decode_part::<State>(&older), Err(FormatError::UnsupportedVersion(FORMAT_VERSION - 1)));

    let n = bytes.len() as u64;
    assert_eq!(
        decode_part::<State>(&bytes[..bytes.len() - 1]),
        Err(FormatError::Truncated { expected: n, actual: n - 1 })
    );
    assert_eq!(
        decode_part::<State>(&bytes[..10]),
        Err(FormatError::Truncated { expected: HEADER_LEN as u64, actual: 10 })
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(decode_part::<State>(&longer), Err(FormatError::TrailingBytes { expected: n, actual: n + 1 }));

    let mut flipped = bytes.clone();
    *flipped.last_mut().unwrap() ^= 0x80;
    assert!(
        matches!(decode_part::<State>(&flipped), Err(FormatError::Checksum { expected, actual }) if expected != actual)
    );

    // Intact, but another type.
    assert!(matches!(decode_part::<Vec<u64>>(&encode_part(&"text")), Err(FormatError::Decode(_))));
}

/// A `tracing` writer into a buffer, to see the warnings `load_latest` gives.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn skipping_a_checkpoint_warns_naming_it() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    let loaded = tracing::subscriber::with_default(subscriber, || {
        let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let store = CheckpointStore::from_object_store(mem.clone(), "memory://warn").unwrap();
        write_checkpoint(&store, 1, 1);
        write_checkpoint(&store, 2, 1);
        Raw::new(mem).delete(&part_key(2, 0));
        store.load_latest().unwrap().unwrap()
    });
    assert_eq!(loaded.manifest.id, 1);
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line =
        text.lines().find(|l| l.contains("skipping checkpoint")).unwrap_or_else(|| panic!("no warning in {text:?}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("checkpoint=2"), "{line}");
    assert!(
        line.contains("part \\\"p0-w0.state\\\" is missing") || line.contains("part \"p0-w0.state\" is missing"),
        "{line}"
    );
}

// ---------------------------------------------------------------------------------------
// The CLI, as the binary.

fn tickflow(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tickflow")).args(args).env("RUST_LOG", "warn").output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn cli_list_and_show() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    let url = dir.to_str().unwrap();
    let store = CheckpointStore::open(url).unwrap();
    write_checkpoint(&store, 7, 2);
    let mut last = write_checkpoint(&store, 8, 1);
    last.id = 9;
    last.final_savepoint = true;
    last.parts = vec![store.put_part(9, "p0-w0.state", encode_part(&state(9, 0, 3))).unwrap()];
    store.put_manifest(&last).unwrap();

    let (code, out, err) = tickflow(&["checkpoints", "list", "--url", url]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("id "), "{out}");
    let bytes9 = last.parts[0].bytes;
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["9", "2025-12-01T20:13:20.008Z", "1x1", "2025-12-01T19:56:48.000Z", "3", &bytes9.to_string(), "savepoint"]
    );
    assert_eq!(lines[2].split_whitespace().next(), Some("8"));
    assert_eq!(lines[3].split_whitespace().take(3).collect::<Vec<_>>(), ["7", "2025-12-01T20:13:20.007Z", "1x2"]);

    // The URL from the config's [checkpoint] section.
    let config = tmp.path().join("cluster.toml");
    std::fs::write(&config, format!("[checkpoint]\nurl = {:?}\nretain = 3\n", url)).unwrap();
    let (code, out2, err) = tickflow(&["checkpoints", "list", "--config", config.to_str().unwrap()]);
    assert_eq!((code, out2.as_str()), (0, out.as_str()), "{err}");

    let (code, out, err) = tickflow(&["checkpoints", "show", "7", "--url", url]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("checkpoint 7: complete\n"), "{out}");
    for want in [
        "shape:           1 process(es) x 2 worker(s)",
        "p0-w1.state",
        "kafka:bars/0  offset 70",
        "final savepoint: no",
    ] {
        assert!(out.contains(want), "{want:?} not in {out}");
    }

    let (code, out, err) = tickflow(&["checkpoints", "show", "9", "--json", "--url", url]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<Manifest>(&out).unwrap(), last);

    let (code, out, err) = tickflow(&["checkpoints", "show", "99", "--url", url]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("checkpoint 99: not found"), "{err}");

    let missing = tmp.path().join("nowhere");
    let (code, _, err) = tickflow(&["checkpoints", "list", "--url", missing.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(missing.to_str().unwrap()), "{err}");
    assert!(!missing.exists());
}

// ---------------------------------------------------------------------------------------
// S3, when a server is there.

/// `TICKFLOW_TEST_S3_URL` (`s3://bucket/prefix`) plus the `AWS_*` settings, or why not.
fn s3_url() -> Result<String, String> {
    let url = std::env::var("TICKFLOW_TEST_S3_URL").map_err(|_| "TICKFLOW_TEST_S3_URL is not set".to_string())?;
    for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        if std::env::var(var).is_err() {
            return Err(format!("{var} is not set"));
        }
    }
    Ok(url)
}

#[test]
fn s3_store() {
    let base = match s3_url() {
        Ok(url) => url,
        Err(why) => {
            eprintln!("s3_store: skipped: {why} (scripts/s3-test-server.sh start prints the settings)");
            return;
        }
    };
    let bucket = base.trim_start_matches("s3://").split('/').next().unwrap().to_string();
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let n = Mutex::new(0);
    all_scenarios(&|| {
        let mut n = n.lock().unwrap();
        *n += 1;
        // A fresh prefix per scenario: the bucket outlives test runs.
        let url = format!("{}/run-{stamp}-{n}", base.trim_end_matches('/'));
        let store = CheckpointStore::open(&url).unwrap();
        let prefix = url.trim_start_matches("s3://").trim_start_matches(&bucket).trim_matches('/').to_string();
        let s3 = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(&bucket).build().unwrap();
        (store, Raw::new(Arc::new(PrefixStore::new(s3, prefix.as_str()))))
    });
}
