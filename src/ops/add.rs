//! `cargo wreg add`: add a package to a component's `[package.metadata.component]`
//! dependencies, or change the requirement of one already there, editing Cargo.toml in place
//! so that its comments and formatting survive.
//!
//! The editing itself is [`edit_manifest`], a pure function on the manifest's text.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use semver::Version;
use toml_edit::{DocumentMut, InlineTable, Item, Table, Value};

use crate::Help;
use crate::config::RegistryConfig;
use crate::manifest::{Dependency, Target};
use crate::ops::workspace::{Member, Workspace};
use crate::package::{PackageName, parse_requirement};
use crate::registry::Registry;
use crate::shell;

/// What `add` writes for the package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The newest release in the registry, as a caret requirement.
    Newest,
    /// A requirement as the user wrote it (`1.2`, `^1.2.3`, `>=1, <3`).
    Requirement(String),
    /// A WIT directory, `.wit` file or `.wasm` in the project, relative to the manifest's
    /// directory; no registry is contacted.
    Path(PathBuf),
}

#[derive(Debug, Clone)]
pub struct AddOptions {
    pub package: PackageName,
    pub source: Source,
    /// Add to the local target's `dependencies` rather than the component's.
    pub target: bool,
    /// The workspace member to edit (`-p`).
    pub member: Option<String>,
    /// The manifest the user named, which picks the member when there are several.
    pub manifest_path: Option<PathBuf>,
    pub config: RegistryConfig,
    pub dry_run: bool,
}

/// Which dependency table of `[package.metadata.component]` to edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `[package.metadata.component.dependencies]`.
    Dependencies,
    /// `[package.metadata.component.target.dependencies]`, for a local target.
    TargetDependencies,
}

impl Section {
    /// The table's dotted key, as errors name it.
    pub fn key(self) -> &'static str {
        match self {
            Section::Dependencies => "package.metadata.component.dependencies",
            Section::TargetDependencies => "package.metadata.component.target.dependencies",
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Section::Dependencies => "dependencies",
            Section::TargetDependencies => "target dependencies",
        })
    }
}

/// The entry to write, in the form it takes in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// A requirement string; a bare version means a caret requirement, as in cargo.
    Requirement(String),
    /// `{ path = "..." }`, the path as the user gave it.
    Path(String),
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spec::Requirement(req) => f.write_str(&requirement_display(req)),
            Spec::Path(path) => write!(f, "path `{path}`"),
        }
    }
}

/// One edit of a manifest's dependency tables.
#[derive(Debug, Clone)]
pub struct Edit {
    pub package: PackageName,
    pub spec: Spec,
    pub section: Section,
}

/// What an edit did to the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added,
    /// The package was there; `from` is its old entry as the user reads it (`^1.0`).
    Updated {
        from: String,
    },
    /// The package was there with exactly this entry.
    Unchanged,
}

/// A manifest after an edit.
#[derive(Debug, Clone)]
pub struct Edited {
    pub text: String,
    pub change: Change,
}

/// Adds the package to the selected member's manifest, or updates its entry there.
pub async fn add(workspace: &Workspace, options: &AddOptions) -> Result<()> {
    let member = select_member(workspace, options)?;
    let manifest = member.package.manifest_path.as_std_path();
    let section = if options.target { Section::TargetDependencies } else { Section::Dependencies };
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("failed to read `{}`", manifest.display()))?;

    // Refuse a wrong destination before asking any registry.
    check_section(&text, section).with_context(|| edit_failed(&options.package, manifest))?;
    let spec = spec_for(member, section, options).await?;
    let edit = Edit { package: options.package.clone(), spec, section };
    let edited =
        edit_manifest(&text, &edit).with_context(|| edit_failed(&options.package, manifest))?;

    report(&edit, &edited.change);
    if options.dry_run {
        shell::warn("aborting add due to dry run");
    } else if edited.change != Change::Unchanged {
        save(manifest, &edited.text)?;
    }
    Ok(())
}

fn edit_failed(package: &PackageName, manifest: &Path) -> String {
    format!("failed to add `{package}` to `{}`", manifest.display())
}

/// The member named by `-p`; else the only component; else the one whose directory holds the
/// named manifest or the current directory.
fn select_member<'a>(workspace: &'a Workspace, options: &AddOptions) -> Result<&'a Member> {
    let named = options.member.as_slice();
    match workspace.select(named)?.as_slice() {
        [member] => Ok(member),
        _ => {
            let names: Vec<&str> =
                workspace.members.iter().map(|m| m.package.name.as_str()).collect();
            Err(Help::error(
                "the workspace has several components; choose the one to add to",
                format!("pass `-p <crate>`, one of: {}", names.join(", ")),
            ))
        }
    }
}

/// The entry to write: the requirement or path as given, or a caret requirement on the
/// newest release.
async fn spec_for(member: &Member, section: Section, options: &AddOptions) -> Result<Spec> {
    match &options.source {
        Source::Requirement(req) => {
            let registry = existing_registry(member, section, &options.package);
            check_requirement(&options.package, req, &options.config, registry).await?;
            Ok(Spec::Requirement(req.clone()))
        }
        Source::Path(path) => path_spec(member.dir(), path),
        Source::Newest => {
            let registry = existing_registry(member, section, &options.package);
            let version = newest(&options.package, &options.config, registry).await?;
            Ok(Spec::Requirement(version.to_string()))
        }
    }
}

fn path_spec(dir: &Path, path: &Path) -> Result<Spec> {
    if !dir.join(path).exists() {
        return Err(Help::error(
            format!("`{}` does not exist in `{}`", path.display(), dir.display()),
            "--path is relative to the directory of the crate's Cargo.toml",
        ));
    }
    let text =
        path.to_str().ok_or_else(|| anyhow!("the path `{}` is not valid UTF-8", path.display()))?;
    Ok(Spec::Path(text.to_string()))
}

/// The registry the package's current entry names, so an update asks the same registry.
fn existing_registry<'a>(
    member: &'a Member,
    section: Section,
    package: &PackageName,
) -> Option<&'a Registry> {
    let dependencies = match (section, &member.component.target) {
        (Section::Dependencies, _) => &member.component.dependencies,
        (Section::TargetDependencies, Target::Local { dependencies, .. }) => dependencies,
        (Section::TargetDependencies, _) => return None,
    };
    match dependencies.get(package) {
        Some(Dependency::Registry { registry, .. }) => registry.as_ref(),
        _ => None,
    }
}

/// The newest release of `package` that is not a pre-release.
async fn newest(
    package: &PackageName,
    config: &RegistryConfig,
    explicit: Option<&Registry>,
) -> Result<Version> {
    let registry = config.registry_for(package, explicit)?;
    shell::status("Querying", format_args!("{registry} for the releases of {package}"));
    let versions = config.client(&registry)?.versions(package).await?;
    if let Some(version) = newest_release(&versions) {
        return Ok(version.clone());
    }
    Err(match versions.last() {
        None => Help::error(
            format!("package `{package}` has no releases on `{registry}`"),
            "check the package name and the registry (`--registry`)",
        ),
        Some(pre) => Help::error(
            format!("package `{package}` has only pre-releases on `{registry}`"),
            format!("name one exactly: `cargo wreg add {package}@={pre}`"),
        ),
    })
}

/// Refuses a requirement no release of `package` satisfies, as `cargo add` does. A registry
/// that cannot be asked is no reason to refuse: a warning says the check was skipped.
async fn check_requirement(
    package: &PackageName,
    req: &str,
    config: &RegistryConfig,
    explicit: Option<&Registry>,
) -> Result<()> {
    let parsed = parse_requirement(req)?;
    let registry = match config.registry_for(package, explicit) {
        Ok(registry) => registry,
        Err(_) => return Ok(()),
    };
    shell::status("Querying", format_args!("{registry} for the releases of {package}"));
    let listed = async { config.client(&registry)?.versions(package).await };
    let versions = match listed.await {
        Ok(versions) => versions,
        Err(err) => {
            shell::warn(format_args!(
                "could not check that a release of {package} matches `{req}`: {err:#}"
            ));
            return Ok(());
        }
    };
    if versions.iter().any(|v| parsed.matches(v)) {
        return Ok(());
    }
    let help = match crate::ops::index::newest_listed(&versions) {
        None => format!("package `{package}` has no releases on `{registry}`"),
        Some(newest) => format!("the newest releases on `{registry}` are {newest}"),
    };
    Err(Help::error(format!("no release of `{package}` matches `{req}`"), help))
}

/// The newest version that is not a pre-release.
pub fn newest_release(versions: &[Version]) -> Option<&Version> {
    versions.iter().filter(|v| v.pre.is_empty()).max()
}

fn report(edit: &Edit, change: &Change) {
    let package = &edit.package;
    match change {
        Change::Added => {
            shell::status("Adding", format_args!("{package} {} to {}", edit.spec, edit.section))
        }
        Change::Updated { from } => {
            shell::status("Updating", format_args!("{package} {from} -> {}", edit.spec));
        }
        Change::Unchanged => {
            shell::info("Unchanged", format_args!("{package} {} in {}", edit.spec, edit.section));
        }
    }
}

/// Replaces the manifest atomically, keeping its permissions (the temporary file that
/// replaces it is created private) and any symlink to it.
fn save(manifest: &Path, text: &str) -> Result<()> {
    let real = std::fs::canonicalize(manifest)
        .with_context(|| format!("failed to resolve `{}`", manifest.display()))?;
    let permissions = std::fs::metadata(&real)
        .with_context(|| format!("failed to read `{}`", real.display()))?
        .permissions();
    crate::fsutil::write_atomic(&real, text.as_bytes())?;
    std::fs::set_permissions(&real, permissions)
        .with_context(|| format!("failed to set the permissions of `{}`", real.display()))
}

/// Checks that the manifest has a table to add to in `section`, without changing it.
pub fn check_section(text: &str, section: Section) -> Result<()> {
    let mut doc = parse(text)?;
    dependencies_table(&mut doc, section).map(drop)
}

/// Adds `edit.package` to the manifest `text`, or changes its entry, leaving everything else
/// byte for byte as it was. A new table is written in the style of the table holding it; a
/// new entry in the style of its neighbours (`{ version = "..." }` when they all are inline
/// tables); an entry that is a table keeps its other keys (`registry`, `package`).
pub fn edit_manifest(text: &str, edit: &Edit) -> Result<Edited> {
    let mut doc = parse(text)?;
    let table = dependencies_table(&mut doc, edit.section)?;
    let name = edit.package.to_string();
    let from = match table.as_table_like_mut().and_then(|t| t.get_mut(&name)) {
        Some(entry) => {
            let from = describe(entry);
            update_entry(entry, &edit.spec);
            Some(from)
        }
        None => {
            insert_entry(table, &name, &edit.spec);
            None
        }
    };
    let new_text = doc.to_string();
    let change = match from {
        _ if new_text == text => Change::Unchanged,
        Some(from) => Change::Updated { from },
        None => Change::Added,
    };
    Ok(Edited { text: new_text, change })
}

fn parse(text: &str) -> Result<DocumentMut> {
    text.parse().map_err(|e| anyhow!("invalid TOML: {e}"))
}

/// The dependency table of `section`, created (empty) when missing.
fn dependencies_table(doc: &mut DocumentMut, section: Section) -> Result<&mut Item> {
    let component = ["package", "metadata", "component"]
        .iter()
        .try_fold(doc.as_item_mut(), |item, key| {
            item.as_table_like_mut().and_then(|t| t.get_mut(key))
        })
        .filter(|item| item.is_table_like())
        .ok_or_else(|| anyhow!("there is no `[package.metadata.component]` table"))?;
    let parent = match section {
        Section::Dependencies => component,
        Section::TargetDependencies => local_target(component)?,
    };
    child_table(parent, "dependencies", section.key())
}

/// The `target` table of `component`, which must be a local `{ path = ... }` target.
fn local_target(component: &mut Item) -> Result<&mut Item> {
    let key = "package.metadata.component.target";
    let help = "leave out --target to add the package to \
                `[package.metadata.component.dependencies]`";
    let target = component.as_table_like_mut().and_then(|t| t.get_mut("target"));
    match target {
        Some(target) if target.as_table_like().is_some_and(|t| t.contains_key("path")) => {
            Ok(target)
        }
        Some(target) => {
            let found = match target.as_str() {
                Some(world) => format!("the registry world `{world}`"),
                None => "a registry world".to_string(),
            };
            Err(Help::error(
                format!("`{key}` is {found}; --target needs a local target `{{ path = ... }}`"),
                help,
            ))
        }
        None => Err(Help::error(
            format!("`{key}` is not set; --target needs a local target `{{ path = ... }}`"),
            format!(
                "{help}, or make the crate's `wit` directory the target explicitly: \
                 `target = {{ path = \"wit\" }}`"
            ),
        )),
    }
}

/// The table `name` in `parent`, created in `parent`'s style (inline or not) when missing.
fn child_table<'a>(parent: &'a mut Item, name: &str, key: &str) -> Result<&'a mut Item> {
    let missing = parent.as_table_like().is_some_and(|t| !t.contains_key(name));
    if missing {
        match parent {
            Item::Value(Value::InlineTable(inline)) => {
                insert_inline(inline, name, Value::InlineTable(InlineTable::new()));
            }
            _ => insert(parent, name, Item::Table(Table::new())),
        }
    }
    parent
        .as_table_like_mut()
        .and_then(|t| t.get_mut(name))
        .filter(|item| item.is_table_like())
        .ok_or_else(|| anyhow!("`{key}` must be a table"))
}

/// An entry as the user reads it: `^1.2`, or path `wit/kv`.
fn describe(entry: &Item) -> String {
    if let Some(req) = entry.as_str() {
        return requirement_display(req);
    }
    let field = |name| entry.as_table_like()?.get(name)?.as_str();
    match (field("path"), field("version")) {
        (Some(path), _) => format!("path `{path}`"),
        (None, Some(req)) => requirement_display(req),
        (None, None) => entry.to_string().trim().to_string(),
    }
}

/// A requirement in semver's notation, so that `1.2` reads as the `^1.2` it means.
fn requirement_display(req: &str) -> String {
    parse_requirement(req).map(|r| r.to_string()).unwrap_or_else(|_| req.to_string())
}

/// Rewrites an existing entry, keeping its decoration and, for a registry entry written as
/// a table, its other keys.
fn update_entry(entry: &mut Item, spec: &Spec) {
    if let Spec::Requirement(req) = spec {
        let version = entry
            .as_table_like_mut()
            .filter(|t| !t.contains_key("path"))
            .and_then(|t| t.get_mut("version"));
        if let Some(version) = version {
            replace_value(version, Value::from(req.as_str()));
            return;
        }
    }
    replace_value(entry, spec_value(spec, entry.is_inline_table()));
}

/// Puts `new` in `slot`, taking over the old value's surrounding whitespace and comments.
fn replace_value(slot: &mut Item, mut new: Value) {
    if let Some(old) = slot.as_value() {
        *new.decor_mut() = old.decor().clone();
    }
    *slot = Item::Value(new);
}

fn insert_entry(table: &mut Item, name: &str, spec: &Spec) {
    let value = spec_value(spec, all_inline(table));
    match table {
        Item::Value(Value::InlineTable(inline)) => insert_inline(inline, name, value),
        _ => insert(table, name, Item::Value(value)),
    }
}

/// Adds `item` to a standard table (where any item may go).
fn insert(table: &mut Item, name: &str, item: Item) {
    if let Some(table) = table.as_table_mut() {
        table.insert(name, item);
    }
}

/// Whether the table has entries and all are inline tables.
fn all_inline(table: &Item) -> bool {
    table
        .as_table_like()
        .is_some_and(|t| !t.is_empty() && t.iter().all(|(_, item)| item.is_inline_table()))
}

/// Adds `value` at the end of an inline table, moving the space before its `}` along so that
/// no space lands before the new comma.
fn insert_inline(table: &mut InlineTable, name: &str, mut value: Value) {
    let last = table.iter_mut().last().map(|(_, last)| last);
    if let Some(last) = last {
        let closing = last.decor().suffix().cloned();
        last.decor_mut().set_suffix("");
        if let Some(closing) = closing {
            value.decor_mut().set_suffix(closing);
        }
    }
    table.insert(name, value);
}

fn spec_value(spec: &Spec, inline_style: bool) -> Value {
    match spec {
        Spec::Path(path) => inline_value("path", path),
        Spec::Requirement(req) if inline_style => inline_value("version", req),
        Spec::Requirement(req) => Value::from(req.as_str()),
    }
}

fn inline_value(key: &str, text: &str) -> Value {
    let mut table = InlineTable::new();
    table.insert(key, Value::from(text));
    Value::InlineTable(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "[package]\nname = \"app\" # the crate\n\n";

    fn edit(text: &str, package: &str, spec: Spec, section: Section) -> Result<Edited> {
        let package = package.parse().unwrap();
        edit_manifest(text, &Edit { package, spec, section })
    }

    fn req(text: &str, package: &str, req: &str) -> Edited {
        edit(text, package, Spec::Requirement(req.into()), Section::Dependencies).unwrap()
    }

    #[test]
    fn adds_a_table_after_the_component_table_keeping_the_rest() {
        let text = format!(
            "{HEAD}[package.metadata.component]\npackage = \"acme:app\"  # published as\n\n\
             # Not part of a workspace.\n[workspace]\n"
        );
        let edited = req(&text, "acme:kv", "1.3.2");
        let expected = format!(
            "{HEAD}[package.metadata.component]\npackage = \"acme:app\"  # published as\n\n\
             [package.metadata.component.dependencies]\n\"acme:kv\" = \"1.3.2\"\n\n\
             # Not part of a workspace.\n[workspace]\n"
        );
        assert_eq!(edited.text, expected);
        assert_eq!(edited.change, Change::Added);
    }

    #[test]
    fn appends_to_an_existing_table() {
        let text = format!(
            "{HEAD}[package.metadata.component.dependencies]\n# first\n\"acme:a\" = \"1\"\n\n\
             [lib]\n"
        );
        let edited = req(&text, "acme:kv", "0.2");
        let expected = format!(
            "{HEAD}[package.metadata.component.dependencies]\n# first\n\"acme:a\" = \"1\"\n\
             \"acme:kv\" = \"0.2\"\n\n[lib]\n"
        );
        assert_eq!(edited.text, expected);
    }

    #[test]
    fn updates_a_requirement_keeping_its_comment() {
        let text = format!(
            "{HEAD}[package.metadata.component.dependencies]\n\"acme:kv\" = \"1.0\"   # pinned\n"
        );
        let edited = req(&text, "acme:kv", "1.3");
        assert_eq!(edited.change, Change::Updated { from: "^1.0".into() });
        assert!(edited.text.ends_with("\"acme:kv\" = \"1.3\"   # pinned\n"), "{}", edited.text);
    }

    #[test]
    fn updates_the_version_of_a_table_entry_keeping_its_registry() {
        let text = format!(
            "{HEAD}[package.metadata.component.dependencies]\n\
             \"acme:kv\" = {{ version = \"1.0\", registry = \"ghcr.io/acme\" }}\n"
        );
        let edited = req(&text, "acme:kv", "2");
        let line = "\"acme:kv\" = { version = \"2\", registry = \"ghcr.io/acme\" }\n";
        assert!(edited.text.ends_with(line), "{}", edited.text);
    }

    #[test]
    fn the_same_entry_again_changes_nothing() {
        let text =
            format!("{HEAD}[package.metadata.component.dependencies]\n\"acme:kv\" = \"1\"\n");
        let edited = req(&text, "acme:kv", "1");
        assert_eq!(edited.change, Change::Unchanged);
        assert_eq!(edited.text, text);
    }

    #[test]
    fn new_entries_follow_inline_table_neighbours() {
        let text = format!(
            "{HEAD}[package.metadata.component.dependencies]\n\"acme:a\" = {{ version = \"1\" }}\n"
        );
        let edited = req(&text, "acme:kv", "1.3.2");
        assert!(
            edited.text.ends_with("\"acme:kv\" = { version = \"1.3.2\" }\n"),
            "{}",
            edited.text
        );
    }

    #[test]
    fn inline_dependency_tables_stay_inline() {
        let text = format!(
            "{HEAD}[package.metadata.component]\ndependencies = {{ \"acme:a\" = \"1\" }}\n"
        );
        let edited = req(&text, "acme:kv", "2.0.0");
        let line = "dependencies = { \"acme:a\" = \"1\", \"acme:kv\" = \"2.0.0\" }\n";
        assert!(edited.text.ends_with(line), "{}", edited.text);
    }

    #[test]
    fn paths_are_written_as_given() {
        let text = format!("{HEAD}[package.metadata.component]\n");
        let spec = Spec::Path("wit/kv".into());
        let edited = edit(&text, "acme:kv", spec, Section::Dependencies).unwrap();
        assert!(edited.text.ends_with("\"acme:kv\" = { path = \"wit/kv\" }\n"), "{}", edited.text);
    }

    #[test]
    fn a_path_replaces_a_registry_entry() {
        let text =
            format!("{HEAD}[package.metadata.component.dependencies]\n\"acme:kv\" = \"1\"\n");
        let spec = Spec::Path("kv.wasm".into());
        let edited = edit(&text, "acme:kv", spec, Section::Dependencies).unwrap();
        assert_eq!(edited.change, Change::Updated { from: "^1".into() });
        assert!(edited.text.ends_with("\"acme:kv\" = { path = \"kv.wasm\" }\n"), "{}", edited.text);
    }

    #[test]
    fn target_dependencies_of_a_local_target_table() {
        let text = format!("{HEAD}[package.metadata.component.target]\npath = \"wit\"\n");
        let spec = Spec::Requirement("0.2".into());
        let edited = edit(&text, "wasi:io", spec, Section::TargetDependencies).unwrap();
        let expected = format!(
            "{HEAD}[package.metadata.component.target]\npath = \"wit\"\n\n\
             [package.metadata.component.target.dependencies]\n\"wasi:io\" = \"0.2\"\n"
        );
        assert_eq!(edited.text, expected);
    }

    #[test]
    fn target_dependencies_of_an_inline_local_target() {
        let text = format!("{HEAD}[package.metadata.component]\ntarget = {{ path = \"wit\" }}\n");
        let spec = Spec::Requirement("0.2".into());
        let edited = edit(&text, "wasi:io", spec, Section::TargetDependencies).unwrap();
        let line = "target = { path = \"wit\", dependencies = { \"wasi:io\" = \"0.2\" } }\n";
        assert!(edited.text.ends_with(line), "{}", edited.text);
    }

    #[test]
    fn target_dependencies_need_a_local_target() {
        let registry = format!("{HEAD}[package.metadata.component]\ntarget = \"acme:g/w@1\"\n");
        let none = format!("{HEAD}[package.metadata.component]\npackage = \"acme:app\"\n");
        for (text, says) in [(registry, "registry world `acme:g/w@1`"), (none, "is not set")] {
            let err = check_section(&text, Section::TargetDependencies).unwrap_err();
            let message = format!("{err:#}");
            assert!(message.contains("`package.metadata.component.target`"), "{message}");
            assert!(message.contains(says), "{message}");
        }
    }

    #[test]
    fn errors_name_the_key() {
        let text = format!("{HEAD}[package.metadata.component]\ndependencies = 3\n");
        let err = req_err(&text);
        assert!(err.contains("`package.metadata.component.dependencies` must be a table"), "{err}");
        let err = req_err(&format!("{HEAD}[lib]\n"));
        assert!(err.contains("[package.metadata.component]"), "{err}");
        assert!(req_err("[package\n").contains("invalid TOML"));
    }

    fn req_err(text: &str) -> String {
        let spec = Spec::Requirement("1".into());
        format!("{:#}", edit(text, "acme:kv", spec, Section::Dependencies).unwrap_err())
    }

    #[test]
    fn newest_release_skips_pre_releases() {
        let versions: Vec<Version> =
            ["1.0.0", "1.3.2", "2.0.0-rc.1"].iter().map(|v| v.parse().unwrap()).collect();
        assert_eq!(newest_release(&versions).map(Version::to_string).as_deref(), Some("1.3.2"));
        assert_eq!(newest_release(&versions[2..]), None);
    }

    #[test]
    fn specs_read_as_requirements() {
        assert_eq!(Spec::Requirement("1.3".into()).to_string(), "^1.3");
        assert_eq!(Spec::Requirement("=1.3.0".into()).to_string(), "=1.3.0");
        assert_eq!(Spec::Path("wit/kv".into()).to_string(), "path `wit/kv`");
    }
}
