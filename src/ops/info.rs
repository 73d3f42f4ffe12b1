//! `cargo wreg info`: the published versions of a package, newest first, each with the digest
//! of its wasm layer as its manifest records it (what `wkg.lock` pins) and the digest of the
//! manifest itself (what `pull --digest` takes).

use anyhow::Result;
use futures_util::{StreamExt, TryStreamExt, stream};
use semver::Version;

use crate::Help;
use crate::config::RegistryConfig;
use crate::digest::Digest;
use crate::package::PackageName;
use crate::shell;

/// How many manifests are fetched at once.
const CONCURRENT_FETCHES: usize = 8;

/// One published version of a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    pub version: Version,
    /// The digest of the wasm layer (what `wkg.lock` pins).
    pub layer: Digest,
    pub manifest: Digest,
}

impl VersionInfo {
    /// The line `info` prints: version, layer digest and manifest digest, two spaces apart.
    pub fn line(&self) -> String {
        format!("{}  {}  {}", self.version, self.layer, self.manifest)
    }
}

/// Every version of `package` on its registry, newest first. A package without versions is an
/// error.
pub async fn info(package: &PackageName, config: &RegistryConfig) -> Result<Vec<VersionInfo>> {
    let registry = config.registry_for(package, None)?;
    let client = config.client(&registry)?;
    shell::status("Querying", format_args!("{registry} for the releases of {package}"));
    let mut versions = client.versions(package).await?;
    if versions.is_empty() {
        return Err(Help::error(
            format!("package `{package}` has no releases on `{registry}`"),
            "check the package name and the registry (`--registry`)",
        ));
    }

    // `buffered` keeps the input order, so the output stays newest first.
    versions.sort_by(|a, b| b.cmp(a));
    stream::iter(versions)
        .map(|version| {
            let client = &client;
            async move {
                let release = client.release(package, &version).await?;
                let (layer, manifest) = (release.layer.digest, release.manifest_digest);
                Ok::<_, anyhow::Error>(VersionInfo { version, layer, manifest })
            }
        })
        .buffered(CONCURRENT_FETCHES)
        .try_collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_version_then_layer_and_manifest_digests() {
        let info = VersionInfo {
            version: "1.3.2".parse().unwrap(),
            layer: Digest::of(b"layer"),
            manifest: Digest::of(b"manifest"),
        };
        let digests = format!("{}  {}", Digest::of(b"layer"), Digest::of(b"manifest"));
        assert_eq!(info.line(), format!("1.3.2  {digests}"));
    }
}
