//! `cargo wreg add`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use super::RegistryArg;
use crate::config::RegistryConfig;
use crate::ops::add::{self, AddOptions, Source};
use crate::ops::workspace::{CargoFlags, Workspace};
use crate::package::{PackageName, parse_requirement};

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The package, with an optional requirement: `ns:name` (newest release) or
    /// `ns:name@1.2`
    #[arg(value_name = "PACKAGE[@REQUIREMENT]")]
    pub spec: String,
    /// Add to the dependencies of the local target (`target = { path = ... }`)
    #[arg(long)]
    pub target: bool,
    /// Use the WIT directory, `.wit` file or `.wasm` at PATH (relative to the crate's
    /// Cargo.toml) instead of a registry release; no registry is asked
    #[arg(long, value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// Show what would change without writing Cargo.toml
    #[arg(long)]
    pub dry_run: bool,
    /// The component crate to add to, when the workspace has several
    #[arg(short, long = "package", value_name = "SPEC")]
    pub package: Option<String>,
    /// Path to Cargo.toml
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArg,
}

pub async fn run(args: AddArgs) -> Result<()> {
    let (package, requirement) = split_spec(&args.spec)?;
    let source = match (requirement, args.path) {
        (Some(_), Some(_)) => bail!("`{}` names a requirement; --path takes none", args.spec),
        (None, Some(path)) => Source::Path(path),
        (Some(req), None) => Source::Requirement(req),
        (None, None) => Source::Newest,
    };
    let workspace = Workspace::load(args.manifest_path.as_deref(), CargoFlags::default())?;
    let config = RegistryConfig::load(args.registry.registry)?;
    let options = AddOptions {
        package,
        source,
        target: args.target,
        member: args.package,
        manifest_path: args.manifest_path,
        config: config.with_workspace(&workspace.metadata)?,
        dry_run: args.dry_run,
    };
    add::add(&workspace, &options).await
}

/// `ns:name[@requirement]`, the requirement checked but kept as written.
fn split_spec(spec: &str) -> Result<(PackageName, Option<String>)> {
    let Some((name, req)) = spec.split_once('@') else {
        return Ok((spec.parse()?, None));
    };
    parse_requirement(req)?;
    Ok((name.parse()?, Some(req.trim().to_string())))
}
