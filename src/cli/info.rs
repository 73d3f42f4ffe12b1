//! `cargo wreg info`.

use std::io::Write;

use anyhow::{Context, Result};
use clap::Args;

use super::RegistryArg;
use crate::ops::info;
use crate::package::PackageName;

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The package: `ns:name`
    #[arg(value_name = "PACKAGE")]
    pub package: PackageName,
    #[command(flatten)]
    pub registry: RegistryArg,
}

pub async fn run(args: InfoArgs) -> Result<()> {
    let versions = info::info(&args.package, &args.registry.config()?).await?;
    let mut out = std::io::stdout().lock();
    for version in &versions {
        writeln!(out, "{}", version.line()).context("failed to write to stdout")?;
    }
    out.flush().context("failed to write to stdout")
}
