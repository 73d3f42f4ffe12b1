//! `cargo wreg pull`.

use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use clap::Args;

use super::RegistryArg;
use crate::digest::Digest;
use crate::ops::pull::{self, Selector};
use crate::package::PackageName;

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The release: `ns:name@version`, or `ns:name` with --digest
    #[arg(value_name = "PACKAGE[@VERSION]")]
    pub spec: String,
    /// Select the release by its manifest digest (`sha256:...`); with a version too, the
    /// version's manifest must have this digest
    #[arg(long, value_name = "DIGEST")]
    pub digest: Option<Digest>,
    /// Where to write the wasm (`-` for stdout)
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    #[command(flatten)]
    pub registry: RegistryArg,
}

pub async fn run(args: PullArgs) -> Result<()> {
    let (name, version) = match args.spec.split_once('@') {
        Some((name, version)) => (name, Some(version)),
        None => (args.spec.as_str(), None),
    };
    let package: PackageName = name.parse()?;
    let version = version
        .map(|v| v.parse().map_err(|e| anyhow!("invalid version `{v}` in `{}`: {e}", args.spec)))
        .transpose()?;
    let selector = match (version, args.digest) {
        (Some(version), Some(digest)) => Selector::Pinned(version, digest),
        (None, Some(digest)) => Selector::Digest(digest),
        (Some(version), None) => Selector::Version(version),
        (None, None) => bail!("name a release: `{name}@<version>` or `--digest sha256:...`"),
    };
    pull::pull(&package, &selector, &args.registry.config()?, &args.output).await
}
