//! What a release says about itself: the crate's Cargo.toml facts and the git revision of its
//! source, embedded in a component as wasm metadata and repeated as the manifest's OCI
//! annotations, which registry UIs and other tools read.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use semver::Version;
use wasm_metadata::{
    AddMetadata, AddMetadataField, Authors, Description, Homepage, Licenses, Revision, Source,
};

use crate::oci::layout::{AUTHORS, DESCRIPTION, LICENSES, REVISION, SOURCE, URL, VERSION};
use crate::shell;

/// The facts published with a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseFacts {
    /// The crate's name, which becomes the component's name.
    pub name: String,
    pub version: Version,
    pub description: Option<String>,
    pub authors: Vec<String>,
    /// An SPDX license expression.
    pub license: Option<String>,
    /// Where the source is (`repository` in Cargo.toml).
    pub repository: Option<String>,
    pub homepage: Option<String>,
    /// The git commit the source was published from, `-dirty` when it had local changes.
    pub revision: Option<String>,
}

impl ReleaseFacts {
    /// The facts of a workspace member, with the git revision of its directory.
    pub fn of_crate(package: &cargo_metadata::Package) -> Result<Self> {
        let version = Version::parse(&package.version.to_string())
            .with_context(|| format!("invalid version `{}`", package.version))?;
        let dir = package.manifest_path.parent().map_or(Path::new("."), |p| p.as_std_path());
        Ok(Self {
            name: package.name.to_string(),
            version,
            description: package.description.clone(),
            authors: package.authors.clone(),
            license: package.license.clone(),
            repository: package.repository.clone(),
            homepage: package.homepage.clone(),
            revision: git_revision(dir),
        })
    }

    /// The manifest annotations stating these facts (`created` is the artifact's to add).
    pub fn annotations(&self) -> BTreeMap<String, String> {
        let authors = (!self.authors.is_empty()).then(|| self.authors.join(", "));
        let facts = [
            (VERSION, Some(self.version.to_string())),
            (DESCRIPTION, self.description.clone()),
            (AUTHORS, authors),
            (LICENSES, self.license.clone()),
            (SOURCE, self.repository.clone()),
            (URL, self.homepage.clone()),
            (REVISION, self.revision.clone()),
        ];
        facts.into_iter().filter_map(|(key, value)| Some((key.to_string(), value?))).collect()
    }

    /// `wasm` with these facts as its metadata: the component's name, cargo-wreg in its
    /// producers, and the `version`, `description`, `authors`, `licenses`, `source`,
    /// `homepage` and `revision` sections, replacing any it had.
    pub fn embed(&self, wasm: &[u8]) -> Result<Vec<u8>> {
        // Setting a field the wasm already has adds a second section instead of replacing
        // the first, so every field is cleared before the facts go in.
        let cleared =
            clearing().to_wasm(wasm).context("failed to read the component's metadata")?;
        self.metadata().to_wasm(&cleared).context("failed to add metadata to the component")
    }

    fn metadata(&self) -> AddMetadata {
        let mut add = AddMetadata::default();
        add.name = AddMetadataField::Set(self.name.clone());
        add.processed_by = vec![("cargo-wreg".into(), env!("CARGO_PKG_VERSION").into())];
        add.version = set(Some(wasm_metadata::Version::new(self.version.to_string())));
        add.description = set(self.description.clone().map(Description::new));
        add.authors =
            set((!self.authors.is_empty()).then(|| Authors::new(self.authors.join(", "))));
        add.revision = set(self.revision.clone().map(Revision::new));
        add.licenses = set(self.checked("license", &self.license, Licenses::new));
        add.source = set(self.checked("repository", &self.repository, Source::new));
        add.homepage = set(self.checked("homepage", &self.homepage, Homepage::new));
        add
    }

    /// `value` in the form the wasm metadata requires, or nothing, with a warning, when it is
    /// not in that form. The annotation keeps the value as written.
    fn checked<T>(
        &self,
        key: &str,
        value: &Option<String>,
        parse: impl Fn(&str) -> Result<T>,
    ) -> Option<T> {
        let value = value.as_deref()?;
        parse(value)
            .map_err(|err| {
                shell::warn(format_args!(
                    "`{key} = \"{value}\"` of `{}` is not embedded in the component: {err}",
                    self.name
                ))
            })
            .ok()
    }
}

fn set<T: std::fmt::Debug + Clone>(value: Option<T>) -> AddMetadataField<T> {
    value.map_or(AddMetadataField::Clear, AddMetadataField::Set)
}

fn clearing() -> AddMetadata {
    let mut clear = AddMetadata::default();
    clear.version = AddMetadataField::Clear;
    clear.description = AddMetadataField::Clear;
    clear.authors = AddMetadataField::Clear;
    clear.revision = AddMetadataField::Clear;
    clear.licenses = AddMetadataField::Clear;
    clear.source = AddMetadataField::Clear;
    clear.homepage = AddMetadataField::Clear;
    clear
}

/// The commit checked out in the git work tree holding `dir`, with `-dirty` appended when
/// tracked files under `dir` differ from it. `None` without git, outside a work tree, or when
/// git tracks nothing under `dir`.
pub fn git_revision(dir: &Path) -> Option<String> {
    if git(dir, &["ls-files", "--", "."])?.is_empty() {
        return None;
    }
    let head = git(dir, &["rev-parse", "--verify", "HEAD"])?;
    let changes = git(dir, &["status", "--porcelain", "--untracked-files=no", "--", "."])?;
    Some(if changes.is_empty() { head } else { format!("{head}-dirty") })
}

/// The trimmed output of a git command run in `dir`, or `None` if it could not run or failed.
/// It never prompts, and takes no optional locks, so a concurrent git command is not disturbed.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match output {
        Ok(output) if output.status.success() => {
            Some(String::from_utf8_lossy(&output.stdout).trim().to_string())
        }
        Ok(output) => {
            tracing::debug!(
                "`git {}` in {} failed: {}",
                args.join(" "),
                dir.display(),
                output.status
            );
            None
        }
        Err(err) => {
            tracing::debug!("cannot run git in {}: {err}", dir.display());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use wasm_metadata::Payload;

    use super::*;

    fn facts() -> ReleaseFacts {
        ReleaseFacts {
            name: "hello".into(),
            version: Version::new(1, 2, 3),
            description: Some("Says hello".into()),
            authors: vec!["Ada <ada@example.com>".into(), "Bo".into()],
            license: Some("MIT OR Apache-2.0".into()),
            repository: Some("https://example.com/hello".into()),
            homepage: None,
            revision: Some("0123abcd".into()),
        }
    }

    /// An empty component: enough for metadata to be added to.
    fn component() -> Vec<u8> {
        b"\0asm\x0d\0\x01\0".to_vec()
    }

    #[test]
    fn annotations_state_the_facts_that_are_there() {
        let annotations = facts().annotations();
        assert_eq!(annotations[VERSION], "1.2.3");
        assert_eq!(annotations[AUTHORS], "Ada <ada@example.com>, Bo");
        assert_eq!(annotations[LICENSES], "MIT OR Apache-2.0");
        assert_eq!(annotations[SOURCE], "https://example.com/hello");
        assert_eq!(annotations[REVISION], "0123abcd");
        assert!(!annotations.contains_key(URL));
    }

    /// The metadata of `wasm`, each field present as text.
    fn read_back(wasm: &[u8]) -> BTreeMap<&'static str, String> {
        let payload = Payload::from_binary(wasm).unwrap();
        let m = payload.metadata();
        let text = |v: Option<&dyn std::fmt::Display>| v.map(ToString::to_string);
        let fields = [
            ("name", m.name.clone()),
            ("version", text(m.version.as_ref().map(|v| v as _))),
            ("description", text(m.description.as_ref().map(|v| v as _))),
            ("authors", text(m.authors.as_ref().map(|v| v as _))),
            ("licenses", text(m.licenses.as_ref().map(|v| v as _))),
            ("source", text(m.source.as_ref().map(|v| v as _))),
            ("homepage", text(m.homepage.as_ref().map(|v| v as _))),
            ("revision", text(m.revision.as_ref().map(|v| v as _))),
        ];
        fields.into_iter().filter_map(|(k, v)| Some((k, v?))).collect()
    }

    #[test]
    fn embedded_metadata_reads_back_and_replaces_what_was_there() {
        let once = facts().embed(&component()).unwrap();
        let metadata = read_back(&once);
        assert_eq!(metadata["name"], "hello");
        assert_eq!(metadata["version"], "1.2.3");
        assert_eq!(metadata["description"], "Says hello");
        assert_eq!(metadata["authors"], "Ada <ada@example.com>, Bo");
        assert_eq!(metadata["licenses"], "MIT OR Apache-2.0");
        assert_eq!(metadata["source"], "https://example.com/hello");
        assert_eq!(metadata["revision"], "0123abcd");
        assert!(!metadata.contains_key("homepage"));

        let mut changed = facts();
        changed.description = None;
        changed.revision = Some("4567cdef".into());
        let twice = changed.embed(&once).unwrap();
        assert_eq!(changed.embed(&twice).unwrap(), twice, "embedding is not idempotent");
        let metadata = read_back(&twice);
        assert!(!metadata.contains_key("description"));
        assert_eq!(metadata["revision"], "4567cdef");
    }

    #[test]
    fn values_in_the_wrong_form_are_left_out_of_the_wasm_only() {
        let mut odd = facts();
        odd.license = Some("MIT/Apache-2.0".into());
        let wasm = odd.embed(&component()).unwrap();
        assert!(!read_back(&wasm).contains_key("licenses"));
        assert_eq!(odd.annotations()[LICENSES], "MIT/Apache-2.0");
    }

    fn run_git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    #[test]
    fn the_revision_is_the_checked_out_commit_marked_dirty_by_local_changes() {
        let dir = tempfile::tempdir().unwrap();
        let crate_dir = dir.path().join("member");
        std::fs::create_dir_all(&crate_dir).unwrap();
        assert_eq!(git_revision(&crate_dir), None);

        run_git(dir.path(), &["init", "-q"]);
        std::fs::write(crate_dir.join("Cargo.toml"), "[package]\n").unwrap();
        assert_eq!(git_revision(&crate_dir), None, "nothing is tracked yet");
        run_git(dir.path(), &["add", "."]);
        run_git(dir.path(), &["commit", "-q", "-m", "first"]);
        let head = git(dir.path(), &["rev-parse", "HEAD"]).unwrap();
        assert_eq!(git_revision(&crate_dir), Some(head.clone()));

        std::fs::write(dir.path().join("elsewhere.txt"), "untracked").unwrap();
        assert_eq!(git_revision(&crate_dir), Some(head.clone()));
        std::fs::write(crate_dir.join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        assert_eq!(git_revision(&crate_dir), Some(format!("{head}-dirty")));
    }
}
