//! The content-addressed blob cache shared by all projects of a user: `blobs/sha256/<hex>`
//! under `CARGO_WREG_CACHE_DIR` or the user's cache directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};

use crate::digest::Digest;

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The cache named by `CARGO_WREG_CACHE_DIR`, else `<user cache dir>/cargo-wreg`.
    pub fn from_env() -> Result<Self> {
        let root = match std::env::var_os("CARGO_WREG_CACHE_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => dirs::cache_dir()
                .ok_or_else(|| {
                    anyhow!("cannot find the user's cache directory; set CARGO_WREG_CACHE_DIR")
                })?
                .join("cargo-wreg"),
        };
        Ok(Self::new(root))
    }

    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Reads a cached blob, checking its digest so a corrupted entry is never used.
    /// A missing or corrupted entry reads as `None`.
    pub fn get(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        let path = self.path(digest);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("failed to read `{}`", path.display()));
            }
        };
        if digest.verify(&bytes).is_err() {
            crate::shell::warn(format_args!(
                "the cached `{digest}` at `{}` is corrupted; fetching it again",
                path.display()
            ));
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    /// Stores a blob whose digest the caller has verified.
    pub fn put(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        crate::fsutil::write_atomic(&self.path(digest), bytes).with_context(|| {
            format!("failed to store `{digest}` in the cache at `{}`", self.root.display())
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_path_buf());
        let digest = Digest::of(b"hello");
        assert_eq!(cache.get(&digest).unwrap(), None);
        cache.put(&digest, b"hello").unwrap();
        assert_eq!(cache.get(&digest).unwrap().as_deref(), Some(&b"hello"[..]));
        std::fs::write(cache.path(&digest), b"tampered").unwrap();
        assert_eq!(cache.get(&digest).unwrap(), None);
    }
}
