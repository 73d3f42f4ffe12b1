//! `cargo wreg build`.

use anyhow::Result;
use clap::Args;

use super::ProjectArgs;
use crate::ops;
use crate::ops::build::BuildOptions;

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
    pub fn options(&self) -> BuildOptions {
        BuildOptions {
            fetch: self.project.fetch_options(),
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
    let workspace = args.cargo.project.workspace()?;
    ops::build::build(&workspace, &args.cargo.options()).await?;
    Ok(())
}
