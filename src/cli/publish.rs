//! `cargo wreg publish`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::build::CargoBuildArgs;
use crate::Help;
use crate::ops::publish::{self, PublishOptions};

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Publish the WIT package at PATH (a directory, a `.wit` file or an encoded `.wasm`)
    /// instead of the crate's component
    #[arg(long, value_name = "PATH", conflicts_with = "workspace")]
    pub wit: Option<PathBuf>,
    /// Publish every component of the workspace, each after the members it uses
    #[arg(long, conflicts_with = "packages")]
    pub workspace: bool,
    /// Do everything but the upload, and show what would be pushed
    #[arg(long)]
    pub dry_run: bool,
    /// Publish even if the WIT breaks compatibility with the previous release of its series
    #[arg(long)]
    pub allow_breaking: bool,
    #[command(flatten)]
    pub cargo: CargoBuildArgs,
}

pub async fn run(args: PublishArgs) -> Result<()> {
    let args = PublishArgs { cargo: args.cargo.resolved()?, ..args };
    let project = &args.cargo.project;
    if project.flags().offline {
        return Err(Help::error(
            "publishing needs the registry, but --offline or --frozen forbids the network",
            "publish without --offline (use --locked to keep wkg.lock as it is), or check the \
             build alone with `cargo wreg build --release --offline`",
        ));
    }
    let options = PublishOptions { dry_run: args.dry_run, allow_breaking: args.allow_breaking };
    if let Some(path) = &args.wit {
        let config = args.cargo.project.registry.config()?;
        return publish::publish_wit(path, &config, options).await;
    }
    let workspace = args.cargo.project.workspace()?;
    let build = args.cargo.options(&workspace)?;
    if args.workspace {
        return publish::publish_workspace(&workspace, &build, options).await;
    }
    publish::publish_component(&workspace, &build, options).await
}
