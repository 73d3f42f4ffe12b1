//! WIT packages: decoding the binary form registries hold, parsing WIT text, assembling one
//! `Resolve` from a package and its dependencies, and writing `wit/deps`.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use semver::Version;
use wit_component::{DecodedWasm, WitPrinter};
use wit_parser::{
    CloneMaps, Function, Interface, InterfaceId, PackageId, Resolve, Type, TypeDefKind, TypeId,
    TypeOwner, UnresolvedPackageGroup, WorldId, WorldItem, WorldKey,
};

use crate::Help;
use crate::package::PackageName;

/// A package name with the exact version a WIT reference carries.
pub type Versioned = (PackageName, Version);

/// A WIT package in memory, with the versions its references to other packages name.
#[derive(Debug, Clone)]
pub struct WitPackage {
    pub name: PackageName,
    pub version: Version,
    /// The foreign packages this one references, with the exact versions it names.
    pub dependencies: Vec<Versioned>,
    resolve: Resolve,
    id: PackageId,
}

/// A package as WIT text, ready to be parsed into a `Resolve` or written to `wit/deps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitText {
    pub name: PackageName,
    pub version: Version,
    pub text: String,
}

/// What a registry release holds: a WIT package or a component.
#[derive(Debug, Clone)]
pub enum Decoded {
    Wit(WitPackage),
    Component(ComponentPackage),
}

/// A component used as a dependency: its exports become imports of the world that uses it.
#[derive(Debug, Clone)]
pub struct ComponentPackage {
    resolve: Resolve,
    world: WorldId,
}

/// Decodes a release: the binary form of a WIT package, or a component.
pub fn decode(bytes: &[u8]) -> Result<Decoded> {
    let decoded = wit_component::decode(bytes)
        .context("neither a binary-encoded WIT package nor a component")?;
    match decoded {
        DecodedWasm::WitPackage(resolve, id) => Ok(Decoded::Wit(WitPackage::new(resolve, id)?)),
        DecodedWasm::Component(resolve, world) => {
            Ok(Decoded::Component(ComponentPackage { resolve, world }))
        }
    }
}

/// Decodes the binary form of a WIT package (what `wkg` and we publish).
pub fn decode_package(bytes: &[u8]) -> Result<WitPackage> {
    match decode(bytes)? {
        Decoded::Wit(package) => Ok(package),
        Decoded::Component(_) => bail!("this is a component, not a WIT package"),
    }
}

impl ComponentPackage {
    /// The foreign packages the component's exports use, with the versions it names. A
    /// component carries only the parts of them it uses itself, so importing it needs the
    /// whole packages as well.
    pub fn dependencies(&self) -> Result<Vec<Versioned>> {
        let own = self.own_package()?;
        let theirs = self.importized(&self.resolve.packages[own].name.clone())?;
        let mut packages = BTreeSet::new();
        for item in theirs.worlds[self.world].imports.values() {
            if let WorldItem::Interface { id, .. } = item
                && let Some(package) = theirs.interfaces[*id].package
                && package != own
                && theirs.packages[package].name.version.is_some()
            {
                packages.insert(package);
            }
        }
        packages.into_iter().map(|p| exact_name(&theirs.packages[p].name)).collect()
    }

    /// Adds the component's exports to the imports of `world`, named the way cargo-component
    /// names them, so projects written for it build unchanged. The dependency `ns:name`
    /// contributes:
    /// - each exported interface as `ns:name/<export>`, where `<export>` is the export's plain
    ///   name, or `<pkg-ns>-<pkg-name>-<interface>` for an export named by its interface
    ///   (`wasi:http/incoming-handler` becomes `ns:name/wasi-http-incoming-handler`);
    /// - its exported functions together, as the interface `ns-name`.
    ///
    /// Every dependency so has names of its own, even when two export the same interface.
    /// References to other packages move to the version `retarget` chose for them, whose
    /// whole WIT `resolve` must already hold.
    pub fn import_into(
        &self,
        resolve: &mut Resolve,
        world: WorldId,
        package: &PackageName,
        retarget: &dyn Fn(&Versioned) -> Option<Version>,
    ) -> Result<()> {
        let name = wit_parser::PackageName {
            namespace: package.namespace().to_string(),
            name: package.name().to_string(),
            version: None,
        };
        let key = WorldKey::Name(functions_name(&name));
        let exports_functions = self.resolve.worlds[self.world]
            .exports
            .values()
            .any(|item| matches!(item, WorldItem::Function(_)));
        let ours = &resolve.worlds[world];
        if exports_functions && (ours.imports.contains_key(&key) || ours.exports.contains_key(&key))
        {
            return Err(Help::error(
                format!(
                    "the functions `{package}` exports come in as the interface `{}`, a name \
                     the world already uses",
                    resolve.name_world_key(&key)
                ),
                format!(
                    "give the dependency another name in Cargo.toml: `\"ns:other\" = {{ \
                     package = \"{package}\", version = \"...\" }}`"
                ),
            ));
        }
        let mut theirs = self.importized(&name)?;
        retarget_references(&mut theirs, self.own_package()?, retarget)?;
        let remap = resolve.merge(theirs).context("failed to merge the component's types")?;
        let from = remap.worlds[self.world.index()]
            .ok_or_else(|| anyhow!("the component's world was lost while merging"))?;
        resolve
            .merge_worlds(from, world, &mut CloneMaps::default())
            .context("failed to add the component's exports to the world")
    }

    fn own_package(&self) -> Result<PackageId> {
        self.resolve.worlds[self.world]
            .package
            .ok_or_else(|| anyhow!("the component's world belongs to no package"))
    }

    /// A copy of the component's resolve whose world imports what the component exports, named
    /// as [`ComponentPackage::import_into`] describes with its own package renamed `name`.
    fn importized(&self, name: &wit_parser::PackageName) -> Result<Resolve> {
        let mut theirs = self.resolve.clone();
        let own = self.own_package()?;
        if theirs.packages[own].name != *name {
            if theirs.package_names.contains_key(name) {
                bail!("the component itself uses a package named `{name}`");
            }
            let previous = std::mem::replace(&mut theirs.packages[own].name, name.clone());
            theirs.package_names.shift_remove(&previous);
            theirs.package_names.insert(name.clone(), own);
        }

        let mut moved = HashSet::new();
        let mut functions = Vec::new();
        for (key, item) in std::mem::take(&mut theirs.worlds[self.world].exports) {
            match item {
                WorldItem::Function(function) => functions.push(function),
                WorldItem::Interface { id, .. } => {
                    if !moved.insert(id) {
                        bail!("the component exports one interface twice");
                    }
                    let export = export_name(&theirs, &key)?;
                    move_interface(&mut theirs, id, own, export)?;
                    theirs.worlds[self.world].exports.insert(WorldKey::Interface(id), item);
                }
                WorldItem::Type { .. } => {}
            }
        }
        refuse_uses_of_moved(&theirs, &moved)?;
        if !functions.is_empty() {
            let id = functions_interface(&mut theirs, self.world, own, functions);
            let item = WorldItem::Interface {
                id,
                stability: Default::default(),
                external_id: None,
                docs: Default::default(),
                span: Default::default(),
            };
            theirs.worlds[self.world].exports.insert(WorldKey::Name(functions_name(name)), item);
        }
        theirs
            .importize(self.world, Some(functions_name(name)))
            .context("failed to turn the component's exports into imports")?;
        Ok(theirs)
    }
}

/// The name of the interface a component dependency's functions come in as: `<ns>-<name>`.
fn functions_name(package: &wit_parser::PackageName) -> String {
    format!("{}-{}", package.namespace, package.name)
}

/// Moves each package but `own` to the version `retarget` chose for it.
fn retarget_references(
    resolve: &mut Resolve,
    own: PackageId,
    retarget: &dyn Fn(&Versioned) -> Option<Version>,
) -> Result<()> {
    for (id, package) in resolve.packages.iter_mut() {
        if id == own || package.name.version.is_none() {
            continue;
        }
        if let Some(version) = retarget(&exact_name(&package.name)?) {
            package.name.version = Some(version);
        }
    }
    resolve.package_names.clear();
    for (id, package) in resolve.packages.iter() {
        if resolve.package_names.insert(package.name.clone(), id).is_some() {
            bail!(
                "the component references two versions of `{}`, which resolve to one",
                package.name
            );
        }
    }
    Ok(())
}

/// The name an exported interface gets in its dependency's package: the export's plain name,
/// or `<pkg-ns>-<pkg-name>-<interface>` for an export named by its interface.
fn export_name(resolve: &Resolve, key: &WorldKey) -> Result<String> {
    match key {
        WorldKey::Name(name) => Ok(name.clone()),
        WorldKey::Interface(id) => {
            let interface = &resolve.interfaces[*id];
            match (interface.package, &interface.name) {
                (Some(package), Some(name)) => {
                    let package = &resolve.packages[package].name;
                    Ok(format!("{}-{}-{name}", package.namespace, package.name))
                }
                _ => bail!("the component exports an interface that has no name"),
            }
        }
    }
}

/// Moves interface `id` into package `into` under `name`; what uses it follows, by id.
fn move_interface(
    resolve: &mut Resolve,
    id: InterfaceId,
    into: PackageId,
    name: String,
) -> Result<()> {
    if resolve.packages[into].interfaces.contains_key(&name) {
        bail!("the component exports two interfaces named `{name}`");
    }
    let interface = &mut resolve.interfaces[id];
    let old = interface.name.replace(name.clone());
    let from = interface.package.replace(into);
    if let (Some(old), Some(from)) = (old, from) {
        resolve.packages[from].interfaces.shift_remove(&old);
    }
    resolve.packages[into].interfaces.insert(name, id);
    Ok(())
}

/// Refuses a component whose moved interfaces are still used by an interface left in their
/// old package: the two packages would depend on each other.
fn refuse_uses_of_moved(resolve: &Resolve, moved: &HashSet<InterfaceId>) -> Result<()> {
    for (_, ty) in resolve.types.iter() {
        let (TypeOwner::Interface(user), TypeDefKind::Type(Type::Id(used))) = (ty.owner, &ty.kind)
        else {
            continue;
        };
        if let TypeOwner::Interface(provider) = resolve.types[*used].owner
            && moved.contains(&provider)
            && !moved.contains(&user)
        {
            let name = |id| resolve.id_of(id).unwrap_or_else(|| "an inline interface".into());
            bail!(
                "the component exports `{}` but not `{}`, which uses its types; importing one \
                 without the other is not supported",
                name(provider),
                name(user)
            );
        }
    }
    Ok(())
}

/// An inline interface in `package` holding `functions`, which takes over the types `world`
/// owns (the functions' parameters and results use them).
fn functions_interface(
    resolve: &mut Resolve,
    world: WorldId,
    package: PackageId,
    functions: Vec<Function>,
) -> InterfaceId {
    let types: Vec<(String, TypeId)> = resolve
        .types
        .iter()
        .filter(|(_, ty)| ty.owner == TypeOwner::World(world))
        .filter_map(|(id, ty)| Some((ty.name.clone()?, id)))
        .collect();
    let interface = resolve.interfaces.alloc(Interface {
        name: None,
        types: types.iter().cloned().collect(),
        functions: functions.into_iter().map(|f| (f.name.clone(), f)).collect(),
        docs: resolve.worlds[world].docs.clone(),
        stability: Default::default(),
        package: Some(package),
        span: Default::default(),
        clone_of: None,
    });
    for (_, id) in &types {
        resolve.types[*id].owner = TypeOwner::Interface(interface);
    }
    resolve.worlds[world].imports.retain(|_, item| !matches!(item, WorldItem::Type { .. }));
    interface
}

impl WitPackage {
    /// The package `id` of `resolve`; every other package there is one it references.
    pub fn new(resolve: Resolve, id: PackageId) -> Result<Self> {
        let (name, version) = exact_name(&resolve.packages[id].name)?;
        let dependencies = resolve
            .packages
            .iter()
            .filter(|(other, _)| *other != id)
            .map(|(_, p)| exact_name(&p.name))
            .collect::<Result<_>>()?;
        Ok(Self { name, version, dependencies, resolve, id })
    }

    /// The package `id` of `resolve`, which references `dependencies`; other packages in
    /// `resolve` are only there because those reference them.
    pub fn with_dependencies(
        resolve: Resolve,
        id: PackageId,
        dependencies: Vec<Versioned>,
    ) -> Result<Self> {
        let (name, version) = exact_name(&resolve.packages[id].name)?;
        Ok(Self { name, version, dependencies, resolve, id })
    }

    /// The package as WIT text, each reference to another package moved to the version
    /// `retarget` chose for it (references it has no choice for stay as they are).
    pub fn text(&self, retarget: &dyn Fn(&Versioned) -> Option<Version>) -> Result<WitText> {
        let mut resolve = self.resolve.clone();
        for (id, package) in resolve.packages.iter_mut() {
            if id == self.id {
                continue;
            }
            if let Some(chosen) = exact_name(&package.name).ok().and_then(|v| retarget(&v)) {
                package.name.version = Some(chosen);
            }
        }
        let text = print_package(&resolve, self.id)
            .with_context(|| format!("failed to print `{}@{}`", self.name, self.version))?;
        Ok(WitText { name: self.name.clone(), version: self.version.clone(), text })
    }
}

/// Prints one package of `resolve` as WIT text.
pub fn print_package(resolve: &Resolve, id: PackageId) -> Result<String> {
    let mut printer = WitPrinter::default();
    printer.print(resolve, id, &[]).context("failed to print the package as WIT")?;
    Ok(printer.output.to_string())
}

/// Converts a WIT package name into ours, requiring a version.
pub fn exact_name(name: &wit_parser::PackageName) -> Result<Versioned> {
    let ours = PackageName::new(&name.namespace, &name.name)?;
    let version = name.version.clone().ok_or_else(|| {
        anyhow!("package `{ours}` has no version; registries need `package {ours}@x.y.z;`")
    })?;
    Ok((ours, version))
}

/// WIT source in the project: a directory of `.wit` files or one `.wit` file, plus the
/// foreign packages it references.
pub struct LocalSource {
    pub group: UnresolvedPackageGroup,
    pub path: PathBuf,
}

impl LocalSource {
    /// Parses the package at `path` (without any `deps/` folder).
    pub fn parse(path: &Path) -> Result<Self> {
        if path.is_dir() && !has_wit_files(path)? {
            return Err(Help::error(
                format!("`{}` holds no `.wit` files", path.display()),
                "point at the directory of the package's `.wit` files, or at one `.wit` file",
            ));
        }
        if !path.is_dir() {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read `{}`", path.display()))?;
            return Self::from_text(path, &text).with_context(|| {
                format!("failed to parse the WIT package at `{}`", path.display())
            });
        }
        let group = UnresolvedPackageGroup::parse_dir(path)
            .with_context(|| format!("failed to parse the WIT package at `{}`", path.display()))?;
        Ok(Self { group, path: path.to_path_buf() })
    }

    /// WIT `text`, as if read from the file `path` (which names it in errors).
    pub fn from_text(path: impl Into<PathBuf>, text: &str) -> Result<Self> {
        let path = path.into();
        let group = UnresolvedPackageGroup::parse(&path, text)
            .map_err(|(map, e)| anyhow!(e.render(&map)))?;
        Ok(Self { group, path })
    }

    /// The foreign packages referenced by the main package. A reference without a version
    /// cannot be looked up in a registry, so it is an error.
    pub fn dependencies(&self) -> Result<Vec<Versioned>> {
        let nested: BTreeSet<_> = self.group.nested.iter().map(|p| p.name.to_string()).collect();
        let mut deps = Vec::new();
        for package in std::iter::once(&self.group.main).chain(&self.group.nested) {
            for name in package.foreign_deps.keys() {
                if nested.contains(&name.to_string()) {
                    continue;
                }
                let dep = exact_name(name).with_context(|| {
                    format!("`{}` references `{name}` without a version", self.path.display())
                })?;
                if !deps.contains(&dep) {
                    deps.push(dep);
                }
            }
        }
        Ok(deps)
    }

    pub fn name(&self) -> &wit_parser::PackageName {
        &self.group.main.name
    }

    /// Moves each reference to another package to the version `retarget` chose for it.
    pub fn retarget(&mut self, retarget: &dyn Fn(&Versioned) -> Option<Version>) {
        for package in std::iter::once(&mut self.group.main).chain(&mut self.group.nested) {
            let moved: Vec<_> = package
                .foreign_deps
                .keys()
                .map(|name| {
                    let mut name = name.clone();
                    if let Some(chosen) = exact_name(&name).ok().and_then(|v| retarget(&v)) {
                        name.version = Some(chosen);
                    }
                    name
                })
                .collect();
            // wit-parser records where each reference was written, in order; two references
            // that now name one version would put that record out of step, so they stay.
            let distinct: BTreeSet<String> = moved.iter().map(|n| n.to_string()).collect();
            if distinct.len() != moved.len() {
                continue;
            }
            let items = std::mem::take(&mut package.foreign_deps).into_values();
            package.foreign_deps = moved.into_iter().zip(items).collect();
        }
    }
}

/// Parses each dependency's WIT text and assembles one `Resolve` holding `main` and every
/// dependency, in dependency order. Returns the id of `main`.
pub fn assemble(main: LocalSource, deps: &[WitText]) -> Result<(Resolve, PackageId)> {
    let others = deps
        .iter()
        .map(|p| {
            LocalSource::from_text(format!("{}.wit", deps_dir_name(&p.name, &p.version)), &p.text)
                .with_context(|| format!("failed to parse `{}@{}`", p.name, p.version))
        })
        .collect::<Result<Vec<_>>>()?;
    assemble_sources(main, others)
}

/// Assembles `main` with other parsed packages, which may include ones it does not need.
pub fn assemble_sources(
    main: LocalSource,
    others: Vec<LocalSource>,
) -> Result<(Resolve, PackageId)> {
    let source_map = main.group.source_map.clone();
    let path = main.path.clone();
    let mut resolve = Resolve::default();
    let id = resolve
        .push_groups(main.group, others.into_iter().map(|o| o.group).collect())
        .map_err(|e| anyhow!(e.render(&source_map)))
        .with_context(|| format!("failed to resolve the WIT package at `{}`", path.display()))?;
    Ok((resolve, id))
}

/// Assembles a package given as text and its dependencies.
pub fn assemble_text(main: &WitText, deps: &[WitText]) -> Result<(Resolve, PackageId)> {
    let path = format!("{}@{}", main.name, main.version);
    let main = LocalSource::from_text(&path, &main.text)
        .with_context(|| format!("failed to parse `{path}`"))?;
    assemble(main, deps)
}

/// The world `name` of `package`, or its only world when no name is given; when there is no
/// such world, an error listing the worlds the package has.
pub fn select_world(resolve: &Resolve, package: PackageId, name: Option<&str>) -> Result<WorldId> {
    resolve.select_world(&[package], name).map_err(|err| {
        let worlds: Vec<String> =
            resolve.packages[package].worlds.keys().map(|w| format!("`{w}`")).collect();
        let help = match worlds.as_slice() {
            [] => format!("package `{}` has no world at all", resolve.packages[package].name),
            _ => format!("the worlds there are {}", worlds.join(", ")),
        };
        Help::error(format!("{err:#}"), help)
    })
}

/// A package `component:<name>` holding one empty world `<name>`, named after the crate as
/// cargo-component names it: the world of a crate that only calls component dependencies.
pub fn empty_world(crate_name: &str) -> Result<LocalSource> {
    let no_name = |_| {
        Help::error(
            format!("`{crate_name}` does not make a WIT name for the crate's empty world"),
            "set `target` in `[package.metadata.component]` to a world of your own",
        )
    };
    let package = PackageName::for_crate(crate_name).map_err(no_name)?;
    let name = package.name();
    let text = format!("package {package};\n\nworld {name} {{}}\n");
    LocalSource::from_text(format!("{name}.wit"), &text).map_err(no_name)
}

/// Whether `dir` is a directory that directly holds a `.wit` file.
pub fn has_wit_files(dir: &Path) -> Result<bool> {
    if !dir.is_dir() {
        return Ok(false);
    }
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("failed to read `{}`", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("failed to read `{}`", dir.display()))?;
        if entry.path().extension().is_some_and(|e| e == "wit") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Encodes a package of `resolve` in the binary form registries hold.
pub fn encode_package(resolve: &Resolve, id: PackageId) -> Result<Vec<u8>> {
    wit_component::encode(resolve, id, false).context("failed to encode the WIT package")
}

/// The directory name of a package under `wit/deps`: `<ns>-<name>-<version>`.
pub fn deps_dir_name(name: &PackageName, version: &Version) -> String {
    format!("{}-{}-{version}", name.namespace(), name.name())
}

/// Writes each package as `wit/deps/<ns>-<name>-<version>/package.wit`, each file
/// atomically and only when changed, and removes the folders of packages no longer needed
/// (only folders in this same layout, so WIT vendored by hand stays). Returns whether anything
/// changed.
pub fn write_deps(deps_dir: &Path, packages: &[WitText]) -> Result<bool> {
    let mut changed = false;
    let mut wanted = BTreeSet::new();
    for package in packages {
        let dir = deps_dir_name(&package.name, &package.version);
        let path = deps_dir.join(&dir).join("package.wit");
        changed |= crate::fsutil::write_if_changed(&path, package.text.as_bytes())?;
        wanted.insert(dir);
    }
    let Ok(entries) = std::fs::read_dir(deps_dir) else { return Ok(changed) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if wanted.contains(&name) || !is_generated(&entry.path(), &name) {
            continue;
        }
        std::fs::remove_dir_all(entry.path())
            .with_context(|| format!("failed to remove `{}`", entry.path().display()))?;
        changed = true;
    }
    Ok(changed)
}

/// Whether `dir` looks written by `write_deps`: one `package.wit` whose package line names
/// the package and version the folder is named after.
fn is_generated(dir: &Path, name: &str) -> bool {
    let only_package_wit = std::fs::read_dir(dir).is_ok_and(|entries| {
        let names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
        names.len() == 1 && names[0] == "package.wit"
    });
    if !only_package_wit {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(dir.join("package.wit")) else { return false };
    let header = text.lines().map(str::trim).find(|l| l.starts_with("package "));
    let named = header
        .and_then(|l| l.strip_prefix("package ")?.trim_end_matches(';').split_once('@'))
        .and_then(|(package, version)| {
            Some(deps_dir_name(&package.trim().parse().ok()?, &version.trim().parse().ok()?))
        });
    named.as_deref() == Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "package acme:text@1.0.0;\n\ninterface types {\n  record style { loud: bool }\n}\n\
                        world base {\n  export version: func() -> string;\n}\n";
    const GREETING: &str = "package acme:greeting@1.0.0;\n\nworld greeter {\n  \
                            include acme:text/base@1.0.0;\n  use acme:text/types@1.0.0.{style};\n  \
                            export greet: func(name: string, style: style) -> string;\n}\n";

    const TEXT_1_1: &str = "package acme:text@1.1.0;\n\ninterface types {\n  record style { loud: bool }\n  \
                            record span { start: u32 }\n}\nworld base {\n  export version: func() -> string;\n}\n";

    fn local(text: &str) -> LocalSource {
        let group = UnresolvedPackageGroup::parse("x.wit", text).map_err(|(_, e)| e).unwrap();
        LocalSource { group, path: "x.wit".into() }
    }

    fn encoded(text: &str, deps: &[WitText]) -> Vec<u8> {
        let (resolve, id) = assemble(local(text), deps).unwrap();
        encode_package(&resolve, id).unwrap()
    }

    fn as_is(_: &Versioned) -> Option<Version> {
        None
    }

    fn to_1_1(_: &Versioned) -> Option<Version> {
        Some("1.1.0".parse().unwrap())
    }

    #[test]
    fn round_trips_through_the_binary_form() {
        let text = decode_package(&encoded(TEXT, &[])).unwrap().text(&as_is).unwrap();
        assert_eq!(text.name.to_string(), "acme:text");
        let greeting = decode_package(&encoded(GREETING, std::slice::from_ref(&text))).unwrap();
        assert_eq!(greeting.version.to_string(), "1.0.0");
        assert_eq!(
            greeting.dependencies,
            [("acme:text".parse().unwrap(), "1.0.0".parse().unwrap())]
        );
        let (resolve, id) = assemble_text(&greeting.text(&as_is).unwrap(), &[text]).unwrap();
        assert!(resolve.select_world(&[id], Some("greeter")).is_ok());
    }

    #[test]
    fn references_move_to_the_chosen_version() {
        let text_1_0 = decode_package(&encoded(TEXT, &[])).unwrap().text(&as_is).unwrap();
        let text_1_1 = decode_package(&encoded(TEXT_1_1, &[])).unwrap().text(&as_is).unwrap();
        let greeting = decode_package(&encoded(GREETING, &[text_1_0])).unwrap();
        let moved = greeting.text(&to_1_1).unwrap();
        assert!(moved.text.contains("acme:text/types@1.1.0"), "{}", moved.text);
        assert!(assemble_text(&moved, std::slice::from_ref(&text_1_1)).is_ok());

        let mut source = local(GREETING);
        source.retarget(&to_1_1);
        assert!(assemble(source, &[text_1_1]).is_ok());
    }

    const PROVIDER: &str = "package acme:greeter@1.0.0;\n\
        interface types {\n  record style { loud: bool }\n}\n\
        interface greet {\n  use types.{style};\n  greet: func(name: string, style: style) -> string;\n}\n\
        world provider {\n  export greet;\n  export store: interface {\n    get: func() -> string;\n  }\n  \
        export version: func() -> string;\n}\n\
        world both {\n  export types;\n  export greet;\n}\n";

    /// A real component of `world` in `PROVIDER`, around a module that does nothing.
    fn component(world: &str) -> ComponentPackage {
        let (resolve, id) = assemble(local(PROVIDER), &[]).unwrap();
        let world = resolve.select_world(&[id], Some(world)).unwrap();
        let mangling = wit_parser::ManglingAndAbi::Standard32;
        let mut module = wit_component::dummy_module(&resolve, world, mangling);
        let utf8 = wit_component::StringEncoding::UTF8;
        wit_component::embed_component_metadata(&mut module, &resolve, world, utf8, false).unwrap();
        let mut encoder = wit_component::ComponentEncoder::default();
        let bytes = encoder.module(&module).unwrap().encode().unwrap();
        match decode(&bytes).unwrap() {
            Decoded::Component(component) => component,
            Decoded::Wit(_) => panic!("decoded a WIT package"),
        }
    }

    fn app(world_text: &str) -> (Resolve, WorldId) {
        let text = format!("package acme:app@0.1.0;\nworld app {{\n{world_text}\n}}\n");
        let (resolve, id) = assemble(local(&text), &[]).unwrap();
        let world = resolve.select_world(&[id], Some("app")).unwrap();
        (resolve, world)
    }

    #[test]
    fn component_exports_come_in_under_the_dependencys_names() {
        let provider = component("provider");
        // `greet` moves under the dependency; the interface it uses stays where it is.
        let greeter = ("acme:greeter".parse().unwrap(), "1.0.0".parse().unwrap());
        assert_eq!(provider.dependencies().unwrap(), [greeter]);

        let (mut resolve, world) =
            app("  import version: func() -> string;\n  export run: func();");
        for name in ["acme:hello", "acme:hola"] {
            provider.import_into(&mut resolve, world, &name.parse().unwrap(), &as_is).unwrap();
        }
        let imports: BTreeSet<String> =
            resolve.worlds[world].imports.keys().map(|k| resolve.name_world_key(k)).collect();
        let expected = [
            "version",
            "acme-hello",
            "acme-hola",
            "acme:hello/acme-greeter-greet",
            "acme:hello/store",
            "acme:hola/acme-greeter-greet",
            "acme:hola/store",
            "acme:greeter/types@1.0.0",
        ];
        assert_eq!(imports, expected.into_iter().map(String::from).collect());
        resolve.assert_valid();
        let utf8 = wit_component::StringEncoding::UTF8;
        wit_component::metadata::encode(&resolve, world, utf8, None, false).unwrap();
    }

    #[test]
    fn interfaces_exported_together_move_together() {
        let both = component("both");
        assert_eq!(both.dependencies().unwrap(), []);
        let (mut resolve, world) = app("  export run: func();");
        both.import_into(&mut resolve, world, &"acme:hello".parse().unwrap(), &as_is).unwrap();
        let imports: Vec<String> =
            resolve.worlds[world].imports.keys().map(|k| resolve.name_world_key(k)).collect();
        assert_eq!(imports, ["acme:hello/acme-greeter-types", "acme:hello/acme-greeter-greet"]);
        resolve.assert_valid();
    }

    #[test]
    fn a_taken_name_for_a_components_functions_is_refused() {
        let (mut resolve, world) = app("  import acme-hello: func();");
        let err = component("provider")
            .import_into(&mut resolve, world, &"acme:hello".parse().unwrap(), &as_is)
            .unwrap_err();
        assert!(format!("{err:#}").contains("interface `acme-hello`, a name the world"), "{err:#}");
    }

    #[test]
    fn local_dependencies_need_versions() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.wit");
        std::fs::write(&file, "package acme:a@0.1.0;\nworld w { import acme:b/i; }\n").unwrap();
        let err = LocalSource::parse(&file).unwrap().dependencies().unwrap_err();
        assert!(format!("{err:#}").contains("without a version"), "{err:#}");
    }

    #[test]
    fn parse_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.wit"), "package acme:a@0.1.0;\nworld {").unwrap();
        let err = LocalSource::parse(dir.path()).err().unwrap();
        assert!(format!("{err:#}").contains(&dir.path().display().to_string()));
    }

    #[test]
    fn stale_generated_deps_are_removed_and_hand_vendored_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let text = |version: &str| WitText {
            name: "acme:text".parse().unwrap(),
            version: version.parse().unwrap(),
            text: format!("package acme:text@{version};\n"),
        };
        write_deps(dir.path(), &[text("1.0.0"), text("2.0.0")]).unwrap();
        std::fs::create_dir_all(dir.path().join("mine")).unwrap();
        std::fs::write(dir.path().join("mine/package.wit"), "package acme:mine@0.1.0;\n").unwrap();

        assert!(write_deps(dir.path(), &[text("2.0.0")]).unwrap());
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["acme-text-2.0.0", "mine"]);
        assert!(!write_deps(dir.path(), &[text("2.0.0")]).unwrap());
    }
}
