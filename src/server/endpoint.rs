//! Paths under `/v2/`: which endpoint a request addresses, with its repository name,
//! digest or tag checked before anything touches the storage.

use axum::http::StatusCode;

use super::error::ApiError;
use super::storage::Reference;
use crate::digest::Digest;
use crate::oci::names::{is_repository, is_tag};

/// What a path under `/v2/` addresses.
#[derive(Debug, PartialEq, Eq)]
pub enum Endpoint {
    Blob { name: String, digest: Digest },
    Uploads { name: String },
    Upload { name: String, id: String },
    Manifest { name: String, reference: Reference },
    Tags { name: String },
}

/// The fixed part of a path after the repository name.
enum Suffix<'a> {
    Blob(&'a str),
    Uploads,
    Upload(&'a str),
    Manifest(&'a str),
    Tags,
}

impl Endpoint {
    /// Parses the part of a path after `/v2/`. The repository name is whatever precedes a
    /// known suffix, since names may have any number of `/`-separated components.
    pub fn parse(path: &str) -> Result<Self, ApiError> {
        let segments: Vec<&str> = path.split('/').collect();
        let (name, suffix) = match segments.as_slice() {
            [name @ .., "tags", "list"] => (name, Suffix::Tags),
            [name @ .., "blobs", "uploads", ""] | [name @ .., "blobs", "uploads"] => {
                (name, Suffix::Uploads)
            }
            [name @ .., "blobs", "uploads", id] => (name, Suffix::Upload(id)),
            [name @ .., "blobs", digest] => (name, Suffix::Blob(digest)),
            [name @ .., "manifests", reference] => (name, Suffix::Manifest(reference)),
            // TODO: the OCI 1.1 referrers API; until then clients fall back to referrer tags.
            _ => {
                let message = format!("no registry endpoint at `/v2/{path}`");
                return Err(ApiError::new(StatusCode::NOT_FOUND, "UNSUPPORTED", message));
            }
        };
        let name = repository_name(name)?;
        Ok(match suffix {
            Suffix::Blob(digest) => Self::Blob { name, digest: parse_digest(digest)? },
            Suffix::Uploads => Self::Uploads { name },
            Suffix::Upload(id) => Self::Upload { name, id: id.to_string() },
            Suffix::Manifest(reference) => {
                Self::Manifest { name, reference: parse_reference(reference)? }
            }
            Suffix::Tags => Self::Tags { name },
        })
    }

    /// The repository the endpoint belongs to.
    pub fn name(&self) -> &str {
        match self {
            Self::Blob { name, .. }
            | Self::Uploads { name }
            | Self::Upload { name, .. }
            | Self::Manifest { name, .. }
            | Self::Tags { name } => name,
        }
    }
}

/// Joins and checks the components of a repository name against the OCI grammar, which
/// also keeps names from escaping the storage directory.
fn repository_name(components: &[&str]) -> Result<String, ApiError> {
    let name = components.join("/");
    if components.is_empty() || !is_repository(&name) {
        let message = format!("invalid repository name `{name}`");
        return Err(ApiError::bad_request("NAME_INVALID", message));
    }
    Ok(name)
}

pub fn parse_digest(digest: &str) -> Result<Digest, ApiError> {
    digest.parse().map_err(|err| ApiError::bad_request("DIGEST_INVALID", format!("{err:#}")))
}

fn parse_reference(reference: &str) -> Result<Reference, ApiError> {
    if reference.contains(':') {
        return parse_digest(reference).map(Reference::Digest);
    }
    if !is_tag(reference) {
        let message = format!("invalid tag `{reference}`");
        return Err(ApiError::bad_request("MANIFEST_INVALID", message));
    }
    Ok(Reference::Tag(reference.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> String {
        format!("sha256:{}", "ab".repeat(32))
    }

    #[test]
    fn parses_endpoints_after_multi_component_names() {
        let blob = Endpoint::parse(&format!("acme/wit/x/blobs/{}", digest())).unwrap();
        assert_eq!(
            blob,
            Endpoint::Blob { name: "acme/wit/x".into(), digest: digest().parse().unwrap() }
        );
        let uploads = Endpoint::Uploads { name: "a/b".into() };
        assert_eq!(Endpoint::parse("a/b/blobs/uploads/").unwrap(), uploads);
        assert_eq!(Endpoint::parse("a/b/blobs/uploads").unwrap(), uploads);
        let upload = Endpoint::parse("a/blobs/uploads/Xy12").unwrap();
        assert_eq!(upload, Endpoint::Upload { name: "a".into(), id: "Xy12".into() });
        let manifest = Endpoint::parse("a/manifests/1.0.0").unwrap();
        let reference = Reference::Tag("1.0.0".into());
        assert_eq!(manifest, Endpoint::Manifest { name: "a".into(), reference });
        let manifest = Endpoint::parse(&format!("a/manifests/{}", digest())).unwrap();
        let reference = Reference::Digest(digest().parse().unwrap());
        assert_eq!(manifest, Endpoint::Manifest { name: "a".into(), reference });
        assert_eq!(
            Endpoint::parse("a/tags/tags/list").unwrap(),
            Endpoint::Tags { name: "a/tags".into() }
        );
    }

    #[test]
    fn rejects_invalid_names_tags_and_digests() {
        let code = |path: &str| Endpoint::parse(path).map(|_| "").unwrap_or_else(|e| e.code);
        let names = "../x .. a/../../etc A a//b a- _a a%2F a..b a___b";
        for path in std::iter::once("tags/list".to_string())
            .chain(names.split(' ').map(|n| format!("{n}/tags/list")))
        {
            assert_eq!(code(&path), "NAME_INVALID", "{path}");
        }
        assert_eq!(code("a/blobs/sha256:00"), "DIGEST_INVALID");
        assert_eq!(code("a/manifests/md5:00"), "DIGEST_INVALID");
        assert_eq!(code("a/manifests/.hidden"), "MANIFEST_INVALID");
        assert_eq!(code(&format!("a/manifests/{}", "t".repeat(129))), "MANIFEST_INVALID");
        assert_eq!(code("a/b"), "UNSUPPORTED");
        assert_eq!(code("a__b/c--d/e.f_g/tags/list"), "");
    }
}
