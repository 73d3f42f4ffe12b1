//! The OCI grammar for repository names and tags. In the embedded registry, names and tags
//! become path components in the storage directory, so these checks are also what keeps
//! requests inside it.

/// Longest repository name accepted, as most registries limit it.
const MAX_NAME_LENGTH: usize = 255;

/// Whether `name` is a repository name: `/`-separated components of the OCI grammar.
pub fn is_repository(name: &str) -> bool {
    name.len() <= MAX_NAME_LENGTH && name.split('/').all(is_component)
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
pub fn is_component(component: &str) -> bool {
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    component.starts_with(alphanumeric)
        && component.ends_with(alphanumeric)
        && component.split(alphanumeric).all(|separator| {
            matches!(separator, "" | "." | "_" | "__") || separator.bytes().all(|b| b == b'-')
        })
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
pub fn is_tag(tag: &str) -> bool {
    let first_ok = tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
    first_ok
        && tag.len() <= 128
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The namespace a repository belongs to, which access scopes name: its first component.
pub fn namespace(repository: &str) -> &str {
    repository.split('/').next().unwrap_or(repository)
}

/// Whether a tag names a release (`1.2.3`, `v1.2.3-rc.1`), which must never move once pushed;
/// other tags such as `latest` may.
pub fn is_release_tag(tag: &str) -> bool {
    semver::Version::parse(tag.strip_prefix('v').unwrap_or(tag)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_names_against_the_grammar() {
        for good in ["a", "acme/x", "a__b/c--d/e.f_g", "0/1"] {
            assert!(is_repository(good), "{good}");
        }
        let long = "a".repeat(256);
        for bad in ["", "../x", "..", "a/../../etc", "A", "a//b", "a-", "_a", "a%2F", "/a", &long] {
            assert!(!is_repository(bad), "{bad}");
        }
    }

    #[test]
    fn finds_namespaces_and_releases() {
        assert_eq!(namespace("acme/wit/x"), "acme");
        assert_eq!(namespace("solo"), "solo");
        for release in ["1.0.0", "v2.1.0", "1.0.0-rc.1"] {
            assert!(is_release_tag(release), "{release}");
        }
        for other in ["latest", "1.0", "sha256-abc", "v"] {
            assert!(!is_release_tag(other), "{other}");
        }
    }
}
