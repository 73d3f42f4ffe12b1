//! Garbage collection of a registry storage directory (`cargo wreg registry gc`): removes
//! blobs no manifest references, stale uploads, and leftovers of interrupted writes.
//!
//! It is safe beside a running server because nothing modified within the grace period is
//! removed: a push uploads its blobs before the manifest that references them, and the
//! server marks a blob as used (its modification time) whenever it is uploaded again,
//! mounted or referenced by a new manifest.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

use super::storage::{BLOBS, ParsedManifest, REPOSITORIES, UPLOADS};
use super::upload::stale_files;
use crate::digest::Digest;

/// How a collection runs.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Report what would be removed without removing it.
    pub dry_run: bool,
    /// Files modified more recently than this are kept whatever they are.
    pub grace: Duration,
}

/// What a collection removed, or would remove in a dry run.
#[derive(Debug, Default)]
pub struct GcReport {
    pub blobs: Vec<Digest>,
    pub blob_bytes: u64,
    pub uploads: usize,
    /// Links to removed blobs and temporary files of interrupted writes.
    pub leftovers: usize,
}

/// The files under `repositories/` that collection looks at.
#[derive(Default)]
struct Tree {
    /// Manifest digests with the media type file naming each.
    manifests: Vec<(Digest, PathBuf)>,
    blob_links: Vec<PathBuf>,
    temporary: Vec<PathBuf>,
}

/// Collects garbage in the storage directory at `root`.
pub fn collect_garbage(root: &Path, options: &GcOptions) -> Result<GcReport> {
    if !root.join(BLOBS).is_dir() {
        bail!("`{}` is not a registry storage directory", root.display());
    }
    let cutoff = SystemTime::now().checked_sub(options.grace).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut tree = Tree::default();
    walk(&root.join(REPOSITORIES), &mut tree)?;
    let referenced = referenced_blobs(root, &tree);

    let mut report = GcReport::default();
    sweep_blobs(root, &referenced, cutoff, options.dry_run, &mut report)?;
    let removed: HashSet<&str> = report.blobs.iter().map(Digest::hex).collect();
    for link in &tree.blob_links {
        let hex = link.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let dangling = removed.contains(hex) || !root.join(BLOBS).join(hex).exists();
        if dangling && is_older(link, cutoff) && remove(link, options.dry_run) {
            report.leftovers += 1;
        }
    }
    for file in tree.temporary.iter().filter(|file| is_older(file, cutoff)) {
        report.leftovers += usize::from(remove(file, options.dry_run));
    }
    for upload in stale_files(&root.join(UPLOADS), options.grace)? {
        report.uploads += usize::from(remove(&upload, options.dry_run));
    }
    Ok(report)
}

/// Records the manifests, blob links and temporary files under `dir`, at any depth.
fn walk(dir: &Path, tree: &mut Tree) -> Result<()> {
    for (name, path) in entries(dir)? {
        if name.starts_with('.') {
            tree.temporary.push(path);
            continue;
        }
        let Ok(kind) = fs::symlink_metadata(&path).map(|meta| meta.file_type()) else {
            continue;
        };
        if !kind.is_dir() {
            continue;
        }
        match name.as_str() {
            "_manifests" => {
                for (file, link) in entries(&path)? {
                    match format!("sha256:{file}").parse::<Digest>() {
                        Ok(digest) => tree.manifests.push((digest, link)),
                        Err(_) => tree.temporary.push(link),
                    }
                }
            }
            "_blobs" | "_tags" => {
                for (file, link) in entries(&path)? {
                    if file.starts_with('.') {
                        tree.temporary.push(link);
                    } else if name == "_blobs" {
                        tree.blob_links.push(link);
                    }
                }
            }
            _ => walk(&path, tree)?,
        }
    }
    Ok(())
}

/// Every blob a stored manifest is or references. A manifest that cannot be read or parsed
/// still keeps itself, so that collection never breaks what it does not understand.
fn referenced_blobs(root: &Path, tree: &Tree) -> HashSet<Digest> {
    let mut referenced = HashSet::new();
    for (digest, link) in &tree.manifests {
        referenced.insert(digest.clone());
        let content = fs::read(root.join(BLOBS).join(digest.hex()));
        let media_type = fs::read_to_string(link);
        let (Ok(content), Ok(media_type)) = (content, media_type) else {
            continue;
        };
        match ParsedManifest::parse(&content, Some(media_type.trim())) {
            Ok(parsed) => referenced.extend(parsed.blobs.into_iter().chain(parsed.manifests)),
            Err(err) => tracing::warn!("keeping manifest `{digest}` as it is: {err}"),
        }
    }
    referenced
}

/// Removes blobs that are neither referenced nor recently modified.
// TODO: lock out the server between the age check and the removal; a manifest put in that
// instant may reference a blob removed under it.
fn sweep_blobs(
    root: &Path,
    referenced: &HashSet<Digest>,
    cutoff: SystemTime,
    dry_run: bool,
    report: &mut GcReport,
) -> Result<()> {
    for (name, path) in entries(&root.join(BLOBS))? {
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        if meta.modified().is_ok_and(|modified| modified >= cutoff) {
            continue;
        }
        match format!("sha256:{name}").parse::<Digest>() {
            Ok(digest) if !referenced.contains(&digest) => {
                if remove(&path, dry_run) {
                    report.blob_bytes += meta.len();
                    report.blobs.push(digest);
                }
            }
            Ok(_) => {}
            Err(_) if name.starts_with('.') => {
                report.leftovers += usize::from(remove(&path, dry_run))
            }
            Err(_) => tracing::warn!("leaving `{}`: not a blob", path.display()),
        }
    }
    report.blobs.sort();
    Ok(())
}

fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("failed to read `{}`", dir.display())),
    };
    let mut entries = Vec::new();
    for entry in read {
        let entry = entry.with_context(|| format!("failed to read `{}`", dir.display()))?;
        if let Some(name) = entry.file_name().to_str() {
            entries.push((name.to_string(), entry.path()));
        }
    }
    Ok(entries)
}

fn is_older(path: &Path, cutoff: SystemTime) -> bool {
    fs::metadata(path).and_then(|meta| meta.modified()).is_ok_and(|modified| modified < cutoff)
}

/// Removes a file unless this is a dry run; true when it is (or would be) gone.
fn remove(path: &Path, dry_run: bool) -> bool {
    if dry_run {
        return true;
    }
    match fs::remove_file(path) {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!("failed to remove `{}`: {err}", path.display());
            false
        }
    }
}
