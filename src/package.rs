//! Package names (`ns:name`) and package references with an optional version requirement
//! (`ns:name@^1.2`), as users write them on the command line and in manifests.

use std::fmt;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use semver::VersionReq;

/// A WIT or component package name: `namespace:name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackageName {
    namespace: String,
    name: String,
}

impl PackageName {
    /// `component:<crate>`, the package cargo-component names a crate's own world after until
    /// its author picks one: the crate name in lowercase, with `-` for `_`.
    pub fn for_crate(crate_name: &str) -> Result<Self> {
        Self::new("component", &crate_name.to_lowercase().replace('_', "-"))
    }

    pub fn new(namespace: &str, name: &str) -> Result<Self> {
        check_namespace(namespace)?;
        check_label(name).with_context(|| format!("invalid package name `{name}`"))?;
        Ok(Self { namespace: namespace.to_string(), name: name.to_string() })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The OCI repository path of this package, without any registry prefix: `ns/name`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// WIT identifiers in package names are lowercase kebab-case words that start with a letter.
/// Checks a namespace alone, as a registry mapping names one.
pub fn check_namespace(namespace: &str) -> Result<()> {
    check_label(namespace).with_context(|| format!("invalid namespace `{namespace}`"))
}

fn check_label(label: &str) -> Result<()> {
    if label.is_empty() {
        bail!("it is empty");
    }
    for word in label.split('-') {
        let mut chars = word.chars();
        match chars.next() {
            Some(c) if c.is_ascii_lowercase() => {}
            _ => bail!("each `-`-separated word must start with a lowercase ASCII letter"),
        }
        if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            bail!("only lowercase ASCII letters, digits and `-` are allowed");
        }
    }
    Ok(())
}

impl FromStr for PackageName {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let Some((namespace, name)) = s.split_once(':') else {
            bail!("invalid package name `{s}`: expected `namespace:name`, such as `wasi:http`");
        };
        Self::new(namespace, name).with_context(|| format!("invalid package name `{s}`"))
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.namespace, self.name)
    }
}

impl serde::Serialize for PackageName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PackageName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|e: anyhow::Error| serde::de::Error::custom(format!("{e:#}")))
    }
}

/// Parses a version requirement with cargo's rules: a bare `1.2.0` means `^1.2.0`.
pub fn parse_requirement(s: &str) -> Result<VersionReq> {
    VersionReq::parse(s.trim()).with_context(|| {
        format!("invalid version requirement `{s}`: expected semver such as `0.2.0` or `^1.1`")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_names() {
        let name: PackageName = "wasi:http".parse().unwrap();
        assert_eq!(name.namespace(), "wasi");
        assert_eq!(name.name(), "http");
        assert_eq!(name.to_string(), "wasi:http");
        assert_eq!(name.repository(), "wasi/http");
        assert!("my-org:key-value2".parse::<PackageName>().is_ok());
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in ["wasi", ":http", "wasi:", "Wasi:http", "wasi:http:x", "wasi:1http", "a:b--c"] {
            assert!(bad.parse::<PackageName>().is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn bare_versions_are_caret_requirements() {
        let req = parse_requirement("1.2.0").unwrap();
        assert!(req.matches(&"1.9.0".parse().unwrap()));
        assert!(!req.matches(&"2.0.0".parse().unwrap()));
        assert!(parse_requirement("one").is_err());
    }
}
