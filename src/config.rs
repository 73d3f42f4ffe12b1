//! Which registry serves which package.
//!
//! For now one layer: `--registry` or `CARGO_WREG_REGISTRY` sends every namespace to one
//! registry, and a dependency's own `registry` key overrides it.

use anyhow::Result;

use crate::Help;
use crate::package::PackageName;
use crate::registry::Registry;

/// The registry selection in force for one command.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    default: Option<Registry>,
}

impl RegistryConfig {
    /// `--registry` wins over `CARGO_WREG_REGISTRY`; clap reads both into `flag`.
    pub fn new(flag: Option<Registry>) -> Self {
        Self { default: flag }
    }

    /// The registry for `package`, given the registry its manifest entry names, if any.
    pub fn registry_for(
        &self,
        package: &PackageName,
        explicit: Option<&Registry>,
    ) -> Result<Registry> {
        explicit.or(self.default.as_ref()).cloned().ok_or_else(|| {
            Help::error(
                format!(
                    "no registry is configured for namespace `{}` (package `{package}`)",
                    package.namespace()
                ),
                "pass `--registry <URL>` or set `CARGO_WREG_REGISTRY`, e.g. \
                 `--registry http://127.0.0.1:5000` for `cargo wreg registry serve`, or add \
                 `registry = \"...\"` to the package's entry in `[package.metadata.component]`",
            )
        })
    }
}
