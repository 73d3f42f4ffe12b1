//! On-disk state of the embedded registry and the rules that guard it.
//!
//! Layout under the storage directory:
//! - `blobs/sha256/<hex>`: content of blobs and manifests, shared by all repositories;
//! - `repositories/<name>/_blobs/<hex>`: empty; blob `<hex>` was pushed to or mounted in `<name>`;
//! - `repositories/<name>/_manifests/<hex>`: media type of a manifest pushed to `<name>`;
//! - `repositories/<name>/_tags/<tag>`: digest of the manifest a tag points to;
//! - `uploads/<id>`: content received so far for an unfinished blob upload.
//!
//! The `_` prefix keeps these directories apart from nested repository names (`a/b` and
//! `a/b/tags` may both exist), since no name component can start with `_`. A repository
//! serves only the blobs linked to it, so a token for one namespace never reads another's.
//!
//! Files become visible only by rename after they are synced, in an order where a crash
//! leaves at worst an unreferenced file: blob content, then its link, then the manifest,
//! then the tag. Readers take no locks.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::fs::{self, File};
use std::hash::{Hash, Hasher};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow};
use axum::body::BodyDataStream;
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::upload::Uploads;
use crate::digest::Digest;
use crate::fsutil::write_atomic;
use crate::oci::names::is_release_tag;

pub const BLOBS: &str = "blobs/sha256";
pub const REPOSITORIES: &str = "repositories";
pub const UPLOADS: &str = "uploads";

/// Manifest media types whose `config` and `layers` must exist as blobs.
const IMAGE_MANIFESTS: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Manifest media types that list other manifests; skopeo pushes these for multi-arch images.
const INDEX_MANIFESTS: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Manifest writes to one repository are serialised; repositories hash onto this many locks,
/// so pushes to different repositories rarely wait for each other.
const MANIFEST_LOCKS: usize = 64;

/// A manifest reference from a URL: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(tag) => f.write_str(tag),
            Self::Digest(digest) => f.write_str(digest.as_str()),
        }
    }
}

/// A manifest as stored: its digest, media type and content.
#[derive(Debug)]
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub content: Bytes,
}

/// Rules the storage enforces.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// Lets a release tag move to other content.
    pub allow_tag_overwrite: bool,
    /// The largest blob an upload may reach, in bytes.
    pub max_blob_size: u64,
}

/// Why a registry operation failed; the HTTP layer turns each into an OCI error response.
#[derive(Debug)]
pub enum StoreError {
    UploadUnknown(String),
    UploadOutOfOrder { offset: u64, size: u64 },
    BodyFailed(String),
    BlobTooLarge { limit: u64 },
    DigestMismatch { expected: Digest, actual: Digest },
    ManifestUnknown { name: String, reference: String },
    ManifestInvalid(String),
    ManifestBlobUnknown(Digest),
    TagExists { tag: String, repository: String },
    Io(anyhow::Error),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UploadUnknown(id) => write!(f, "upload `{id}` not found"),
            Self::UploadOutOfOrder { offset, size } => {
                write!(f, "chunk starts at byte {offset} but the upload holds {size} bytes")
            }
            Self::BodyFailed(message) | Self::ManifestInvalid(message) => f.write_str(message),
            Self::BlobTooLarge { limit } => write!(f, "blob exceeds the limit of {limit} bytes"),
            Self::DigestMismatch { expected, actual } => {
                write!(f, "content hashes to `{actual}`, not `{expected}`")
            }
            Self::ManifestUnknown { name, reference } => {
                write!(f, "manifest `{reference}` not found in `{name}`")
            }
            Self::ManifestBlobUnknown(digest) => {
                write!(f, "blob `{digest}` referenced by the manifest was not pushed")
            }
            Self::TagExists { tag, repository } => {
                write!(f, "tag {tag} already exists in {repository} and releases are immutable")
            }
            Self::Io(err) => write!(f, "{err:#}"),
        }
    }
}

impl From<anyhow::Error> for StoreError {
    fn from(err: anyhow::Error) -> Self {
        Self::Io(err)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The registry's storage directory. Names, tags and digests given to it must already be
/// validated: they become path components.
pub struct Storage {
    root: PathBuf,
    options: StorageOptions,
    uploads: Uploads,
    manifest_locks: Box<[Mutex<()>]>,
}

impl Storage {
    /// Opens (creating if needed) the storage directory at `root`.
    pub async fn open(root: PathBuf, options: StorageOptions) -> anyhow::Result<Self> {
        for dir in [root.join(BLOBS), root.join(REPOSITORIES), root.join(UPLOADS)] {
            tokio::fs::create_dir_all(&dir)
                .await
                .with_context(|| format!("failed to create `{}`", dir.display()))?;
        }
        let uploads = Uploads::new(root.join(UPLOADS), options.max_blob_size);
        let manifest_locks = (0..MANIFEST_LOCKS).map(|_| Mutex::new(())).collect();
        Ok(Self { root, options, uploads, manifest_locks })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(BLOBS).join(digest.hex())
    }

    fn repository_path(&self, name: &str) -> PathBuf {
        self.root.join(REPOSITORIES).join(name)
    }

    fn blob_link(&self, name: &str, digest: &Digest) -> PathBuf {
        self.repository_path(name).join("_blobs").join(digest.hex())
    }

    fn manifest_link(&self, name: &str, digest: &Digest) -> PathBuf {
        self.repository_path(name).join("_manifests").join(digest.hex())
    }

    fn tag_path(&self, name: &str, tag: &str) -> PathBuf {
        self.repository_path(name).join("_tags").join(tag)
    }

    fn manifest_lock(&self, name: &str) -> &Mutex<()> {
        let mut hasher = DefaultHasher::new();
        name.hash(&mut hasher);
        &self.manifest_locks[hasher.finish() as usize % self.manifest_locks.len()]
    }

    /// The size of a blob of repository `name`, or `None` when it has no such blob.
    pub async fn blob_size(&self, name: &str, digest: &Digest) -> StoreResult<Option<u64>> {
        let (link, blob) = (self.blob_link(name, digest), self.blob_path(digest));
        blocking(move || if exists(&link)? { file_size(&blob) } else { Ok(None) }).await
    }

    /// Opens a blob of repository `name` for streaming, with its size.
    pub async fn open_blob(
        &self,
        name: &str,
        digest: &Digest,
    ) -> StoreResult<Option<(tokio::fs::File, u64)>> {
        let (link, blob) = (self.blob_link(name, digest), self.blob_path(digest));
        let opened = blocking(move || {
            if !exists(&link)? {
                return Ok(None);
            }
            let file = match File::open(&blob) {
                Ok(file) => file,
                Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
                Err(err) => return Err(read_error(&blob, err)),
            };
            let size = file.metadata().map_err(|err| read_error(&blob, err))?.len();
            Ok(Some((file, size)))
        });
        Ok(opened.await?.map(|(file, size)| (tokio::fs::File::from_std(file), size)))
    }

    /// Links a blob of repository `from` into `name`; false when `from` has no such blob.
    pub async fn mount_blob(&self, name: &str, from: &str, digest: &Digest) -> StoreResult<bool> {
        if self.blob_size(from, digest).await?.is_none() {
            return Ok(false);
        }
        let (link, blob) = (self.blob_link(name, digest), self.blob_path(digest));
        blocking(move || {
            touch(&blob)?;
            Ok(persist(&link, b"")?)
        })
        .await?;
        Ok(true)
    }

    /// Starts an upload session and returns its id.
    pub async fn start_upload(&self) -> StoreResult<String> {
        self.uploads.start().await
    }

    /// How many bytes an upload holds so far.
    pub async fn upload_size(&self, id: &str) -> StoreResult<u64> {
        self.uploads.size(id).await
    }

    /// Appends a chunk to an upload; see [`Uploads::append`].
    pub async fn append_upload(
        &self,
        id: &str,
        offset: Option<u64>,
        body: BodyDataStream,
    ) -> StoreResult<u64> {
        self.uploads.append(id, offset, body).await
    }

    /// Appends the last chunk to an upload, checks that the whole content hashes to
    /// `expected`, moves it into the blob store and links it to repository `name`. On a
    /// mismatch the upload is discarded.
    pub async fn finish_upload(
        &self,
        name: &str,
        id: &str,
        expected: &Digest,
        body: BodyDataStream,
    ) -> StoreResult<()> {
        let finished = self.uploads.finish(id, body).await?;
        if &finished.digest != expected {
            let actual = finished.digest.clone();
            let _ = fs::remove_file(&finished.path);
            self.uploads.forget(finished);
            return Err(StoreError::DigestMismatch { expected: expected.clone(), actual });
        }
        let (upload, blob) = (finished.path.clone(), self.blob_path(expected));
        let link = self.blob_link(name, expected);
        let committed = blocking(move || {
            commit_blob(&upload, &blob)?;
            Ok(persist(&link, b"")?)
        })
        .await;
        self.uploads.forget(finished);
        committed
    }

    /// Discards an upload.
    pub async fn cancel_upload(&self, id: &str) -> StoreResult<()> {
        self.uploads.cancel(id).await
    }

    /// Removes upload sessions untouched for `max_age`; returns how many.
    pub async fn expire_uploads(&self, max_age: Duration) -> StoreResult<usize> {
        self.uploads.expire(max_age).await
    }

    /// Stores a manifest in repository `name` under `reference` and returns its digest.
    ///
    /// Release tags cannot move: pushing other content under one is refused (unless the
    /// options allow it), while pushing the same content again succeeds.
    pub async fn put_manifest(
        &self,
        name: &str,
        reference: &Reference,
        content_type: Option<&str>,
        content: Bytes,
    ) -> StoreResult<Digest> {
        let parsed = ParsedManifest::parse(&content, content_type)?;
        let digest = Digest::of(&content);
        if let Reference::Digest(expected) = reference
            && expected != &digest
        {
            return Err(StoreError::DigestMismatch { expected: expected.clone(), actual: digest });
        }

        let _guard = self.manifest_lock(name).lock().await;
        if let Reference::Tag(tag) = reference
            && !self.options.allow_tag_overwrite
            && is_release_tag(tag)
            && let Some(existing) = self.tag_digest(name, tag).await?
            && existing != digest
        {
            return Err(StoreError::TagExists { tag: tag.clone(), repository: name.to_string() });
        }
        self.check_references(name, &parsed).await?;
        let files = ManifestFiles {
            blob: self.blob_path(&digest),
            link: self.manifest_link(name, &digest),
            tag: match reference {
                Reference::Tag(tag) => Some(self.tag_path(name, tag)),
                Reference::Digest(_) => None,
            },
        };
        let digest_text = digest.to_string();
        blocking(move || Ok(files.write(&content, &parsed.media_type, &digest_text)?)).await?;
        Ok(digest)
    }

    /// Checks that every blob and child manifest a manifest references exists in repository
    /// `name`, and marks the blobs as used so that a concurrent `gc` keeps them.
    async fn check_references(&self, name: &str, parsed: &ParsedManifest) -> StoreResult<()> {
        let blobs: Vec<_> = parsed
            .blobs
            .iter()
            .map(|digest| (digest.clone(), self.blob_link(name, digest), self.blob_path(digest)))
            .collect();
        let children: Vec<_> = parsed
            .manifests
            .iter()
            .map(|digest| (digest.clone(), self.manifest_link(name, digest)))
            .collect();
        blocking(move || {
            for (digest, link, blob) in blobs {
                if !exists(&link)? || !exists(&blob)? {
                    return Err(StoreError::ManifestBlobUnknown(digest));
                }
                touch(&blob)?;
            }
            for (digest, link) in children {
                if !exists(&link)? {
                    return Err(StoreError::ManifestBlobUnknown(digest));
                }
            }
            Ok(())
        })
        .await
    }

    /// Looks up a manifest of repository `name` by tag or digest, in one trip to the
    /// blocking pool: manifests are what clients fetch most often.
    pub async fn manifest(&self, name: &str, reference: &Reference) -> StoreResult<StoredManifest> {
        let (tag_file, digest) = match reference {
            Reference::Tag(tag) => (Some(self.tag_path(name, tag)), None),
            Reference::Digest(digest) => (None, Some(digest.clone())),
        };
        let (repository, blobs) = (self.repository_path(name), self.root.join(BLOBS));
        let found = blocking(move || {
            let digest = match tag_file {
                Some(tag_file) => read_tag(&tag_file)?,
                None => digest,
            };
            let Some(digest) = digest else {
                return Ok(None);
            };
            let link = repository.join("_manifests").join(digest.hex());
            let Some(media_type) = read_optional(&link)? else {
                return Ok(None);
            };
            let content = read_optional(&blobs.join(digest.hex()))?;
            Ok(content.map(|content| (digest, media_type, content)))
        });
        let Some((digest, media_type, content)) = found.await? else {
            let reference = reference.to_string();
            return Err(StoreError::ManifestUnknown { name: name.to_string(), reference });
        };
        let media_type = String::from_utf8_lossy(&media_type).trim().to_string();
        Ok(StoredManifest { digest, media_type, content: content.into() })
    }

    /// The sorted tags of repository `name`, or `None` when nothing was ever pushed to it.
    pub async fn tags(&self, name: &str) -> StoreResult<Option<Vec<String>>> {
        let repository = self.repository_path(name);
        blocking(move || {
            if !exists(&repository.join("_manifests"))? {
                return Ok(None);
            }
            let dir = repository.join("_tags");
            // Temporary files of unfinished writes start with `.`, which no tag does.
            let mut tags = list_dir(&dir)?;
            tags.retain(|tag| !tag.starts_with('.'));
            tags.sort();
            Ok(Some(tags))
        })
        .await
    }

    /// The sorted names of every repository a manifest was pushed to.
    pub async fn repositories(&self) -> StoreResult<Vec<String>> {
        let root = self.root.join(REPOSITORIES);
        blocking(move || {
            let mut names = Vec::new();
            find_repositories(&root, "", &mut names)?;
            names.sort();
            Ok(names)
        })
        .await
    }

    async fn tag_digest(&self, name: &str, tag: &str) -> StoreResult<Option<Digest>> {
        let path = self.tag_path(name, tag);
        blocking(move || read_tag(&path)).await
    }
}

/// Collects the repositories under `dir`: directories holding `_manifests`, at any depth.
fn find_repositories(dir: &Path, prefix: &str, names: &mut Vec<String>) -> StoreResult<()> {
    for child in list_dir(dir)? {
        if child.starts_with(['_', '.']) {
            continue;
        }
        let path = dir.join(&child);
        if !path.is_dir() {
            continue;
        }
        let name = format!("{prefix}{child}");
        if exists(&path.join("_manifests"))? {
            names.push(name.clone());
        }
        find_repositories(&path, &format!("{name}/"), names)?;
    }
    Ok(())
}

/// The files that make a pushed manifest visible, written in an order where a crash leaves
/// at worst an unreferenced file: content, then the link to the repository, then the tag.
struct ManifestFiles {
    blob: PathBuf,
    link: PathBuf,
    tag: Option<PathBuf>,
}

impl ManifestFiles {
    fn write(&self, content: &[u8], media_type: &str, digest: &str) -> anyhow::Result<()> {
        if self.blob.exists() {
            touch(&self.blob)?;
        } else {
            persist(&self.blob, content)?;
        }
        persist(&self.link, media_type.as_bytes())?;
        if let Some(tag) = &self.tag {
            persist(tag, digest.as_bytes())?;
        }
        Ok(())
    }
}

/// What the registry needs to know about a pushed manifest.
#[derive(Debug)]
pub struct ParsedManifest {
    pub media_type: String,
    /// Blobs that must exist before the manifest is accepted.
    pub blobs: Vec<Digest>,
    /// Manifests an index lists, which must exist in the same repository.
    pub manifests: Vec<Digest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<u64>,
    media_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: Digest,
}

impl ParsedManifest {
    /// Validates a manifest. Its media type comes from its `mediaType` field, or else from
    /// the request's `Content-Type`, as older docker manifests may lack the field; when both
    /// are present they must agree.
    pub fn parse(content: &[u8], content_type: Option<&str>) -> StoreResult<Self> {
        let invalid = |message: String| StoreError::ManifestInvalid(message);
        let header = content_type.map(|ct| ct.split(';').next().unwrap_or(ct).trim().to_string());
        if let Some(header) = &header
            && !is_manifest_type(header)
        {
            return Err(invalid(format!("content type `{header}` is not a manifest media type")));
        }
        let raw: RawManifest = serde_json::from_slice(content)
            .map_err(|err| invalid(format!("manifest is not valid: {err}")))?;
        if raw.schema_version != Some(2) {
            return Err(invalid("manifest must have `schemaVersion` 2".to_string()));
        }
        if let (Some(field), Some(header)) = (&raw.media_type, &header)
            && field != header
        {
            let message = format!("content type `{header}` differs from the mediaType `{field}`");
            return Err(invalid(message));
        }
        let media_type = raw.media_type.or(header).unwrap_or_default();
        if INDEX_MANIFESTS.contains(&media_type.as_str()) {
            let manifests = raw.manifests.into_iter().map(|d| d.digest).collect();
            return Ok(Self { media_type, blobs: Vec::new(), manifests });
        }
        if !IMAGE_MANIFESTS.contains(&media_type.as_str()) {
            return Err(invalid(format!("unsupported manifest media type `{media_type}`")));
        }
        let config = raw.config.ok_or_else(|| invalid("manifest has no `config`".to_string()))?;
        let blobs = std::iter::once(config).chain(raw.layers).map(|d| d.digest).collect();
        Ok(Self { media_type, blobs, manifests: Vec::new() })
    }
}

fn is_manifest_type(media_type: &str) -> bool {
    IMAGE_MANIFESTS.contains(&media_type) || INDEX_MANIFESTS.contains(&media_type)
}

/// Moves a complete, synced upload into the blob store. When the blob already exists the
/// upload is dropped and the blob marked as used, so that a concurrent `gc` keeps it.
fn commit_blob(upload: &Path, blob: &Path) -> StoreResult<()> {
    if exists(blob)? {
        let _ = fs::remove_file(upload);
        return Ok(touch(blob)?);
    }
    fs::rename(upload, blob).with_context(|| {
        format!("failed to move `{}` to `{}`", upload.display(), blob.display())
    })?;
    Ok(sync_parent(blob)?)
}

/// Writes a file atomically and syncs its directory, so the new name survives a power loss.
fn persist(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    write_atomic(path, content)?;
    sync_parent(path)
}

fn sync_parent(path: &Path) -> anyhow::Result<()> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("failed to sync `{}`", dir.display()))
}

/// Sets a file's modification time to now: `gc` spares blobs used within its grace period.
fn touch(path: &Path) -> anyhow::Result<()> {
    File::open(path)
        .and_then(|file| file.set_modified(SystemTime::now()))
        .with_context(|| format!("failed to update the modification time of `{}`", path.display()))
}

pub fn read_error(path: &Path, err: std::io::Error) -> StoreError {
    StoreError::Io(anyhow!(err).context(format!("failed to read `{}`", path.display())))
}

fn exists(path: &Path) -> StoreResult<bool> {
    Ok(file_size(path)?.is_some())
}

fn file_size(path: &Path) -> StoreResult<Option<u64>> {
    match fs::metadata(path) {
        Ok(meta) => Ok(Some(meta.len())),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(read_error(path, err)),
    }
}

fn read_optional(path: &Path) -> StoreResult<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(content) => Ok(Some(content)),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(read_error(path, err)),
    }
}

/// The digest a tag file names; `None` when there is no such tag.
fn read_tag(path: &Path) -> StoreResult<Option<Digest>> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    let digest = String::from_utf8_lossy(&text).trim().parse::<Digest>();
    Ok(Some(digest.with_context(|| format!("corrupt tag file `{}`", path.display()))?))
}

/// The names in a directory; none when it does not exist.
fn list_dir(dir: &Path) -> StoreResult<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(read_error(dir, err)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| read_error(dir, err))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// Runs blocking file work off the async threads.
pub async fn blocking<T, F>(work: F) -> StoreResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> StoreResult<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(err) => Err(StoreError::Io(anyhow!(err).context("a storage task failed"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(byte: &str) -> String {
        format!("sha256:{}", byte.repeat(64))
    }

    #[test]
    fn image_manifest_lists_config_and_layers() {
        let content = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"digest":"{}"}},
                "layers":[{{"digest":"{}"}}]}}"#,
            IMAGE_MANIFESTS[0],
            digest("a"),
            digest("b")
        );
        let parsed = ParsedManifest::parse(content.as_bytes(), None).unwrap();
        assert_eq!(parsed.media_type, IMAGE_MANIFESTS[0]);
        let blobs: Vec<_> = parsed.blobs.iter().map(Digest::to_string).collect();
        assert_eq!(blobs, [digest("a"), digest("b")]);
    }

    #[test]
    fn media_type_falls_back_to_content_type() {
        let content = format!(r#"{{"schemaVersion":2,"config":{{"digest":"{}"}}}}"#, digest("c"));
        let content_type = format!("{}; charset=utf-8", IMAGE_MANIFESTS[1]);
        let parsed = ParsedManifest::parse(content.as_bytes(), Some(&content_type)).unwrap();
        assert_eq!(parsed.media_type, IMAGE_MANIFESTS[1]);
    }

    #[test]
    fn index_references_child_manifests() {
        let content = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"digest":"{}"}}]}}"#,
            INDEX_MANIFESTS[0],
            digest("d")
        );
        let parsed = ParsedManifest::parse(content.as_bytes(), None).unwrap();
        assert!(parsed.blobs.is_empty());
        assert_eq!(parsed.manifests, [digest("d").parse().unwrap()]);
    }

    #[test]
    fn rejects_invalid_manifests() {
        let no_config = format!(r#"{{"schemaVersion":2,"mediaType":"{}"}}"#, IMAGE_MANIFESTS[0]);
        let bad_digest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"digest":"sha256:x"}}}}"#,
            IMAGE_MANIFESTS[0]
        );
        for content in [
            "not json",
            r#"{"schemaVersion":1,"mediaType":"application/vnd.oci.image.index.v1+json"}"#,
            r#"{"schemaVersion":2,"mediaType":"text/plain"}"#,
            r#"{"schemaVersion":2}"#,
            &no_config,
            &bad_digest,
        ] {
            let result = ParsedManifest::parse(content.as_bytes(), None);
            assert!(matches!(result, Err(StoreError::ManifestInvalid(_))), "{content}");
        }
    }

    #[test]
    fn rejects_wrong_content_types() {
        let content = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"digest":"{}"}}}}"#,
            IMAGE_MANIFESTS[0],
            digest("e")
        );
        for content_type in ["text/plain", "application/json", INDEX_MANIFESTS[0]] {
            let result = ParsedManifest::parse(content.as_bytes(), Some(content_type));
            assert!(matches!(result, Err(StoreError::ManifestInvalid(_))), "{content_type}");
        }
        assert!(ParsedManifest::parse(content.as_bytes(), Some(IMAGE_MANIFESTS[0])).is_ok());
    }
}
