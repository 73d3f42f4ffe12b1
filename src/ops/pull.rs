//! `cargo wreg pull`: download one release's wasm, verified against its digests.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use semver::Version;

use crate::Help;
use crate::config::RegistryConfig;
use crate::digest::Digest;
use crate::oci::client::{Client, Release};
use crate::package::PackageName;
use crate::shell;

/// Which release to pull.
pub enum Selector {
    Version(Version),
    Digest(Digest),
    /// A version whose manifest must have this digest.
    Pinned(Version, Digest),
}

pub async fn pull(
    package: &PackageName,
    selector: &Selector,
    config: &RegistryConfig,
    out: &Path,
) -> Result<()> {
    let registry = config.registry_for(package, None)?;
    let client = config.client(&registry)?;
    let release = match selector {
        Selector::Version(version) => by_version(&client, package, version).await?,
        Selector::Digest(digest) => {
            client.release_by_digest(package, digest).await.map_err(|err| {
                Help::error(
                    format!("{err:#}"),
                    format!(
                        "`--digest` takes a manifest digest, the third column of `cargo wreg \
                         info {package}`; wkg.lock records layer digests"
                    ),
                )
            })?
        }
        Selector::Pinned(version, digest) => {
            let release = by_version(&client, package, version).await?;
            if &release.manifest_digest != digest {
                return Err(Help::error(
                    format!(
                        "the manifest of `{package}@{version}` on `{registry}` has digest `{}`, \
                         not `{digest}`",
                        release.manifest_digest
                    ),
                    "leave out the version to pull whatever release has that digest, or the \
                     digest to pull what the version is now",
                ));
            }
            release
        }
    };
    let version = release.version.as_ref().map(|v| format!("@{v}")).unwrap_or_default();
    shell::status("Fetching", format_args!("{package}{version} ({})", release.manifest_digest));
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

/// The release tagged `version`; when there is none, an error listing the newest there are.
async fn by_version(client: &Client, package: &PackageName, version: &Version) -> Result<Release> {
    let error = match client.release(package, version).await {
        Ok(release) => return Ok(release),
        Err(error) => error,
    };
    let Ok(versions) = client.versions(package).await else { return Err(error) };
    if versions.contains(version) {
        return Err(error);
    }
    let help = match crate::ops::index::newest_listed(&versions) {
        None => "the package has no releases there; check its name and the registry".to_string(),
        Some(newest) => format!("the newest releases are {newest}"),
    };
    Err(Help::error(
        format!("`{package}` has no release {version} on `{}`", client.registry()),
        help,
    ))
}
