//! `cargo wreg fetch`: resolve every member's target world and WIT dependencies (transitively),
//! reuse `wkg.lock` and the blob cache where they satisfy the manifests, download the rest,
//! then write `wit/deps`, `src/bindings.rs` and `wkg.lock`.
//!
//! Everything is computed in memory first and written at the end, so bad input leaves no
//! file half-updated.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use semver::{Version, VersionReq};
use wit_parser::{Resolve, WorldId};

use crate::Help;
use crate::bindings;
use crate::config::RegistryConfig;
use crate::lock::LockFile;
use crate::manifest::{Dependency, Target};
use crate::ops::fingerprint;
use crate::ops::index::{IndexOptions, RegistryIndex, Release, compatible};
use crate::ops::workspace::{Member, Workspace};
use crate::package::PackageName;
use crate::registry::Registry;
use crate::resolve::{Origin, PackageKey, Requirement, Resolution};
use crate::shell;
use crate::wit::{self, ComponentPackage, Decoded, LocalSource, Versioned, WitPackage, WitText};

/// How a fetch may use the network and the lock.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    pub config: RegistryConfig,
    /// Never touch the network; everything must come from the lock and the cache.
    pub offline: bool,
    /// Fail instead of changing `wkg.lock`.
    pub locked: bool,
    /// Record a snapshot for the no-op fast path under this key.
    pub snapshot: Option<SnapshotKey>,
    /// The workspace is part of the real one (as `publish --workspace` builds it level by
    /// level): lock entries it does not resolve are kept, not dropped as stale.
    pub partial: bool,
}

/// What identifies a command's snapshot: the manifest it starts from and its options.
#[derive(Debug, Clone)]
pub struct SnapshotKey {
    pub manifest_path: Option<PathBuf>,
    pub key: String,
}

/// The world a member implements, ready for the build.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Prepared {
    pub id: cargo_metadata::PackageId,
    pub name: String,
    pub world: String,
    /// `proxy` and `adapter` of its `[package.metadata.component]`.
    pub proxy: bool,
    pub adapter: Option<PathBuf>,
    /// Whether the crate has a binary target, which `run` needs.
    pub has_binary: bool,
}

/// Resolves, downloads and writes everything the selected members need. The whole workspace
/// is resolved together, so shared packages are fetched once and the lock covers every member.
pub async fn fetch(
    workspace: &Workspace,
    members: &[&Member],
    options: &FetchOptions,
) -> Result<Vec<Prepared>> {
    let lock_path = workspace.lock_path();
    let _guard = workspace.lock_exclusive()?;
    let old_lock = LockFile::load(&lock_path)?;
    let resolved = resolve_workspace(workspace, &old_lock, options, Vec::new()).await?;
    let (index, resolution) = (&resolved.index, &resolved.resolution);

    let selected: BTreeSet<&str> = members.iter().map(|m| m.package.name.as_str()).collect();
    let outputs = resolved
        .plans
        .iter()
        .filter(|p| selected.contains(p.member.package.name.as_str()))
        .map(|plan| plan.prepare(workspace, index, resolution))
        .collect::<Result<Vec<_>>>()?;

    let mut new_lock = index.lock_for(resolution);
    if options.partial {
        new_lock = new_lock.keeping(&old_lock);
    }
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
        let count = shell::counted(resolution.releases.len(), "package");
        shell::status("Locking", format_args!("{count} in `{}`", lock_path.display()));
    }
    let prepared: Vec<Prepared> = outputs.into_iter().map(|o| o.prepared).collect();
    if let Some(snapshot) = &options.snapshot {
        fingerprint::record(
            snapshot.manifest_path.as_deref(),
            &snapshot.key,
            workspace,
            &prepared,
        )?;
    }
    Ok(prepared)
}

/// The workspace's requirements resolved against `lock`, the cache and the registries.
pub struct ResolvedWorkspace<'a> {
    pub index: RegistryIndex<'a>,
    pub resolution: Resolution,
    plans: Vec<Plan<'a>>,
}

impl ResolvedWorkspace<'_> {
    /// Each member's name with the requirements its manifest and WIT source state.
    pub fn roots(&self) -> impl Iterator<Item = (&str, &[Requirement])> {
        self.plans.iter().map(|p| (p.member.package.name.as_str(), p.roots.as_slice()))
    }

    /// Each member's name with the dependencies its manifest names by path.
    pub fn path_dependencies(&self) -> impl Iterator<Item = (&str, &PackageName, &Path)> {
        self.plans.iter().flat_map(|plan| {
            let component = &plan.member.component;
            let target = match &component.target {
                Target::Local { dependencies, .. } => Some(dependencies),
                _ => None,
            };
            let member = plan.member.package.name.as_str();
            component.dependencies.iter().chain(target.into_iter().flatten()).filter_map(
                move |(name, dependency)| match dependency {
                    Dependency::Local { path } => Some((member, name, path.as_path())),
                    Dependency::Registry { .. } => None,
                },
            )
        })
    }
}

/// Resolves every member's requirements; `prefer` names versions to choose where they fit,
/// as if they were locked.
pub async fn resolve_workspace<'a>(
    workspace: &'a Workspace,
    lock: &'a LockFile,
    options: &FetchOptions,
    prefer: Vec<(PackageName, Version)>,
) -> Result<ResolvedWorkspace<'a>> {
    let registries = explicit_registries(&workspace.members, &options.config)?;
    let vendor_dirs = workspace.members.iter().map(|m| m.dir().join("wit").join("deps")).collect();
    let index_options = IndexOptions {
        config: options.config.clone(),
        offline: options.offline,
        registries,
        prefer,
        vendor_dirs,
    };
    let mut index = RegistryIndex::new(lock, index_options)?;
    let plans = workspace
        .members
        .iter()
        .map(|member| Plan::new(member, &index))
        .collect::<Result<Vec<_>>>()?;
    let roots: Vec<Requirement> = plans.iter().flat_map(|p| p.roots.iter().cloned()).collect();
    let resolution = index.resolve(&roots).await?;
    Ok(ResolvedWorkspace { index, resolution, plans })
}

/// Resolves the packages that WIT source about to be published references, at exactly the
/// versions it names (the author's minimum stays what consumers see), and returns their WIT
/// text; no lock is read or written.
pub async fn resolve_references(
    source: &mut LocalSource,
    config: &RegistryConfig,
) -> Result<Vec<WitText>> {
    let lock = LockFile::default();
    let options = IndexOptions { config: config.clone(), ..IndexOptions::default() };
    let mut index = RegistryIndex::new(&lock, options)?;
    let origin = Origin::Root(source.path.display().to_string());
    let mut roots = references_to_requirements(&source.dependencies()?, &[], &index, &origin)?;
    for root in &mut roots {
        root.req = exact(&root.req);
    }
    let resolution = index.resolve(&roots).await?;
    closure_texts(&roots, &index, &resolution)
}

/// `=x.y.z` for the caret requirement `^x.y.z` a WIT reference stands for.
fn exact(req: &VersionReq) -> VersionReq {
    let comparators = req
        .comparators
        .iter()
        .map(|c| semver::Comparator { op: semver::Op::Exact, ..c.clone() })
        .collect();
    VersionReq { comparators }
}

/// The registries that manifest entries name for particular packages.
fn explicit_registries(
    members: &[Member],
    config: &RegistryConfig,
) -> Result<HashMap<PackageName, Registry>> {
    let mut registries = HashMap::new();
    for member in members {
        let component = &member.component;
        let target = match &component.target {
            Target::Registry { package, registry: Some(registry), .. } => Some((package, registry)),
            _ => None,
        };
        let mut deps: Vec<&Dependency> = component.dependencies.values().collect();
        if let Target::Local { dependencies, .. } = &component.target {
            deps.extend(dependencies.values());
        }
        let named = deps.into_iter().filter_map(|d| match d {
            Dependency::Registry { package, registry: Some(registry), .. } => {
                Some((package, registry))
            }
            _ => None,
        });
        for (package, registry) in target.into_iter().chain(named) {
            registries.insert(package.clone(), config.registry_for(package, Some(registry))?);
        }
    }
    Ok(registries)
}

/// What one member asks for, before anything is resolved.
struct Plan<'a> {
    member: &'a Member,
    roots: Vec<Requirement>,
    /// The requirement on the target package, for a registry target.
    target: Option<Requirement>,
    /// The WIT source, for a local target.
    local: Option<PathBuf>,
    /// WIT packages the manifest names by `path`.
    local_deps: Vec<LocalDep>,
    /// `dependencies` entries resolved from a registry, whose releases may be components: each
    /// with its name in the manifest and the index of its requirement in `roots`.
    uses: Vec<(PackageName, usize)>,
    /// Components the manifest names by `path`.
    local_components: Vec<(PackageName, ComponentPackage)>,
}

impl<'a> Plan<'a> {
    fn new(member: &'a Member, index: &RegistryIndex) -> Result<Self> {
        let component = &member.component;
        let origin = Origin::Root(member.package.name.to_string());
        let mut plan = Plan {
            member,
            roots: Vec::new(),
            target: None,
            local: None,
            local_deps: Vec::new(),
            uses: Vec::new(),
            local_components: Vec::new(),
        };
        // Entries of `dependencies` may be components; those of `target.dependencies` are WIT.
        let mut explicit: Vec<(&PackageName, &Dependency, bool)> =
            component.dependencies.iter().map(|(name, dep)| (name, dep, true)).collect();
        let mut referenced = Vec::new();
        let mut path_references = Vec::new();
        match &component.target {
            Target::Registry { package, requirement, .. } => {
                let key = PackageKey {
                    name: package.clone(),
                    registry: index.registry_of(package, None)?,
                };
                let requirement =
                    Requirement { key, req: requirement.clone(), origin: origin.clone() };
                plan.target = Some(requirement.clone());
                plan.roots.push(requirement);
            }
            Target::Local { path, dependencies, .. } => {
                explicit.extend(dependencies.iter().map(|(name, dep)| (name, dep, false)));
                referenced.extend(LocalSource::parse(path)?.dependencies()?);
                plan.local = Some(path.clone());
            }
            Target::None => {}
        }
        for (name, dep, may_be_component) in explicit {
            match dep {
                Dependency::Registry { package, requirement, .. } => {
                    let key = PackageKey {
                        name: package.clone(),
                        registry: index.registry_of(package, None)?,
                    };
                    let requirement =
                        Requirement { key, req: requirement.clone(), origin: origin.clone() };
                    if may_be_component {
                        plan.uses.push((name.clone(), plan.roots.len()));
                    }
                    plan.roots.push(requirement);
                }
                Dependency::Local { path } => {
                    let context = || {
                        let manifest = &member.package.manifest_path;
                        format!(
                            "failed to read path dependency `{}` of `{manifest}`",
                            path.display()
                        )
                    };
                    let references =
                        match LocalDep::load(path, may_be_component).with_context(context)? {
                            PathDependency::Wit(dep) => {
                                let references = dep.dependencies();
                                plan.local_deps.push(dep);
                                references
                            }
                            PathDependency::Component(component) => {
                                let references = component.dependencies().with_context(context)?;
                                plan.local_components.push((name.clone(), *component));
                                references
                            }
                        };
                    let origin = Origin::Path {
                        member: member.package.name.to_string(),
                        dependency: name.to_string(),
                    };
                    path_references.push((references, origin));
                }
            }
        }
        let provided: Vec<Versioned> = plan.local_deps.iter().map(LocalDep::name).collect();
        plan.roots.extend(references_to_requirements(&referenced, &provided, index, &origin)?);
        for (references, origin) in path_references {
            plan.roots.extend(references_to_requirements(&references, &provided, index, &origin)?);
        }
        Ok(plan)
    }

    /// Assembles the member's world and generates its bindings, in memory.
    fn prepare(
        &self,
        workspace: &Workspace,
        index: &RegistryIndex,
        resolution: &Resolution,
    ) -> Result<Output> {
        let manifest = &self.member.package.manifest_path;
        let component = &self.member.component;
        self.check_path_dependencies_stand_alone(resolution)?;
        let deps = self.texts(&self.roots, index, resolution)?;
        // Everything goes to `wit/deps`, but the world is assembled from what it can use: a
        // WIT package named in `dependencies` and referenced by nothing would only add a
        // second version of a package, and with it version suffixes to the bindings' modules.
        let unused = |i: usize| {
            let r = &self.roots[i];
            let is_wit = |version| {
                matches!(
                    index.release(&r.key, version),
                    Some(Release { content: Decoded::Wit(_), .. })
                )
            };
            self.uses.iter().any(|&(_, used)| used == i) && chosen(resolution, r).is_ok_and(is_wit)
        };
        let usable: Vec<Requirement> =
            (0..self.roots.len()).filter(|&i| !unused(i)).map(|i| self.roots[i].clone()).collect();
        let assembled = self.texts(&usable, index, resolution)?;

        let components = self.components(index, resolution)?;
        let (mut resolve, package, world_name) =
            match (&component.target, &self.target, &self.local) {
                (Target::Registry { world, .. }, Some(target), _) => {
                    let version = chosen(resolution, target)?;
                    let main = index.text(resolution, &target.key, version)?;
                    let others: Vec<WitText> = assembled
                        .iter()
                        .filter(|d| d.name != main.name || d.version != main.version)
                        .cloned()
                        .collect();
                    let (resolve, id) = wit::assemble_text(&main, &others)?;
                    (resolve, id, world.clone())
                }
                (Target::Local { world, .. }, _, Some(path)) => {
                    let mut source = LocalSource::parse(path)?;
                    source.retarget(&|v| chosen_for_reference(v, index, resolution));
                    let (resolve, id) = wit::assemble(source, &assembled)?;
                    (resolve, id, world.clone())
                }
                // Nothing of its own to implement, only components to call, as a binary may.
                (Target::None, _, _) if !components.is_empty() => {
                    let source = wit::empty_world(&self.member.package.name)?;
                    let (resolve, id) = wit::assemble(source, &assembled)?;
                    (resolve, id, None)
                }
                _ => {
                    return Err(Help::error(
                        format!(
                            "`{manifest}` sets no target world in `[package.metadata.component]`"
                        ),
                        "add `target = \"ns:pkg/world@version\"` for a registry world, or create a \
                     `wit` directory with the world to implement",
                    ));
                }
            };
        let world = wit::select_world(&resolve, package, world_name.as_deref())
            .with_context(|| format!("failed to select the target world for `{manifest}`"))?;
        for (name, dependency, release) in components {
            let retarget = |reference: &Versioned| match &release {
                Some((key, version)) => index.chosen_for(resolution, key, version, reference),
                None => chosen_for_reference(reference, index, resolution),
            };
            dependency.import_into(&mut resolve, world, name, &retarget).with_context(|| {
                format!("failed to import the exports of component `{name}` into the world")
            })?;
        }
        let runtime = bindings::detect_runtime(&workspace.metadata, &self.member.package)?;
        let source = bindings::generate(&resolve, world, &component.bindings, &runtime)
            .with_context(|| format!("failed to generate bindings for `{manifest}`"))?;
        Ok(Output {
            prepared: Prepared {
                id: self.member.package.id.clone(),
                name: self.member.package.name.to_string(),
                world: world_display(&resolve, world),
                proxy: component.proxy,
                adapter: component.adapter.clone(),
                has_binary: self.member.package.targets.iter().any(|t| t.is_bin()),
            },
            dir: self.member.dir().to_path_buf(),
            bindings: source,
            deps,
        })
    }
}

impl Plan<'_> {
    /// A path dependency must not also be resolved from a registry for a release that
    /// references it: one of the two would silently lose.
    // TODO: let a path dependency stand in for the registry release (like cargo's [patch]).
    fn check_path_dependencies_stand_alone(&self, resolution: &Resolution) -> Result<()> {
        for (name, version) in self.local_deps.iter().map(LocalDep::name) {
            let Some((key, chosen)) = resolution.releases.iter().find(|(k, _)| k.name == name)
            else {
                continue;
            };
            return Err(Help::error(
                format!(
                    "`{name}` is a path dependency (version {version}) of `{}`, but a package it \
                     uses also requires `{name}`, which resolved to {chosen} on `{}`",
                    self.member.package.manifest_path, key.registry
                ),
                "a path dependency cannot stand in for a registry release yet: publish it, or \
                 make the packages that reference it path dependencies too",
            ));
        }
        Ok(())
    }

    /// The WIT text of every release `roots` reach, and of the packages named by path.
    fn texts(
        &self,
        roots: &[Requirement],
        index: &RegistryIndex,
        resolution: &Resolution,
    ) -> Result<Vec<WitText>> {
        let mut texts = closure_texts(roots, index, resolution)?;
        for local in &self.local_deps {
            texts.push(local.materialize(index, resolution, &texts)?);
        }
        Ok(texts)
    }

    /// The component dependencies, from the registry (with the release) or by path, with
    /// their manifest names.
    fn components<'r>(
        &'r self,
        index: &'r RegistryIndex,
        resolution: &'r Resolution,
    ) -> Result<Vec<ComponentDependency<'r>>> {
        let mut components = Vec::new();
        for (name, root) in &self.uses {
            let requirement = &self.roots[*root];
            let version = chosen(resolution, requirement)?;
            let release = index.release(&requirement.key, version);
            if let Some(Release { content: Decoded::Component(component), .. }) = release {
                components.push((name, component, Some((&requirement.key, version))));
            }
        }
        components.extend(self.local_components.iter().map(|(name, c)| (name, c, None)));
        Ok(components)
    }
}

/// A component dependency: its name in the manifest, the component, and the registry release
/// it is (`None` for one given by path).
type ComponentDependency<'r> =
    (&'r PackageName, &'r ComponentPackage, Option<(&'r PackageKey, &'r Version)>);

/// Requirements for the packages WIT source references, except those a path dependency has.
fn references_to_requirements(
    referenced: &[Versioned],
    provided: &[Versioned],
    index: &RegistryIndex,
    origin: &Origin,
) -> Result<Vec<Requirement>> {
    let mut requirements = Vec::new();
    for (name, version) in referenced {
        if provided.iter().any(|(n, v)| n == name && v == version) {
            continue;
        }
        let key = PackageKey { name: name.clone(), registry: index.registry_of(name, None)? };
        requirements.push(Requirement { key, req: compatible(version), origin: origin.clone() });
    }
    Ok(requirements)
}

/// The version chosen for what a local WIT reference names.
fn chosen_for_reference(
    (name, version): &Versioned,
    index: &RegistryIndex,
    resolution: &Resolution,
) -> Option<Version> {
    let key = PackageKey { name: name.clone(), registry: index.registry_of(name, None).ok()? };
    resolution.version_for(&key, &compatible(version)).cloned()
}

fn chosen<'r>(resolution: &'r Resolution, requirement: &Requirement) -> Result<&'r Version> {
    resolution
        .version_for(&requirement.key, &requirement.req)
        .with_context(|| format!("`{} {}` was not resolved", requirement.key.name, requirement.req))
}

/// The WIT text of every release `roots` reach, each once.
fn closure_texts(
    roots: &[Requirement],
    index: &RegistryIndex,
    resolution: &Resolution,
) -> Result<Vec<WitText>> {
    let mut seen = BTreeSet::new();
    let mut queue = roots
        .iter()
        .map(|r| Ok((r.key.clone(), chosen(resolution, r)?.clone())))
        .collect::<Result<Vec<_>>>()?;
    let mut texts = Vec::new();
    while let Some((key, version)) = queue.pop() {
        if !seen.insert((key.clone(), version.clone())) {
            continue;
        }
        let release = index
            .release(&key, &version)
            .with_context(|| format!("`{}@{version}` was not loaded", key.name))?;
        for (dep, req) in &release.requirements {
            if let Some(v) = resolution.version_for(dep, req) {
                queue.push((dep.clone(), v.clone()));
            }
        }
        // A component is imported, not written out as WIT; what it uses is.
        if matches!(release.content, Decoded::Component(_)) {
            continue;
        }
        let text = index.text(resolution, &key, &version)?;
        if !texts.iter().any(|t: &WitText| t.name == text.name && t.version == text.version) {
            texts.push(text);
        }
    }
    texts.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    Ok(texts)
}

/// A `{ path = ... }` dependency.
enum LocalDep {
    /// A binary-encoded WIT package (`.wasm`).
    Encoded(Box<WitPackage>),
    /// WIT text, assembled once the registry packages it references are resolved.
    Source { path: PathBuf, name: Versioned, dependencies: Vec<Versioned> },
}

/// What a `{ path = ... }` dependency holds.
enum PathDependency {
    Wit(LocalDep),
    Component(Box<ComponentPackage>),
}

impl LocalDep {
    /// Reads a path dependency; a `.wasm` may be a component where `may_be_component`.
    fn load(path: &Path, may_be_component: bool) -> Result<PathDependency> {
        if path.extension().is_some_and(|e| e == "wasm") {
            let bytes = std::fs::read(path)
                .with_context(|| format!("failed to read `{}`", path.display()))?;
            let decoded = wit::decode(&bytes)
                .with_context(|| format!("`{}` is not a usable `.wasm`", path.display()))?;
            return match decoded {
                Decoded::Wit(package) => Ok(PathDependency::Wit(Self::Encoded(Box::new(package)))),
                Decoded::Component(component) if may_be_component => {
                    Ok(PathDependency::Component(Box::new(component)))
                }
                Decoded::Component(_) => bail!(
                    "`{}` is a component; only `dependencies`, not `target.dependencies`, may be components",
                    path.display()
                ),
            };
        }
        let source = LocalSource::parse(path)?;
        let name = wit::exact_name(source.name())
            .with_context(|| format!("failed to read the WIT package at `{}`", path.display()))?;
        let dependencies = source.dependencies()?;
        Ok(PathDependency::Wit(Self::Source { path: path.to_path_buf(), name, dependencies }))
    }

    fn name(&self) -> Versioned {
        match self {
            Self::Encoded(package) => (package.name.clone(), package.version.clone()),
            Self::Source { name, .. } => name.clone(),
        }
    }

    fn dependencies(&self) -> Vec<Versioned> {
        match self {
            Self::Encoded(package) => package.dependencies.clone(),
            Self::Source { dependencies, .. } => dependencies.clone(),
        }
    }

    /// The package as WIT text, its references moved to the resolved versions.
    fn materialize(
        &self,
        index: &RegistryIndex,
        resolution: &Resolution,
        deps: &[WitText],
    ) -> Result<WitText> {
        let retarget = |v: &Versioned| chosen_for_reference(v, index, resolution);
        match self {
            Self::Encoded(package) => package.text(&retarget),
            Self::Source { path, .. } => {
                let mut source = LocalSource::parse(path)?;
                source.retarget(&retarget);
                let (resolve, id) = wit::assemble(source, deps)?;
                WitPackage::new(resolve, id)?.text(&|_| None)
            }
        }
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

/// Files to write for one member.
struct Output {
    prepared: Prepared,
    dir: PathBuf,
    bindings: String,
    deps: Vec<WitText>,
}

impl Output {
    fn write(&self) -> Result<()> {
        wit::write_deps(&self.dir.join("wit").join("deps"), &self.deps)?;
        let path = self.dir.join("src").join("bindings.rs");
        if crate::fsutil::write_if_changed(&path, self.bindings.as_bytes())? {
            let name = &self.prepared.name;
            shell::status("Generating", format_args!("bindings for {name} ({})", path.display()));
        }
        Ok(())
    }
}
