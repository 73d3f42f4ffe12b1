//! `cargo wreg pull`: download one release's wasm, verified against its digests.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use semver::Version;

use crate::config::RegistryConfig;
use crate::digest::Digest;
use crate::package::PackageName;
use crate::shell;

/// Which release to pull.
pub enum Selector {
    Version(Version),
    Digest(Digest),
}

pub async fn pull(
    package: &PackageName,
    selector: &Selector,
    config: &RegistryConfig,
    out: &Path,
) -> Result<()> {
    let client = config.client(&config.registry_for(package, None)?)?;
    let release = match selector {
        Selector::Version(version) => client.release(package, version).await?,
        Selector::Digest(digest) => client.release_by_digest(package, digest).await?,
    };
    shell::status("Fetching", format_args!("{package} ({})", release.manifest_digest));
    let bar = shell::transfer_bar("Downloading", &package.to_string(), release.layer.size);
    let bytes = client.fetch_layer(package, &release.layer, bar.as_ref()).await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    // `-o -` writes to stdout, as other tools have it.
    if out == Path::new("-") {
        return std::io::stdout()
            .write_all(&bytes)
            .and_then(|()| std::io::stdout().flush())
            .context("failed to write to stdout");
    }
    crate::fsutil::write_atomic(out, &bytes)
        .with_context(|| format!("failed to save `{package}` to `{}`", out.display()))?;
    shell::status("Saved", format_args!("{} ({} bytes)", out.display(), bytes.len()));
    Ok(())
}
