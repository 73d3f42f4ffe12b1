//! Version resolution: the pure part, with no I/O.
//!
//! Requirements on one package are grouped by semver compatibility track (the major version,
//! or the minor below 1.0, or the patch below 0.1). Within a track one version is chosen: the
//! highest that satisfies every requirement in it, preferring a locked version that does, as
//! cargo does. Versions of different tracks coexist, as WIT allows (`acme:kv@1.3.2` beside
//! `acme:kv@2.0.1`).
//!
//! The resolver does not fetch: when it needs the versions of a package or the dependencies of
//! a release that the index does not hold yet, it says so, and the caller loads them and asks
//! again.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write;

use anyhow::{Result, bail};
use semver::{Version, VersionReq};

use crate::package::PackageName;
use crate::registry::Registry;

/// A package on a registry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackageKey {
    pub name: PackageName,
    pub registry: Registry,
}

/// Who asked for a requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The manifest of a workspace member (its crate name).
    Root(String),
    /// A dependency a member's manifest names by path, whose WIT references the package.
    Path { member: String, dependency: String },
    /// A release whose WIT references the package.
    Release(PackageKey, Version),
}

/// A version requirement on a package, and who has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: PackageKey,
    pub req: VersionReq,
    pub origin: Origin,
}

/// What the resolver may know about packages.
pub trait Index {
    /// The versions of `key`, ascending; `None` when not loaded yet.
    fn versions(&self, key: &PackageKey) -> Option<&[Version]>;
    /// The requirements of one release; `None` when not loaded yet.
    fn dependencies(
        &self,
        key: &PackageKey,
        version: &Version,
    ) -> Option<&[(PackageKey, VersionReq)]>;
}

/// Something the resolver needs before it can go on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Missing {
    Versions(PackageKey),
    Release(PackageKey, Version),
}

/// The outcome of one resolution attempt.
#[derive(Debug)]
pub enum Outcome {
    Resolved(Resolution),
    Need(BTreeSet<Missing>),
}

/// The chosen versions.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Every requirement (by package and requirement text) and the version chosen for it.
    pub chosen: BTreeMap<(PackageKey, String), Version>,
    /// Every chosen release.
    pub releases: BTreeSet<(PackageKey, Version)>,
}

impl Resolution {
    /// The version chosen for `req` on `key`.
    pub fn version_for(&self, key: &PackageKey, req: &VersionReq) -> Option<&Version> {
        self.chosen.get(&(key.clone(), req.to_string()))
    }
}

/// The semver compatibility track of a version: versions in one track are compatible.
fn track(version: &Version) -> (u64, u64, u64) {
    match (version.major, version.minor) {
        (0, 0) => (0, 0, version.patch),
        (0, minor) => (0, minor, 0),
        (major, _) => (major, 0, 0),
    }
}

/// A bound on the work of one resolution, against requirement sets that never settle.
const MAX_STEPS: usize = 1_000_000;

/// The semver track of a version, as a map key.
type Track = (u64, u64, u64);

/// Resolves `roots` and everything the chosen releases require. `locked` holds the versions
/// the lock file has for each package, which win while they satisfy their requirements.
///
/// A worklist: a package is reconsidered whenever its requirements change, and a change of
/// its chosen releases retracts the requirements of the releases it no longer chooses and
/// adds those of the new ones. It ends at a fixed point, where every package's choice is what
/// its current requirements give.
pub fn resolve(
    roots: &[Requirement],
    index: &dyn Index,
    locked: &BTreeMap<PackageKey, Vec<Version>>,
) -> Result<Outcome> {
    let mut reqs: BTreeMap<PackageKey, Vec<Requirement>> = BTreeMap::new();
    for requirement in roots {
        reqs.entry(requirement.key.clone()).or_default().push(requirement.clone());
    }
    let mut picks: BTreeMap<PackageKey, BTreeMap<Track, Version>> = BTreeMap::new();
    let mut assigned: BTreeMap<PackageKey, Vec<(String, Version)>> = BTreeMap::new();
    let mut queue: VecDeque<PackageKey> = reqs.keys().cloned().collect();
    let mut queued: BTreeSet<PackageKey> = queue.iter().cloned().collect();
    let mut need = BTreeSet::new();
    let empty = Vec::new();

    let mut steps = 0;
    while let Some(key) = queue.pop_front() {
        queued.remove(&key);
        steps += 1;
        if steps > MAX_STEPS {
            bail!("version resolution did not settle after {MAX_STEPS} steps");
        }
        let list: Vec<&Requirement> =
            reqs.get(&key).map(|l| l.iter().collect()).unwrap_or_default();
        let mut chosen = Vec::new();
        if !list.is_empty() {
            match choose(&key, &list, index.versions(&key), locked.get(&key).unwrap_or(&empty)) {
                Choice::Picked(pairs) => {
                    chosen = pairs.into_iter().map(|(req, v)| (req.to_string(), v)).collect()
                }
                Choice::NeedVersions => {
                    need.insert(Missing::Versions(key.clone()));
                    continue;
                }
                Choice::Conflict(message) => {
                    let all: Vec<Requirement> = reqs.values().flatten().cloned().collect();
                    let flat = picks
                        .iter()
                        .flat_map(|(k, by_track)| {
                            by_track.iter().map(|(t, v)| ((k.clone(), *t), v.clone()))
                        })
                        .collect();
                    let available = index.versions(&key).unwrap_or_default();
                    bail!(explain(&message, &key, &list, &all, &flat, available));
                }
            }
        }
        let new: BTreeMap<Track, Version> =
            chosen.iter().map(|(_, v)| (track(v), v.clone())).collect();
        let old = picks.remove(&key).unwrap_or_default();
        assigned.insert(key.clone(), chosen);

        let mut touched = Vec::new();
        for version in old.values().filter(|v| !new.values().any(|n| n == *v)) {
            let origin = Origin::Release(key.clone(), version.clone());
            for (dep, _) in index.dependencies(&key, version).unwrap_or_default() {
                if let Some(list) = reqs.get_mut(dep) {
                    list.retain(|r| r.origin != origin);
                }
                touched.push(dep.clone());
            }
        }
        for version in new.values().filter(|v| !old.values().any(|o| o == *v)) {
            let Some(deps) = index.dependencies(&key, version) else {
                need.insert(Missing::Release(key.clone(), version.clone()));
                continue;
            };
            for (dep, req) in deps {
                let origin = Origin::Release(key.clone(), version.clone());
                let requirement = Requirement { key: dep.clone(), req: req.clone(), origin };
                reqs.entry(dep.clone()).or_default().push(requirement);
                touched.push(dep.clone());
            }
        }
        if !new.is_empty() {
            picks.insert(key.clone(), new);
        }
        for dep in touched {
            if queued.insert(dep.clone()) {
                queue.push_back(dep);
            }
        }
    }

    if !need.is_empty() {
        return Ok(Outcome::Need(need));
    }
    let chosen = assigned
        .into_iter()
        .flat_map(|(key, pairs)| pairs.into_iter().map(move |(req, v)| ((key.clone(), req), v)))
        .collect();
    let releases = picks
        .into_iter()
        .flat_map(|(key, by_track)| by_track.into_values().map(move |v| (key.clone(), v)))
        .collect();
    Ok(Outcome::Resolved(Resolution { chosen, releases }))
}

enum Choice<'a> {
    Picked(Vec<(&'a VersionReq, Version)>),
    NeedVersions,
    Conflict(String),
}

/// Chooses versions of one package for all its requirements: one per track.
fn choose<'a>(
    key: &PackageKey,
    reqs: &[&'a Requirement],
    versions: Option<&[Version]>,
    locked: &[Version],
) -> Choice<'a> {
    // Each requirement goes to the track of the version it would pick alone.
    let mut by_track: BTreeMap<(u64, u64, u64), Vec<&'a Requirement>> = BTreeMap::new();
    for requirement in reqs {
        let alone = locked.iter().rev().find(|v| requirement.req.matches(v)).or_else(|| {
            versions.and_then(|vs| vs.iter().rev().find(|v| requirement.req.matches(v)))
        });
        match (alone, versions) {
            (Some(version), _) => by_track.entry(track(version)).or_default().push(requirement),
            (None, None) => return Choice::NeedVersions,
            (None, Some(vs)) => {
                let message = if vs.is_empty() {
                    format!("package `{}` has no releases on `{}`", key.name, key.registry)
                } else {
                    format!("no release of `{}` matches `{}`", key.name, requirement.req)
                };
                return Choice::Conflict(message);
            }
        }
    }

    let mut picked = Vec::new();
    for (track_id, reqs) in by_track {
        let fits = |v: &&Version| track(v) == track_id && reqs.iter().all(|r| r.req.matches(v));
        let version = match locked.iter().rev().find(fits) {
            Some(version) => version,
            None => match versions {
                None => return Choice::NeedVersions,
                Some(vs) => match vs.iter().rev().find(fits) {
                    Some(version) => version,
                    None => {
                        return Choice::Conflict(format!(
                            "no release of `{}` satisfies every requirement",
                            key.name
                        ));
                    }
                },
            },
        };
        picked.extend(reqs.iter().map(|r| (&r.req, version.clone())));
    }
    Choice::Picked(picked)
}

/// Explains a conflict as the chains of requirements that lead to it, and what is available.
fn explain(
    message: &str,
    key: &PackageKey,
    reqs: &[&Requirement],
    all: &[Requirement],
    picks: &BTreeMap<(PackageKey, (u64, u64, u64)), Version>,
    available: &[Version],
) -> String {
    let mut out = format!("{message}:");
    for requirement in reqs {
        let _ = write!(out, "\n  {}", chain(requirement, all, picks));
    }
    if !available.is_empty() {
        let _ = write!(out, "\n  available on `{}`: {}", key.registry, list_versions(available));
    }
    out
}

/// `hello` needs `acme:store ^1.4` -> `acme:store 1.4.0` needs `acme:kv =1.1.0`.
fn chain(
    requirement: &Requirement,
    all: &[Requirement],
    picks: &BTreeMap<(PackageKey, (u64, u64, u64)), Version>,
) -> String {
    let mut links = Vec::new();
    let mut current = requirement.clone();
    while links.len() < 32 {
        let needs = format!("needs `{} {}`", current.key.name, current.req);
        match &current.origin {
            Origin::Root(member) => {
                links.push(format!("`{member}` {needs}"));
                break;
            }
            Origin::Path { member, dependency } => {
                links.push(format!("`{dependency}` (a path dependency of `{member}`) {needs}"));
                break;
            }
            Origin::Release(key, version) => {
                links.push(format!("`{} {version}` {needs}", key.name));
                let parent = all.iter().find(|r| {
                    &r.key == key
                        && r.req.matches(version)
                        && picks.get(&(key.clone(), track(version))) == Some(version)
                });
                match parent {
                    Some(parent) => current = parent.clone(),
                    None => break,
                }
            }
        }
    }
    links.reverse();
    links.join(" -> ")
}

/// Lists versions newest first, at most ten, for messages.
pub fn list_versions(versions: &[Version]) -> String {
    let mut listed = String::new();
    for (i, version) in versions.iter().rev().take(10).enumerate() {
        let _ = write!(listed, "{}{version}", if i == 0 { "" } else { ", " });
    }
    if versions.len() > 10 {
        listed.push_str(", ...");
    }
    listed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct MemIndex {
        versions: HashMap<PackageKey, Vec<Version>>,
        deps: HashMap<(PackageKey, Version), Vec<(PackageKey, VersionReq)>>,
    }

    impl Index for MemIndex {
        fn versions(&self, key: &PackageKey) -> Option<&[Version]> {
            self.versions.get(key).map(Vec::as_slice)
        }
        fn dependencies(
            &self,
            key: &PackageKey,
            version: &Version,
        ) -> Option<&[(PackageKey, VersionReq)]> {
            self.deps.get(&(key.clone(), version.clone())).map(Vec::as_slice)
        }
    }

    fn key(name: &str) -> PackageKey {
        PackageKey { name: name.parse().unwrap(), registry: "127.0.0.1:5000".parse().unwrap() }
    }

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    impl MemIndex {
        fn add(&mut self, name: &str, version: &str, deps: &[(&str, &str)]) {
            let list = self.versions.entry(key(name)).or_default();
            list.push(v(version));
            list.sort();
            let deps = deps.iter().map(|(n, r)| (key(n), r.parse().unwrap())).collect();
            self.deps.insert((key(name), v(version)), deps);
        }
    }

    fn root(name: &str, req: &str) -> Requirement {
        Requirement {
            key: key(name),
            req: req.parse().unwrap(),
            origin: Origin::Root("app".into()),
        }
    }

    fn run(roots: &[Requirement], index: &MemIndex, locked: &[(&str, &str)]) -> Result<Resolution> {
        let mut lock: BTreeMap<PackageKey, Vec<Version>> = BTreeMap::new();
        for (name, version) in locked {
            lock.entry(key(name)).or_default().push(v(version));
        }
        match resolve(roots, index, &lock)? {
            Outcome::Resolved(r) => Ok(r),
            Outcome::Need(need) => panic!("index incomplete: {need:?}"),
        }
    }

    fn picked(r: &Resolution) -> Vec<String> {
        r.releases.iter().map(|(k, v)| format!("{}@{v}", k.name)).collect()
    }

    #[test]
    fn highest_compatible_versions_transitively() {
        let mut index = MemIndex::default();
        index.add("acme:kv", "1.1.0", &[]);
        index.add("acme:kv", "1.3.2", &[]);
        index.add("acme:kv", "2.0.1", &[]);
        index.add("acme:store", "1.4.0", &[("acme:kv", "^1.1")]);
        let r = run(&[root("acme:store", "1")], &index, &[]).unwrap();
        assert_eq!(picked(&r), ["acme:kv@1.3.2", "acme:store@1.4.0"]);
    }

    #[test]
    fn incompatible_tracks_coexist_and_compatible_ones_unify() {
        let mut index = MemIndex::default();
        for version in ["0.2.0", "0.2.6", "1.3.2", "2.0.1"] {
            index.add("acme:kv", version, &[]);
        }
        index.add("acme:store", "1.4.0", &[("acme:kv", "^1.1"), ("acme:kv", "^0.2.0")]);
        let roots = [root("acme:store", "1"), root("acme:kv", "^2"), root("acme:kv", "0.2.6")];
        let r = run(&roots, &index, &[]).unwrap();
        assert_eq!(
            picked(&r),
            ["acme:kv@0.2.6", "acme:kv@1.3.2", "acme:kv@2.0.1", "acme:store@1.4.0"]
        );
        assert_eq!(r.version_for(&key("acme:kv"), &"^0.2.0".parse().unwrap()), Some(&v("0.2.6")));
    }

    #[test]
    fn locked_versions_win_while_they_satisfy() {
        let mut index = MemIndex::default();
        index.add("acme:kv", "1.1.0", &[]);
        index.add("acme:kv", "1.3.2", &[]);
        let r = run(&[root("acme:kv", "^1.1")], &index, &[("acme:kv", "1.1.0")]).unwrap();
        assert_eq!(picked(&r), ["acme:kv@1.1.0"]);
        let r = run(&[root("acme:kv", "^1.2")], &index, &[("acme:kv", "1.1.0")]).unwrap();
        assert_eq!(picked(&r), ["acme:kv@1.3.2"]);
    }

    #[test]
    fn a_satisfied_lock_needs_no_version_listing() {
        let mut index = MemIndex::default();
        index.deps.insert((key("acme:kv"), v("1.1.0")), Vec::new());
        let mut lock = BTreeMap::new();
        lock.insert(key("acme:kv"), vec![v("1.1.0")]);
        let outcome = resolve(&[root("acme:kv", "^1")], &index, &lock).unwrap();
        assert!(matches!(outcome, Outcome::Resolved(_)), "{outcome:?}");
    }

    #[test]
    fn asks_for_what_it_does_not_know() {
        let index = MemIndex::default();
        let Outcome::Need(need) =
            resolve(&[root("acme:kv", "^1")], &index, &BTreeMap::new()).unwrap()
        else {
            panic!("expected a request for data")
        };
        assert_eq!(need.into_iter().collect::<Vec<_>>(), [Missing::Versions(key("acme:kv"))]);
    }

    #[test]
    fn conflicts_are_explained_as_chains() {
        let mut index = MemIndex::default();
        for version in ["1.1.0", "1.3.2", "2.0.1"] {
            index.add("acme:kv", version, &[]);
        }
        index.add("acme:store", "1.4.0", &[("acme:kv", "=1.1.0")]);
        let roots = [root("acme:store", "^1.4"), root("acme:kv", "^1.3")];
        let err = run(&roots, &index, &[]).unwrap_err().to_string();
        assert!(err.starts_with("no release of `acme:kv` satisfies every requirement:"), "{err}");
        assert!(
            err.contains(
                "`app` needs `acme:store ^1.4` -> `acme:store 1.4.0` needs `acme:kv =1.1.0`"
            ),
            "{err}"
        );
        assert!(err.contains("`app` needs `acme:kv ^1.3`"), "{err}");
        assert!(err.ends_with("available on `127.0.0.1:5000`: 2.0.1, 1.3.2, 1.1.0"), "{err}");
    }

    #[test]
    fn a_path_dependency_is_named_in_the_chain() {
        let mut index = MemIndex::default();
        index.add("acme:kv", "1.1.0", &[]);
        let origin = Origin::Path { member: "app".into(), dependency: "acme:local".into() };
        let from_path = Requirement { origin, ..root("acme:kv", "^1.3") };
        let err = run(&[from_path], &index, &[]).unwrap_err().to_string();
        let chain = "`acme:local` (a path dependency of `app`) needs `acme:kv ^1.3`";
        assert!(err.contains(chain), "{err}");
    }

    #[test]
    fn a_release_no_longer_chosen_takes_its_requirements_with_it() {
        let mut index = MemIndex::default();
        index.add("acme:a", "1.0.0", &[]);
        index.add("acme:a", "1.1.0", &[("acme:b", "^1")]);
        index.add("acme:b", "1.0.0", &[]);
        index.add("acme:c", "1.0.0", &[("acme:a", "=1.0.0")]);
        let r = run(&[root("acme:a", "^1"), root("acme:c", "1")], &index, &[]).unwrap();
        assert_eq!(picked(&r), ["acme:a@1.0.0", "acme:c@1.0.0"]);
    }

    #[test]
    fn prereleases_only_when_asked_for() {
        let mut index = MemIndex::default();
        index.add("acme:kv", "1.0.0", &[]);
        index.add("acme:kv", "1.1.0-rc.1", &[]);
        assert_eq!(picked(&run(&[root("acme:kv", "^1")], &index, &[]).unwrap()), ["acme:kv@1.0.0"]);
        let r = run(&[root("acme:kv", "1.1.0-rc.1")], &index, &[]).unwrap();
        assert_eq!(picked(&r), ["acme:kv@1.1.0-rc.1"]);
    }

    #[test]
    fn no_match_names_the_requirement() {
        let mut index = MemIndex::default();
        index.add("acme:kv", "1.0.0", &[]);
        let err = run(&[root("acme:kv", "^3")], &index, &[]).unwrap_err().to_string();
        assert!(err.starts_with("no release of `acme:kv` matches `^3`:"), "{err}");
        assert!(err.contains("`app` needs `acme:kv ^3`"), "{err}");
    }
}
