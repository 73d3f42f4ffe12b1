//! `cargo wreg publish`: push built components, or a WIT package, to a registry as Wasm OCI
//! artifacts tagged with their versions.
//!
//! The steps are ordered so that a refusal leaves the registry as it was. What can be checked
//! without building comes first, for every release: its name, the registry answering with our
//! credentials, and its version not being there yet (releases are immutable). Then releases are
//! built, stamped with their metadata and compared with the previous release of their series,
//! and only then pushed. Workspace members go up in dependency order: a member that uses
//! another builds against that one's published release, so it waits for it.

mod metadata;
pub mod semver_check;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use semver::Version;

pub use self::metadata::{ReleaseFacts, git_revision};
use crate::Help;
use crate::config::RegistryConfig;
use crate::fsutil;
use crate::manifest::{ComponentMetadata, Dependency, Target};
use crate::oci::layout::{DESCRIPTION, ImageManifest, REVISION, TITLE, VERSION};
use crate::oci::{Artifact, Client};
use crate::ops::build::{self, BuildOptions, Built};
use crate::ops::fetch;
use crate::ops::workspace::{Member, Workspace};
use crate::package::PackageName;
use crate::shell;
use crate::wit::{self, LocalSource, Versioned};

/// How to publish.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublishOptions {
    /// Do everything but the upload, and show what would be pushed.
    pub dry_run: bool,
    /// Publish a breaking change within a compatibility series, with a warning.
    pub allow_breaking: bool,
}

/// Publishes the components selected with `-p`, or the workspace's only one.
pub async fn publish_component(
    workspace: &Workspace,
    build: &BuildOptions,
    options: PublishOptions,
) -> Result<()> {
    let members = workspace.select(&build.packages)?;
    if build.packages.is_empty() && members.len() > 1 {
        return Err(Help::error(
            "the workspace has several components; choose the one to publish",
            "pass `-p <crate>`, or `--workspace` to publish them all",
        ));
    }
    publish_members(workspace, &members, build, options).await
}

/// Publishes every component of the workspace.
pub async fn publish_workspace(
    workspace: &Workspace,
    build: &BuildOptions,
    options: PublishOptions,
) -> Result<()> {
    let members: Vec<&Member> = workspace.members.iter().collect();
    publish_members(workspace, &members, build, options).await
}

async fn publish_members(
    workspace: &Workspace,
    members: &[&Member],
    build: &BuildOptions,
    options: PublishOptions,
) -> Result<()> {
    let config = &build.fetch.config;
    let outgoing: Vec<_> =
        members.iter().map(|m| Outgoing::plan(m, config)).collect::<Result<_>>()?;
    let nodes: Vec<_> =
        outgoing.iter().map(|o| (o.package.clone(), used_packages(&o.member.component))).collect();
    let levels = dependency_levels(&nodes)?;
    // Push access first: a token that may push nowhere here should be told so, not that it
    // may not read what exists.
    for release in &outgoing {
        if !options.dry_run {
            release.client.check_push(&release.package).await?;
        }
        refuse_existing(&release.client, &release.package, &release.facts.version).await?;
    }

    // A member that uses another builds against its published release, so it is built only
    // once that is up; members of one level go up together once all of them passed. Members
    // of later levels are left out of the resolution until then: what they use is not out yet.
    // A dry run pushes nothing, so there the components built for earlier levels stand in.
    let mut stand_ins = Vec::new();
    for (index, level) in levels.iter().enumerate() {
        let later: Vec<&Member> =
            levels[index + 1..].iter().flatten().map(|&i| members[i]).collect();
        let scope = scoped(workspace, &later, &stand_ins);
        let mut build = build.clone();
        build.fetch.partial = !later.is_empty() || !stand_ins.is_empty();
        let level: Vec<&Outgoing> = level.iter().map(|&i| &outgoing[i]).collect();
        let built = publish_level(&scope, &level, &build, options).await?;
        if options.dry_run {
            stand_ins.extend(level.iter().map(|o| o.package.clone()).zip(built));
        }
    }
    Ok(())
}

/// `workspace` without the members `left_out`, each registry dependency on a package of
/// `stand_ins` replaced by the component built for it.
fn scoped(
    workspace: &Workspace,
    left_out: &[&Member],
    stand_ins: &[(PackageName, PathBuf)],
) -> Workspace {
    let members = workspace
        .members
        .iter()
        .filter(|m| !left_out.iter().any(|out| out.package.id == m.package.id))
        .map(|m| {
            let mut component = m.component.clone();
            for dependency in component.dependencies.values_mut() {
                let Dependency::Registry { package, .. } = dependency else { continue };
                if let Some((_, path)) = stand_ins.iter().find(|(name, _)| name == package) {
                    *dependency = Dependency::Local { path: path.clone() };
                }
            }
            Member { package: m.package.clone(), component }
        })
        .collect();
    Workspace { metadata: workspace.metadata.clone(), members }
}

/// Builds, stamps and checks every release of `level`, then pushes them in turn; returns the
/// paths of the components built.
async fn publish_level(
    workspace: &Workspace,
    level: &[&Outgoing<'_>],
    build: &BuildOptions,
    options: PublishOptions,
) -> Result<Vec<PathBuf>> {
    let built = build_release(workspace, level, build).await?;
    let mut artifacts = Vec::new();
    for (release, built) in level.iter().zip(&built) {
        artifacts.push(release.prepare(built, options.allow_breaking).await?);
    }
    for (release, artifact) in level.iter().zip(&artifacts) {
        let (package, version) = (&release.package, &release.facts.version);
        push(&release.client, package, version, artifact, options.dry_run).await?;
    }
    Ok(built.into_iter().map(|b| b.path).collect())
}

/// A component on its way to a registry.
struct Outgoing<'a> {
    member: &'a Member,
    package: PackageName,
    facts: ReleaseFacts,
    client: Client,
}

impl<'a> Outgoing<'a> {
    fn plan(member: &'a Member, config: &RegistryConfig) -> Result<Self> {
        let manifest = &member.package.manifest_path;
        let package = member.component.package.clone().ok_or_else(|| {
            Help::error(
                format!("`{manifest}` does not set `package` in `[package.metadata.component]`"),
                "add `package = \"ns:name\"`, the name the component is published as",
            )
        })?;
        let facts = ReleaseFacts::of_crate(&member.package)
            .with_context(|| format!("failed to read the package facts of `{manifest}`"))?;
        let client = config.client(&config.registry_for(&package, None)?)?;
        Ok(Self { member, package, facts, client })
    }

    /// Stamps the `built` component with its facts, leaves the stamped bytes in its file so
    /// that the file is what the registry will serve, checks them against the previous release
    /// and lays them out as an artifact.
    async fn prepare(&self, built: &Built, allow_breaking: bool) -> Result<Artifact> {
        let path = &built.path;
        let bytes =
            std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
        let wasm = self
            .facts
            .embed(&bytes)
            .with_context(|| format!("failed to stamp `{}` with its metadata", path.display()))?;
        fsutil::write_if_changed(path, &wasm)?;

        let (package, version) = (&self.package, &self.facts.version);
        check_compatible(&self.client, package, version, &wasm, allow_breaking).await?;
        let title = format!("{}.wasm", self.member.package.name.replace('-', "_"));
        Artifact::new(&wasm, &title, self.facts.annotations(), Some(&built.world))
    }
}

/// Builds the components in release mode, in one cargo run; returns them in the order of
/// `outgoing`.
async fn build_release(
    workspace: &Workspace,
    outgoing: &[&Outgoing<'_>],
    build: &BuildOptions,
) -> Result<Vec<Built>> {
    let mut options = build.clone();
    options.release = true;
    options.packages = outgoing.iter().map(|o| o.member.package.name.to_string()).collect();
    let built = build::build(workspace, &options).await?;
    outgoing
        .iter()
        .map(|o| {
            let name = o.member.package.name.as_str();
            let found = built.iter().find(|b| b.package == name).cloned();
            found.ok_or_else(|| anyhow!("cargo built no component for `{name}`"))
        })
        .collect()
}

/// The packages a component's manifest names: its target's and its dependencies'.
fn used_packages(component: &ComponentMetadata) -> Vec<PackageName> {
    // A renamed entry (`"acme:alias" = { package = "acme:lib", .. }`) uses its `package`.
    let used = |(key, dependency): (&PackageName, &Dependency)| match dependency {
        Dependency::Registry { package, .. } => package.clone(),
        Dependency::Local { .. } => key.clone(),
    };
    let mut packages: Vec<PackageName> = component.dependencies.iter().map(used).collect();
    match &component.target {
        Target::Registry { package, .. } => packages.push(package.clone()),
        Target::Local { dependencies, .. } => packages.extend(dependencies.iter().map(used)),
        Target::None => {}
    }
    packages
}

/// Groups the indices of `nodes` (each a package and the packages it uses) into levels, each
/// level using only packages of earlier ones; the order of `nodes` is kept within a level. Two
/// releases of one package, or packages that use each other, cannot be ordered.
fn dependency_levels(nodes: &[(PackageName, Vec<PackageName>)]) -> Result<Vec<Vec<usize>>> {
    for (i, (package, _)) in nodes.iter().enumerate() {
        if nodes[..i].iter().any(|(other, _)| other == package) {
            bail!("two components of the workspace are published as `{package}`");
        }
    }
    let mut placed = vec![false; nodes.len()];
    let mut levels = Vec::new();
    while placed.contains(&false) {
        let uses_unplaced = |i: usize| {
            (0..nodes.len()).any(|j| i != j && !placed[j] && nodes[i].1.contains(&nodes[j].0))
        };
        let level: Vec<usize> =
            (0..nodes.len()).filter(|&i| !placed[i] && !uses_unplaced(i)).collect();
        if level.is_empty() {
            let stuck: Vec<String> = (0..nodes.len())
                .filter(|&i| !placed[i])
                .map(|i| format!("`{}`", nodes[i].0))
                .collect();
            bail!("{} use each other, so none can be published first", stuck.join(", "));
        }
        for &i in &level {
            placed[i] = true;
        }
        levels.push(level);
    }
    Ok(levels)
}

/// Publishes a WIT package: a directory of `.wit` files, one `.wit` file, or an encoded
/// `.wasm`. Foreign packages come from a `deps/` folder beside it or from the registry.
pub async fn publish_wit(
    path: &Path,
    config: &RegistryConfig,
    options: PublishOptions,
) -> Result<()> {
    let (package, version) = wit_name(path)?;
    let client = config.client(&config.registry_for(&package, None)?)?;
    if !options.dry_run {
        client.check_push(&package).await?;
    }
    refuse_existing(&client, &package, &version).await?;
    require_published(&package, &version, &wit_references(path)?, config).await?;
    let bytes = encode_wit(path, config).await?;
    check_compatible(&client, &package, &version, &bytes, options.allow_breaking).await?;
    let annotations = wit_annotations(path, &bytes, &version);
    let title = format!("{}-{}.wasm", package.namespace(), package.name());
    let artifact = Artifact::new(&bytes, &title, annotations, None)?;
    push(&client, &package, &version, &artifact, options.dry_run).await
}

/// The packages the WIT package at `path` references, with the versions it names.
fn wit_references(path: &Path) -> Result<Vec<Versioned>> {
    if is_wasm(path) {
        return Ok(wit::decode_package(&read(path)?)?.dependencies);
    }
    LocalSource::parse(path)?.dependencies()
}

/// Refuses a package that references a release its registry lacks: nobody could resolve it
/// once published.
async fn require_published(
    package: &PackageName,
    version: &Version,
    references: &[Versioned],
    config: &RegistryConfig,
) -> Result<()> {
    for (name, referenced) in references {
        let registry = config.registry_for(name, None)?;
        let versions = config.client(&registry)?.versions(name).await?;
        if !versions.contains(referenced) {
            let compatible = crate::ops::index::compatible(referenced);
            let alternatives: Vec<String> = versions
                .iter()
                .rev()
                .filter(|v| compatible.matches(v))
                .map(|v| format!("`{v}`"))
                .collect();
            let instead = match alternatives.as_slice() {
                [] => String::new(),
                found => format!(", or reference a release it has: {}", found.join(", ")),
            };
            return Err(Help::error(
                format!(
                    "`{package}@{version}` references `{name}@{referenced}`, which `{registry}` \
                     does not have; a package is built and published against exactly the \
                     releases it names"
                ),
                format!("publish `{name}@{referenced}` first{instead}"),
            ));
        }
    }
    Ok(())
}

/// The name and version of the WIT package at `path`, read without resolving anything.
fn wit_name(path: &Path) -> Result<Versioned> {
    if is_wasm(path) {
        let package = wit::decode_package(&read(path)?)
            .with_context(|| format!("`{}` is not a WIT package", path.display()))?;
        return Ok((package.name, package.version));
    }
    if !path.exists() {
        bail!(
            "`{}` does not exist; expected a WIT directory, a `.wit` file or a `.wasm`",
            path.display()
        );
    }
    wit::exact_name(LocalSource::parse(path)?.name())
}

/// The binary form of the WIT package at `path`.
async fn encode_wit(path: &Path, config: &RegistryConfig) -> Result<Vec<u8>> {
    if is_wasm(path) {
        return read(path);
    }
    // The packages it uses come from the registry, never from a `deps` folder beside it: the
    // published package must name what its consumers will resolve.
    let mut source = LocalSource::parse(path)?;
    let deps = fetch::resolve_references(&mut source, config).await?;
    let (resolve, id) = wit::assemble(source, &deps)?;
    wit::encode_package(&resolve, id)
}

fn is_wasm(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "wasm")
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))
}

/// A WIT package's annotations: its version, its package documentation as the description,
/// and the git revision of its source.
fn wit_annotations(path: &Path, bytes: &[u8], version: &Version) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::from([(VERSION.to_string(), version.to_string())]);
    if let Some(docs) = package_docs(bytes) {
        annotations.insert(DESCRIPTION.to_string(), docs);
    }
    let dir = if path.is_dir() { path } else { path.parent().unwrap_or(Path::new(".")) };
    if let Some(revision) = git_revision(dir) {
        annotations.insert(REVISION.to_string(), revision);
    }
    annotations
}

/// The documentation comment of the WIT package in `bytes`, if it has one.
fn package_docs(bytes: &[u8]) -> Option<String> {
    match wit_component::decode(bytes).ok()? {
        wit_component::DecodedWasm::WitPackage(resolve, id) => {
            let docs = resolve.packages[id].docs.contents.as_deref()?.trim();
            (!docs.is_empty()).then(|| docs.to_string())
        }
        wit_component::DecodedWasm::Component(..) => None,
    }
}

async fn refuse_existing(client: &Client, package: &PackageName, version: &Version) -> Result<()> {
    if client.exists(package, version).await? {
        return Err(Help::error(
            format!("`{package}@{version}` already exists on `{}`", client.registry()),
            "releases are immutable; bump the version and publish again",
        ));
    }
    Ok(())
}

/// Compares `wasm` with the newest earlier release of its compatibility series and refuses a
/// breaking change, unless `allow_breaking` turns the refusal into a warning.
async fn check_compatible(
    client: &Client,
    package: &PackageName,
    version: &Version,
    wasm: &[u8],
    allow_breaking: bool,
) -> Result<()> {
    let published = client.versions(package).await?;
    let Some(previous) = semver_check::predecessor(version, &published) else {
        return Ok(());
    };
    shell::status("Comparing", format_args!("{package}@{version} with {previous}"));
    let old = fetch_release(client, package, previous).await?;
    let report = semver_check::compare(&old, wasm).with_context(|| {
        format!("failed to compare `{package}@{version}` with `{package}@{previous}`")
    })?;
    for change in &report.requirements {
        shell::warn(format_args!(
            "hosts that run `{package}@{previous}` may not run {version}: {change}"
        ));
    }
    if report.breaking.is_empty() {
        return Ok(());
    }
    let changes: String = report.breaking.iter().map(|c| format!("\n  {c}")).collect();
    let message =
        format!("`{package}@{version}` breaks compatibility with `{package}@{previous}`:{changes}");
    if allow_breaking {
        shell::warn(format_args!("{message}\npublishing it anyway, as --allow-breaking asks"));
        return Ok(());
    }
    Err(Help::error(
        message,
        format!(
            "a breaking change starts a new compatibility series, such as version {}; \
             `--allow-breaking` publishes it as {version} anyway",
            semver_check::next_breaking(version)
        ),
    ))
}

/// The wasm of a published release.
async fn fetch_release(client: &Client, package: &PackageName, version: &Version) -> Result<Bytes> {
    let release = client.release(package, version).await?;
    client.fetch_layer(package, &release.layer, None).await
}

async fn push(
    client: &Client,
    package: &PackageName,
    version: &Version,
    artifact: &Artifact,
    dry_run: bool,
) -> Result<()> {
    if dry_run {
        show_dry_run(client, package, version, artifact);
        return Ok(());
    }
    let size = artifact.layer().size;
    shell::status(
        "Publishing",
        format_args!("{package}@{version} ({size} bytes) to {}", client.registry()),
    );
    let digest = client.push(package, version, artifact).await.with_context(|| {
        format!("failed to publish `{package}@{version}` to `{}`", client.registry())
    })?;
    shell::status("Published", format_args!("{package}@{version} ({digest})"));
    Ok(())
}

/// Shows where an artifact would go and what it is made of.
fn show_dry_run(client: &Client, package: &PackageName, version: &Version, artifact: &Artifact) {
    let repository = client.registry().repository(package);
    let (layer, config) = (artifact.layer(), artifact.config_desc());
    let manifest = artifact.manifest_digest();
    let host = client.registry().host();
    let (digest, size) = (&layer.digest, layer.size);
    shell::info(
        "Would push",
        format_args!(
            "{package}@{version} to {host}/{repository}:{version} \
             (layer {digest}, {size} bytes; manifest {manifest})"
        ),
    );
    shell::info("Manifest", format_args!("{manifest} ({} bytes)", artifact.manifest().len()));
    shell::info("Config", format_args!("{} ({} bytes)", config.digest, config.size));
    let title = layer.annotations.get(TITLE).map_or("", String::as_str);
    shell::info("Layer", format_args!("{} ({} bytes) {title}", layer.digest, layer.size));
    // The manifest was just serialized from this type, so it reads back.
    let annotations = serde_json::from_slice::<ImageManifest>(artifact.manifest())
        .map(|m| m.annotations)
        .unwrap_or_default();
    for (key, value) in annotations {
        shell::info("Annotation", format_args!("{key}={value}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> PackageName {
        s.parse().unwrap()
    }

    fn nodes(list: &[(&str, &[&str])]) -> Vec<(PackageName, Vec<PackageName>)> {
        list.iter().map(|(p, deps)| (name(p), deps.iter().map(|d| name(d)).collect())).collect()
    }

    #[test]
    fn a_renamed_dependency_uses_its_package() {
        let table = serde_json::json!({
            "target": "acme:greeting/greeter@1",
            "dependencies": {
                "acme:alias": { "package": "acme:lib", "version": "0.1" },
                "acme:local": { "path": "local.wasm" },
            },
        });
        let component = ComponentMetadata::parse(&table, Path::new(".")).unwrap();
        let used: Vec<String> = used_packages(&component).iter().map(|p| p.to_string()).collect();
        assert_eq!(used, ["acme:lib", "acme:local", "acme:greeting"]);
    }

    #[test]
    fn members_go_after_the_members_they_use() {
        let levels = dependency_levels(&nodes(&[
            ("acme:app", &["acme:lib", "wasi:io"]),
            ("acme:other", &[]),
            ("acme:lib", &["acme:base"]),
            ("acme:base", &["acme:base"]),
        ]));
        assert_eq!(levels.unwrap(), [vec![1, 3], vec![2], vec![0]]);
    }

    #[test]
    fn cycles_and_duplicates_have_no_order() {
        let cycle = nodes(&[("acme:a", &["acme:b"]), ("acme:b", &["acme:a"]), ("acme:c", &[])]);
        let err = dependency_levels(&cycle).unwrap_err().to_string();
        assert_eq!(err, "`acme:a`, `acme:b` use each other, so none can be published first");
        let twice = nodes(&[("acme:a", &[]), ("acme:a", &[])]);
        assert!(dependency_levels(&twice).unwrap_err().to_string().contains("`acme:a`"));
    }

    #[test]
    fn package_docs_become_the_description() {
        let mut resolve = wit_parser::Resolve::default();
        let text = "/// Small text helpers.\npackage acme:text@1.0.0;\ninterface t { f: func(); }";
        let id = resolve.push_str("t.wit", text).unwrap();
        let bytes = wit::encode_package(&resolve, id).unwrap();
        assert_eq!(package_docs(&bytes).as_deref(), Some("Small text helpers."));
    }
}
