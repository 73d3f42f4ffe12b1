//! `cargo wreg publish`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::build::CargoBuildArgs;
use crate::ops::publish;

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Publish the WIT package at PATH (a directory, a `.wit` file or an encoded `.wasm`)
    /// instead of the crate's component
    #[arg(long, value_name = "PATH")]
    pub wit: Option<PathBuf>,
    /// Do everything but the upload, and show what would be pushed
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub cargo: CargoBuildArgs,
}

pub async fn run(args: PublishArgs) -> Result<()> {
    if let Some(path) = &args.wit {
        let config = args.cargo.project.registry.config()?;
        return publish::publish_wit(path, &config, args.dry_run).await;
    }
    let workspace = args.cargo.project.workspace()?;
    publish::publish_component(&workspace, &args.cargo.options(&workspace)?, args.dry_run).await
}
