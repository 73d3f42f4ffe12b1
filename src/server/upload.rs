//! Blob upload sessions. The content received so far sits in `uploads/<id>`, and a running
//! sha256 of it is kept in memory, so finishing even a large upload needs no second read.
//! After a restart the running digest is rebuilt from the file on the session's next request.
//!
//! Hashing uses ring, whose assembly runs at full speed even in unoptimised (test) builds.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow};
use axum::body::BodyDataStream;
use bytes::BytesMut;
use futures_util::StreamExt;
use ring::digest::{Context as Hasher, SHA256};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::auth::random_hex;
use super::storage::{StoreError, StoreResult, blocking, read_error};
use crate::digest::Digest;

/// How long a request body may stall before its request is abandoned, so that a silent
/// client holds neither a session nor the server's graceful shutdown forever.
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Received chunks are gathered up to this size before each write: few writes, little memory.
const WRITE_BATCH: usize = 1 << 20;

/// The digest of an upload's first `size` bytes.
struct Running {
    hasher: Hasher,
    size: u64,
}

/// Per-session state; its lock keeps two requests to one session from interleaving.
type Slot = Arc<Mutex<Option<Running>>>;

/// The upload sessions of one storage directory.
pub struct Uploads {
    dir: PathBuf,
    max_size: u64,
    slots: StdMutex<HashMap<String, Slot>>,
}

/// An upload whose content is complete, synced and hashed, still held by its request; the
/// caller moves or deletes the file, then calls [`Uploads::forget`].
pub struct Finished {
    pub id: String,
    pub path: PathBuf,
    pub digest: Digest,
    _guard: OwnedMutexGuard<Option<Running>>,
}

/// An open upload file with the digest of what it holds.
struct Sink {
    file: File,
    path: PathBuf,
    hasher: Hasher,
    size: u64,
}

impl Uploads {
    pub fn new(dir: PathBuf, max_size: u64) -> Self {
        Self { dir, max_size, slots: StdMutex::default() }
    }

    fn path(&self, id: &str) -> StoreResult<PathBuf> {
        let valid =
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric());
        if !valid {
            return Err(StoreError::UploadUnknown(id.to_string()));
        }
        Ok(self.dir.join(id))
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // The map holds no invariant a panicking holder could have broken.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts an upload session and returns its id. Knowing an id is what lets a client write
    /// to the session, so ids are 128 bits from the system's secure random source.
    // TODO: bind sessions to their repository; a pusher who learns another's id can finish it.
    pub async fn start(&self) -> StoreResult<String> {
        let id = random_hex(16)?;
        let path = self.dir.join(&id);
        blocking(move || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .with_context(|| format!("failed to create the upload `{}`", path.display()))?;
            Ok(())
        })
        .await?;
        Ok(id)
    }

    /// How many bytes an upload holds so far.
    pub async fn size(&self, id: &str) -> StoreResult<u64> {
        let path = self.path(id)?;
        match tokio::fs::metadata(&path).await {
            Ok(meta) => Ok(meta.len()),
            Err(err) if err.kind() == ErrorKind::NotFound => {
                Err(StoreError::UploadUnknown(id.to_string()))
            }
            Err(err) => Err(read_error(&path, err)),
        }
    }

    /// Appends `body` to an upload and returns its new size. When the client says where the
    /// chunk starts (`offset`), it must be the current end: chunks are never reordered.
    pub async fn append(
        &self,
        id: &str,
        offset: Option<u64>,
        body: BodyDataStream,
    ) -> StoreResult<u64> {
        let (sink, mut guard) = self.open(id).await?;
        if let Some(offset) = offset.filter(|&offset| offset != sink.size) {
            let size = sink.size;
            *guard = Some(sink.into_running());
            return Err(StoreError::UploadOutOfOrder { offset, size });
        }
        let sink = self.receive(id, sink, body).await?;
        let size = sink.size;
        *guard = Some(sink.into_running());
        Ok(size)
    }

    /// Appends the last chunk of an upload, syncs it to disk and hashes it.
    pub async fn finish(&self, id: &str, body: BodyDataStream) -> StoreResult<Finished> {
        let (sink, guard) = self.open(id).await?;
        let sink = self.receive(id, sink, body).await?;
        let sink = blocking(move || {
            sink.file
                .sync_all()
                .with_context(|| format!("failed to sync `{}`", sink.path.display()))?;
            Ok(sink)
        })
        .await?;
        let digest = digest_of(sink.hasher)?;
        Ok(Finished { id: id.to_string(), path: sink.path, digest, _guard: guard })
    }

    /// Forgets a finished upload whose file the caller has moved or deleted.
    pub fn forget(&self, finished: Finished) {
        self.slots().remove(&finished.id);
    }

    /// Discards an upload.
    pub async fn cancel(&self, id: &str) -> StoreResult<()> {
        let path = self.path(id)?;
        self.slots().remove(id);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == ErrorKind::NotFound => {
                Err(StoreError::UploadUnknown(id.to_string()))
            }
            Err(err) => {
                Err(anyhow!(err).context(format!("failed to remove `{}`", path.display())).into())
            }
        }
    }

    /// Removes uploads untouched for `max_age` that no request is using; returns how many.
    pub async fn expire(&self, max_age: Duration) -> StoreResult<usize> {
        let dir = self.dir.clone();
        let stale = blocking(move || Ok(stale_files(&dir, max_age)?)).await?;
        let mut removed = 0;
        for path in stale {
            let Some(id) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                continue;
            };
            // A session some request holds is in use, however old its file looks.
            let slot = self.slots().get(&id).cloned();
            let _guard = match &slot {
                Some(slot) => match slot.try_lock() {
                    Ok(guard) => Some(guard),
                    Err(_) => continue,
                },
                None => None,
            };
            if fs::remove_file(&path).is_ok() {
                removed += 1;
            }
            self.slots().remove(&id);
        }
        Ok(removed)
    }

    /// Takes the session's lock and opens its file.
    async fn open(&self, id: &str) -> StoreResult<(Sink, OwnedMutexGuard<Option<Running>>)> {
        let path = self.path(id)?;
        let slot = self.slots().entry(id.to_string()).or_default().clone();
        let mut guard = slot.lock_owned().await;
        let running = guard.take();
        let id_owned = id.to_string();
        match blocking(move || Sink::open(path, &id_owned, running)).await {
            Ok(sink) => Ok((sink, guard)),
            Err(err) => {
                if matches!(err, StoreError::UploadUnknown(_)) {
                    self.slots().remove(id);
                }
                Err(err)
            }
        }
    }

    /// Streams `body` into the upload. A body beyond the size limit discards the session.
    async fn receive(
        &self,
        id: &str,
        mut sink: Sink,
        mut body: BodyDataStream,
    ) -> StoreResult<Sink> {
        let mut batch = BytesMut::new();
        while let Some(chunk) = next_chunk(&mut body).await? {
            if sink.size + (batch.len() + chunk.len()) as u64 > self.max_size {
                drop(sink);
                let _ = self.cancel(id).await;
                return Err(StoreError::BlobTooLarge { limit: self.max_size });
            }
            batch.extend_from_slice(&chunk);
            if batch.len() >= WRITE_BATCH {
                sink = sink.write(batch.split().freeze()).await?;
            }
        }
        if !batch.is_empty() {
            sink = sink.write(batch.freeze()).await?;
        }
        Ok(sink)
    }
}

async fn next_chunk(body: &mut BodyDataStream) -> StoreResult<Option<bytes::Bytes>> {
    let next = tokio::time::timeout(BODY_IDLE_TIMEOUT, body.next()).await.map_err(|_| {
        StoreError::BodyFailed(format!("no data received for {}s", BODY_IDLE_TIMEOUT.as_secs()))
    })?;
    next.transpose()
        .map_err(|err| StoreError::BodyFailed(format!("failed to receive the upload body: {err}")))
}

impl Sink {
    /// Opens an upload for appending. The running digest is reused when it covers the whole
    /// file, and rebuilt from the file otherwise (after a restart or a failed write).
    fn open(path: PathBuf, id: &str, running: Option<Running>) -> StoreResult<Sink> {
        let file = match OpenOptions::new().append(true).open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == ErrorKind::NotFound => {
                return Err(StoreError::UploadUnknown(id.to_string()));
            }
            Err(err) => return Err(read_error(&path, err)),
        };
        let size = file.metadata().map_err(|err| read_error(&path, err))?.len();
        let hasher = match running {
            Some(running) if running.size == size => running.hasher,
            _ => hash_file(&path)?,
        };
        Ok(Sink { file, path, hasher, size })
    }

    /// Writes and hashes one batch off the async threads.
    async fn write(mut self, batch: bytes::Bytes) -> StoreResult<Sink> {
        blocking(move || {
            self.file
                .write_all(&batch)
                .with_context(|| format!("failed to write `{}`", self.path.display()))?;
            self.hasher.update(&batch);
            self.size += batch.len() as u64;
            Ok(self)
        })
        .await
    }

    fn into_running(self) -> Running {
        Running { hasher: self.hasher, size: self.size }
    }
}

fn digest_of(hasher: Hasher) -> StoreResult<Digest> {
    let hex: String = hasher.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256:{hex}").parse()?)
}

fn hash_file(path: &Path) -> StoreResult<Hasher> {
    let mut file = File::open(path).map_err(|err| read_error(path, err))?;
    let mut hasher = Hasher::new(&SHA256);
    let mut buffer = vec![0; 256 * 1024];
    loop {
        match file.read(&mut buffer).map_err(|err| read_error(path, err))? {
            0 => return Ok(hasher),
            read => hasher.update(&buffer[..read]),
        }
    }
}

/// Files in `dir` last modified more than `max_age` ago.
pub fn stale_files(dir: &Path, max_age: Duration) -> anyhow::Result<Vec<PathBuf>> {
    let cutoff = SystemTime::now().checked_sub(max_age).unwrap_or(SystemTime::UNIX_EPOCH);
    let entries =
        fs::read_dir(dir).with_context(|| format!("failed to read `{}`", dir.display()))?;
    let mut stale = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("failed to read `{}`", dir.display()))?;
        let modified = entry.metadata().and_then(|meta| meta.modified());
        if modified.is_ok_and(|modified| modified < cutoff) {
            stale.push(entry.path());
        }
    }
    Ok(stale)
}
