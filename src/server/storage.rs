//! On-disk state of the embedded registry and the rules that guard it.
//!
//! Layout under the storage directory:
//! - `blobs/sha256/<hex>`: content of blobs and manifests, shared by all repositories;
//! - `repositories/<name>/_manifests/<hex>`: media type of a manifest pushed to `<name>`;
//! - `repositories/<name>/_tags/<tag>`: digest of the manifest a tag points to;
//! - `uploads/<id>`: content received so far for an unfinished blob upload.
//!
//! The `_` prefix keeps these directories apart from nested repository names (`a/b` and
//! `a/b/tags` may both exist), since no name component can start with `_`. Files become
//! visible only by rename, so readers never see half a file.

use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use axum::body::BodyDataStream;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tokio::fs::{self, File, OpenOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

use crate::digest::Digest;
use crate::fsutil::write_atomic;

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

/// Why a registry operation failed; the HTTP layer turns each into an OCI error response.
#[derive(Debug)]
pub enum StoreError {
    UploadUnknown(String),
    UploadOutOfOrder { offset: u64, size: u64 },
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
            Self::DigestMismatch { expected, actual } => {
                write!(f, "content hashes to `{actual}`, not `{expected}`")
            }
            Self::ManifestUnknown { name, reference } => {
                write!(f, "manifest `{reference}` not found in `{name}`")
            }
            Self::ManifestInvalid(message) => f.write_str(message),
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

type StoreResult<T> = Result<T, StoreError>;

/// The registry's storage directory. Names, tags and digests given to it must already be
/// validated: they become path components.
pub struct Storage {
    root: PathBuf,
    /// Held while a manifest is written, so checking a tag and moving it is one step.
    manifest_lock: Mutex<()>,
}

impl Storage {
    /// Opens (creating if needed) the storage directory at `root`.
    pub async fn open(root: PathBuf) -> anyhow::Result<Self> {
        for dir in [root.join("blobs/sha256"), root.join("repositories"), root.join("uploads")] {
            fs::create_dir_all(&dir)
                .await
                .with_context(|| format!("failed to create `{}`", dir.display()))?;
        }
        Ok(Self { root, manifest_lock: Mutex::new(()) })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    fn repository_path(&self, name: &str) -> PathBuf {
        self.root.join("repositories").join(name)
    }

    fn upload_path(&self, id: &str) -> StoreResult<PathBuf> {
        let valid =
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric());
        if !valid {
            return Err(StoreError::UploadUnknown(id.to_string()));
        }
        Ok(self.root.join("uploads").join(id))
    }

    /// The size of a blob, or `None` when it does not exist.
    pub async fn blob_size(&self, digest: &Digest) -> StoreResult<Option<u64>> {
        file_size(&self.blob_path(digest)).await
    }

    /// Opens a blob for streaming, with its size; `None` when it does not exist.
    pub async fn open_blob(&self, digest: &Digest) -> StoreResult<Option<(File, u64)>> {
        let path = self.blob_path(digest);
        let file = match File::open(&path).await {
            Ok(file) => file,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(read_error(&path, err)),
        };
        let meta = file.metadata().await.map_err(|err| read_error(&path, err))?;
        Ok(Some((file, meta.len())))
    }

    /// Starts an upload session and returns its id.
    // TODO: expire abandoned uploads; a client that never finishes leaves its file behind.
    pub async fn start_upload(&self) -> StoreResult<String> {
        let dir = self.root.join("uploads");
        // A random name created exclusively: ids never collide and are hard to guess.
        let path = blocking(move || {
            let file = tempfile::Builder::new().prefix("").rand_bytes(32).tempfile_in(&dir);
            let file =
                file.with_context(|| format!("failed to create an upload in `{}`", dir.display()))?;
            Ok(file.keep().context("failed to keep the upload file")?.1)
        })
        .await?;
        let id = path.file_name().and_then(|n| n.to_str()).map(str::to_string);
        Ok(id.ok_or_else(|| anyhow!("upload file `{}` has no UTF-8 name", path.display()))?)
    }

    /// How many bytes an upload holds so far.
    pub async fn upload_size(&self, id: &str) -> StoreResult<u64> {
        let size = file_size(&self.upload_path(id)?).await?;
        size.ok_or_else(|| StoreError::UploadUnknown(id.to_string()))
    }

    /// Appends `body` to an upload and returns its new size. When the client says where the
    /// chunk starts (`offset`), it must be the current end: chunks are never reordered.
    pub async fn append_upload(
        &self,
        id: &str,
        offset: Option<u64>,
        body: BodyDataStream,
    ) -> StoreResult<u64> {
        let path = self.upload_path(id)?;
        let mut file = open_upload(&path, id).await?;
        let size = file.metadata().await.map_err(|err| read_error(&path, err))?.len();
        if let Some(offset) = offset.filter(|&offset| offset != size) {
            return Err(StoreError::UploadOutOfOrder { offset, size });
        }
        Ok(size + write_stream(&mut file, &path, body).await?)
    }

    /// Appends the last chunk to an upload, checks that the whole content hashes to
    /// `expected` and moves it into the blob store. On a mismatch the upload is discarded.
    pub async fn finish_upload(
        &self,
        id: &str,
        expected: &Digest,
        body: BodyDataStream,
    ) -> StoreResult<()> {
        let path = self.upload_path(id)?;
        let mut file = open_upload(&path, id).await?;
        write_stream(&mut file, &path, body).await?;
        file.sync_all().await.with_context(|| format!("failed to sync `{}`", path.display()))?;
        drop(file);

        let actual = hash_file(&path).await?;
        if &actual != expected {
            self.cancel_upload(id).await?;
            return Err(StoreError::DigestMismatch { expected: expected.clone(), actual });
        }
        let blob = self.blob_path(expected);
        fs::rename(&path, &blob).await.with_context(|| {
            format!("failed to move `{}` to `{}`", path.display(), blob.display())
        })?;
        Ok(())
    }

    /// Discards an upload.
    pub async fn cancel_upload(&self, id: &str) -> StoreResult<()> {
        let path = self.upload_path(id)?;
        match fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == ErrorKind::NotFound => {
                Err(StoreError::UploadUnknown(id.to_string()))
            }
            Err(err) => {
                Err(anyhow!(err).context(format!("failed to remove `{}`", path.display())).into())
            }
        }
    }

    /// Stores a manifest in repository `name` under `reference` and returns its digest.
    ///
    /// Tags are releases: a tag that already points to other content is never moved, while
    /// pushing the same content again succeeds.
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
        for blob in &parsed.blobs {
            if self.blob_size(blob).await?.is_none() {
                return Err(StoreError::ManifestBlobUnknown(blob.clone()));
            }
        }

        let _guard = self.manifest_lock.lock().await;
        if let Reference::Tag(tag) = reference
            && let Some(existing) = self.tag_digest(name, tag).await?
            && existing != digest
        {
            return Err(StoreError::TagExists { tag: tag.clone(), repository: name.to_string() });
        }
        let files = ManifestFiles {
            blob: self.blob_path(&digest),
            link: self.repository_path(name).join("_manifests").join(digest.hex()),
            tag: match reference {
                Reference::Tag(tag) => Some(self.repository_path(name).join("_tags").join(tag)),
                Reference::Digest(_) => None,
            },
        };
        let digest_text = digest.to_string();
        blocking(move || files.write(&content, &parsed.media_type, &digest_text)).await?;
        Ok(digest)
    }

    /// Looks up a manifest of repository `name` by tag or digest.
    pub async fn manifest(&self, name: &str, reference: &Reference) -> StoreResult<StoredManifest> {
        let unknown = || StoreError::ManifestUnknown {
            name: name.to_string(),
            reference: reference.to_string(),
        };
        let digest = match reference {
            Reference::Digest(digest) => digest.clone(),
            Reference::Tag(tag) => self.tag_digest(name, tag).await?.ok_or_else(unknown)?,
        };
        let link = self.repository_path(name).join("_manifests").join(digest.hex());
        let media_type = read_optional(&link).await?.ok_or_else(unknown)?;
        let content = read_optional(&self.blob_path(&digest)).await?.ok_or_else(unknown)?;
        let media_type = String::from_utf8_lossy(&media_type).trim().to_string();
        Ok(StoredManifest { digest, media_type, content: content.into() })
    }

    /// The sorted tags of repository `name`, or `None` when nothing was ever pushed to it.
    pub async fn tags(&self, name: &str) -> StoreResult<Option<Vec<String>>> {
        let repository = self.repository_path(name);
        if !fs::try_exists(repository.join("_manifests")).await.unwrap_or(false) {
            return Ok(None);
        }
        let dir = repository.join("_tags");
        let mut entries = match fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Some(Vec::new())),
            Err(err) => return Err(read_error(&dir, err)),
        };
        let mut tags = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(|err| read_error(&dir, err))? {
            // Temporary files of unfinished writes start with `.`, which no tag does.
            if let Some(tag) = entry.file_name().to_str().filter(|t| !t.starts_with('.')) {
                tags.push(tag.to_string());
            }
        }
        tags.sort();
        Ok(Some(tags))
    }

    async fn tag_digest(&self, name: &str, tag: &str) -> StoreResult<Option<Digest>> {
        let path = self.repository_path(name).join("_tags").join(tag);
        let Some(text) = read_optional(&path).await? else {
            return Ok(None);
        };
        let digest = String::from_utf8_lossy(&text).trim().parse::<Digest>();
        Ok(Some(digest.with_context(|| format!("corrupt tag file `{}`", path.display()))?))
    }
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
        if !self.blob.exists() {
            write_atomic(&self.blob, content)?;
        }
        write_atomic(&self.link, media_type.as_bytes())?;
        if let Some(tag) = &self.tag {
            write_atomic(tag, digest.as_bytes())?;
        }
        Ok(())
    }
}

/// What the registry needs to know about a pushed manifest.
#[derive(Debug)]
struct ParsedManifest {
    media_type: String,
    /// Blobs that must exist before the manifest is accepted.
    blobs: Vec<Digest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<u64>,
    media_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: Digest,
}

impl ParsedManifest {
    /// Validates a manifest. Its media type comes from its `mediaType` field, or else from
    /// the request's `Content-Type`, as older docker manifests may lack the field.
    fn parse(content: &[u8], content_type: Option<&str>) -> StoreResult<Self> {
        let invalid = |message: String| StoreError::ManifestInvalid(message);
        let raw: RawManifest = serde_json::from_slice(content)
            .map_err(|err| invalid(format!("manifest is not valid: {err}")))?;
        if raw.schema_version != Some(2) {
            return Err(invalid("manifest must have `schemaVersion` 2".to_string()));
        }
        let header = content_type.map(|ct| ct.split(';').next().unwrap_or(ct).trim().to_string());
        let media_type = raw.media_type.or(header).unwrap_or_default();
        if INDEX_MANIFESTS.contains(&media_type.as_str()) {
            return Ok(Self { media_type, blobs: Vec::new() });
        }
        if !IMAGE_MANIFESTS.contains(&media_type.as_str()) {
            return Err(invalid(format!("unsupported manifest media type `{media_type}`")));
        }
        let config = raw.config.ok_or_else(|| invalid("manifest has no `config`".to_string()))?;
        let blobs = std::iter::once(config).chain(raw.layers).map(|d| d.digest).collect();
        Ok(Self { media_type, blobs })
    }
}

fn read_error(path: &Path, err: std::io::Error) -> StoreError {
    StoreError::Io(anyhow!(err).context(format!("failed to read `{}`", path.display())))
}

async fn file_size(path: &Path) -> StoreResult<Option<u64>> {
    match fs::metadata(path).await {
        Ok(meta) => Ok(Some(meta.len())),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(read_error(path, err)),
    }
}

async fn read_optional(path: &Path) -> StoreResult<Option<Vec<u8>>> {
    match fs::read(path).await {
        Ok(content) => Ok(Some(content)),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(read_error(path, err)),
    }
}

async fn open_upload(path: &Path, id: &str) -> StoreResult<File> {
    match OpenOptions::new().append(true).open(path).await {
        Ok(file) => Ok(file),
        Err(err) if err.kind() == ErrorKind::NotFound => Err(StoreError::UploadUnknown(id.into())),
        Err(err) => Err(read_error(path, err)),
    }
}

/// Copies `body` to the end of `file` chunk by chunk, so no blob is ever held in memory.
async fn write_stream(file: &mut File, path: &Path, mut body: BodyDataStream) -> StoreResult<u64> {
    let mut written = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("failed to receive the upload body")?;
        file.write_all(&chunk)
            .await
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        written += chunk.len() as u64;
    }
    // Later reads of the file's size and content must see every chunk.
    file.flush().await.with_context(|| format!("failed to write `{}`", path.display()))?;
    Ok(written)
}

async fn hash_file(path: &Path) -> StoreResult<Digest> {
    let mut file = File::open(path).await.map_err(|err| read_error(path, err))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let read = file.read(&mut buffer).await.map_err(|err| read_error(path, err))?;
        if read == 0 {
            return Ok(Digest::from_hasher(hasher));
        }
        hasher.update(&buffer[..read]);
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T, F>(work: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> anyhow::Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work).await.context("a storage task failed")?
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
    fn index_references_no_blobs() {
        let content = format!(r#"{{"schemaVersion":2,"mediaType":"{}"}}"#, INDEX_MANIFESTS[0]);
        assert!(ParsedManifest::parse(content.as_bytes(), None).unwrap().blobs.is_empty());
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
}
