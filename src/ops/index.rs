//! The package index behind resolution: versions and releases loaded on demand from
//! `wkg.lock` plus the blob cache (no network) or from the registries, concurrently.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, TryStreamExt, stream};
use semver::{Version, VersionReq};

use crate::Help;
use crate::cache::Cache;
use crate::config::{RegistryConfig, Source};
use crate::digest::Digest;
use crate::lock::{LockFile, LockedPackage, LockedVersion};
use crate::oci::Client;
use crate::package::PackageName;
use crate::registry::Registry;
use crate::resolve::{self, Index, Missing, Outcome, PackageKey, Requirement, Resolution};
use crate::shell;
use crate::wit::{Decoded, LocalSource, Versioned, WitPackage, WitText};

/// How many registry requests run at once.
const CONCURRENCY: usize = 8;

/// How the index may use the network.
#[derive(Debug, Clone, Default)]
pub struct IndexOptions {
    pub config: RegistryConfig,
    pub offline: bool,
    /// Registries the manifests name for particular packages.
    pub registries: HashMap<PackageName, Registry>,
    /// Versions to choose where they fit, as if locked (`update --precise`).
    pub prefer: Vec<(PackageName, Version)>,
    /// `wit/deps` folders whose packages may stand in for locked releases missing from the
    /// cache (a project with its WIT vendored builds without any registry).
    pub vendor_dirs: Vec<std::path::PathBuf>,
}

/// A release the index has loaded.
#[derive(Debug, Clone)]
pub struct Release {
    pub digest: Digest,
    pub content: Decoded,
    /// What the release's WIT references, as requirements.
    pub requirements: Vec<(PackageKey, VersionReq)>,
}

pub struct RegistryIndex<'a> {
    lock: &'a LockFile,
    cache: Cache,
    options: IndexOptions,
    versions: HashMap<PackageKey, Vec<Version>>,
    releases: HashMap<(PackageKey, Version), Release>,
}

/// The requirement a WIT reference to `version` stands for: any compatible release.
pub fn compatible(version: &Version) -> VersionReq {
    VersionReq {
        comparators: vec![semver::Comparator {
            op: semver::Op::Caret,
            major: version.major,
            minor: Some(version.minor),
            patch: Some(version.patch),
            pre: version.pre.clone(),
        }],
    }
}

/// The newest few of `versions`, newest first, for a message: `2.0.0, 1.1.0, 1.0.0`; `None`
/// when there are none.
pub fn newest_listed<'v>(versions: impl IntoIterator<Item = &'v Version>) -> Option<String> {
    let mut versions: Vec<&Version> = versions.into_iter().collect();
    versions.sort_unstable_by(|a, b| b.cmp(a));
    let newest: Vec<String> = versions.iter().take(5).map(|v| v.to_string()).collect();
    (!newest.is_empty()).then(|| newest.join(", "))
}

impl Index for RegistryIndex<'_> {
    fn versions(&self, key: &PackageKey) -> Option<&[Version]> {
        self.versions.get(key).map(Vec::as_slice)
    }

    fn dependencies(
        &self,
        key: &PackageKey,
        version: &Version,
    ) -> Option<&[(PackageKey, VersionReq)]> {
        self.releases.get(&(key.clone(), version.clone())).map(|r| r.requirements.as_slice())
    }
}

impl<'a> RegistryIndex<'a> {
    pub fn new(lock: &'a LockFile, options: IndexOptions) -> Result<Self> {
        Ok(Self {
            lock,
            cache: Cache::from_env()?,
            options,
            versions: HashMap::new(),
            releases: HashMap::new(),
        })
    }

    /// The registry of a package: the manifests' choice, else the configuration's, else the
    /// registry of the release that references it, else the one wkg.lock recorded (so a
    /// locked project needs no registry configured). wkg.lock also outranks a built-in
    /// fallback such as `wasi` → `wasi.dev`.
    pub fn registry_of(
        &self,
        package: &PackageName,
        parent: Option<&Registry>,
    ) -> Result<Registry> {
        if let Some(registry) = self.options.registries.get(package) {
            return Ok(registry.clone());
        }
        let locked = || {
            let locked = self.lock.packages().iter().filter(|p| &p.name == package);
            locked.filter_map(|p| p.registry.as_deref()?.parse::<Registry>().ok()).next()
        };
        match self.options.config.choose(package, None) {
            // A built-in fallback (`wasi` → `wasi.dev`) is a guess; where wkg.lock says the
            // package came from is not.
            Some(choice) if choice.source == Source::BuiltIn => {
                return Ok(locked().unwrap_or(choice.registry));
            }
            Some(choice) => return Ok(choice.registry),
            None => {}
        }
        if let Some(parent) = parent {
            return Ok(parent.clone());
        }
        match locked() {
            Some(registry) => Ok(registry),
            None => self.options.config.registry_for(package, None),
        }
    }

    /// Resolves `roots`, loading what the resolver asks for until it has an answer.
    pub async fn resolve(&mut self, roots: &[Requirement]) -> Result<Resolution> {
        let mut locked = self.locked_versions();
        loop {
            self.add_preferences(&mut locked, roots);
            match resolve::resolve(roots, self, &locked)? {
                Outcome::Resolved(resolution) => return Ok(resolution),
                Outcome::Need(missing) => self.load(missing, roots).await?,
            }
        }
    }

    pub fn release(&self, key: &PackageKey, version: &Version) -> Option<&Release> {
        self.releases.get(&(key.clone(), version.clone()))
    }

    /// The WIT text of a chosen release, its references moved to the chosen versions.
    pub fn text(
        &self,
        resolution: &Resolution,
        key: &PackageKey,
        version: &Version,
    ) -> Result<WitText> {
        let release = self
            .release(key, version)
            .with_context(|| format!("`{}@{version}` was resolved but not loaded", key.name))?;
        let chosen = |reference: &Versioned| self.chosen_for(resolution, key, version, reference);
        match &release.content {
            Decoded::Wit(package) => package.text(&chosen),
            Decoded::Component(_) => {
                bail!("`{}@{version}` is a component, where a WIT package is needed", key.name)
            }
        }
    }

    /// The version `resolution` chose for `reference`, which the release `key@version` makes.
    pub fn chosen_for(
        &self,
        resolution: &Resolution,
        key: &PackageKey,
        version: &Version,
        (name, referenced): &Versioned,
    ) -> Option<Version> {
        let release = self.release(key, version)?;
        let key = release.requirements.iter().map(|(k, _)| k).find(|k| &k.name == name)?;
        resolution.version_for(key, &compatible(referenced)).cloned()
    }

    /// The lock describing `resolution`: one entry per requirement.
    pub fn lock_for(&self, resolution: &Resolution) -> LockFile {
        LockFile::from_packages(resolution.chosen.iter().filter_map(|((key, req), version)| {
            let release = self.release(key, version)?;
            Some(LockedPackage {
                name: key.name.clone(),
                registry: Some(key.registry.to_string()),
                versions: vec![LockedVersion {
                    requirement: req.parse().ok()?,
                    version: version.clone(),
                    digest: release.digest.clone(),
                }],
            })
        }))
    }

    fn locked_versions(&self) -> BTreeMap<PackageKey, Vec<Version>> {
        let mut locked: BTreeMap<PackageKey, Vec<Version>> = BTreeMap::new();
        for package in self.lock.packages() {
            let Some(registry) = package.registry.as_deref().and_then(|r| r.parse().ok()) else {
                continue;
            };
            let key = PackageKey { name: package.name.clone(), registry };
            let versions = locked.entry(key).or_default();
            versions.extend(package.versions.iter().map(|v| v.version.clone()));
        }
        for versions in locked.values_mut() {
            versions.sort();
            versions.dedup();
        }
        locked
    }

    /// Adds the preferred versions to every package key known so far.
    fn add_preferences(
        &self,
        locked: &mut BTreeMap<PackageKey, Vec<Version>>,
        roots: &[Requirement],
    ) {
        let known = roots
            .iter()
            .map(|r| &r.key)
            .chain(self.releases.values().flat_map(|r| r.requirements.iter().map(|(k, _)| k)));
        for key in known {
            for (_, version) in self.options.prefer.iter().filter(|(name, _)| name == &key.name) {
                // Only a release the registry lists: a preference is taken without listing,
                // like a lock entry, and one that does not exist would be fetched and fail.
                if !self.versions.get(key).is_some_and(|listed| listed.contains(version)) {
                    continue;
                }
                let versions = locked.entry(key.clone()).or_default();
                if !versions.contains(version) {
                    versions.push(version.clone());
                    versions.sort();
                }
            }
        }
    }

    async fn load(&mut self, missing: BTreeSet<Missing>, roots: &[Requirement]) -> Result<()> {
        let progress = shell::Progress::new("Fetching", missing.len() as u64);
        let this = &*self;
        let wanted = this.wanted(roots);
        let loads = missing.iter().map(|m| this.load_one(m, &wanted, &progress));
        let loaded: Vec<Loaded> =
            stream::iter(loads).buffer_unordered(CONCURRENCY).try_collect().await?;
        for item in loaded {
            match item {
                Loaded::Versions(key, versions, release) => {
                    if let Some((version, release)) = release {
                        self.releases.insert((key.clone(), version), *release);
                    }
                    self.versions.insert(key, versions);
                }
                Loaded::Release(key, version, release) => {
                    self.releases.insert((key, version), *release);
                }
            }
        }
        Ok(())
    }

    /// The requirements known so far on each package.
    fn wanted<'r>(
        &'r self,
        roots: &'r [Requirement],
    ) -> HashMap<&'r PackageKey, Vec<&'r VersionReq>> {
        let mut wanted: HashMap<&PackageKey, Vec<&VersionReq>> = HashMap::new();
        let from_releases = self.releases.values().flat_map(|r| r.requirements.iter());
        for (key, req) in
            roots.iter().map(|r| (&r.key, &r.req)).chain(from_releases.map(|(k, r)| (k, r)))
        {
            wanted.entry(key).or_default().push(req);
        }
        wanted
    }

    async fn load_one(
        &self,
        missing: &Missing,
        wanted: &HashMap<&PackageKey, Vec<&VersionReq>>,
        progress: &shell::Progress,
    ) -> Result<Loaded> {
        match missing {
            Missing::Versions(key) => {
                let versions = self.list_versions(key).await.with_context(|| {
                    format!("failed to list the versions of `{}` on `{}`", key.name, key.registry)
                })?;
                // The newest release that every known requirement accepts is nearly always the
                // one chosen: load it now rather than in another round trip, so a deep graph
                // costs one round per level, not two.
                let reqs = wanted.get(key).map(Vec::as_slice).unwrap_or_default();
                let likely = versions.iter().rev().find(|v| reqs.iter().all(|r| r.matches(v)));
                let mut release = None;
                if let Some(version) = likely
                    && !reqs.is_empty()
                    && let Ok(loaded) = self.load_release(key, version, progress).await
                {
                    release = Some((version.clone(), Box::new(loaded)));
                }
                progress.done();
                Ok(Loaded::Versions(key.clone(), versions, release))
            }
            Missing::Release(key, version) => {
                let release =
                    self.load_release(key, version, progress).await.with_context(|| {
                        format!("failed to fetch `{}@{version}` from `{}`", key.name, key.registry)
                    })?;
                progress.done();
                Ok(Loaded::Release(key.clone(), version.clone(), Box::new(release)))
            }
        }
    }

    fn client(&self, registry: &Registry) -> Result<Client> {
        if self.options.offline {
            return Err(Help::error(
                format!("`{registry}` cannot be contacted with --offline"),
                "wkg.lock and the cache do not hold everything the manifest asks for; run the \
                 command once without --offline (or --frozen) to fill them",
            ));
        }
        self.options.config.client(registry)
    }

    async fn list_versions(&self, key: &PackageKey) -> Result<Vec<Version>> {
        let versions = self.client(&key.registry)?.versions(&key.name).await?;
        if versions.is_empty() {
            return Err(Help::error(
                format!("package `{}` was not found on `{}`", key.name, key.registry),
                format!(
                    "check the name, or publish it first to `{}`: `cargo wreg publish --wit <dir>` \
                     for a WIT package, `cargo wreg publish` in the crate of a component",
                    key.registry
                ),
            ));
        }
        Ok(versions)
    }

    async fn load_release(
        &self,
        key: &PackageKey,
        version: &Version,
        progress: &shell::Progress,
    ) -> Result<Release> {
        let registry_key = key.registry.to_string();
        let locked = self.lock.digest_of(&key.name, &registry_key, version);

        // A locked digest in the cache needs no network at all.
        if let Some(digest) = locked
            && let Some(bytes) = self.cache.get(digest)?
        {
            return self.decode(key, version, digest.clone(), &bytes);
        }

        // A locked release vendored under `wit/deps` needs none either.
        if let Some(digest) = locked
            && let Some(package) = self.vendored(key, version)?
        {
            return self.release_of(key, version, digest.clone(), package);
        }

        let client = self.client(&key.registry)?;
        let release = client.release(&key.name, version).await?;
        let digest = release.layer.digest.clone();
        if let Some(locked) = locked
            && locked != &digest
        {
            bail!(
                "`{}@{version}` on `{}` now has digest `{digest}`, but wkg.lock recorded `{locked}`; \
                 the release changed after it was locked (possible tampering). If you trust the \
                 new content, remove its entry from wkg.lock",
                key.name,
                key.registry
            );
        }
        let bytes = match self.cache.get(&digest)? {
            Some(bytes) => bytes,
            None => {
                progress.start(&format!("{}@{version}", key.name));
                let bytes = client.fetch_layer(&key.name, &release.layer, None).await?;
                self.cache.put(&digest, &bytes)?;
                bytes.to_vec()
            }
        };
        self.decode(key, version, digest, &bytes)
    }

    fn decode(
        &self,
        key: &PackageKey,
        version: &Version,
        digest: Digest,
        bytes: &[u8],
    ) -> Result<Release> {
        let decoded = crate::wit::decode(bytes)
            .with_context(|| format!("`{}@{version}` is not a usable release", key.name))?;
        let package = match decoded {
            Decoded::Wit(package) => package,
            Decoded::Component(component) => {
                // TODO: fall back to the component's own partial copy of a package that no
                // registry has; today a component using unpublished WIT cannot be a dependency.
                let references = component.dependencies().with_context(|| {
                    format!("failed to read what component `{}@{version}` uses", key.name)
                })?;
                let requirements = self.requirements(key, &references)?;
                let content = Decoded::Component(component);
                return Ok(Release { digest, content, requirements });
            }
        };
        self.release_of(key, version, digest, package)
    }

    /// A loaded WIT package as a release, after checking it is the one asked for.
    fn release_of(
        &self,
        key: &PackageKey,
        version: &Version,
        digest: Digest,
        package: WitPackage,
    ) -> Result<Release> {
        if package.name != key.name || &package.version != version {
            return Err(Help::error(
                format!(
                    "the content with digest `{digest}`, taken for `{}@{version}`, holds package \
                     `{}@{}`",
                    key.name, package.name, package.version
                ),
                "if wkg.lock was edited by hand, remove that entry so it is resolved again; \
                 otherwise the registry tags the wrong content",
            ));
        }
        let requirements = self.requirements(key, &package.dependencies)?;
        Ok(Release { digest, content: Decoded::Wit(package), requirements })
    }

    /// What the references of the release `key` require: a compatible release of each, from
    /// the registry configured for it, else from `key`'s.
    fn requirements(
        &self,
        key: &PackageKey,
        references: &[Versioned],
    ) -> Result<Vec<(PackageKey, VersionReq)>> {
        references
            .iter()
            .map(|(name, referenced)| {
                let registry = self.registry_of(name, Some(&key.registry))?;
                Ok((PackageKey { name: name.clone(), registry }, compatible(referenced)))
            })
            .collect()
    }
}

impl RegistryIndex<'_> {
    /// The package from a `wit/deps` folder of the workspace, parsed together with the
    /// vendored packages it references, when the registry cannot be asked (`--offline`, or no
    /// registry configured). Vendored WIT is taken as it stands in the tree: its text cannot
    /// be checked against the digest of the binary release it was written from, so a warning
    /// says it is used.
    fn vendored(&self, key: &PackageKey, version: &Version) -> Result<Option<WitPackage>> {
        if !self.options.offline && self.options.config.registry_for(&key.name, None).is_ok() {
            return Ok(None);
        }
        let dir_name = crate::wit::deps_dir_name(&key.name, version);
        let Some(deps_dir) = self.options.vendor_dirs.iter().find(|d| d.join(&dir_name).is_dir())
        else {
            return Ok(None);
        };
        let read = || -> Result<WitPackage> {
            let main = LocalSource::parse(&deps_dir.join(&dir_name))?;
            let references = main.dependencies()?;
            let mut others: Vec<LocalSource> = Vec::new();
            let mut queue = references.clone();
            while let Some((name, version)) = queue.pop() {
                let path = deps_dir.join(crate::wit::deps_dir_name(&name, &version));
                if others.iter().any(|o| o.path == path) {
                    continue;
                }
                let other = LocalSource::parse(&path)?;
                queue.extend(other.dependencies()?);
                others.push(other);
            }
            let (resolve, id) = crate::wit::assemble_sources(main, others)?;
            WitPackage::with_dependencies(resolve, id, references)
        };
        let package = read().with_context(|| {
            let dir = deps_dir.display();
            format!("failed to read the vendored `{}@{version}` in `{dir}`", key.name)
        })?;
        shell::warn(format_args!(
            "using `{}@{version}` from `{}` as vendored; its text is not checked against wkg.lock",
            key.name,
            deps_dir.display()
        ));
        Ok(Some(package))
    }
}

enum Loaded {
    /// The versions of a package, and the newest release when it could be loaded.
    Versions(PackageKey, Vec<Version>, Option<(Version, Box<Release>)>),
    Release(PackageKey, Version, Box<Release>),
}
