//! Registry addresses as users give them (`--registry`, `CARGO_WREG_REGISTRY`, configuration
//! files), and the mapping from a package to its OCI repository on that registry.
//!
//! The same type names both a Wasm package registry (`wasi.dev`, which discovery may send
//! elsewhere) and the OCI registry that actually holds the artifacts (`ghcr.io/webassembly`).

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};

use crate::package::PackageName;

/// An OCI registry: scheme, `host[:port]` and an optional repository path prefix.
///
/// `http://host:port` is plain HTTP; a bare `host[:port][/prefix]` is HTTPS, except for
/// `localhost` and `127.0.0.1`, which are HTTP (that is where local registries run).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Registry {
    insecure: bool,
    host: String,
    prefix: Option<String>,
}

impl Registry {
    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.insecure { "http" } else { "https" }
    }

    /// `host[:port]`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The base URL of the registry's API, such as `https://ghcr.io`.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme(), self.host)
    }

    /// Whether the registry is reached over plain HTTP.
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// The repository path prefix, such as `webassembly` in `ghcr.io/webassembly`.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// The same registry over HTTP (`true`) or HTTPS (`false`).
    pub fn with_insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    /// The OCI registry `host` with packages under `prefix`, as registry metadata describes
    /// it. A prefix is a path (`webassembly/`); surrounding slashes do not matter. Without
    /// `insecure`, the loopback rule picks the scheme.
    pub fn located(host: &str, prefix: Option<&str>, insecure: Option<bool>) -> Result<Self> {
        let prefix = prefix.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty());
        let address = match prefix {
            Some(prefix) => format!("{host}/{prefix}"),
            None => host.to_string(),
        };
        if address.contains("://") {
            bail!("invalid registry host `{host}`: expected `host[:port]` without a scheme");
        }
        let registry: Self = address.parse()?;
        Ok(match insecure {
            Some(insecure) => registry.with_insecure(insecure),
            None => registry,
        })
    }

    /// The repository holding `package`: `prefix/ns/name`.
    pub fn repository(&self, package: &PackageName) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}/{}", package.repository()),
            None => package.repository(),
        }
    }
}

fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

impl FromStr for Registry {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let (explicit, rest) = if let Some(rest) = s.strip_prefix("http://") {
            (Some(true), rest)
        } else if let Some(rest) = s.strip_prefix("https://") {
            (Some(false), rest)
        } else {
            (None, s)
        };
        let rest = rest.trim_end_matches('/');
        let (host, prefix) = match rest.split_once('/') {
            Some((host, prefix)) => (host, Some(prefix.to_string())),
            None => (rest, None),
        };
        let valid_host = !host.is_empty()
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
        if !valid_host || s.contains("://") && explicit.is_none() {
            bail!(
                "invalid registry `{s}`: expected `host[:port][/prefix]`, optionally with \
                 `http://` or `https://`, such as `ghcr.io/my-org` or `http://127.0.0.1:5000`"
            );
        }
        if let Some(prefix) = &prefix
            && !prefix.split('/').all(crate::oci::names::is_component)
        {
            bail!(
                "invalid registry `{s}`: the path prefix `{prefix}` is not a repository path \
                 (lowercase letters and digits, separated by `/`, `.`, `_` or `-`)"
            );
        }
        let insecure = explicit.unwrap_or_else(|| is_loopback(host));
        Ok(Self { insecure, host: host.to_ascii_lowercase(), prefix })
    }
}

/// Displays the registry the way it is recorded in `wkg.lock`: no scheme when the default
/// rule gives the same one back.
impl fmt::Display for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.insecure != is_loopback(&self.host) {
            write!(f, "{}://", self.scheme())?;
        }
        f.write_str(&self.host)?;
        if let Some(prefix) = &self.prefix {
            write!(f, "/{prefix}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(s: &str) -> Registry {
        s.parse().unwrap()
    }

    #[test]
    fn schemes_follow_the_loopback_rule() {
        assert_eq!(reg("ghcr.io").base_url(), "https://ghcr.io");
        assert_eq!(reg("localhost:5000").base_url(), "http://localhost:5000");
        assert_eq!(reg("127.0.0.1:5000").base_url(), "http://127.0.0.1:5000");
        assert_eq!(reg("http://registry.lan:5000").base_url(), "http://registry.lan:5000");
        assert_eq!(reg("https://localhost:5000").base_url(), "https://localhost:5000");
    }

    #[test]
    fn prefixes_go_in_front_of_the_repository() {
        let wasi: PackageName = "wasi:http".parse().unwrap();
        assert_eq!(reg("ghcr.io/webassembly").repository(&wasi), "webassembly/wasi/http");
        assert_eq!(reg("ghcr.io").repository(&wasi), "wasi/http");
    }

    #[test]
    fn display_round_trips() {
        for s in
            ["ghcr.io/webassembly", "127.0.0.1:5000", "http://registry.lan", "https://localhost"]
        {
            assert_eq!(reg(s).to_string(), s);
            assert_eq!(reg(&reg(s).to_string()), reg(s));
        }
    }

    #[test]
    fn located_registries_join_host_and_prefix() {
        let wasi: PackageName = "wasi:http".parse().unwrap();
        let ghcr = Registry::located("ghcr.io", Some("webassembly/"), None).unwrap();
        assert_eq!(ghcr.repository(&wasi), "webassembly/wasi/http");
        assert_eq!(ghcr.base_url(), "https://ghcr.io");
        let plain = Registry::located("registry.lan:5000", Some(""), Some(true)).unwrap();
        assert_eq!((plain.base_url().as_str(), plain.prefix()), ("http://registry.lan:5000", None));
        assert_eq!(Registry::located("localhost:5000", None, None).unwrap().scheme(), "http");
        assert!(Registry::located("a b", None, None).is_err());
        assert!(Registry::located("https://ghcr.io", None, None).is_err());
    }

    #[test]
    fn rejects_malformed_registries() {
        let malformed =
            ["", "ftp://x", "http://", "ghcr.io//x", "ghcr.io/../x", "a b", "ghcr.io/Org"];
        // Beyond what OCI's name grammar allows.
        let ungrammatical = ["ghcr.io/a___b", "ghcr.io/a-.b"];
        for bad in malformed.into_iter().chain(ungrammatical) {
            assert!(bad.parse::<Registry>().is_err(), "{bad} should be rejected");
        }
    }
}
