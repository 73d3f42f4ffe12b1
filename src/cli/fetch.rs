//! `cargo wreg fetch`.

use anyhow::Result;
use clap::Args;

use super::ProjectArgs;
use crate::ops;

#[derive(Debug, Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Only the named workspace members
    #[arg(short, long = "package", value_name = "SPEC")]
    pub packages: Vec<String>,
}

pub async fn run(args: FetchArgs) -> Result<()> {
    let workspace = args.project.workspace()?;
    let members = workspace.select(&args.packages)?;
    ops::fetch::fetch(&workspace, &members, &args.project.fetch_options()).await?;
    Ok(())
}
