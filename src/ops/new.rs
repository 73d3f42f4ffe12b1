//! `cargo wreg new`: a component crate that builds first time. `cargo new` makes the crate, so
//! names, version control and workspace membership work as users expect; then the manifest
//! gets the component section and the runtime dependency, a fetch brings the world and its
//! bindings, and the source becomes a stub implementing the world's exports.
//!
//! Without `--target` the world is a small one written to `wit/`. When any step after
//! `cargo new` fails, the crate is removed again and the manifest and lock files of an
//! enclosing workspace, which `cargo new` and the fetch may have changed, are put back.

mod stub;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, value};
use wit_parser::{Resolve, WorldId};

pub use stub::CrateKind;

use crate::config::RegistryConfig;
use crate::manifest::parse_target_str;
use crate::ops::build::CargoFailed;
use crate::ops::fetch::{self, FetchOptions};
use crate::ops::workspace::{CargoFlags, Workspace};
use crate::package::PackageName;
use crate::wit::{self, LocalSource};
use crate::{Help, fsutil, shell};

/// The runtime the generated bindings call into; see `crate::bindings`.
const RUNTIME_CRATE: &str = "wit-bindgen-rt";
const RUNTIME_VERSION: &str = "0.44.0";
const RUNTIME_FEATURE: &str = "bitflags";

/// Files that `cargo wreg fetch` writes, which do not belong in version control.
const IGNORED: &[&str] = &["/target", "/src/bindings.rs", "/wit/deps"];

#[derive(Debug, Clone)]
pub struct NewOptions {
    pub path: PathBuf,
    pub kind: CrateKind,
    /// The crate name; the directory name when unset.
    pub name: Option<String>,
    /// A registry world, `ns:pkg/world@requirement`; a world in `wit/` when unset.
    pub target: Option<String>,
    pub config: RegistryConfig,
    pub offline: bool,
}

/// What `new` made.
#[derive(Debug, Clone)]
pub struct Created {
    /// The `src/lib.rs` or `src/main.rs` with the stub.
    pub source: PathBuf,
    /// The world, as `ns:pkg/world@version`.
    pub world: String,
}

pub async fn new(options: &NewOptions) -> Result<Created> {
    let name = crate_name(options)?;
    let package = own_package(&name)?;
    if let Some(target) = &options.target {
        parse_target_str(target).with_context(|| format!("invalid `--target {target}`"))?;
    }
    if options.path.exists() {
        return Err(Help::error(
            format!("destination `{}` already exists", options.path.display()),
            "`cargo wreg new` creates a new directory; choose a path that does not exist",
        ));
    }

    let enclosing = EnclosingFiles::read(&options.path)?;
    cargo_new(options, &name)?;
    let result = fill(options, &name, &package).await;
    if result.is_err() {
        roll_back(&options.path, &enclosing);
    }
    result
}

/// Everything after `cargo new`: manifest, WIT, `.gitignore`, fetch and stub.
async fn fill(options: &NewOptions, name: &str, package: &PackageName) -> Result<Created> {
    let dir = &options.path;
    let manifest = dir.join("Cargo.toml");
    edit_manifest(&manifest, options.kind, package, options.target.as_deref())?;
    if options.target.is_none() {
        let world = default_world(package, options.kind);
        fsutil::write_atomic(&dir.join("wit").join("world.wit"), world.as_bytes())?;
    }
    add_ignored(&dir.join(".gitignore"))?;

    let flags = CargoFlags { offline: options.offline, locked: false };
    let workspace = Workspace::load(Some(&manifest), flags)?;
    let members = workspace.select(&[name.to_string()])?;
    let config = options.config.clone().with_workspace(&workspace.metadata)?;
    let fetch_options = FetchOptions { config, offline: options.offline, ..Default::default() };
    let prepared = fetch::fetch(&workspace, &members, &fetch_options).await?;
    let world = prepared.into_iter().next().context("the fetch prepared no world")?.world;

    let (resolve, world_id) = load_world(dir, &world)?;
    let source_path = dir.join("src").join(match options.kind {
        CrateKind::Lib => "lib.rs",
        CrateKind::Bin => "main.rs",
    });
    let source = stub::crate_source(&resolve, world_id, &world, options.kind)?;
    fsutil::write_atomic(&source_path, source.as_bytes())?;
    shell::status("Generated", format_args!("`{}` for {world}", source_path.display()));
    Ok(Created { source: source_path, world })
}

/// The crate name: `--name`, else the last component of the path, as `cargo new` picks it.
fn crate_name(options: &NewOptions) -> Result<String> {
    if let Some(name) = &options.name {
        return Ok(name.clone());
    }
    let name = options.path.file_name().and_then(|n| n.to_str()).with_context(|| {
        format!("cannot make a crate name of `{}`; pass --name", options.path.display())
    })?;
    Ok(name.to_string())
}

/// `component:<name>`, the package the crate publishes as until its author chooses another.
fn own_package(crate_name: &str) -> Result<PackageName> {
    PackageName::for_crate(crate_name).map_err(|e| {
        Help::error(
            format!("crate name `{crate_name}` does not make a WIT package name: {e:#}"),
            "pass --name with words of lowercase letters and digits, each starting with a \
             letter, joined by `-` or `_`",
        )
    })
}

fn cargo_new(options: &NewOptions, name: &str) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.arg("new").arg(&options.path).args(["--name", name]);
    command.arg(match options.kind {
        CrateKind::Lib => "--lib",
        CrateKind::Bin => "--bin",
    });
    tracing::debug!(?command, "running cargo new");
    let status = command.status().context("failed to run `cargo new`; is cargo on PATH?")?;
    if !status.success() {
        return Err(CargoFailed(status.code().unwrap_or(101)).into());
    }
    Ok(())
}

/// Adds what a component crate needs to the manifest `cargo new` wrote.
fn edit_manifest(
    path: &Path,
    kind: CrateKind,
    package: &PackageName,
    target: Option<&str>,
) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    let mut document: DocumentMut =
        text.parse().with_context(|| format!("failed to parse `{}`", path.display()))?;
    add_component_sections(&mut document, kind, package, target);
    fsutil::write_atomic(path, document.to_string().as_bytes())
}

fn add_component_sections(
    document: &mut DocumentMut,
    kind: CrateKind,
    package: &PackageName,
    target: Option<&str>,
) {
    let position = |document: &DocumentMut, key: &str| {
        document.get(key).and_then(Item::as_table).and_then(Table::position)
    };
    if kind == CrateKind::Lib {
        let mut lib = Table::new();
        lib.insert("crate-type", value(Array::from_iter(["cdylib"])));
        // Right after `[package]`, where cargo's own documentation puts it.
        if let Some(package) = position(document, "package") {
            for (_, item) in document.iter_mut() {
                let Some(table) = item.as_table_mut() else { continue };
                if let Some(p) = table.position().filter(|p| *p > package) {
                    table.set_position(p + 1);
                }
            }
            lib.set_position(package + 1);
        }
        document.insert("lib", Item::Table(lib));
    }

    let mut runtime = InlineTable::new();
    runtime.insert("version", RUNTIME_VERSION.into());
    runtime.insert("features", Array::from_iter([RUNTIME_FEATURE]).into());
    let dependencies = document.entry("dependencies").or_insert_with(toml_edit::table);
    if let Some(dependencies) = dependencies.as_table_like_mut() {
        dependencies.insert(RUNTIME_CRATE, value(runtime));
    }

    let mut component = Table::new();
    component.insert("package", value(package.to_string()));
    if let Some(target) = target {
        component.insert("target", value(target));
    }
    let last = document.iter().filter_map(|(key, _)| position(document, key)).max();
    if let Some(last) = last {
        component.set_position(last + 1);
    }
    let mut metadata = Table::new();
    metadata.set_implicit(true);
    metadata.insert("component", Item::Table(component));
    if let Some(package) = document.get_mut("package").and_then(Item::as_table_mut) {
        package.insert("metadata", Item::Table(metadata));
    }
}

/// The world of a crate made without `--target`: one function to export for a library,
/// nothing yet for a command.
fn default_world(package: &PackageName, kind: CrateKind) -> String {
    const LIBRARY: &str = "    /// Returns a greeting for `name`.
    export greet: func(name: string) -> string;
";
    const COMMAND: &str =
        "    // Imports of the command go here, such as `import wasi:random/random@0.2.6;`.\n";
    let world = package.name();
    let body = match kind {
        CrateKind::Lib => LIBRARY,
        CrateKind::Bin => COMMAND,
    };
    format!(
        "/// The WIT package of `{world}`; `cargo wreg build` generates its Rust bindings.
package {package};

/// What the component imports and exports.
world {world} {{
{body}}}
"
    )
}

/// Appends the generated files to `.gitignore`, creating it if need be.
fn add_ignored(path: &Path) -> Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("failed to read `{}`", path.display())),
    };
    let mut text = existing.clone();
    for entry in IGNORED {
        if !existing.lines().any(|line| line.trim() == *entry) {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(entry);
            text.push('\n');
        }
    }
    if text != existing {
        fsutil::write_atomic(path, text.as_bytes())?;
    }
    Ok(())
}

/// `world` (`ns:pkg/world@version`), assembled from what the fetch wrote to `dir/wit`.
fn load_world(dir: &Path, world: &str) -> Result<(Resolve, WorldId)> {
    // The world's own package may be local or in `wit/deps`; an empty package stands in as
    // the main one, since `select_world` wants one, and names the world in full.
    let main = LocalSource::from_text("stub.wit", "package wreg:stub;")?;
    let wit_dir = dir.join("wit");
    let mut others = Vec::new();
    if wit::has_wit_files(&wit_dir)? {
        others.push(LocalSource::parse(&wit_dir)?);
    }
    let deps = wit_dir.join("deps");
    if deps.is_dir() {
        let entries = std::fs::read_dir(&deps)
            .with_context(|| format!("failed to read `{}`", deps.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("failed to read `{}`", deps.display()))?;
            others.push(LocalSource::parse(&entry.path())?);
        }
    }
    let (resolve, main) = wit::assemble_sources(main, others)?;
    let id = wit::select_world(&resolve, main, Some(world))
        .with_context(|| format!("failed to find world `{world}` in `{}`", wit_dir.display()))?;
    Ok((resolve, id))
}

/// The manifests and lock files of the workspaces above a path, as they were before
/// `cargo new` (which may add the crate to one) and the fetch (which may lock it there).
struct EnclosingFiles(Vec<(PathBuf, Option<Vec<u8>>)>);

impl EnclosingFiles {
    fn read(path: &Path) -> Result<Self> {
        let absolute = std::path::absolute(path)
            .with_context(|| format!("failed to make `{}` absolute", path.display()))?;
        let workspaces = absolute.ancestors().skip(1).filter(|d| d.join("Cargo.toml").is_file());
        let files = workspaces
            .flat_map(|dir| ["Cargo.toml", "Cargo.lock", "wkg.lock"].map(|name| dir.join(name)))
            .map(|file| {
                let bytes = std::fs::read(&file).ok();
                (file, bytes)
            })
            .collect();
        Ok(Self(files))
    }

    /// Puts each file back as it was, removing those that did not exist.
    fn restore(&self) {
        for (file, before) in &self.0 {
            if std::fs::read(file).ok() == *before {
                continue;
            }
            let restored = match before {
                Some(bytes) => fsutil::write_atomic(file, bytes),
                None => std::fs::remove_file(file)
                    .with_context(|| format!("failed to remove `{}`", file.display())),
            };
            if let Err(e) = restored {
                shell::warn(format_args!("failed to restore `{}`: {e:#}", file.display()));
            }
        }
    }
}

/// Removes the crate `cargo new` made at `path` and restores the workspace files above it.
fn roll_back(path: &Path, enclosing: &EnclosingFiles) {
    if let Err(e) = std::fs::remove_dir_all(path) {
        shell::warn(format_args!("failed to remove `{}`: {e}", path.display()));
    }
    enclosing.restore();
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARGO_NEW_MANIFEST: &str = "[package]\nname = \"demo\"\nversion = \"0.1.0\"\n\
                                      edition = \"2024\"\n\n[dependencies]\n";

    fn edited(kind: CrateKind, target: Option<&str>) -> String {
        let mut document: DocumentMut = CARGO_NEW_MANIFEST.parse().unwrap();
        let package = own_package("demo").unwrap();
        add_component_sections(&mut document, kind, &package, target);
        document.to_string()
    }

    #[test]
    fn a_library_manifest_gets_cdylib_the_runtime_and_the_component_section() {
        let manifest = edited(CrateKind::Lib, Some("acme:greeting/greeter@1.0"));
        assert_eq!(
            manifest,
            "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [lib]\ncrate-type = [\"cdylib\"]\n\n\
             [dependencies]\n\
             wit-bindgen-rt = { version = \"0.44.0\", features = [\"bitflags\"] }\n\n\
             [package.metadata.component]\npackage = \"component:demo\"\n\
             target = \"acme:greeting/greeter@1.0\"\n"
        );
    }

    #[test]
    fn a_command_manifest_has_no_lib_section_and_a_local_world() {
        let manifest = edited(CrateKind::Bin, None);
        assert!(!manifest.contains("[lib]"), "{manifest}");
        assert!(manifest.ends_with("[package.metadata.component]\npackage = \"component:demo\"\n"));
    }

    #[test]
    fn default_worlds_parse() {
        let package = own_package("my_tool").unwrap();
        for kind in [CrateKind::Lib, CrateKind::Bin] {
            let mut resolve = Resolve::default();
            let text = default_world(&package, kind);
            let id = resolve.push_str("world.wit", &text).unwrap();
            resolve.select_world(&[id], Some("my-tool")).unwrap();
        }
    }

    #[test]
    fn crate_names_that_make_no_wit_name_are_refused_with_a_hint() {
        assert_eq!(own_package("My_App2").unwrap().to_string(), "component:my-app2");
        let err = own_package("app-2x").unwrap_err();
        assert!(err.downcast_ref::<Help>().is_some(), "{err}");
    }

    #[test]
    fn gitignore_entries_are_added_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".gitignore");
        std::fs::write(&path, "/target").unwrap();
        add_ignored(&path).unwrap();
        add_ignored(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "/target\n/src/bindings.rs\n/wit/deps\n");
    }
}
