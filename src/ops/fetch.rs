//! `cargo wreg fetch`: resolve every member's target world and WIT dependencies (transitively),
//! reuse `wkg.lock` and the blob cache where they satisfy the manifest, download the rest,
//! then write `wit/deps`, `src/bindings.rs` and `wkg.lock`.
//!
//! Everything is computed in memory first and written at the end, so bad input leaves no
//! file half-updated.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::future::try_join_all;
use semver::{Version, VersionReq};
use wit_parser::{Resolve, WorldId};

use crate::Help;
use crate::bindings;
use crate::cache::Cache;
use crate::config::RegistryConfig;
use crate::digest::Digest;
use crate::lock::{LockFile, LockedPackage, LockedVersion};
use crate::manifest::{Dependency, Target};
use crate::oci::client::Client;
use crate::ops::workspace::{Member, Workspace};
use crate::package::PackageName;
use crate::registry::Registry;
use crate::resolve::select;
use crate::shell;
use crate::wit::{self, LocalSource, Versioned, WitPackage};

/// How a fetch may use the network and the lock.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    pub config: RegistryConfig,
    /// Never touch the network; everything must come from the lock and the cache.
    pub offline: bool,
    /// Fail instead of changing `wkg.lock`.
    pub locked: bool,
}

/// The world a member implements, ready for bindings and the build.
pub struct Prepared {
    pub id: cargo_metadata::PackageId,
    pub name: String,
    pub world: String,
}

/// One package version to resolve on one registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Request {
    package: PackageName,
    requirement: VersionReq,
    registry: Registry,
}

/// Requests sort by package, then requirement text, then registry, which keeps the lock and
/// the order of work deterministic.
impl Ord for Request {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |r: &Self| (r.package.clone(), r.requirement.to_string(), r.registry.clone());
        key(self).cmp(&key(other))
    }
}

impl PartialOrd for Request {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A request resolved to a release and its content.
#[derive(Debug, Clone)]
struct Resolved {
    request: Request,
    digest: Digest,
    wit: WitPackage,
}

/// Resolves, downloads and writes everything the selected members need.
pub async fn fetch(
    workspace: &Workspace,
    members: &[&Member],
    options: &FetchOptions,
) -> Result<Vec<Prepared>> {
    let lock_path = workspace.lock_path();
    let old_lock = LockFile::load(&lock_path)?;

    // Resolve every member's requests together, so shared packages are fetched once and
    // the lock covers the whole workspace.
    let mut plans = Vec::new();
    for member in &workspace.members {
        plans.push(Plan::new(member, &options.config)?);
    }
    let mut fetcher = Fetcher::new(options, &old_lock)?;
    fetcher.registries = plans.iter().flat_map(|p| p.registries.clone()).collect();
    let roots: Vec<Request> = plans.iter().flat_map(|p| p.roots.iter().cloned()).collect();
    let resolved = fetcher.resolve_all(roots).await?;

    let mut outputs = Vec::new();
    let selected: Vec<&str> = members.iter().map(|m| m.package.name.as_str()).collect();
    for plan in plans.iter().filter(|p| selected.contains(&p.member.package.name.as_str())) {
        outputs.push(plan.prepare(workspace, &resolved)?);
    }

    let new_lock = lock_from(&resolved);
    if new_lock != old_lock && options.locked {
        return Err(Help::error(
            format!("`{}` needs to be updated but --locked was passed", lock_path.display()),
            "run `cargo wreg fetch` without --locked (or --frozen) to update it",
        ));
    }

    for output in &outputs {
        output.write()?;
    }
    if new_lock.save(&lock_path)? {
        shell::status(
            "Locking",
            format_args!("{} packages in `{}`", resolved.len(), lock_path.display()),
        );
    }
    Ok(outputs.into_iter().map(|o| o.prepared).collect())
}

/// Fetches the packages that WIT source references (exact versions), and everything they
/// reference in turn, without reading or writing any lock.
pub async fn fetch_packages(
    roots: &[Versioned],
    config: &RegistryConfig,
) -> Result<Vec<WitPackage>> {
    let lock = LockFile::default();
    let options = FetchOptions { config: config.clone(), ..FetchOptions::default() };
    let fetcher = Fetcher::new(&options, &lock)?;
    let requests = roots
        .iter()
        .map(|(package, version)| {
            let registry = config.registry_for(package, None)?;
            Ok(Request { package: package.clone(), requirement: exact(version), registry })
        })
        .collect::<Result<Vec<_>>>()?;
    let resolved = fetcher.resolve_all(requests).await?;
    Ok(resolved.into_values().map(|r| r.wit).collect())
}

fn lock_from(resolved: &BTreeMap<Request, Resolved>) -> LockFile {
    LockFile::from_packages(resolved.values().map(|r| LockedPackage {
        name: r.request.package.clone(),
        registry: Some(r.request.registry.to_string()),
        versions: vec![LockedVersion {
            requirement: r.request.requirement.clone(),
            version: r.wit.version.clone(),
            digest: r.digest.clone(),
        }],
    }))
}

/// What one member needs before anything is fetched.
struct Plan<'a> {
    member: &'a Member,
    roots: Vec<Request>,
    /// The registry request of the target package, for a registry target.
    target: Option<Request>,
    /// The parsed WIT source, for a local target.
    local: Option<LocalSource>,
    /// WIT packages the manifest names by `path`.
    local_deps: Vec<LocalDep>,
    registries: HashMap<PackageName, Registry>,
}

/// A `{ path = ... }` dependency.
enum LocalDep {
    /// A binary-encoded WIT package (`.wasm`), already complete.
    Encoded(WitPackage),
    /// WIT text, assembled once the registry packages it references are fetched.
    Source { path: PathBuf, name: Versioned, dependencies: Vec<Versioned> },
}

impl LocalDep {
    fn load(path: &Path) -> Result<Self> {
        if path.extension().is_some_and(|e| e == "wasm") {
            let bytes = std::fs::read(path)
                .with_context(|| format!("failed to read `{}`", path.display()))?;
            let package = wit::decode_package(&bytes)
                .with_context(|| format!("`{}` is not a WIT package", path.display()))?;
            return Ok(Self::Encoded(package));
        }
        let source = LocalSource::parse(path)?;
        let name = wit::exact_name(source.name())
            .with_context(|| format!("failed to read the WIT package at `{}`", path.display()))?;
        Ok(Self::Source { path: path.to_path_buf(), name, dependencies: source.dependencies()? })
    }

    fn name(&self) -> Versioned {
        match self {
            Self::Encoded(package) => (package.name.clone(), package.version.clone()),
            Self::Source { name, .. } => name.clone(),
        }
    }

    fn dependencies(&self) -> &[Versioned] {
        match self {
            Self::Encoded(package) => &package.dependencies,
            Self::Source { dependencies, .. } => dependencies,
        }
    }

    /// The package as WIT text, its references taken from `fetched`.
    fn materialize(&self, fetched: &[WitPackage]) -> Result<WitPackage> {
        let (path, name, dependencies) = match self {
            Self::Encoded(package) => return Ok(package.clone()),
            Self::Source { path, name, dependencies } => (path, name, dependencies),
        };
        let deps = closure(dependencies, fetched);
        let (resolve, id) = wit::assemble(LocalSource::parse(path)?, &deps)?;
        let text = wit::print_package(&resolve, id)?;
        Ok(WitPackage {
            name: name.0.clone(),
            version: name.1.clone(),
            dependencies: dependencies.clone(),
            text,
        })
    }
}

impl<'a> Plan<'a> {
    fn new(member: &'a Member, config: &RegistryConfig) -> Result<Self> {
        let component = &member.component;
        let mut plan = Plan {
            member,
            roots: Vec::new(),
            target: None,
            local: None,
            local_deps: Vec::new(),
            registries: HashMap::new(),
        };
        let mut explicit: Vec<&Dependency> = component.dependencies.values().collect();
        match &component.target {
            Target::Registry { package, requirement, registry, .. } => {
                let registry = config.registry_for(package, registry.as_ref())?;
                let request = Request {
                    package: package.clone(),
                    requirement: requirement.clone(),
                    registry,
                };
                plan.target = Some(request.clone());
                plan.roots.push(request);
            }
            Target::Local { path, dependencies, .. } => {
                explicit.extend(dependencies.values());
                let source = LocalSource::parse(path)?;
                plan.local = Some(source);
            }
            Target::None => {}
        }
        for dep in explicit {
            match dep {
                Dependency::Registry { package, requirement, registry } => {
                    let registry = config.registry_for(package, registry.as_ref())?;
                    plan.registries.insert(package.clone(), registry.clone());
                    plan.roots.push(Request {
                        package: package.clone(),
                        requirement: requirement.clone(),
                        registry,
                    });
                }
                Dependency::Local { path } => {
                    let dep = LocalDep::load(path).with_context(|| {
                        format!(
                            "failed to read path dependency `{}` of `{}`",
                            path.display(),
                            member.package.manifest_path
                        )
                    })?;
                    plan.local_deps.push(dep);
                }
            }
        }

        // What local WIT references comes from the registry unless a path dependency has it.
        let provided: Vec<Versioned> = plan.local_deps.iter().map(LocalDep::name).collect();
        let mut referenced: Vec<Versioned> = match &plan.local {
            Some(local) => local.dependencies()?,
            None => Vec::new(),
        };
        referenced.extend(plan.local_deps.iter().flat_map(|d| d.dependencies().iter().cloned()));
        for (package, version) in referenced {
            if provided.iter().any(|(n, v)| n == &package && v == &version) {
                continue;
            }
            let registry = match plan.registries.get(&package) {
                Some(r) => r.clone(),
                None => config.registry_for(&package, None)?,
            };
            plan.roots.push(Request { package, requirement: exact(&version), registry });
        }
        Ok(plan)
    }

    /// Assembles the member's world and generates its bindings, in memory.
    fn prepare(
        &self,
        workspace: &Workspace,
        resolved: &BTreeMap<Request, Resolved>,
    ) -> Result<Output> {
        let manifest = &self.member.package.manifest_path;
        let component = &self.member.component;
        let mut all: Vec<WitPackage> = resolved.values().map(|r| r.wit.clone()).collect();
        let locals =
            self.local_deps.iter().map(|d| d.materialize(&all)).collect::<Result<Vec<_>>>()?;
        all.extend(locals);
        let (resolve, package, world_name) = match (&component.target, &self.target, &self.local) {
            (Target::Registry { world, .. }, Some(request), _) => {
                let main = &resolved[request].wit;
                let deps = closure(&main.dependencies, &all);
                let (resolve, id) = wit::assemble_fetched(main, &deps)?;
                (resolve, id, world.clone())
            }
            (Target::Local { world, .. }, _, Some(local)) => {
                let deps = closure(&local.dependencies()?, &all);
                let source = LocalSource::parse(&local.path)?;
                let (resolve, id) = wit::assemble(source, &deps)?;
                (resolve, id, world.clone())
            }
            _ => {
                return Err(Help::error(
                    format!("`{manifest}` sets no target world for `[package.metadata.component]`"),
                    "add `target = \"ns:pkg/world@version\"` for a registry world, or create a `wit` \
                     directory with the world to implement",
                ));
            }
        };
        let world = resolve
            .select_world(&[package], world_name.as_deref())
            .with_context(|| format!("failed to select the target world for `{manifest}`"))?;
        let runtime = bindings::detect_runtime(&workspace.metadata, &self.member.package)?;
        let source = bindings::generate(&resolve, world, &component.bindings, &runtime)
            .with_context(|| format!("failed to generate bindings for `{manifest}`"))?;
        let roots: Vec<Versioned> = self
            .roots
            .iter()
            .map(|r| (r.package.clone(), resolved[r].wit.version.clone()))
            .chain(self.local_deps.iter().map(LocalDep::name))
            .collect();
        let needed = closure(&roots, &all);
        Ok(Output {
            prepared: Prepared {
                id: self.member.package.id.clone(),
                name: self.member.package.name.to_string(),
                world: world_display(&resolve, world),
            },
            dir: self.member.dir().to_path_buf(),
            bindings: source,
            deps: needed,
        })
    }
}

/// `ns:pkg/world@version`, the way users write targets.
fn world_display(resolve: &Resolve, world: WorldId) -> String {
    let world = &resolve.worlds[world];
    match world.package.map(|p| &resolve.packages[p].name) {
        Some(name) => {
            let version = name.version.as_ref().map(|v| format!("@{v}")).unwrap_or_default();
            format!("{}:{}/{}{version}", name.namespace, name.name, world.name)
        }
        None => world.name.clone(),
    }
}

/// The packages `roots` need, transitively, found among `all`.
fn closure(roots: &[Versioned], all: &[WitPackage]) -> Vec<WitPackage> {
    let mut out: Vec<WitPackage> = Vec::new();
    let mut queue: Vec<Versioned> = roots.to_vec();
    while let Some((name, version)) = queue.pop() {
        if out.iter().any(|p| p.name == name && p.version == version) {
            continue;
        }
        if let Some(package) = all.iter().find(|p| p.name == name && p.version == version) {
            queue.extend(package.dependencies.iter().cloned());
            out.push(package.clone());
        }
    }
    out.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    out
}

/// Files to write for one member.
struct Output {
    prepared: Prepared,
    dir: std::path::PathBuf,
    bindings: String,
    deps: Vec<WitPackage>,
}

impl Output {
    fn write(&self) -> Result<()> {
        wit::write_deps(&self.dir.join("wit").join("deps"), &self.deps)?;
        let path = self.dir.join("src").join("bindings.rs");
        if crate::fsutil::write_if_changed(&path, self.bindings.as_bytes())? {
            shell::status(
                "Generating",
                format_args!("bindings for {} ({})", self.prepared.name, path.display()),
            );
        }
        Ok(())
    }
}

fn exact(version: &Version) -> VersionReq {
    VersionReq {
        comparators: vec![semver::Comparator {
            op: semver::Op::Exact,
            major: version.major,
            minor: Some(version.minor),
            patch: Some(version.patch),
            pre: version.pre.clone(),
        }],
    }
}

/// Resolves requests against the lock, the cache and the registries.
struct Fetcher<'a> {
    lock: &'a LockFile,
    cache: Cache,
    offline: bool,
    clients: Mutex<HashMap<Registry, Client>>,
    registries: HashMap<PackageName, Registry>,
    config: RegistryConfig,
}

impl<'a> Fetcher<'a> {
    fn new(options: &FetchOptions, lock: &'a LockFile) -> Result<Self> {
        Ok(Self {
            lock,
            cache: Cache::from_env()?,
            offline: options.offline,
            clients: Mutex::new(HashMap::new()),
            registries: HashMap::new(),
            config: options.config.clone(),
        })
    }

    fn client(&self, registry: &Registry) -> Result<Client> {
        let mut clients = self.clients.lock().map_err(|_| anyhow!("client cache poisoned"))?;
        if let Some(client) = clients.get(registry) {
            return Ok(client.clone());
        }
        let client = Client::new(registry.clone())?;
        clients.insert(registry.clone(), client.clone());
        Ok(client)
    }

    /// Resolves `roots` and everything they reference, one breadth-first level at a time
    /// with the requests of a level running concurrently.
    async fn resolve_all(&self, roots: Vec<Request>) -> Result<BTreeMap<Request, Resolved>> {
        let mut done: BTreeMap<Request, Resolved> = BTreeMap::new();
        let mut level = roots;
        while !level.is_empty() {
            level.sort();
            level.dedup();
            level.retain(|r| !done.contains_key(r));
            let results = try_join_all(level.iter().map(|r| self.resolve_one(r))).await?;
            let mut next = Vec::new();
            for resolved in results {
                for (package, version) in &resolved.wit.dependencies {
                    let registry = match self.registries.get(package) {
                        Some(r) => r.clone(),
                        None => {
                            self.config.registry_for(package, Some(&resolved.request.registry))?
                        }
                    };
                    next.push(Request {
                        package: package.clone(),
                        requirement: exact(version),
                        registry,
                    });
                }
                done.insert(resolved.request.clone(), resolved);
            }
            level = next;
        }
        Ok(done)
    }

    async fn resolve_one(&self, request: &Request) -> Result<Resolved> {
        let Request { package, requirement, registry } = request;
        let resolved = self.resolve_inner(request).await.with_context(|| {
            format!("failed to fetch `{package}` (`{requirement}`) from `{registry}`")
        })?;
        Ok(resolved)
    }

    async fn resolve_inner(&self, request: &Request) -> Result<Resolved> {
        let Request { package, requirement, registry } = request;
        let registry_key = registry.to_string();
        let locked = self
            .lock
            .find(package, &registry_key, requirement)
            .filter(|l| requirement.matches(&l.version));

        // Fast path: locked and cached means no network at all.
        if let Some(locked) = locked
            && let Some(bytes) = self.cache.get(&locked.digest)?
        {
            return self.decoded(request, &locked.version, locked.digest.clone(), &bytes);
        }
        if self.offline {
            return Err(Help::error(
                match locked {
                    Some(l) => format!(
                        "`{package}@{}` is locked but not in the cache, and --offline forbids downloading it",
                        l.version
                    ),
                    None => format!(
                        "`{package}` (`{requirement}`) is not in wkg.lock, and --offline forbids resolving it"
                    ),
                },
                "run the command once without --offline (or --frozen) to fill the lock and the cache",
            ));
        }

        let client = self.client(registry)?;
        let version = match locked {
            Some(locked) => locked.version.clone(),
            None => {
                let versions = client.versions(package).await?;
                if versions.is_empty() {
                    return Err(Help::error(
                        format!("package `{package}` was not found on `{registry}`"),
                        format!(
                            "check the name, or publish it first with `cargo wreg publish --wit <dir> --registry {registry}`"
                        ),
                    ));
                }
                select(package, requirement, &versions)?.clone()
            }
        };
        let release = client.release(package, &version).await?;
        if let Some(expected) = self.lock.digest_of(package, &registry_key, &version)
            && expected != &release.layer.digest
        {
            bail!(
                "`{package}@{version}` on `{registry}` now has digest `{}`, but wkg.lock recorded `{expected}`; \
                 the release was changed after it was locked (possible tampering). \
                 If you trust the new content, remove its entry from wkg.lock",
                release.layer.digest
            );
        }
        let digest = release.layer.digest.clone();
        let bytes = match self.cache.get(&digest)? {
            Some(bytes) => bytes,
            None => {
                shell::status("Fetching", format_args!("{package}@{version}"));
                let what = format!("{package}@{version}");
                let bar = shell::transfer_bar("Downloading", &what, release.layer.size);
                let bytes = client.fetch_layer(package, &release.layer, bar.as_ref()).await?;
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
                self.cache.put(&digest, &bytes)?;
                bytes.to_vec()
            }
        };
        self.decoded(request, &version, digest, &bytes)
    }

    fn decoded(
        &self,
        request: &Request,
        version: &Version,
        digest: Digest,
        bytes: &[u8],
    ) -> Result<Resolved> {
        let wit = wit::decode_package(bytes).with_context(|| {
            format!("`{}@{version}` is not a usable WIT package", request.package)
        })?;
        if wit.name != request.package || &wit.version != version {
            bail!(
                "the release `{}@{version}` holds package `{}@{}`",
                request.package,
                wit.name,
                wit.version
            );
        }
        Ok(Resolved { request: request.clone(), digest, wit })
    }
}
