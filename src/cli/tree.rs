//! `cargo wreg tree`.

use anyhow::Result;
use clap::Args;

use super::ProjectArgs;
use crate::ops::tree::{self, TreeOptions};
use crate::package::PackageName;

#[derive(Debug, Args)]
pub struct TreeArgs {
    /// Show the packages that pull in PACKAGE
    #[arg(short, long, value_name = "PACKAGE")]
    pub invert: Option<PackageName>,
    /// Show only packages present in several versions, and who pulls each in
    #[arg(short, long, conflicts_with = "invert")]
    pub duplicates: bool,
    /// Draw only these members (default: the ones cargo would choose)
    #[arg(short, long = "package", value_name = "SPEC")]
    pub packages: Vec<String>,
    #[command(flatten)]
    pub project: ProjectArgs,
}

pub async fn run(args: TreeArgs) -> Result<()> {
    let workspace = args.project.workspace()?;
    let options = TreeOptions {
        fetch: args.project.fetch_options(&workspace)?,
        invert: args.invert,
        duplicates: args.duplicates,
        packages: args.packages,
    };
    print!("{}", tree::tree(&workspace, &options).await?);
    Ok(())
}
