//! Version selection: the pure part of resolution, with no I/O.

use std::fmt::Write;

use anyhow::{Result, bail};
use semver::{Version, VersionReq};

use crate::package::PackageName;

/// Picks the highest of `available` that satisfies `requirement`. Pre-releases match only
/// when the requirement names a pre-release (semver's rule, as cargo has it).
pub fn select<'a>(
    package: &PackageName,
    requirement: &VersionReq,
    available: &'a [Version],
) -> Result<&'a Version> {
    if let Some(best) = available.iter().filter(|v| requirement.matches(v)).max() {
        return Ok(best);
    }
    if available.is_empty() {
        bail!("package `{package}` has no releases");
    }
    let mut listed = String::new();
    for (i, version) in available.iter().rev().take(10).enumerate() {
        let _ = write!(listed, "{}{version}", if i == 0 { "" } else { ", " });
    }
    if available.len() > 10 {
        listed.push_str(", ...");
    }
    bail!("no release of `{package}` matches `{requirement}`; available: {listed}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(list: &[&str]) -> Vec<Version> {
        let mut v: Vec<Version> = list.iter().map(|s| s.parse().unwrap()).collect();
        v.sort();
        v
    }

    #[test]
    fn picks_the_highest_match() {
        let name = "acme:kv".parse().unwrap();
        let available = versions(&["1.0.0", "1.3.2", "2.0.1", "2.1.0-rc.1"]);
        let pick =
            |req: &str| select(&name, &req.parse().unwrap(), &available).map(|v| v.to_string());
        assert_eq!(pick("^1.1").unwrap(), "1.3.2");
        assert_eq!(pick("*").unwrap(), "2.0.1");
        assert_eq!(pick("=1.0.0").unwrap(), "1.0.0");
        assert_eq!(pick("2.1.0-rc.1").unwrap(), "2.1.0-rc.1");
        let err = pick("^3").unwrap_err().to_string();
        assert_eq!(
            err,
            "no release of `acme:kv` matches `^3`; available: 2.1.0-rc.1, 2.0.1, 1.3.2, 1.0.0"
        );
    }

    #[test]
    fn no_releases() {
        let name = "acme:kv".parse().unwrap();
        assert!(
            select(&name, &VersionReq::STAR, &[]).unwrap_err().to_string().contains("no releases")
        );
    }
}
