//! `cargo wreg fetch`.

use anyhow::Result;
use clap::Args;

use super::ProjectArgs;
use crate::ops;
use crate::ops::fingerprint;

#[derive(Debug, Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Only the named workspace members
    #[arg(short, long = "package", value_name = "SPEC")]
    pub packages: Vec<String>,
    /// Every component of the workspace
    #[arg(long, conflicts_with = "packages")]
    pub workspace: bool,
}

pub async fn run(args: FetchArgs) -> Result<()> {
    let snapshot = args.project.snapshot_key(&super::selection(&args.packages, args.workspace));
    if fingerprint::fresh(snapshot.manifest_path.as_deref(), &snapshot.key).is_some() {
        return Ok(());
    }
    let workspace = args.project.workspace()?;
    let members = match args.workspace {
        true => workspace.members.iter().collect(),
        false => workspace.select(&args.packages)?,
    };
    let mut options = args.project.fetch_options(&workspace)?;
    options.snapshot = Some(snapshot);
    ops::fetch::fetch(&workspace, &members, &options).await?;
    Ok(())
}
