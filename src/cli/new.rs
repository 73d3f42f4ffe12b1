//! `cargo wreg new`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::RegistryArg;
use crate::config::RegistryConfig;
use crate::ops::new::{self, CrateKind, NewOptions};

#[derive(Debug, Args)]
pub struct NewArgs {
    /// Directory to create the crate in
    pub path: PathBuf,
    /// A library component (the default)
    #[arg(long, conflicts_with = "bin")]
    pub lib: bool,
    /// A command: a binary with `fn main`
    #[arg(long)]
    pub bin: bool,
    /// Crate name (default: the directory name)
    #[arg(long)]
    pub name: Option<String>,
    /// World to implement, from a registry: `ns:pkg/world@version` (default: a world in `wit/`)
    #[arg(long, value_name = "WORLD")]
    pub target: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArg,
    /// Use only the cache; never touch the network
    #[arg(long)]
    pub offline: bool,
}

pub async fn run(args: NewArgs) -> Result<()> {
    let options = NewOptions {
        kind: if args.bin { CrateKind::Bin } else { CrateKind::Lib },
        name: args.name,
        target: args.target,
        config: RegistryConfig::load(args.registry.registry)?,
        offline: args.offline,
        path: args.path,
    };
    new::new(&options).await?;
    Ok(())
}
