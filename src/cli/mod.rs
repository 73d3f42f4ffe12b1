//! The command line: one module per command, each with its clap arguments and a short
//! `run` that builds the options for `crate::ops` and calls it.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::config::RegistryConfig;
use crate::ops::fetch::FetchOptions;
use crate::ops::workspace::{CargoFlags, Workspace};
use crate::registry::Registry;
use crate::shell::ColorChoice;

mod build;
mod fetch;
mod publish;
mod pull;
mod registry;

/// Build and publish WebAssembly components against WIT packages in OCI registries.
#[derive(Debug, Parser)]
#[command(name = "cargo-wreg", bin_name = "cargo wreg", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print debug logs (`-vv` for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print nothing but warnings and errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Coloring of the output
    #[arg(long, global = true, value_enum, default_value = "auto", value_name = "WHEN")]
    pub color: ColorChoice,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Resolve and download WIT dependencies, write wkg.lock, wit/deps and src/bindings.rs
    Fetch(fetch::FetchArgs),
    /// Fetch, then build the components with cargo
    Build(build::BuildArgs),
    /// Publish the component, or a WIT package with --wit, to a registry
    Publish(publish::PublishArgs),
    /// Download a published release's wasm
    Pull(pull::PullArgs),
    /// Run or manage the embedded OCI registry
    Registry(registry::RegistryArgs),
}

impl Command {
    pub async fn run(self) -> Result<()> {
        match self {
            Command::Fetch(args) => fetch::run(args).await,
            Command::Build(args) => build::run(args).await,
            Command::Publish(args) => publish::run(args).await,
            Command::Pull(args) => pull::run(args).await,
            Command::Registry(args) => registry::run(args).await,
        }
    }
}

/// Where the registry is; shared by every command that talks to one.
#[derive(Debug, Clone, Args)]
pub struct RegistryArg {
    /// Registry for every namespace: `host[:port][/prefix]` (HTTPS, HTTP for localhost) or
    /// an `http://` / `https://` URL
    #[arg(long, env = "CARGO_WREG_REGISTRY", value_name = "URL")]
    pub registry: Option<Registry>,
}

impl RegistryArg {
    pub fn config(&self) -> RegistryConfig {
        RegistryConfig::new(self.registry.clone())
    }
}

/// The project and how it may be resolved; shared by fetch, build and publish.
#[derive(Debug, Clone, Args)]
pub struct ProjectArgs {
    /// Path to Cargo.toml
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArg,
    /// Use only wkg.lock and the cache; never touch the network
    #[arg(long)]
    pub offline: bool,
    /// Fail if wkg.lock (or Cargo.lock) would change
    #[arg(long)]
    pub locked: bool,
    /// Both --offline and --locked
    #[arg(long)]
    pub frozen: bool,
}

impl ProjectArgs {
    pub fn fetch_options(&self) -> FetchOptions {
        FetchOptions {
            config: self.registry.config(),
            offline: self.offline || self.frozen,
            locked: self.locked || self.frozen,
        }
    }

    pub fn workspace(&self) -> Result<Workspace> {
        let flags =
            CargoFlags { offline: self.offline || self.frozen, locked: self.locked || self.frozen };
        Workspace::load(self.manifest_path.as_deref(), flags)
    }
}
