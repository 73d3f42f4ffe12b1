//! `cargo wreg publish`: push a built component, or a WIT package, to a registry as a Wasm
//! OCI artifact tagged with its version. Releases are append-only: an existing version is
//! refused before anything is built or uploaded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use semver::Version;

use crate::Help;
use crate::config::RegistryConfig;
use crate::oci::layout::{DESCRIPTION, LICENSES, SOURCE, VERSION};
use crate::oci::{Artifact, Client};
use crate::ops::build::{self, BuildOptions};
use crate::ops::fetch;
use crate::ops::workspace::Workspace;
use crate::package::PackageName;
use crate::shell;
use crate::wit::{self, LocalSource};

/// Publishes the (single selected) component of the workspace.
pub async fn publish_component(
    workspace: &Workspace,
    options: &BuildOptions,
    dry_run: bool,
) -> Result<()> {
    let members = workspace.select(&options.packages)?;
    let [member] = members.as_slice() else {
        return Err(Help::error(
            "the workspace has several components; choose the one to publish",
            "pass `-p <crate>`",
        ));
    };
    let manifest = &member.package.manifest_path;
    let package = member.component.package.clone().ok_or_else(|| {
        Help::error(
            format!("`{manifest}` does not set `package` in `[package.metadata.component]`"),
            "add `package = \"ns:name\"`, the name the component is published as",
        )
    })?;
    let version = Version::parse(&member.package.version.to_string())?;
    let config = &options.fetch.config;
    let client = config.client(&config.registry_for(&package, None)?)?;
    refuse_existing(&client, &package, &version).await?;

    let mut options = options.clone();
    options.release = true;
    options.packages = vec![member.package.name.to_string()];
    let built = build::build(workspace, &options).await?;
    let component = &built[0];
    let wasm = std::fs::read(&component.path)
        .with_context(|| format!("failed to read `{}`", component.path.display()))?;

    let mut annotations = BTreeMap::from([(VERSION.to_string(), version.to_string())]);
    let facts = [
        (DESCRIPTION, member.package.description.as_ref()),
        (LICENSES, member.package.license.as_ref()),
        (SOURCE, member.package.repository.as_ref()),
    ];
    for (key, value) in facts {
        if let Some(value) = value {
            annotations.insert(key.to_string(), value.clone());
        }
    }
    let title = format!("{}.wasm", member.package.name.replace('-', "_"));
    let artifact = Artifact::new(&wasm, &title, annotations)?;
    push(&client, &package, &version, &artifact, dry_run).await
}

/// Publishes a WIT package: a directory of `.wit` files, one `.wit` file, or an encoded
/// `.wasm`. Foreign packages come from a `deps/` folder beside it or from the registry.
pub async fn publish_wit(path: &Path, config: &RegistryConfig, dry_run: bool) -> Result<()> {
    let bytes = encode_wit(path, config).await?;
    let package = wit::decode_package(&bytes)
        .with_context(|| format!("`{}` is not a WIT package", path.display()))?;
    let client = config.client(&config.registry_for(&package.name, None)?)?;
    refuse_existing(&client, &package.name, &package.version).await?;
    let annotations = BTreeMap::from([(VERSION.to_string(), package.version.to_string())]);
    let title = format!("{}-{}.wasm", package.name.namespace(), package.name.name());
    let artifact = Artifact::new(&bytes, &title, annotations)?;
    push(&client, &package.name, &package.version, &artifact, dry_run).await
}

/// The binary form of the WIT package at `path`.
async fn encode_wit(path: &Path, config: &RegistryConfig) -> Result<Vec<u8>> {
    if path.extension().is_some_and(|e| e == "wasm") {
        return std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()));
    }
    if !path.exists() {
        bail!(
            "`{}` does not exist; expected a WIT directory, a `.wit` file or a `.wasm`",
            path.display()
        );
    }
    let deps_dir = deps_beside(path);
    if deps_dir.is_dir() && path.is_dir() {
        let mut resolve = wit_parser::Resolve::default();
        let (id, _) = resolve
            .push_dir(path)
            .with_context(|| format!("failed to parse the WIT package at `{}`", path.display()))?;
        return wit::encode_package(&resolve, id);
    }
    let mut source = LocalSource::parse(path)?;
    let deps = fetch::resolve_references(&mut source, config).await?;
    let (resolve, id) = wit::assemble(source, &deps)?;
    wit::encode_package(&resolve, id)
}

fn deps_beside(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("deps")
    } else {
        path.parent().unwrap_or(Path::new(".")).join("deps")
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

async fn push(
    client: &Client,
    package: &PackageName,
    version: &Version,
    artifact: &Artifact,
    dry_run: bool,
) -> Result<()> {
    let repository = client.registry().repository(package);
    let size = artifact.layer().size;
    if dry_run {
        shell::info(
            "Would push",
            format_args!(
                "{package}@{version} to {}/{repository}:{version} (layer {}, {size} bytes; manifest {})",
                client.registry().host(),
                artifact.layer().digest,
                artifact.manifest_digest()
            ),
        );
        return Ok(());
    }
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
