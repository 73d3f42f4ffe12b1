//! `cargo wreg config`: the effective registry mapping, where each entry comes from, and,
//! for the packages named, the registry and OCI repository they resolve to.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::RegistryArg;
use crate::config::{Entry, RegistryConfig};
use crate::package::PackageName;

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Packages (`ns:name`) to resolve to a registry and an OCI repository
    #[arg(value_name = "PACKAGE")]
    pub packages: Vec<PackageName>,
    /// Path to Cargo.toml (default: the project around the current directory)
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArg,
    /// Do not ask registries where they keep their packages
    #[arg(long)]
    pub offline: bool,
}

pub async fn run(args: ConfigArgs) -> Result<()> {
    let config = RegistryConfig::load(args.registry.registry.clone())?;
    let dir = match &args.manifest_path {
        Some(path) => path.parent().map(PathBuf::from).unwrap_or_default(),
        None => std::env::current_dir().context("failed to read the current directory")?,
    };
    let config = config.with_project_at(&dir)?;
    print_mapping(&config.entries());
    print_settings(&config);
    for package in &args.packages {
        print_package(&config, package, args.offline).await?;
    }
    Ok(())
}

fn print_mapping(entries: &[Entry]) {
    println!("registries, in the order they are consulted:");
    let width = entries.iter().map(|e| e.key.to_string().len()).max().unwrap_or(0);
    let registry_width = entries.iter().map(|e| e.registry.to_string().len()).max().unwrap_or(0);
    for entry in entries {
        let overridden = if entry.overridden { " (overridden)" } else { "" };
        println!(
            "  {:width$}  {:registry_width$}  from {}{overridden}",
            entry.key.to_string(),
            entry.registry.to_string(),
            entry.source,
        );
    }
}

fn print_settings(config: &RegistryConfig) {
    match config.user_file() {
        Some((path, true)) => println!("wasm-pkg config: `{}`", path.display()),
        Some((path, false)) => println!("wasm-pkg config: `{}` (not found)", path.display()),
        None => println!("wasm-pkg config: none (no home directory)"),
    }
    for (name, settings) in config.settings() {
        let mut facts = Vec::new();
        if let Some(location) = &settings.location {
            facts.push(format!("packages at `{location}`"));
        }
        if let Some(insecure) = settings.insecure {
            facts.push(format!("protocol {}", if insecure { "http" } else { "https" }));
        }
        if let Some(credentials) = &settings.credentials {
            facts.push(credentials.describe());
        }
        println!("  {name}: {}", facts.join("; "));
    }
    if let Some(token) = config.token() {
        match config.main_registry() {
            Some(main) => println!("{} is used for `{main}` only", token.source),
            None => println!("{} is set but unused: no main registry is configured", token.source),
        }
    }
}

async fn print_package(
    config: &RegistryConfig,
    package: &PackageName,
    offline: bool,
) -> Result<()> {
    let Some(choice) = config.choose(package, None) else {
        println!("{package}: no registry is configured for namespace `{}`", package.namespace());
        return Ok(());
    };
    println!("{package}: `{}` ({}, from {})", choice.registry, choice.key, choice.source);
    if offline {
        return Ok(());
    }
    // One registry that cannot be reached does not hide what the others say.
    let location = async { config.client(&choice.registry)?.location().await };
    match location.await {
        Ok(location) => {
            println!("  OCI repository: {}/{}", location.host(), location.repository(package));
        }
        Err(err) => println!("  OCI repository: unknown: {err:#}"),
    }
    Ok(())
}
