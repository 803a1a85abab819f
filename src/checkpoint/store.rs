//! [`CheckpointStore`]: checkpoints on a local directory, S3 or memory, through `object_store`.
//!
//! Layout under the store's root:
//!
//! ```text
//! ckpt-00000000000000000042/w0-state     parts, written first (any order, any writer)
//! ckpt-00000000000000000042/w1-state
//! manifest-00000000000000000042.json     written last, create-only: the checkpoint exists
//! ```
//!
//! The store owns a small tokio runtime (one worker thread, a few blocking threads), so a
//! timely worker can [`submit_part`](CheckpointStore::submit_part) and poll the returned
//! [`PutTicket`] between `step()`s without blocking, or call the blocking methods.
//!
//! **Durability on a local directory.** object_store 0.13.2's `LocalFileSystem::put_opts`
//! (src/local.rs) writes a staging file `{path}#{n}`, then `rename`s it into place
//! (`PutMode::Overwrite`) or `hard_link`s it (`PutMode::Create`, which fails if the name
//! exists), and never calls `fsync`, on the file or on the directory. A crash could then
//! leave a renamed but empty manifest. So puts to a local directory are done here, the same
//! way plus the syncs: staging file with the same `#{n}` naming (object_store's listing skips
//! those names, so unfinished writes are invisible), `fsync` of the file *before* it is
//! renamed or linked, `fsync` of its directory after (and of the root when the part
//! directory was new). Reads, listings and deletes go through object_store. On S3 a PUT is
//! atomic and durable when it returns; the manifest uses `If-None-Match: *` (object_store's
//! `PutMode::Create`), so of two writers of one id only one publishes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::de::DeserializeOwned;

use super::format::{self, FORMAT_VERSION, FormatError, HEADER_LEN};
use super::manifest::{self, Manifest, PartInfo};

/// Why a store operation failed. Cheap to clone (a [`PutTicket`] hands out its result more
/// than once), `Send + Sync + 'static`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The URL is not usable: unknown scheme, bad S3 settings, a directory that cannot be
    /// created or does not exist.
    #[error("checkpoint store {url}: {reason}")]
    Open {
        /// The URL as given (credentials removed).
        url: String,
        /// What is wrong, naming the path.
        reason: String,
    },
    /// A local file operation failed (durable writes on a local directory).
    #[error("checkpoint store: cannot {op} {path}: {cause}")]
    Io {
        /// What was being done: `create`, `write`, `fsync`, `rename`, `link`.
        op: &'static str,
        /// The file or directory.
        path: String,
        /// The OS error.
        cause: Arc<std::io::Error>,
    },
    /// The object store refused or failed (S3 error, permission denied, network).
    #[error("checkpoint store {url}: cannot {op} {key}: {cause}")]
    Object {
        /// The store.
        url: String,
        /// What was being done: `put`, `get`, `list`, `delete`.
        op: &'static str,
        /// The object key, relative to the store's root.
        key: String,
        /// object_store's error.
        cause: Arc<object_store::Error>,
    },
    /// There is no manifest for this checkpoint id.
    #[error("checkpoint {id}: not found in {url} (no {key})")]
    NotFound {
        /// The checkpoint id.
        id: u64,
        /// The store.
        url: String,
        /// The manifest key looked for.
        key: String,
    },
    /// The checkpoint's manifest exists but it is not usable: the manifest does not parse,
    /// or a part is missing, of the wrong size, or fails its checksum.
    #[error("checkpoint {id}: {reason}")]
    Corrupt {
        /// The checkpoint id.
        id: u64,
        /// What is wrong, naming the part.
        reason: String,
    },
    /// `put_manifest` was refused: a parts check failed (it never publishes a checkpoint whose
    /// parts are not all stored) or a different, complete manifest is already published for
    /// this id.
    #[error("checkpoint {id}: manifest not written: {reason}")]
    Publish {
        /// The checkpoint id.
        id: u64,
        /// Why.
        reason: String,
    },
    /// `put_part` was given a bad name or bytes that are not an encoded part.
    #[error("part {name:?}: {reason}")]
    BadPart {
        /// The part name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The store's runtime could not be built or lost a task.
    #[error("checkpoint store: {0}")]
    Runtime(String),
}

impl StoreError {
    /// Worth retrying later (a network or server problem), as opposed to a bad request, a
    /// missing or corrupt checkpoint or a full/forbidden disk. object_store already retried
    /// S3 requests with backoff before returning.
    pub fn is_retryable(&self) -> bool {
        use object_store::Error as E;
        match self {
            StoreError::Object { cause, .. } => matches!(**cause, E::Generic { .. } | E::JoinError { .. }),
            StoreError::Io { cause, .. } => {
                matches!(cause.kind(), std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut)
            }
            _ => false,
        }
    }
}

/// What [`CheckpointStore::retain`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetainReport {
    /// The complete checkpoints kept, newest first.
    pub kept: Vec<u64>,
    /// Checkpoints whose manifest (and parts) were deleted, oldest first.
    pub deleted: Vec<u64>,
    /// Part directories without a manifest (left by crashes) that were deleted, oldest first.
    pub orphans: Vec<u64>,
    /// Objects deleted.
    pub objects: usize,
    /// Bytes deleted.
    pub bytes: u64,
}

/// A checkpoint read back in full, every part checked against its manifest entry.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Its manifest.
    pub manifest: Manifest,
    /// The parts in manifest order.
    parts: Vec<(String, Bytes)>,
}

impl Loaded {
    /// The bytes of part `name` (header included; give them to [`decode_part`](super::decode_part)).
    pub fn part(&self, name: &str) -> Option<&[u8]> {
        self.parts.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_ref())
    }

    /// Every part, in manifest order.
    pub fn parts(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.parts.iter().map(|(n, b)| (n.as_str(), b.as_ref()))
    }

    /// Decodes part `name`; an error names the checkpoint and the part.
    pub fn decode<T: DeserializeOwned>(&self, name: &str) -> Result<T, StoreError> {
        let id = self.manifest.id;
        let bytes = self.part(name).ok_or_else(|| StoreError::Corrupt { id, reason: format!("no part {name:?}") })?;
        format::decode_part(bytes).map_err(|e| StoreError::Corrupt { id, reason: format!("part {name:?}: {e}") })
    }
}

/// The result of a put running on the store's runtime.
///
/// [`poll`](PutTicket::poll) it from a timely worker between steps; it never blocks.
pub struct PutTicket {
    key: String,
    state: TicketState,
}

enum TicketState {
    /// The store is held so that its runtime lives until the put has finished.
    Waiting {
        rx: mpsc::Receiver<Result<PartInfo, StoreError>>,
        _store: CheckpointStore,
    },
    Done(Result<PartInfo, StoreError>),
}

impl PutTicket {
    /// `None` while the put runs; then its result, and the same result on every later call.
    pub fn poll(&mut self) -> Option<Result<PartInfo, StoreError>> {
        if let TicketState::Waiting { rx, .. } = &self.state {
            let result = match rx.try_recv() {
                Ok(result) => result,
                Err(mpsc::TryRecvError::Empty) => return None,
                Err(mpsc::TryRecvError::Disconnected) => Err(lost(&self.key)),
            };
            self.state = TicketState::Done(result);
        }
        match &self.state {
            TicketState::Done(result) => Some(result.clone()),
            TicketState::Waiting { .. } => unreachable!("set to Done above"),
        }
    }

    /// Blocks until the put has finished.
    pub fn wait(self) -> Result<PartInfo, StoreError> {
        match self.state {
            TicketState::Waiting { rx, .. } => rx.recv().unwrap_or_else(|_| Err(lost(&self.key))),
            TicketState::Done(result) => result,
        }
    }

    /// The object key being written.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Debug for PutTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            TicketState::Waiting { .. } => "waiting",
            TicketState::Done(Ok(_)) => "done",
            TicketState::Done(Err(_)) => "failed",
        };
        f.debug_struct("PutTicket").field("key", &self.key).field("state", &state).finish()
    }
}

fn lost(key: &str) -> StoreError {
    StoreError::Runtime(format!("the put of {key} ended without a result (runtime shut down)"))
}

/// Checkpoints in one place (a directory, an S3 prefix, memory). Cheap to clone; the clones
/// share one runtime and one connection pool.
#[derive(Clone)]
pub struct CheckpointStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for CheckpointStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointStore").field("url", &self.inner.backend.url).finish()
    }
}

struct Inner {
    backend: Backend,
    /// `Some` until dropped; `Drop` shuts it down without waiting (it may be dropped inside
    /// another runtime, where waiting is not allowed). Tickets hold the store, so no put is
    /// cut short by it.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Whether a missing local directory is created (`open`) or an error (`open_existing`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Create {
    Yes,
    No,
}

impl CheckpointStore {
    /// Opens the store at `url`: a local directory path (relative or absolute, created if
    /// missing), `file:///abs/dir`, `s3://bucket/prefix` (settings from the `AWS_*`
    /// environment, as `AmazonS3Builder::from_env()` reads them: `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`/`AWS_ENDPOINT_URL` and
    /// `AWS_ALLOW_HTTP=true` for S3-compatible servers), or `memory://` (tests; the data
    /// lives as long as the store). Other object_store schemes go through
    /// `object_store::parse_url_opts` with the environment's settings; this build has S3 only.
    pub fn open(url: &str) -> Result<CheckpointStore, StoreError> {
        Self::open_with(url, Create::Yes)
    }

    /// [`open`](Self::open), but a local directory that does not exist is an error instead of
    /// being created: for readers such as `tickflow checkpoints`, where a mistyped path should
    /// say so.
    pub fn open_existing(url: &str) -> Result<CheckpointStore, StoreError> {
        Self::open_with(url, Create::No)
    }

    /// Where the store is, for logs: an absolute directory, or the URL without credentials.
    pub fn url(&self) -> &str {
        &self.inner.backend.url
    }

    /// Uses `store` as it is: any `object_store` implementation (a wrapper that counts or
    /// throttles, a test's `InMemory` it keeps a handle to). `url` is what [`url`](Self::url)
    /// says. Puts go through `store.put_opts`; no fsync is added.
    pub fn from_object_store(store: Arc<dyn ObjectStore>, url: &str) -> Result<CheckpointStore, StoreError> {
        Self::start(Backend { store, local: None, url: url.to_string() })
    }

    fn open_with(url: &str, create: Create) -> Result<CheckpointStore, StoreError> {
        Self::start(Backend::open(url, create)?)
    }

    fn start(backend: Backend) -> Result<CheckpointStore, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(4)
            .thread_name("tickflow-ckpt")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Runtime(format!("cannot start the store's runtime: {e}")))?;
        let handle = runtime.handle().clone();
        Ok(CheckpointStore { inner: Arc::new(Inner { backend, runtime: Some(runtime), handle }) })
    }

    /// Spawns `f` on the store's runtime with the caller's tracing subscriber and span, so its
    /// warnings land where the caller's logs go; the result comes back on the channel.
    fn spawn<T: Send + 'static>(
        &self,
        f: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> mpsc::Receiver<Result<T, StoreError>> {
        use tracing::Instrument;
        use tracing::instrument::WithSubscriber;
        let (tx, rx) = mpsc::sync_channel(1);
        let f = f.in_current_span().with_current_subscriber();
        self.inner.handle.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx
    }

    /// Runs `f` on the store's runtime and blocks until it is done.
    fn block<T: Send + 'static>(
        &self,
        what: &str,
        f: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.spawn(f).recv().unwrap_or_else(|_| Err(StoreError::Runtime(format!("{what} ended without a result"))))
    }

    fn ticket(&self, key: String, f: impl Future<Output = Result<PartInfo, StoreError>> + Send + 'static) -> PutTicket {
        PutTicket { key, state: TicketState::Waiting { rx: self.spawn(f), _store: self.clone() } }
    }

    /// Writes part `name` of checkpoint `id` (object `ckpt-{id:020}/{name}`) and returns its
    /// entry for the manifest; durable when it returns. `bytes` must be an encoded part
    /// ([`encode_part`](super::encode_part)); it is checked in full (header, length,
    /// checksum). An existing part of that name is replaced.
    pub fn put_part(&self, id: u64, name: &str, bytes: Vec<u8>) -> Result<PartInfo, StoreError> {
        self.submit_part(id, name, bytes).wait()
    }

    /// [`put_part`](Self::put_part) on the store's runtime; returns at once.
    pub fn submit_part(&self, id: u64, name: &str, bytes: Vec<u8>) -> PutTicket {
        let key = manifest::part_key(id, name);
        let checked = check_part(name, &bytes);
        let backend = self.inner.backend.clone();
        let name = name.to_string();
        self.ticket(key.clone(), async move {
            let info = checked?;
            backend.put(&key, bytes, PutMode::Overwrite).await?;
            Ok(PartInfo { name, ..info })
        })
    }

    /// [`submit_part`](Self::submit_part) of the bytes `encode` returns, run off the calling
    /// thread (a timely worker hands over its state and goes on).
    pub fn submit_part_with(
        &self,
        id: u64,
        name: &str,
        encode: impl FnOnce() -> Result<Vec<u8>, String> + Send + 'static,
    ) -> PutTicket {
        let key = manifest::part_key(id, name);
        let backend = self.inner.backend.clone();
        let name = name.to_string();
        self.ticket(key.clone(), async move {
            let bad = |reason: String| StoreError::BadPart { name: name.clone(), reason };
            let bytes = tokio::task::spawn_blocking(encode)
                .await
                .map_err(|e| bad(format!("encoding the part failed: {e}")))?
                .map_err(bad)?;
            let info = check_part(&name, &bytes)?;
            backend.put(&key, bytes, PutMode::Overwrite).await?;
            Ok(PartInfo { name, ..info })
        })
    }

    /// Publishes checkpoint `m.id` by writing `manifest-{id:020}.json`, create-only. Write
    /// it after every part's put has returned. It first checks that every listed part is
    /// stored with the listed size and header checksum, and refuses to publish otherwise.
    ///
    /// A manifest already there for this id: the same checkpoint (equal but for
    /// `created_ms`, say a retry) is success and is left as it was; a different one that is
    /// complete is an error ([`StoreError::Publish`]); one whose parts no longer match what is
    /// stored (its parts were rewritten by a re-run of the epoch after a restore from an older
    /// checkpoint) is replaced. Assumes one manifest writer per id at a time (worker 0).
    pub fn put_manifest(&self, m: &Manifest) -> Result<(), StoreError> {
        self.submit_manifest(m.clone()).wait().map(|_| ())
    }

    /// [`put_manifest`](Self::put_manifest) on the store's runtime; returns at once. The
    /// ticket's `PartInfo` describes the manifest object itself (its size, xxh3 of its JSON).
    pub fn submit_manifest(&self, m: Manifest) -> PutTicket {
        let backend = self.inner.backend.clone();
        self.ticket(manifest::manifest_key(m.id), async move { backend.publish(m).await })
    }

    /// Complete checkpoints, newest first: manifests that parse and whose every part is
    /// stored with the listed size and header checksum (a listing and a ranged read of
    /// [`HEADER_LEN`] bytes per part; [`load`](Self::load) reads every byte).
    pub fn list(&self) -> Result<Vec<Manifest>, StoreError> {
        let backend = self.inner.backend.clone();
        self.block("list", async move {
            let scan = backend.scan().await?;
            let mut complete = Vec::new();
            for &id in scan.manifests.iter().rev() {
                if let Verdict::Complete(m) = backend.check(id).await? {
                    complete.push(m);
                }
            }
            Ok(complete)
        })
    }

    /// The manifest of checkpoint `id` as stored, and `Err` with the reason if that
    /// checkpoint is not complete (see [`list`](Self::list)). For `tickflow checkpoints show`.
    pub fn inspect(&self, id: u64) -> Result<(Manifest, Result<(), String>), StoreError> {
        let backend = self.inner.backend.clone();
        self.block("inspect", async move {
            match backend.check(id).await? {
                Verdict::Complete(m) => Ok((m, Ok(()))),
                Verdict::Broken { manifest: Some(m), reason } => Ok((m, Err(reason))),
                Verdict::Broken { manifest: None, reason } => Err(StoreError::Corrupt { id, reason }),
                Verdict::Missing => Err(backend.not_found(id)),
            }
        })
    }

    /// The newest checkpoint that is complete and whose parts all read back intact. A newer
    /// one that is not (corrupt, partial, missing parts, a manifest that does not parse) is
    /// skipped with a warning naming it, and the one before it is tried. `Ok(None)`: there is
    /// no usable checkpoint. A store error (network, permissions) is returned, not skipped:
    /// falling back to an older checkpoint because S3 was briefly unreachable would be a
    /// surprise.
    pub fn load_latest(&self) -> Result<Option<Loaded>, StoreError> {
        let backend = self.inner.backend.clone();
        self.block("load_latest", async move {
            let scan = backend.scan().await?;
            for &id in scan.manifests.iter().rev() {
                match backend.load(id).await {
                    Ok(loaded) => return Ok(Some(loaded)),
                    Err(e @ (StoreError::Corrupt { .. } | StoreError::NotFound { .. })) => {
                        tracing::warn!(checkpoint = id, reason = %e, store = %backend.url, "skipping checkpoint");
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(None)
        })
    }

    /// Checkpoint `id`, read and checked in full; an error if it is missing or not intact.
    pub fn load(&self, id: u64) -> Result<Loaded, StoreError> {
        let backend = self.inner.backend.clone();
        self.block("load", async move { backend.load(id).await })
    }

    /// Keeps the newest `keep` complete checkpoints (at least one: the newest complete
    /// checkpoint is what a restart needs, so `retain(0)` keeps it too). Deletes every
    /// manifest and part directory older than the oldest kept one, and part directories
    /// without a manifest older than the newest complete checkpoint (left by crashes).
    /// Nothing newer than the newest complete checkpoint is touched (one may be in
    /// progress), and with no complete checkpoint nothing is deleted. Manifests go before
    /// their parts, so a crash half-way never leaves a manifest without its parts.
    pub fn retain(&self, keep: usize) -> Result<RetainReport, StoreError> {
        let backend = self.inner.backend.clone();
        self.block("retain", async move { backend.retain(keep.max(1)).await })
    }
}

/// Checks a part name and the part's bytes before anything is written.
fn check_part(name: &str, bytes: &[u8]) -> Result<PartInfo, StoreError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > 200 || name.starts_with('.') || !name.chars().all(ok_char) {
        return Err(StoreError::BadPart {
            name: name.to_string(),
            reason: "a part name is 1 to 200 of [A-Za-z0-9._-], not starting with '.' (e.g. \"p0-w3.state\")".into(),
        });
    }
    let header = format::verify_part(bytes).map_err(|e| StoreError::BadPart {
        name: name.to_string(),
        reason: format!("not an encoded part (use encode_part): {e}"),
    })?;
    Ok(PartInfo { name: name.to_string(), bytes: bytes.len() as u64, checksum: header.checksum })
}

/// What the cheap check found for one checkpoint id.
enum Verdict {
    /// Manifest parses; every part is stored with its size and header checksum.
    Complete(Manifest),
    /// The manifest exists but the checkpoint is not usable.
    Broken { manifest: Option<Manifest>, reason: String },
    /// No manifest.
    Missing,
}

/// What is at the root: manifest ids and part-directory ids.
struct Scan {
    manifests: BTreeSet<u64>,
    dirs: BTreeSet<u64>,
}

/// The object store plus, for a local directory, its path (for the durable write path).
#[derive(Clone)]
struct Backend {
    store: Arc<dyn ObjectStore>,
    local: Option<Arc<LocalFileSystem>>,
    url: String,
}

/// Removes user, password and query (where S3 settings could be) from a URL.
fn redact(url: &url::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.to_string()
}

/// Masks the password and query of `url` wherever `text` quotes them.
fn scrub(url: &url::Url, mut text: String) -> String {
    for secret in [url.password(), url.query()].into_iter().flatten().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "***");
    }
    text
}

impl Backend {
    fn open(url: &str, create: Create) -> Result<Backend, StoreError> {
        let open_err = |shown: &str, reason: String| StoreError::Open { url: shown.to_string(), reason };
        if url.trim().is_empty() {
            return Err(open_err(
                url,
                "empty URL; expected a directory, file:///dir, s3://bucket/prefix or memory://".into(),
            ));
        }
        if !url.contains("://") {
            return Self::open_dir(PathBuf::from(url), url, create);
        }
        let parsed = url::Url::parse(url).map_err(|e| open_err(url, format!("not a URL: {e}")))?;
        let shown = redact(&parsed);
        // object_store's errors may quote the URL as given.
        let open_err = |shown: &str, reason: String| open_err(shown, scrub(&parsed, reason));
        match parsed.scheme() {
            "file" => {
                let dir = parsed.to_file_path().map_err(|()| open_err(&shown, "not an absolute file path".into()))?;
                Self::open_dir(dir, &shown, create)
            }
            "memory" => Ok(Backend { store: Arc::new(InMemory::new()), local: None, url: shown }),
            "s3" | "s3a" => {
                let s3 = object_store::aws::AmazonS3Builder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(|e| open_err(&shown, format!("S3 settings: {e}")))?;
                let prefix = Path::from(parsed.path().trim_matches('/'));
                Ok(Backend { store: Arc::new(PrefixStore::new(s3, prefix)), local: None, url: shown })
            }
            _ => {
                let settings = ["AWS_", "GOOGLE_", "AZURE_"];
                let env = std::env::vars()
                    .filter(|(k, _)| settings.iter().any(|s| k.starts_with(s)))
                    .map(|(k, v)| (k.to_ascii_lowercase(), v));
                let (store, prefix) =
                    object_store::parse_url_opts(&parsed, env).map_err(|e| open_err(&shown, e.to_string()))?;
                Ok(Backend { store: Arc::new(PrefixStore::new(store, prefix)), local: None, url: shown })
            }
        }
    }

    fn open_dir(dir: PathBuf, shown: &str, create: Create) -> Result<Backend, StoreError> {
        let open_err = |reason: String| StoreError::Open { url: shown.to_string(), reason };
        if create == Create::Yes {
            std::fs::create_dir_all(&dir)
                .map_err(|e| open_err(format!("cannot create directory {}: {e}", dir.display())))?;
        }
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(open_err(format!("{} is not a directory", dir.display()))),
            Err(e) => return Err(open_err(format!("cannot read directory {}: {e}", dir.display()))),
        }
        let fs = LocalFileSystem::new_with_prefix(&dir).map_err(|e| open_err(e.to_string()))?;
        let url = std::fs::canonicalize(&dir).unwrap_or(dir).display().to_string();
        let fs = Arc::new(fs);
        Ok(Backend { store: fs.clone(), local: Some(fs), url })
    }

    /// The root directory of a local store.
    fn local_root(&self) -> Option<PathBuf> {
        let probe = self.local.as_ref()?.path_to_filesystem(&Path::from("probe")).ok()?;
        probe.parent().map(FsPath::to_path_buf)
    }

    fn object_err(&self, op: &'static str, key: &str, e: object_store::Error) -> StoreError {
        StoreError::Object { url: self.url.clone(), op, key: key.to_string(), cause: Arc::new(e) }
    }

    fn not_found(&self, id: u64) -> StoreError {
        StoreError::NotFound { id, url: self.url.clone(), key: manifest::manifest_key(id) }
    }

    /// Writes one object; `Ok(false)`: `PutMode::Create` and the key exists.
    async fn put(&self, key: &str, bytes: Vec<u8>, mode: PutMode) -> Result<bool, StoreError> {
        if let Some(fs) = &self.local {
            let path = fs.path_to_filesystem(&Path::from(key)).map_err(|e| self.object_err("put", key, e))?;
            let create_only = matches!(mode, PutMode::Create);
            return tokio::task::spawn_blocking(move || durable_write(&path, &bytes, create_only))
                .await
                .map_err(|e| StoreError::Runtime(format!("put of {key}: {e}")))?;
        }
        let opts = PutOptions { mode: mode.clone(), ..Default::default() };
        let payload = PutPayload::from(bytes);
        match self.store.put_opts(&Path::from(key), payload.clone(), opts).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            // A store without conditional puts: look first. Racy between two writers, which
            // the one-manifest-writer rule excludes; the local and S3 paths do not get here.
            Err(object_store::Error::NotImplemented { .. }) if matches!(mode, PutMode::Create) => {
                match self.store.head(&Path::from(key)).await {
                    Ok(_) => Ok(false),
                    Err(object_store::Error::NotFound { .. }) => {
                        self.store.put(&Path::from(key), payload).await.map_err(|e| self.object_err("put", key, e))?;
                        Ok(true)
                    }
                    Err(e) => Err(self.object_err("head", key, e)),
                }
            }
            Err(e) => Err(self.object_err("put", key, e)),
        }
    }

    /// `Ok(None)`: no such object.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let got = match self.store.get(&Path::from(key)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.object_err("get", key, e)),
        };
        got.bytes().await.map(Some).map_err(|e| self.object_err("get", key, e))
    }

    async fn get_header(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        match self.store.get_range(&Path::from(key), 0..HEADER_LEN as u64).await {
            Ok(b) => Ok(Some(b)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.object_err("get", key, e)),
        }
    }

    /// Objects directly under `prefix` (or the root), and the sub-prefixes.
    async fn list_dir(&self, prefix: Option<&str>) -> Result<object_store::ListResult, StoreError> {
        let p = prefix.map(Path::from);
        self.store.list_with_delimiter(p.as_ref()).await.map_err(|e| self.object_err("list", prefix.unwrap_or("/"), e))
    }

    async fn scan(&self) -> Result<Scan, StoreError> {
        let root = self.list_dir(None).await?;
        let manifests =
            root.objects.iter().filter_map(|o| o.location.filename().and_then(manifest::parse_manifest_name)).collect();
        let dirs =
            root.common_prefixes.iter().filter_map(|p| p.filename().and_then(manifest::parse_parts_prefix)).collect();
        Ok(Scan { manifests, dirs })
    }

    /// The manifest of `id`: `None` if there is none, `Some(Err(reason))` if it does not parse.
    async fn manifest(&self, id: u64) -> Result<Option<Result<Manifest, String>>, StoreError> {
        let key = manifest::manifest_key(id);
        let Some(bytes) = self.get(&key).await? else { return Ok(None) };
        Ok(Some(parse_manifest(id, &bytes)))
    }

    /// The cheap check of one checkpoint: its manifest, the listing of its parts and each
    /// part's header.
    async fn check(&self, id: u64) -> Result<Verdict, StoreError> {
        let m = match self.manifest(id).await? {
            None => return Ok(Verdict::Missing),
            Some(Err(reason)) => return Ok(Verdict::Broken { manifest: None, reason }),
            Some(Ok(m)) => m,
        };
        Ok(match self.check_parts(&m).await? {
            Ok(()) => Verdict::Complete(m),
            Err(reason) => Verdict::Broken { manifest: Some(m), reason },
        })
    }

    /// Every part of `m` is stored with the listed size and header checksum; `Err(reason)`
    /// names the first that is not.
    async fn check_parts(&self, m: &Manifest) -> Result<Result<(), String>, StoreError> {
        let listed = self.list_dir(Some(&manifest::parts_prefix(m.id))).await?;
        let sizes: BTreeMap<&str, u64> =
            listed.objects.iter().filter_map(|o| Some((o.location.filename()?, o.size))).collect();
        for p in &m.parts {
            match sizes.get(p.name.as_str()) {
                None => return Ok(Err(format!("part {:?} is missing", p.name))),
                Some(&size) if size != p.bytes => {
                    return Ok(Err(format!("part {:?} has {size} bytes, the manifest says {}", p.name, p.bytes)));
                }
                Some(_) => {}
            }
            let key = manifest::part_key(m.id, &p.name);
            let Some(header) = self.get_header(&key).await? else {
                return Ok(Err(format!("part {:?} is missing", p.name)));
            };
            if let Err(reason) = check_header(p, &header) {
                return Ok(Err(reason));
            }
        }
        Ok(Ok(()))
    }

    /// Reads checkpoint `id` in full and checks every byte.
    async fn load(&self, id: u64) -> Result<Loaded, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt { id, reason };
        let manifest = match self.manifest(id).await? {
            None => return Err(self.not_found(id)),
            Some(m) => m.map_err(corrupt)?,
        };
        // Parts are fetched concurrently (S3 latency), checked in manifest order.
        let mut tasks = tokio::task::JoinSet::new();
        for (i, p) in manifest.parts.iter().enumerate() {
            let (backend, key) = (self.clone(), manifest::part_key(id, &p.name));
            tasks.spawn(async move { (i, backend.get(&key).await) });
        }
        let mut fetched: Vec<Option<Bytes>> = vec![None; manifest.parts.len()];
        while let Some(done) = tasks.join_next().await {
            let (i, got) = done.map_err(|e| StoreError::Runtime(format!("load of checkpoint {id}: {e}")))?;
            fetched[i] = got?;
        }
        let mut parts = Vec::with_capacity(manifest.parts.len());
        for (p, bytes) in manifest.parts.iter().zip(fetched) {
            let bytes = bytes.ok_or_else(|| corrupt(format!("part {:?} is missing", p.name)))?;
            if bytes.len() as u64 != p.bytes {
                return Err(corrupt(format!(
                    "part {:?} has {} bytes, the manifest says {}",
                    p.name,
                    bytes.len(),
                    p.bytes
                )));
            }
            let header = format::verify_part(&bytes).map_err(|e| corrupt(format!("part {:?}: {e}", p.name)))?;
            if header.checksum != p.checksum {
                return Err(corrupt(format!(
                    "part {:?} has checksum {:#018x}, the manifest says {:#018x}",
                    p.name, header.checksum, p.checksum
                )));
            }
            parts.push((p.name.clone(), bytes));
        }
        Ok(Loaded { manifest, parts })
    }

    async fn publish(&self, m: Manifest) -> Result<PartInfo, StoreError> {
        let id = m.id;
        let refuse = |reason: String| StoreError::Publish { id, reason };
        if m.version != FORMAT_VERSION {
            return Err(refuse(format!("version {} (this build writes {FORMAT_VERSION})", m.version)));
        }
        let mut names = BTreeSet::new();
        if let Some(dup) = m.parts.iter().find(|p| !names.insert(p.name.as_str())) {
            return Err(refuse(format!("part {:?} is listed twice", dup.name)));
        }
        if let Err(reason) = self.check_parts(&m).await? {
            return Err(refuse(reason));
        }
        let key = manifest::manifest_key(id);
        // Serializing plain structs of numbers, strings and vectors cannot fail.
        let json = serde_json::to_vec_pretty(&m).expect("a Manifest serializes");
        let info = PartInfo { name: key.clone(), bytes: json.len() as u64, checksum: format::checksum(&json) };
        if self.put(&key, json.clone(), PutMode::Create).await? {
            return Ok(info);
        }
        // A manifest is already there.
        match self.check(id).await? {
            Verdict::Complete(existing) if existing.same_checkpoint(&m) => Ok(info),
            Verdict::Complete(_) => Err(refuse(format!("a different, complete manifest is already published ({key})"))),
            Verdict::Broken { manifest: None, reason } => {
                Err(refuse(format!("{key} exists and does not parse ({reason}); remove it by hand if it is garbage")))
            }
            Verdict::Broken { reason, .. } => {
                tracing::warn!(checkpoint = id, reason = %reason, store = %self.url, "replacing a manifest whose parts were rewritten");
                self.put(&key, json, PutMode::Overwrite).await?;
                Ok(info)
            }
            Verdict::Missing => Err(refuse(format!("{key} was there a moment ago and is gone; concurrent writer?"))),
        }
    }

    async fn delete_dir(&self, id: u64, report: &mut RetainReport) -> Result<(), StoreError> {
        let prefix = manifest::parts_prefix(id);
        for o in self.list_dir(Some(&prefix)).await?.objects {
            match self.store.delete(&o.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.object_err("delete", o.location.as_ref(), e)),
            }
            report.objects += 1;
            report.bytes += o.size;
        }
        if let Some(root) = self.local_root() {
            // The directory itself and any staging files a crash left in it.
            let dir = root.join(&prefix);
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &dir, e)),
            }
        }
        Ok(())
    }

    async fn retain(&self, keep: usize) -> Result<RetainReport, StoreError> {
        let scan = self.scan().await?;
        let mut report = RetainReport::default();
        for &id in scan.manifests.iter().rev() {
            if report.kept.len() == keep {
                break;
            }
            if let Verdict::Complete(_) = self.check(id).await? {
                report.kept.push(id);
            }
        }
        let (Some(&newest), Some(&oldest)) = (report.kept.first(), report.kept.last()) else {
            return Ok(report); // no complete checkpoint: nothing is safe to delete
        };
        for &id in scan.manifests.range(..oldest) {
            let key = manifest::manifest_key(id);
            match self.store.delete(&Path::from(key.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.object_err("delete", &key, e)),
            }
            report.objects += 1;
            self.delete_dir(id, &mut report).await?;
            report.deleted.push(id);
        }
        // A directory with a manifest was deleted with it above, or belongs to a kept one.
        for &id in scan.dirs.range(..newest).filter(|id| !scan.manifests.contains(id)) {
            self.delete_dir(id, &mut report).await?;
            report.orphans.push(id);
        }
        if let Some(root) = self.local_root() {
            sweep_staged_manifests(&root, oldest);
        }
        Ok(report)
    }
}

/// Removes `manifest-{id}.json#{n}` staging files older than `oldest` that a crash left.
fn sweep_staged_manifests(root: &FsPath, oldest: u64) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((base, _)) = name.split_once('#') else { continue };
        if manifest::parse_manifest_name(base).is_some_and(|id| id < oldest) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn parse_manifest(id: u64, bytes: &[u8]) -> Result<Manifest, String> {
    let key = manifest::manifest_key(id);
    let m: Manifest = serde_json::from_slice(bytes).map_err(|e| format!("{key} does not parse: {e}"))?;
    if m.version != FORMAT_VERSION {
        return Err(format!("{key} has format version {} (this build reads {FORMAT_VERSION})", m.version));
    }
    if m.id != id {
        return Err(format!("{key} says it is checkpoint {}", m.id));
    }
    Ok(m)
}

fn check_header(p: &PartInfo, header: &[u8]) -> Result<(), String> {
    let h = format::read_header(header).map_err(|e: FormatError| format!("part {:?}: {e}", p.name))?;
    if h.part_len() != p.bytes {
        return Err(format!("part {:?}: its header says {} bytes, the manifest {}", p.name, h.part_len(), p.bytes));
    }
    if h.checksum != p.checksum {
        return Err(format!(
            "part {:?} has checksum {:#018x}, the manifest says {:#018x}",
            p.name, h.checksum, p.checksum
        ));
    }
    Ok(())
}

fn io_err(op: &'static str, path: &FsPath, e: std::io::Error) -> StoreError {
    StoreError::Io { op, path: path.display().to_string(), cause: Arc::new(e) }
}

/// Opens a directory and fsyncs it, so that a rename or link in it is durable.
fn sync_dir(dir: &FsPath) -> Result<(), StoreError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_err("fsync", dir, e))
}

/// The local write path (see the module doc): staging file, fsync, rename or link, fsync
/// of the directory. `Ok(false)`: `create_only` and `path` exists.
fn durable_write(path: &FsPath, bytes: &[u8], create_only: bool) -> Result<bool, StoreError> {
    use std::io::Write;
    // object_store maps keys below the root, so there is always a parent directory.
    let dir = path.parent().expect("an object path has a parent directory");
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|e| io_err("create directory", dir, e))?;
        if let Some(up) = dir.parent() {
            sync_dir(up)?;
        }
    }
    let (mut file, staging) = (1u32..)
        .find_map(|n| {
            let mut staging = path.as_os_str().to_owned();
            staging.push(format!("#{n}"));
            let staging = PathBuf::from(staging);
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&staging) {
                Ok(f) => Some(Ok((f, staging))),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => None,
                Err(e) => Some(Err(io_err("create", &staging, e))),
            }
        })
        .expect("an unbounded range finds a free name or an error")?;
    let result = (|| {
        file.write_all(bytes).map_err(|e| io_err("write", &staging, e))?;
        file.sync_all().map_err(|e| io_err("fsync", &staging, e))?;
        drop(file);
        if create_only {
            match std::fs::hard_link(&staging, path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
                Err(e) => return Err(io_err("link", path, e)),
            }
        } else {
            std::fs::rename(&staging, path).map_err(|e| io_err("rename", path, e))?;
        }
        sync_dir(dir)?;
        Ok(true)
    })();
    if create_only || result.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    result
}
