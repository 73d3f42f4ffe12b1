//! The command line: one module per command, each with its clap arguments and a short
//! `run` that builds the options for `crate::ops` and calls it.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::config::RegistryConfig;
use crate::ops::cargo_cmd::CargoCommand;
use crate::ops::fetch::{FetchOptions, SnapshotKey};
use crate::ops::workspace::{CargoFlags, Workspace};
use crate::registry::Registry;
use crate::shell::ColorChoice;

mod add;
mod build;
mod cargo_cmd;
mod config;
mod fetch;
mod info;
mod login;
mod new;
mod publish;
mod pull;
mod registry;
mod tree;
mod update;

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
    /// Fetch, then `cargo check` for the wasm target (fit for rust-analyzer's check command)
    Check(cargo_cmd::CargoCmdArgs),
    /// Fetch, then `cargo clippy` for the wasm target
    Clippy(cargo_cmd::CargoCmdArgs),
    /// Fetch, then `cargo doc` for the wasm target
    Doc(cargo_cmd::CargoCmdArgs),
    /// Fetch, then `cargo test` for the wasm target, run by the configured runner or wasmtime
    Test(cargo_cmd::CargoCmdArgs),
    /// Fetch, then `cargo run` for the wasm target, run by the configured runner or wasmtime
    Run(cargo_cmd::CargoCmdArgs),
    /// Create a component crate whose source implements its world's exports with stubs
    New(new::NewArgs),
    /// Publish the component, or a WIT package with --wit, to a registry
    Publish(publish::PublishArgs),
    /// Download a published release's wasm
    Pull(pull::PullArgs),
    /// Run or manage the embedded OCI registry
    Registry(registry::RegistryArgs),
    /// Move locked WIT dependencies to the newest versions their requirements allow
    Update(update::UpdateArgs),
    /// Show the tree of WIT dependencies and the versions chosen for them
    Tree(tree::TreeArgs),
    /// Show which registry serves which package, and where each mapping comes from
    Config(config::ConfigArgs),
    /// Store credentials for a registry where Docker tools also read them
    Login(login::LoginArgs),
    /// Add a package to a component's dependencies in Cargo.toml, or change its requirement
    Add(add::AddArgs),
    /// List a package's published versions, newest first, with their layer digests
    Info(info::InfoArgs),
}

impl Command {
    pub async fn run(self) -> Result<()> {
        match self {
            Command::Fetch(args) => fetch::run(args).await,
            Command::Build(args) => build::run(args).await,
            Command::Check(args) => cargo_cmd::run(CargoCommand::Check, args).await,
            Command::Clippy(args) => cargo_cmd::run(CargoCommand::Clippy, args).await,
            Command::Doc(args) => cargo_cmd::run(CargoCommand::Doc, args).await,
            Command::Test(args) => cargo_cmd::run(CargoCommand::Test, args).await,
            Command::Run(args) => cargo_cmd::run(CargoCommand::Run, args).await,
            Command::New(args) => new::run(args).await,
            Command::Publish(args) => publish::run(args).await,
            Command::Pull(args) => pull::run(args).await,
            Command::Registry(args) => registry::run(args).await,
            Command::Update(args) => update::run(args).await,
            Command::Tree(args) => tree::run(args).await,
            Command::Config(args) => config::run(args).await,
            Command::Login(args) => login::run(args).await,
            Command::Add(args) => add::run(args).await,
            Command::Info(args) => info::run(args).await,
        }
    }
}

/// The members a command was asked for, as its no-op snapshot key records them: the `-p`
/// names, or `--workspace` (which no package name can be).
fn selection(packages: &[String], workspace: bool) -> Vec<String> {
    match workspace {
        true => vec!["--workspace".to_string()],
        false => packages.to_vec(),
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
    /// The configuration for commands that work without a component workspace: the command
    /// line, the cargo project around the current directory (when the command line does not
    /// already decide) and the user's wasm-pkg config.
    pub fn config(&self) -> Result<RegistryConfig> {
        let config = RegistryConfig::load(self.registry.clone())?;
        if self.registry.is_some() {
            return Ok(config);
        }
        let dir = std::env::current_dir().context("failed to read the current directory")?;
        config.with_project_at(&dir)
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
    /// The options for fetching, with the registry configuration of the command line,
    /// `workspace`'s `wreg` tables and the user's wasm-pkg config.
    pub fn fetch_options(&self, workspace: &Workspace) -> Result<FetchOptions> {
        let config = RegistryConfig::load(self.registry.registry.clone())?;
        Ok(FetchOptions { config: config.with_workspace(&workspace.metadata)?, ..self.flags() })
    }

    /// The network and lock flags alone, for work that needs no registry configuration.
    pub fn flags(&self) -> FetchOptions {
        FetchOptions {
            offline: self.offline || self.frozen,
            locked: self.locked || self.frozen,
            ..FetchOptions::default()
        }
    }

    /// Names the no-op snapshot of a command: the manifest it starts from and every option
    /// that changes what a fetch does.
    pub fn snapshot_key(&self, packages: &[String]) -> SnapshotKey {
        let registry = self.registry.registry.as_ref().map(ToString::to_string);
        let key = format!(
            "{}|{registry:?}|{}|{}|{}|{packages:?}",
            env!("CARGO_PKG_VERSION"),
            self.offline,
            self.locked,
            self.frozen
        );
        SnapshotKey { manifest_path: self.manifest_path.clone(), key }
    }

    pub fn workspace(&self) -> Result<Workspace> {
        let FetchOptions { offline, locked, .. } = self.flags();
        Workspace::load(self.manifest_path.as_deref(), CargoFlags { offline, locked })
    }
}
