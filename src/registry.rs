//! Registry addresses as users give them (`--registry`, `CARGO_WREG_REGISTRY`), and the
//! mapping from a package to its OCI repository on that registry.

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
            && prefix.split('/').any(|part| part.is_empty() || part == "." || part == "..")
        {
            bail!("invalid registry `{s}`: the path prefix `{prefix}` has an empty or dot segment");
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
    fn rejects_malformed_registries() {
        for bad in ["", "ftp://x", "http://", "ghcr.io//x", "ghcr.io/../x", "a b"] {
            assert!(bad.parse::<Registry>().is_err(), "{bad} should be rejected");
        }
    }
}
