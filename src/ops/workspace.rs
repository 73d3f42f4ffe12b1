//! The cargo workspace as cargo-wreg sees it: `cargo metadata` output plus the component
//! metadata of each member that has some.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cargo_metadata::{Metadata, MetadataCommand, Package};

use crate::Help;
use crate::lock::LOCK_FILE_NAME;
use crate::manifest::ComponentMetadata;
use crate::shell;

/// A workspace member with `[package.metadata.component]`.
#[derive(Debug)]
pub struct Member {
    pub package: Package,
    pub component: ComponentMetadata,
}

impl Member {
    /// The directory holding the member's Cargo.toml.
    pub fn dir(&self) -> &Path {
        self.package.manifest_path.parent().map(|p| p.as_std_path()).unwrap_or(Path::new("."))
    }
}

#[derive(Debug)]
pub struct Workspace {
    pub metadata: Metadata,
    pub members: Vec<Member>,
}

/// How `cargo metadata` may reach the network, mirroring cargo's flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct CargoFlags {
    pub offline: bool,
    pub locked: bool,
}

impl Workspace {
    /// Loads the workspace of `manifest_path` (or of the current directory).
    pub fn load(manifest_path: Option<&Path>, flags: CargoFlags) -> Result<Self> {
        let mut command = MetadataCommand::new();
        if let Some(path) = manifest_path {
            command.manifest_path(path);
        }
        let mut extra = Vec::new();
        if flags.offline {
            extra.push("--offline".to_string());
        }
        if flags.locked {
            extra.push("--locked".to_string());
        }
        command.other_options(extra);
        let metadata =
            command.exec().map_err(metadata_error).with_context(|| match manifest_path {
                Some(p) => format!("failed to read the cargo workspace of `{}`", p.display()),
                None => "failed to read the cargo workspace of the current directory".to_string(),
            })?;
        let members = component_members(&metadata)?;
        Ok(Self { metadata, members })
    }

    pub fn root(&self) -> &Path {
        self.metadata.workspace_root.as_std_path()
    }

    pub fn lock_path(&self) -> PathBuf {
        self.root().join(LOCK_FILE_NAME)
    }

    /// Takes the workspace's exclusive lock, held until the guard drops, so concurrent
    /// cargo-wreg runs on one workspace do not write `wkg.lock`, `wit/deps` or bindings at
    /// the same time. The lock file lives in the target directory, out of the user's way.
    pub fn lock_exclusive(&self) -> Result<std::fs::File> {
        let dir = self.target_dir();
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create `{}`", dir.display()))?;
        // One lock per workspace, so projects sharing a target directory do not wait on
        // each other.
        let id = crate::digest::Digest::of(self.root().as_os_str().as_encoded_bytes());
        let path = dir.join(format!(".cargo-wreg-{}.lock", &id.hex()[..16]));
        let (file, locked) = crate::fsutil::try_lock_file(&path)?;
        if !locked {
            shell::info("Blocking", "waiting for another cargo-wreg run on this workspace");
            file.lock().with_context(|| format!("failed to lock `{}`", path.display()))?;
        }
        Ok(file)
    }

    pub fn target_dir(&self) -> &Path {
        self.metadata.target_directory.as_std_path()
    }

    /// The names of all component members, for `--workspace`.
    pub fn member_names(&self) -> Vec<String> {
        self.members.iter().map(|m| m.package.name.to_string()).collect()
    }

    /// The members named by `-p`; without names, the ones cargo would choose.
    pub fn select(&self, names: &[String]) -> Result<Vec<&Member>> {
        if names.is_empty() {
            return Ok(self.default_members());
        }
        names
            .iter()
            .map(|name| {
                self.members.iter().find(|m| m.package.name.as_str() == name).ok_or_else(|| {
                    Help::error(
                        format!("package `{name}` is not a component in this workspace"),
                        "only members with `[package.metadata.component]` can be selected with `-p`",
                    )
                })
            })
            .collect()
    }

    /// The members a command without `-p` works on, as cargo chooses them: the package of the
    /// manifest it started from (the current directory's, or `--manifest-path`), else the
    /// workspace's `default-members`, else all. When none of those is a component, all
    /// components.
    fn default_members(&self) -> Vec<&Member> {
        let defaults = &self.metadata.workspace_default_members;
        if defaults.is_available() {
            let chosen: Vec<&Member> =
                self.members.iter().filter(|m| defaults.contains(&m.package.id)).collect();
            if !chosen.is_empty() {
                return chosen;
            }
        }
        self.members.iter().collect()
    }
}

fn component_members(metadata: &Metadata) -> Result<Vec<Member>> {
    let mut members = Vec::new();
    for package in metadata.workspace_packages() {
        let Some(component) = ComponentMetadata::from_package(package)? else { continue };
        for key in &component.unknown_keys {
            shell::warn(format_args!("unused manifest key: {key} in `{}`", package.manifest_path));
        }
        members.push(Member { package: package.clone(), component });
    }
    if members.is_empty() {
        return Err(Help::error(
            format!(
                "no package in the workspace at `{}` has `[package.metadata.component]`",
                metadata.workspace_root
            ),
            "add `[package.metadata.component]` with `package = \"ns:name\"` and `target = \
             \"ns:pkg/world@version\"` to the crate's Cargo.toml",
        ));
    }
    Ok(members)
}

fn metadata_error(err: cargo_metadata::Error) -> anyhow::Error {
    match err {
        cargo_metadata::Error::CargoMetadata { stderr } => {
            anyhow::anyhow!("{}", stderr.trim().trim_start_matches("error: "))
        }
        other => anyhow::Error::new(other),
    }
}
