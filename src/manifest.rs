//! The `[package.metadata.component]` table of a crate's Cargo.toml, in the schema that
//! cargo-component made common, read from `cargo metadata` output so that workspaces and
//! inherited fields work.
//!
//! Invalid values are errors naming the key and the manifest; unknown keys are warnings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use semver::VersionReq;
use serde_json::{Map, Value};

use crate::bindings::BindingsOptions;
use crate::package::{PackageName, parse_requirement};
use crate::registry::Registry;

/// What a component crate declares about itself.
#[derive(Debug, Clone)]
pub struct ComponentMetadata {
    /// The package name the component is published as (`package`).
    pub package: Option<PackageName>,
    /// The world the crate implements (`target`).
    pub target: Target,
    /// `dependencies`: packages whose WIT (or, for components, exports) the crate uses.
    pub dependencies: BTreeMap<PackageName, Dependency>,
    pub bindings: BindingsOptions,
    pub proxy: bool,
    pub adapter: Option<PathBuf>,
    /// Unknown keys found while reading, as dotted paths, for the caller to warn about.
    pub unknown_keys: Vec<String>,
}

/// Where the world to implement comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A world of a package in a registry: `target = "ns:pkg/world@req"`.
    Registry {
        package: PackageName,
        requirement: VersionReq,
        world: Option<String>,
        registry: Option<Registry>,
    },
    /// A WIT directory or file in the project: `target = { path = "wit", world = "..." }`.
    Local { path: PathBuf, world: Option<String>, dependencies: BTreeMap<PackageName, Dependency> },
    /// No world: the crate only uses its dependencies (or there is nothing to bind).
    None,
}

/// One entry of `dependencies` or `target.dependencies`.
#[derive(Debug, Clone, PartialEq)]
pub enum Dependency {
    /// A release from a registry.
    Registry { package: PackageName, requirement: VersionReq, registry: Option<Registry> },
    /// A WIT directory, a `.wit` file or a `.wasm` in the project.
    Local { path: PathBuf },
}

const TOP_KEYS: &[&str] =
    &["package", "target", "dependencies", "bindings", "proxy", "adapter", "registries"];

impl ComponentMetadata {
    /// Reads the component metadata of a crate, or `None` when it has no
    /// `[package.metadata.component]` table. Relative paths are made absolute against the
    /// manifest's directory.
    pub fn from_package(package: &cargo_metadata::Package) -> Result<Option<Self>> {
        let manifest = package.manifest_path.as_std_path();
        let Some(table) = package.metadata.get("component") else {
            return Ok(None);
        };
        let dir = manifest.parent().unwrap_or(Path::new("."));
        Self::parse(table, dir).map(Some).with_context(|| {
            format!("invalid `[package.metadata.component]` in `{}`", manifest.display())
        })
    }

    /// Parses the table; `dir` is the directory relative paths are resolved against.
    pub fn parse(table: &Value, dir: &Path) -> Result<Self> {
        let key = "package.metadata.component";
        let table = as_table(table, key)?;
        let mut unknown_keys = unknown(table, TOP_KEYS, key);

        let package = match table.get("package") {
            Some(v) => Some(parse_name(v, "package.metadata.component.package")?),
            None => None,
        };
        let target = match table.get("target") {
            Some(v) => parse_target(v, dir, &mut unknown_keys)?,
            None if crate::wit::has_wit_files(&dir.join("wit"))? => {
                Target::Local { path: dir.join("wit"), world: None, dependencies: BTreeMap::new() }
            }
            None => Target::None,
        };
        let dependencies = match table.get("dependencies") {
            Some(v) => {
                parse_dependencies(v, dir, &format!("{key}.dependencies"), &mut unknown_keys)?
            }
            None => BTreeMap::new(),
        };
        let bindings = match table.get("bindings") {
            Some(v) => parse_bindings(v, &mut unknown_keys)?,
            None => BindingsOptions::default(),
        };
        let proxy = match table.get("proxy") {
            Some(v) => {
                v.as_bool().ok_or_else(|| type_error(&format!("{key}.proxy"), "a boolean", v))?
            }
            None => false,
        };
        let adapter = match table.get("adapter") {
            Some(v) => Some(dir.join(as_str(v, &format!("{key}.adapter"))?)),
            None => None,
        };
        Ok(Self { package, target, dependencies, bindings, proxy, adapter, unknown_keys })
    }
}

fn parse_bindings(value: &Value, unknown_keys: &mut Vec<String>) -> Result<BindingsOptions> {
    let key = "package.metadata.component.bindings";
    as_table(value, key)?;
    let options: BindingsOptions =
        serde_json::from_value(value.clone()).map_err(|e| anyhow!("invalid `{key}`: {e}"))?;
    unknown_keys.extend(options.unknown_keys().map(|k| format!("{key}.{k}")));
    unknown_keys.extend(options.ignored_keys().map(|k| format!("{key}.{k}")));
    Ok(options)
}

fn parse_target(value: &Value, dir: &Path, unknown_keys: &mut Vec<String>) -> Result<Target> {
    let key = "package.metadata.component.target";
    if let Value::String(s) = value {
        return parse_target_str(s).with_context(|| format!("invalid `{key}`"));
    }
    let table = value.as_object().ok_or_else(|| type_error(key, "a string or a table", value))?;
    let world = optional_str(table, "world", key)?.map(str::to_string);
    if let Some(path) = table.get("path") {
        unknown_keys.extend(unknown(table, &["path", "world", "dependencies"], key));
        let dependencies = match table.get("dependencies") {
            Some(v) => parse_dependencies(v, dir, &format!("{key}.dependencies"), unknown_keys)?,
            None => BTreeMap::new(),
        };
        let path = dir.join(as_str(path, &format!("{key}.path"))?);
        return Ok(Target::Local { path, world, dependencies });
    }
    unknown_keys.extend(unknown(table, &["package", "version", "world", "registry"], key));
    let package = table
        .get("package")
        .ok_or_else(|| anyhow!("`{key}` needs either `package` (a registry world) or `path`"))?;
    let package = parse_name(package, &format!("{key}.package"))?;
    let requirement = match optional_str(table, "version", key)? {
        Some(v) => parse_requirement(v).with_context(|| format!("invalid `{key}.version`"))?,
        None => VersionReq::STAR,
    };
    let registry = parse_registry(table, key)?;
    Ok(Target::Registry { package, requirement, world, registry })
}

/// Parses `ns:pkg[/world][@requirement]`.
pub fn parse_target_str(s: &str) -> Result<Target> {
    let (rest, requirement) = match s.split_once('@') {
        Some((rest, req)) => (rest, parse_requirement(req)?),
        None => (s, VersionReq::STAR),
    };
    let (package, world) = match rest.split_once('/') {
        Some((package, world)) => (package, Some(world.to_string())),
        None => (rest, None),
    };
    let package: PackageName = package
        .parse()
        .with_context(|| format!("`{s}` is not of the form `ns:pkg[/world][@version]`"))?;
    if world.as_deref().is_some_and(|w| w.is_empty() || w.contains('/')) {
        bail!("`{s}` is not of the form `ns:pkg[/world][@version]`");
    }
    Ok(Target::Registry { package, requirement, world, registry: None })
}

fn parse_dependencies(
    value: &Value,
    dir: &Path,
    key: &str,
    unknown_keys: &mut Vec<String>,
) -> Result<BTreeMap<PackageName, Dependency>> {
    let table = as_table(value, key)?;
    let mut deps = BTreeMap::new();
    for (name, value) in table {
        let entry_key = format!("{key}.\"{name}\"");
        let parsed: PackageName =
            name.parse().with_context(|| format!("invalid key in `{key}`"))?;
        let dep = parse_dependency(&parsed, value, dir, &entry_key, unknown_keys)?;
        deps.insert(parsed, dep);
    }
    Ok(deps)
}

fn parse_dependency(
    name: &PackageName,
    value: &Value,
    dir: &Path,
    key: &str,
    unknown_keys: &mut Vec<String>,
) -> Result<Dependency> {
    if let Value::String(req) = value {
        let requirement = parse_requirement(req).with_context(|| format!("invalid `{key}`"))?;
        return Ok(Dependency::Registry { package: name.clone(), requirement, registry: None });
    }
    let table = as_table(value, key)?;
    if let Some(path) = table.get("path") {
        unknown_keys.extend(unknown(table, &["path"], key));
        return Ok(Dependency::Local { path: dir.join(as_str(path, &format!("{key}.path"))?) });
    }
    unknown_keys.extend(unknown(table, &["version", "package", "registry"], key));
    let package = match table.get("package") {
        Some(v) => parse_name(v, &format!("{key}.package"))?,
        None => name.clone(),
    };
    let version = optional_str(table, "version", key)?
        .ok_or_else(|| anyhow!("`{key}` needs `version` (a requirement) or `path`"))?;
    let requirement =
        parse_requirement(version).with_context(|| format!("invalid `{key}.version`"))?;
    let registry = parse_registry(table, key)?;
    Ok(Dependency::Registry { package, requirement, registry })
}

fn parse_registry(table: &Map<String, Value>, key: &str) -> Result<Option<Registry>> {
    optional_str(table, "registry", key)?
        .map(|r| r.parse().with_context(|| format!("invalid `{key}.registry`")))
        .transpose()
}

fn parse_name(value: &Value, key: &str) -> Result<PackageName> {
    as_str(value, key)?.parse().with_context(|| format!("invalid `{key}`"))
}

fn as_table<'a>(value: &'a Value, key: &str) -> Result<&'a Map<String, Value>> {
    value.as_object().ok_or_else(|| type_error(key, "a table", value))
}

fn as_str<'a>(value: &'a Value, key: &str) -> Result<&'a str> {
    value.as_str().ok_or_else(|| type_error(key, "a string", value))
}

fn optional_str<'a>(
    table: &'a Map<String, Value>,
    name: &str,
    key: &str,
) -> Result<Option<&'a str>> {
    table.get(name).map(|v| as_str(v, &format!("{key}.{name}"))).transpose()
}

fn type_error(key: &str, expected: &str, found: &Value) -> anyhow::Error {
    let found = match found {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    };
    anyhow!("`{key}` must be {expected}, found {found}")
}

fn unknown(table: &Map<String, Value>, known: &[&str], key: &str) -> Vec<String> {
    table.keys().filter(|k| !known.contains(&k.as_str())).map(|k| format!("{key}.{k}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<ComponentMetadata> {
        ComponentMetadata::parse(&v, Path::new("/p"))
    }

    #[test]
    fn target_strings() {
        let Target::Registry { package, requirement, world, .. } =
            parse_target_str("wasi:http/proxy@0.2.0").unwrap()
        else {
            panic!("expected a registry target")
        };
        assert_eq!(package.to_string(), "wasi:http");
        assert_eq!(world.as_deref(), Some("proxy"));
        assert_eq!(requirement.to_string(), "^0.2.0");
        assert!(matches!(
            parse_target_str("acme:app").unwrap(),
            Target::Registry { world: None, .. }
        ));
        for bad in ["acme", "acme:app/", "acme:app@x.y", "acme:app/a/b", "Acme:app"] {
            assert!(parse_target_str(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn target_tables() {
        let m = parse(
            json!({"target": {"package": "acme:greeting", "version": "1.0", "world": "greeter"}}),
        )
        .unwrap();
        assert!(matches!(m.target, Target::Registry { world: Some(ref w), .. } if w == "greeter"));
        let m = parse(
            json!({"target": {"path": "wit", "world": "w", "dependencies": {"wasi:io": "0.2.0"}}}),
        )
        .unwrap();
        let Target::Local { path, dependencies, .. } = m.target else { panic!("expected local") };
        assert_eq!(path, Path::new("/p/wit"));
        assert_eq!(dependencies.len(), 1);
    }

    #[test]
    fn dependency_forms() {
        let m = parse(json!({"dependencies": {
            "acme:a": "1.2.0",
            "acme:b": {"version": "2", "registry": "ghcr.io/acme"},
            "acme:c": {"path": "wit/c"},
            "acme:d": {"package": "acme:real-d", "version": "0.1"},
        }}))
        .unwrap();
        let a = &m.dependencies[&"acme:a".parse().unwrap()];
        assert!(
            matches!(a, Dependency::Registry { requirement, .. } if requirement.to_string() == "^1.2.0")
        );
        let d = &m.dependencies[&"acme:d".parse().unwrap()];
        assert!(
            matches!(d, Dependency::Registry { package, .. } if package.to_string() == "acme:real-d")
        );
        assert!(matches!(&m.dependencies[&"acme:c".parse().unwrap()], Dependency::Local { .. }));
    }

    #[test]
    fn errors_name_the_key() {
        let err = parse(json!({"target": 3})).unwrap_err();
        assert!(format!("{err:#}").contains("`package.metadata.component.target` must be"));
        let err = parse(json!({"dependencies": {"acme:a": "one"}})).unwrap_err();
        assert!(format!("{err:#}").contains("package.metadata.component.dependencies.\"acme:a\""));
        let err = parse(json!({"dependencies": {"acme": "1"}})).unwrap_err();
        assert!(format!("{err:#}").contains("acme"));
    }

    #[test]
    fn unknown_keys_are_collected() {
        let m = parse(json!({"targte": "x", "target": {"package": "a:b", "wrld": "w"}})).unwrap();
        assert_eq!(
            m.unknown_keys,
            ["package.metadata.component.targte", "package.metadata.component.target.wrld"]
        );
    }
}
