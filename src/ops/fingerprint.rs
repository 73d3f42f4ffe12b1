//! The no-op fast path: after a successful fetch, the size and modification time of every
//! file it read or wrote are recorded; the next run compares them first and, when none
//! changed, skips `cargo metadata`, resolution and generation altogether.
//!
//! Snapshots live in the cache directory, keyed by the manifest a command starts from.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::cache::Cache;
use crate::digest::Digest;
use crate::manifest::{Dependency, Target};
use crate::ops::fetch::Prepared;
use crate::ops::workspace::Workspace;

/// What a fresh snapshot tells the build, in place of `cargo metadata` and a fetch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    key: String,
    inputs: Vec<Stamp>,
    pub root: PathBuf,
    pub prepared: Vec<Prepared>,
}

/// A file's size and modification time, or its absence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    path: PathBuf,
    state: Option<(u64, u128)>,
}

impl Stamp {
    fn of(path: &Path) -> Self {
        let state = std::fs::metadata(path).ok().map(|m| {
            let modified = m.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok());
            (m.len(), modified.map_or(0, |d| d.as_nanos()))
        });
        Self { path: path.to_path_buf(), state }
    }
}

/// The manifest a command starts from: `--manifest-path`, else the nearest `Cargo.toml` at or
/// above the current directory, as cargo finds it.
fn start_manifest(manifest_path: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = manifest_path {
        return std::fs::canonicalize(path).ok();
    }
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors().map(|d| d.join("Cargo.toml")).find(|p| p.is_file())
}

fn snapshot_path(manifest: &Path) -> Result<PathBuf> {
    let cache = Cache::from_env()?;
    let id = Digest::of(manifest.as_os_str().as_encoded_bytes());
    Ok(cache.root().join("fingerprints").join(format!("{}.json", &id.hex()[..32])))
}

/// The snapshot for this command, if nothing it covers has changed since it was taken.
pub fn fresh(manifest_path: Option<&Path>, key: &str) -> Option<Snapshot> {
    let manifest = start_manifest(manifest_path)?;
    let text = std::fs::read(snapshot_path(&manifest).ok()?).ok()?;
    let snapshot: Snapshot = serde_json::from_slice(&text).ok()?;
    let unchanged = snapshot.key == key && snapshot.inputs.iter().all(|s| Stamp::of(&s.path) == *s);
    tracing::debug!(unchanged, "checked the fetch snapshot");
    unchanged.then_some(snapshot)
}

/// Records what a successful fetch read and wrote.
pub fn record(
    manifest_path: Option<&Path>,
    key: &str,
    workspace: &Workspace,
    prepared: &[Prepared],
) -> Result<()> {
    let Some(manifest) = start_manifest(manifest_path) else { return Ok(()) };
    let snapshot = Snapshot {
        key: key.to_string(),
        inputs: inputs(workspace).iter().map(|p| Stamp::of(p)).collect(),
        root: workspace.root().to_path_buf(),
        prepared: prepared.to_vec(),
    };
    let json = serde_json::to_vec(&snapshot).context("failed to serialize the fetch snapshot")?;
    crate::fsutil::write_atomic(&snapshot_path(&manifest)?, &json)
}

/// Every file whose change could change what a fetch produces.
fn inputs(workspace: &Workspace) -> Vec<PathBuf> {
    let root = workspace.root();
    let mut paths = vec![root.join("Cargo.toml"), root.join("Cargo.lock"), workspace.lock_path()];
    paths.extend(
        workspace.metadata.workspace_packages().iter().map(|p| p.manifest_path.clone().into()),
    );
    if let Some((config, _)) = crate::config::user_config_path() {
        paths.push(config);
    }
    for member in &workspace.members {
        paths.push(member.dir().join("src").join("bindings.rs"));
        walk(&member.dir().join("wit"), &mut paths);
        if let Target::Local { path, .. } = &member.component.target {
            walk(path, &mut paths);
        }
        let local_deps = member.component.dependencies.values().chain(
            match &member.component.target {
                Target::Local { dependencies, .. } => Some(dependencies.values()),
                _ => None,
            }
            .into_iter()
            .flatten(),
        );
        for dep in local_deps {
            if let Dependency::Local { path } = dep {
                walk(path, &mut paths);
            }
        }
    }
    paths.sort();
    paths.dedup();
    paths
}

/// `path` and, for a directory, everything below it.
fn walk(path: &Path, out: &mut Vec<PathBuf>) {
    out.push(path.to_path_buf());
    let Ok(entries) = std::fs::read_dir(path) else { return };
    for entry in entries.flatten() {
        walk(&entry.path(), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_notice_changes_and_absence() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a");
        let missing = Stamp::of(&file);
        assert_eq!(missing.state, None);
        std::fs::write(&file, "one").unwrap();
        let first = Stamp::of(&file);
        assert_ne!(first, missing);
        std::fs::write(&file, "three").unwrap();
        assert_ne!(Stamp::of(&file), first);
    }
}
