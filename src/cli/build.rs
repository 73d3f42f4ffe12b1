//! `cargo wreg build`.

use anyhow::Result;
use clap::Args;

use super::ProjectArgs;
use crate::ops;
use crate::ops::build::BuildOptions;
use crate::ops::fetch::FetchOptions;
use crate::ops::fingerprint;
use crate::ops::workspace::Workspace;

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub cargo: CargoBuildArgs,
}

/// The `cargo build` arguments cargo-wreg needs to see; the rest pass through.
#[derive(Debug, Clone, Args)]
pub struct CargoBuildArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Package(s) to build
    #[arg(short, long = "package", value_name = "SPEC")]
    pub packages: Vec<String>,
    /// Build in release mode
    #[arg(short, long)]
    pub release: bool,
    /// Target triple (default: build.target from cargo's config, else wasm32-wasip2)
    #[arg(long, value_name = "TRIPLE")]
    pub target: Option<String>,
    /// Further arguments for `cargo build`, such as `--features a,b`
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "CARGO_ARGS")]
    pub cargo_args: Vec<String>,
}

impl CargoBuildArgs {
    pub fn options(&self, workspace: &Workspace) -> Result<BuildOptions> {
        Ok(self.options_with(self.project.fetch_options(workspace)?))
    }

    fn options_with(&self, fetch: FetchOptions) -> BuildOptions {
        BuildOptions {
            fetch,
            manifest_path: self.project.manifest_path.clone(),
            packages: self.packages.clone(),
            release: self.release,
            target: self.target.clone(),
            frozen: self.project.frozen,
            cargo_args: self.cargo_args.clone(),
        }
    }
}

pub async fn run(args: BuildArgs) -> Result<()> {
    let cargo = &args.cargo;
    let snapshot = cargo.project.snapshot_key(&cargo.packages);

    // Nothing a fetch reads has changed: straight to cargo.
    if let Some(fresh) = fingerprint::fresh(snapshot.manifest_path.as_deref(), &snapshot.key) {
        let options = cargo.options_with(cargo.project.flags());
        ops::build::compile(&fresh.root, &fresh.prepared, &options)?;
        return Ok(());
    }
    let workspace = cargo.project.workspace()?;
    let mut options = cargo.options(&workspace)?;
    options.fetch.snapshot = Some(snapshot);
    ops::build::build(&workspace, &options).await?;
    Ok(())
}
