//! `cargo wreg update`.

use anyhow::Result;
use clap::Args;
use semver::Version;

use super::ProjectArgs;
use crate::ops::update::{self, UpdateOptions};
use crate::package::PackageName;

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Packages to update (all when none is named)
    #[arg(value_name = "PACKAGE")]
    pub packages: Vec<PackageName>,
    /// Move the one named package to exactly this version
    #[arg(long, value_name = "VERSION")]
    pub precise: Option<Version>,
    /// Show what would change without writing wkg.lock
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub project: ProjectArgs,
}

pub async fn run(args: UpdateArgs) -> Result<()> {
    let workspace = args.project.workspace()?;
    let options = UpdateOptions {
        fetch: args.project.fetch_options(&workspace)?,
        packages: args.packages,
        precise: args.precise,
        dry_run: args.dry_run,
    };
    update::update(&workspace, &options).await
}
