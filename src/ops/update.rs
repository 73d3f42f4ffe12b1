//! `cargo wreg update`: re-resolve some or all packages to their newest matching releases
//! and rewrite `wkg.lock`, printing what changed the way `cargo update` does.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Error, Result};
use semver::Version;

use crate::Help;
use crate::lock::{LockFile, LockedPackage};
use crate::ops::fetch::{FetchOptions, ResolvedWorkspace, resolve_workspace};
use crate::ops::index::newest_listed;
use crate::ops::workspace::Workspace;
use crate::package::PackageName;
use crate::resolve::{Index as _, PackageKey};
use crate::shell;

#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    pub fetch: FetchOptions,
    /// Only these packages; all when empty.
    pub packages: Vec<PackageName>,
    /// The exact version to move the one named package to.
    pub precise: Option<Version>,
    pub dry_run: bool,
}

pub async fn update(workspace: &Workspace, options: &UpdateOptions) -> Result<()> {
    if options.precise.is_some() && options.packages.len() != 1 {
        return Err(Help::error(
            "--precise needs exactly one package",
            "name it: `cargo wreg update acme:kv --precise 1.3.2`",
        ));
    }
    let lock_path = workspace.lock_path();
    let _guard = workspace.lock_exclusive()?;
    let old_lock = LockFile::load(&lock_path)?;
    for name in &options.packages {
        if !old_lock.packages().iter().any(|p| &p.name == name) {
            return Err(Help::error(
                format!("package `{name}` is not in `{}`", lock_path.display()),
                "run `cargo wreg tree` to see the packages the workspace uses",
            ));
        }
    }

    // Forget what is to be updated, so the resolver picks the newest matching releases.
    let kept = old_lock
        .packages()
        .iter()
        .filter(|p| !options.packages.is_empty() && !options.packages.contains(&p.name))
        .cloned();
    let base = LockFile::from_packages(kept);
    let prefer = match (&options.precise, options.packages.first()) {
        (Some(version), Some(name)) => vec![(name.clone(), version.clone())],
        _ => Vec::new(),
    };
    let resolved = resolve_workspace(workspace, &base, &options.fetch, prefer).await?;
    if let (Some(version), Some(name)) = (&options.precise, options.packages.first())
        && !resolved.resolution.releases.iter().any(|(k, v)| &k.name == name && v == version)
    {
        return Err(precise_refused(&resolved, name, version));
    }
    let new_lock = resolved.index.lock_for(&resolved.resolution);

    let changes = diff(&old_lock, &new_lock);
    for (verb, line) in &changes {
        shell::status(verb, line);
    }
    if options.dry_run {
        shell::warn("not updating the lock file due to dry run");
    } else {
        new_lock.save(&lock_path)?;
    }
    Ok(())
}

/// `Adding`, `Updating` and `Removing` lines between two locks, per package and registry.
fn diff(old: &LockFile, new: &LockFile) -> Vec<(&'static str, String)> {
    let versions = |lock: &LockFile| -> BTreeMap<(PackageName, Option<String>), Vec<Version>> {
        lock.packages()
            .iter()
            .map(|p: &LockedPackage| {
                let mut versions: Vec<Version> =
                    p.versions.iter().map(|v| v.version.clone()).collect();
                versions.sort();
                versions.dedup();
                ((p.name.clone(), p.registry.clone()), versions)
            })
            .collect()
    };
    let (old, new) = (versions(old), versions(new));
    let mut changes = Vec::new();
    let keys: std::collections::BTreeSet<_> = old.keys().chain(new.keys()).collect();
    for key in keys {
        let (before, after) =
            (old.get(key).cloned().unwrap_or_default(), new.get(key).cloned().unwrap_or_default());
        let gone: Vec<_> = before.iter().filter(|v| !after.contains(v)).collect();
        let came: Vec<_> = after.iter().filter(|v| !before.contains(v)).collect();
        let name = &key.0;
        match (gone.as_slice(), came.as_slice()) {
            ([from], [to]) => changes.push(("Updating", format!("{name} v{from} -> v{to}"))),
            _ => {
                changes.extend(gone.iter().map(|v| ("Removing", format!("{name} v{v}"))));
                changes.extend(came.iter().map(|v| ("Adding", format!("{name} v{v}"))));
            }
        }
    }
    changes
}

/// Why `--precise` could not have its way: the release does not exist, or these requirements
/// on the package exclude it.
fn precise_refused(resolved: &ResolvedWorkspace, name: &PackageName, version: &Version) -> Error {
    let keys: BTreeSet<&PackageKey> =
        resolved.resolution.releases.iter().map(|(k, _)| k).filter(|k| &k.name == name).collect();
    let known: Vec<&Version> =
        keys.iter().filter_map(|k| resolved.index.versions(k)).flatten().collect();
    if !known.contains(&version) {
        let help = match newest_listed(known) {
            None => "run `cargo wreg info` for the package's releases".to_string(),
            Some(newest) => format!("the newest releases are {newest}"),
        };
        return Help::error(format!("`{name}` has no release {version}"), help);
    }
    let mut needs = Vec::new();
    for (member, roots) in resolved.roots() {
        for r in roots.iter().filter(|r| &r.key.name == name) {
            needs.push(format!("`{member}` needs `{name} {}`", r.req));
        }
    }
    for (key, chosen) in &resolved.resolution.releases {
        let Some(release) = resolved.index.release(key, chosen) else { continue };
        for (_, req) in release.requirements.iter().filter(|(k, _)| &k.name == name) {
            needs.push(format!("`{} {chosen}` needs `{name} {req}`", key.name));
        }
    }
    Help::error(
        format!(
            "`{name}@{version}` does not satisfy the requirements on `{name}`: {}",
            needs.join("; ")
        ),
        "pick a version that matches them, or change the requirement",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::LockedVersion;

    fn lock(entries: &[(&str, &str)]) -> LockFile {
        LockFile::from_packages(entries.iter().map(|(name, version)| LockedPackage {
            name: name.parse().unwrap(),
            registry: Some("127.0.0.1:5000".into()),
            versions: vec![LockedVersion {
                requirement: format!("^{version}").parse().unwrap(),
                version: version.parse().unwrap(),
                digest: format!("sha256:{}", "0".repeat(64)).parse().unwrap(),
            }],
        }))
    }

    #[test]
    fn changes_read_like_cargo_update() {
        let old = lock(&[("acme:kv", "1.1.0"), ("acme:old", "0.1.0")]);
        let new = lock(&[("acme:kv", "1.3.2"), ("acme:new", "2.0.0")]);
        let lines: Vec<String> =
            diff(&old, &new).into_iter().map(|(v, l)| format!("{v} {l}")).collect();
        assert_eq!(
            lines,
            [
                "Updating acme:kv v1.1.0 -> v1.3.2",
                "Adding acme:new v2.0.0",
                "Removing acme:old v0.1.0"
            ]
        );
        assert!(diff(&old, &old).is_empty());
    }
}
