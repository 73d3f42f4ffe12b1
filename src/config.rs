//! Which registry serves which package, and how to reach it.
//!
//! Three layers, most specific first: the command line (`--registry`, `CARGO_WREG_REGISTRY`,
//! which sends every package to one registry), the project (`[package.metadata.wreg]` and
//! `[workspace.metadata.wreg]`, committed with the code), and the user's wasm-pkg
//! `config.toml`, the file `wkg` reads. Within the files, a package entry beats a namespace
//! entry, which beats a default; between entries of the same kind, the project beats the
//! user. Built-in fallbacks (`wasi` → `wasi.dev`) come last. A `registry` key on a manifest
//! entry beats everything.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use serde_json::Value;

use crate::Help;
use crate::oci::auth::{self, Credentials, Secret};
use crate::oci::discovery::RegistryMetadata;
use crate::oci::{Client, ClientOptions};
use crate::package::PackageName;
use crate::registry::Registry;
use crate::shell;

/// What the ecosystem maps without configuration, as wasm-pkg does.
const BUILT_IN: &[(&str, &str)] = &[("wasi", "wasi.dev"), ("ba", "bytecodealliance.org")];

/// Where a mapping came from, for `cargo wreg config` and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--registry` or `CARGO_WREG_REGISTRY`.
    CommandLine,
    /// A `registry` key on the package's own target or dependency entry.
    Manifest,
    /// `[package.metadata.wreg]` (or the workspace's) of this Cargo.toml.
    Project {
        manifest: PathBuf,
        workspace: bool,
    },
    /// The user's wasm-pkg config file.
    User(PathBuf),
    BuiltIn,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CommandLine => f.write_str("--registry / CARGO_WREG_REGISTRY"),
            Self::Manifest => f.write_str("the `registry` key of the package's manifest entry"),
            Self::Project { manifest, workspace: false } => {
                write!(f, "[package.metadata.wreg] in `{}`", manifest.display())
            }
            Self::Project { manifest, workspace: true } => {
                write!(f, "[workspace.metadata.wreg] in `{}`", manifest.display())
            }
            Self::User(path) => write!(f, "the wasm-pkg config `{}`", path.display()),
            Self::BuiltIn => f.write_str("built-in default"),
        }
    }
}

/// What an entry maps.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    /// Every package (the command line).
    Every,
    Package(PackageName),
    Namespace(String),
    Default,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Every => f.write_str("every package"),
            Self::Package(package) => write!(f, "package {package}"),
            Self::Namespace(namespace) => write!(f, "namespace {namespace}"),
            Self::Default => f.write_str("default"),
        }
    }
}

/// One mapping of one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: Key,
    pub registry: Registry,
    pub source: Source,
    /// A more specific layer maps the same key elsewhere.
    pub overridden: bool,
}

/// The registry chosen for a package, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub registry: Registry,
    pub key: Key,
    pub source: Source,
}

/// How to reach one registry, from `[registry."name".oci]` and custom namespace mappings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrySettings {
    /// The OCI location the configuration gives, which skips discovery.
    pub location: Option<Registry>,
    /// `protocol = "http"` (true) or `"https"` (false).
    pub insecure: Option<bool>,
    pub credentials: Option<Credentials>,
}

/// The mappings of one configuration file or table.
#[derive(Debug, Clone)]
struct Layer {
    source: Source,
    default: Option<Registry>,
    namespaces: BTreeMap<String, Registry>,
    packages: BTreeMap<PackageName, Registry>,
}

impl Layer {
    fn new(source: Source) -> Self {
        Self { source, default: None, namespaces: BTreeMap::new(), packages: BTreeMap::new() }
    }

    fn entries(&self) -> impl Iterator<Item = (Key, &Registry)> {
        let packages = self.packages.iter().map(|(p, r)| (Key::Package(p.clone()), r));
        let namespaces = self.namespaces.iter().map(|(n, r)| (Key::Namespace(n.clone()), r));
        packages.chain(namespaces).chain(self.default.iter().map(|r| (Key::Default, r)))
    }

    fn get(&self, key: &Key) -> Option<&Registry> {
        match key {
            Key::Package(package) => self.packages.get(package),
            Key::Namespace(namespace) => self.namespaces.get(namespace),
            Key::Default => self.default.as_ref(),
            Key::Every => None,
        }
    }
}

/// The registry selection in force for one command.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    flag: Option<Registry>,
    /// The project's tables (packages' before the workspace's), then the user's file.
    project: Vec<Layer>,
    user: Option<Layer>,
    settings: BTreeMap<String, RegistrySettings>,
    /// `CARGO_WREG_REGISTRY_TOKEN`, for the command's main registry.
    token: Option<Credentials>,
    /// The wasm-pkg config file looked at, and whether it existed.
    user_file: Option<(PathBuf, bool)>,
    /// One client per registry, so that its connections, discovery and tokens are shared.
    clients: ClientCache,
}

/// The clients a configuration has made; a configuration derived from another starts afresh,
/// as its main registry (and so which client gets the token) may differ.
#[derive(Clone, Default)]
struct ClientCache(Arc<Mutex<HashMap<Registry, Client>>>);

impl fmt::Debug for ClientCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientCache")
    }
}

impl RegistryConfig {
    /// The command line alone: `--registry` wins over `CARGO_WREG_REGISTRY`; clap reads both
    /// into `flag`.
    pub fn new(flag: Option<Registry>) -> Self {
        Self { flag, ..Self::default() }
    }

    /// The command line, the user's wasm-pkg config and `CARGO_WREG_REGISTRY_TOKEN`.
    pub fn load(flag: Option<Registry>) -> Result<Self> {
        let mut config = Self::new(flag);
        config.token = Credentials::from_env();
        let Some((path, explicit)) = user_config_path() else { return Ok(config) };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !explicit => {
                config.user_file = Some((path, false));
                return Ok(config);
            }
            Err(err) => {
                return Err(err).with_context(|| format!("failed to read `{}`", path.display()));
            }
        };
        let (layer, settings) = parse_user_file(&text, &path)
            .with_context(|| format!("invalid wasm-pkg config `{}`", path.display()))?;
        config.user = Some(layer);
        config.settings = settings;
        config.user_file = Some((path, true));
        Ok(config)
    }

    /// This configuration with the project layer of a cargo workspace: its
    /// `[workspace.metadata.wreg]` and every member's `[package.metadata.wreg]`. Members
    /// share one `wkg.lock`, so their tables apply to the whole workspace and must agree.
    pub fn with_workspace(&self, metadata: &cargo_metadata::Metadata) -> Result<Self> {
        let mut project: Vec<Layer> = Vec::new();
        for package in metadata.workspace_packages() {
            let Some(table) = package.metadata.get("wreg") else { continue };
            let manifest = package.manifest_path.as_std_path().to_path_buf();
            let source = Source::Project { manifest, workspace: false };
            let layer = parse_project_table(table, source)?;
            check_agreement(&project, &layer)?;
            project.push(layer);
        }
        if let Some(table) = metadata.workspace_metadata.get("wreg") {
            let manifest = metadata.workspace_root.as_std_path().join("Cargo.toml");
            project
                .push(parse_project_table(table, Source::Project { manifest, workspace: true })?);
        }
        Ok(Self { project, clients: ClientCache::default(), ..self.clone() })
    }

    /// This configuration with the project layer of the cargo project around `dir`, if there
    /// is one; for commands that run outside a component workspace (`pull`, `publish --wit`).
    pub fn with_project_at(&self, dir: &Path) -> Result<Self> {
        let Some(manifest) = dir.ancestors().map(|d| d.join("Cargo.toml")).find(|m| m.is_file())
        else {
            return Ok(self.clone());
        };
        let metadata = cargo_metadata::MetadataCommand::new()
            .manifest_path(&manifest)
            .no_deps()
            .exec()
            .with_context(|| {
                format!("failed to read the project configuration of `{}`", manifest.display())
            })?;
        self.with_workspace(&metadata)
    }

    /// The registry for `package`, given the registry its manifest entry names, if any.
    pub fn registry_for(
        &self,
        package: &PackageName,
        explicit: Option<&Registry>,
    ) -> Result<Registry> {
        self.choose(package, explicit).map(|c| c.registry).ok_or_else(|| unmapped(package))
    }

    /// The registry for `package` and the entry that chose it.
    pub fn choose(&self, package: &PackageName, explicit: Option<&Registry>) -> Option<Choice> {
        let choice = |registry: &Registry, key: Key, source: Source| Choice {
            registry: registry.clone(),
            key,
            source,
        };
        if let Some(registry) = explicit {
            return Some(choice(registry, Key::Package(package.clone()), Source::Manifest));
        }
        if let Some(registry) = &self.flag {
            return Some(choice(registry, Key::Every, Source::CommandLine));
        }
        let keys = [
            Key::Package(package.clone()),
            Key::Namespace(package.namespace().to_string()),
            Key::Default,
        ];
        for key in keys {
            if let Some(layer) = self.layers().find(|l| l.get(&key).is_some())
                && let Some(registry) = layer.get(&key)
            {
                return Some(choice(registry, key, layer.source.clone()));
            }
        }
        let (namespace, name) = BUILT_IN.iter().find(|(ns, _)| *ns == package.namespace())?;
        let registry = name.parse().ok()?;
        Some(choice(&registry, Key::Namespace(namespace.to_string()), Source::BuiltIn))
    }

    /// Every mapping of every layer in the order they are consulted, marking those a more
    /// specific entry overrides.
    pub fn entries(&self) -> Vec<Entry> {
        let mut entries: Vec<Entry> = Vec::new();
        if let Some(registry) = &self.flag {
            let source = Source::CommandLine;
            entries.push(Entry {
                key: Key::Every,
                registry: registry.clone(),
                source,
                overridden: false,
            });
        }
        let built_in = BUILT_IN.iter().filter_map(|(ns, name)| {
            Some((Key::Namespace(ns.to_string()), name.parse::<Registry>().ok()?))
        });
        let layered =
            self.layers().flat_map(|l| l.entries().map(|(k, r)| (k, r.clone(), l.source.clone())));
        let all = layered.chain(built_in.map(|(k, r)| (k, r, Source::BuiltIn)));
        for (key, registry, source) in all {
            // A default of any layer comes before the built-in fallbacks.
            let shadowed =
                |e: &Entry| e.key == key || source == Source::BuiltIn && e.key == Key::Default;
            let overridden = self.flag.is_some() || entries.iter().any(shadowed);
            entries.push(Entry { key, registry, source, overridden });
        }
        entries.sort_by_key(|e| (e.source == Source::BuiltIn, e.key.clone()));
        entries
    }

    /// The settings the configuration has for registries, by name.
    pub fn settings(&self) -> &BTreeMap<String, RegistrySettings> {
        &self.settings
    }

    /// The wasm-pkg config file that was looked at, and whether it exists.
    pub fn user_file(&self) -> Option<(&Path, bool)> {
        self.user_file.as_ref().map(|(path, found)| (path.as_path(), *found))
    }

    /// The registry `CARGO_WREG_REGISTRY_TOKEN` is for: the command line's, else the project's
    /// or the user's default. Other registries never see the token.
    pub fn main_registry(&self) -> Option<&Registry> {
        self.flag.as_ref().or_else(|| self.layers().find_map(|l| l.default.as_ref()))
    }

    /// A client for `registry` with the settings and credentials the configuration has for
    /// it. Nothing is looked up or sent until the client's first request.
    /// The client for `registry`, made once per configuration.
    pub fn client(&self, registry: &Registry) -> Result<Client> {
        let mut clients = self.clients.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(registry) {
            return Ok(client.clone());
        }
        let client = Client::with_options(registry.clone(), self.client_options(registry))?;
        clients.insert(registry.clone(), client.clone());
        Ok(client)
    }

    /// How to reach `registry`: its settings, and the token if it is the main registry.
    pub fn client_options(&self, registry: &Registry) -> ClientOptions {
        let settings = self.settings.get(registry.host()).cloned().unwrap_or_default();
        let token = self.token.clone().filter(|_| self.main_registry() == Some(registry));
        ClientOptions {
            location: settings.location,
            insecure: settings.insecure,
            credentials: token.or(settings.credentials),
            ..ClientOptions::default()
        }
    }

    /// `CARGO_WREG_REGISTRY_TOKEN`, if set.
    pub fn token(&self) -> Option<&Credentials> {
        self.token.as_ref()
    }

    fn layers(&self) -> impl Iterator<Item = &Layer> {
        self.project.iter().chain(self.user.iter())
    }
}

fn unmapped(package: &PackageName) -> anyhow::Error {
    Help::error(
        format!(
            "no registry is configured for namespace `{}` (package `{package}`)",
            package.namespace()
        ),
        "pass `--registry <URL>` or set `CARGO_WREG_REGISTRY`, e.g. \
         `--registry http://127.0.0.1:5000` for `cargo wreg registry serve`; or map the \
         namespace in `[package.metadata.wreg.namespaces]` or in the wasm-pkg config; or add \
         `registry = \"...\"` to the package's entry in `[package.metadata.component]`",
    )
}

/// The wasm-pkg config file: `WKG_CONFIG_FILE` (which must exist; the flag is true), else
/// `config.toml` in the `wasm-pkg` folder of the user's config directory.
pub fn user_config_path() -> Option<(PathBuf, bool)> {
    if let Some(path) = std::env::var_os("WKG_CONFIG_FILE").filter(|p| !p.is_empty()) {
        return Some((PathBuf::from(path), true));
    }
    Some((config_dir()?.join("wasm-pkg").join("config.toml"), false))
}

/// The XDG config directory on every Unix, macOS included, as wkg finds it; the platform's
/// own elsewhere.
fn config_dir() -> Option<PathBuf> {
    if cfg!(windows) {
        return dirs::config_dir();
    }
    let xdg = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from).filter(|p| p.is_absolute());
    xdg.or_else(|| Some(dirs::home_dir()?.join(".config")))
}

/// The parts of the wasm-pkg config cargo-wreg reads; the rest is wkg's business.
#[derive(Deserialize)]
struct UserFile {
    default_registry: Option<String>,
    #[serde(default)]
    namespace_registries: BTreeMap<String, Mapping>,
    #[serde(default)]
    package_registry_overrides: BTreeMap<String, Mapping>,
    #[serde(default)]
    registry: BTreeMap<String, UserRegistry>,
}

/// A registry name, or a name with the metadata that discovery would otherwise fetch.
#[derive(Deserialize)]
#[serde(untagged)]
enum Mapping {
    Name(String),
    Custom { registry: String, metadata: Value },
}

#[derive(Deserialize)]
struct UserRegistry {
    oci: Option<UserOci>,
}

#[derive(Deserialize)]
struct UserOci {
    auth: Option<UserAuth>,
    protocol: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum UserAuth {
    Base64(String),
    Basic { username: String, password: String },
}

type Settings = BTreeMap<String, RegistrySettings>;

fn parse_user_file(text: &str, path: &Path) -> Result<(Layer, Settings)> {
    let file: UserFile = toml_edit::de::from_str(text).context("invalid TOML")?;
    let mut layer = Layer::new(Source::User(path.to_path_buf()));
    let mut settings = Settings::new();
    let source = format!("the wasm-pkg config `{}`", path.display());
    for (name, entry) in &file.registry {
        let registry: Registry = name
            .parse()
            .with_context(|| format!("invalid registry name `[registry.\"{name}\"]`"))?;
        let oci = entry.oci.as_ref();
        let insecure = match oci.and_then(|o| o.protocol.as_deref()) {
            None => None,
            Some("http") => Some(true),
            Some("https") => Some(false),
            Some(other) => bail!(
                "`[registry.\"{name}\".oci] protocol` is `{other}`, expected `http` or `https`"
            ),
        };
        let credentials = match oci.and_then(|o| o.auth.as_ref()) {
            None => None,
            Some(auth) => Some(
                user_credentials(auth, &source)
                    .with_context(|| format!("invalid `[registry.\"{name}\".oci] auth`"))?,
            ),
        };
        let entry = settings.entry(registry.host().to_string()).or_default();
        (entry.insecure, entry.credentials) = (insecure, credentials);
    }
    if let Some(name) = &file.default_registry {
        layer.default = Some(name.parse().context("invalid `default_registry`")?);
    }
    for (namespace, mapping) in &file.namespace_registries {
        let what = format!("`namespace_registries.{namespace}`");
        layer.namespaces.insert(namespace.clone(), user_mapping(mapping, &what, &mut settings)?);
    }
    for (package, mapping) in &file.package_registry_overrides {
        let what = format!("`package_registry_overrides.\"{package}\"`");
        let name: PackageName = package.parse().with_context(|| format!("invalid {what}"))?;
        layer.packages.insert(name, user_mapping(mapping, &what, &mut settings)?);
    }
    Ok((layer, settings))
}

fn user_credentials(auth: &UserAuth, source: &str) -> Result<Credentials> {
    Ok(match auth {
        UserAuth::Base64(encoded) => {
            let (username, password) = auth::decode_basic(encoded)?;
            Credentials::basic(&username, password, source)
        }
        UserAuth::Basic { username, password } => {
            Credentials::basic(username, Secret::new(password.as_str()), source)
        }
    })
}

/// Reads a mapping; a custom one also records where its registry's packages are.
fn user_mapping(mapping: &Mapping, what: &str, settings: &mut Settings) -> Result<Registry> {
    let (name, metadata) = match mapping {
        Mapping::Name(name) => (name, None),
        Mapping::Custom { registry, metadata } => (registry, Some(metadata)),
    };
    let registry: Registry = name.parse().with_context(|| format!("invalid {what}"))?;
    if let Some(metadata) = metadata {
        let entry = settings.entry(registry.host().to_string()).or_default();
        let metadata: RegistryMetadata = serde_json::from_value(metadata.clone())
            .with_context(|| format!("invalid `metadata` in {what}"))?;
        entry.location = Some(metadata.location(&registry, entry.insecure)?);
    }
    Ok(registry)
}

const PROJECT_KEYS: &[&str] = &["registry", "namespaces", "packages"];

/// Reads a `[package.metadata.wreg]` or `[workspace.metadata.wreg]` table:
/// `registry = "..."`, `[...wreg.namespaces] ns = "..."`, `[...wreg.packages] "ns:name" = "..."`.
fn parse_project_table(table: &Value, source: Source) -> Result<Layer> {
    let what = match &source {
        Source::Project { manifest, workspace } => {
            let kind = if *workspace { "workspace" } else { "package" };
            format!("[{kind}.metadata.wreg] in `{}`", manifest.display())
        }
        other => other.to_string(),
    };
    parse_project(table, Layer::new(source)).with_context(|| format!("invalid {what}"))
}

fn parse_project(table: &Value, mut layer: Layer) -> Result<Layer> {
    let table = table.as_object().ok_or_else(|| anyhow!("expected a table"))?;
    for key in table.keys().filter(|k| !PROJECT_KEYS.contains(&k.as_str())) {
        shell::warn(format_args!("unused manifest key: wreg.{key} in {}", layer.source));
    }
    if let Some(value) = table.get("registry") {
        layer.default = Some(registry_value(value, "registry")?);
    }
    for (namespace, value) in string_map(table, "namespaces")? {
        crate::package::check_namespace(namespace)?;
        let registry = registry_value(value, &format!("namespaces.{namespace}"))?;
        layer.namespaces.insert(namespace.clone(), registry);
    }
    for (package, value) in string_map(table, "packages")? {
        let name: PackageName = package.parse().context("invalid `packages` key")?;
        layer.packages.insert(name, registry_value(value, &format!("packages.\"{package}\""))?);
    }
    Ok(layer)
}

fn string_map<'a>(
    table: &'a serde_json::Map<String, Value>,
    key: &str,
) -> Result<&'a serde_json::Map<String, Value>> {
    static EMPTY: std::sync::LazyLock<serde_json::Map<String, Value>> =
        std::sync::LazyLock::new(serde_json::Map::new);
    match table.get(key) {
        None => Ok(&EMPTY),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => bail!("`{key}` must be a table of registry addresses"),
    }
}

fn registry_value(value: &Value, key: &str) -> Result<Registry> {
    let text =
        value.as_str().ok_or_else(|| anyhow!("`{key}` must be a registry address string"))?;
    text.parse().with_context(|| format!("invalid `{key}`"))
}

/// Package tables apply to the whole workspace, so two of them must not disagree.
fn check_agreement(earlier: &[Layer], layer: &Layer) -> Result<()> {
    for (key, registry) in layer.entries() {
        for other in earlier {
            if let Some(theirs) = other.get(&key).filter(|r| *r != registry) {
                return Err(Help::error(
                    format!(
                        "{} and {} map {key} to different registries (`{theirs}` and `{registry}`)",
                        other.source, layer.source
                    ),
                    "members share one wkg.lock, so they share one mapping; move it to \
                     `[workspace.metadata.wreg]`",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reg(s: &str) -> Registry {
        s.parse().unwrap()
    }

    fn pkg(s: &str) -> PackageName {
        s.parse().unwrap()
    }

    fn project(table: Value) -> Layer {
        let source = Source::Project { manifest: "/p/Cargo.toml".into(), workspace: false };
        parse_project_table(&table, source).unwrap()
    }

    fn user(text: &str) -> (Layer, Settings) {
        parse_user_file(text, Path::new("/home/u/.config/wasm-pkg/config.toml")).unwrap()
    }

    const USER: &str = r#"
        default_registry = "user.example"
        [namespace_registries]
        acme = "user-acme.example"
        [namespace_registries.custom]
        registry = "localhost:1234"
        [namespace_registries.custom.metadata]
        preferredProtocol = "oci"
        oci = { registry = "ghcr.io", namespacePrefix = "webassembly/" }
        [package_registry_overrides]
        "other:pinned" = "pinned.example"
        [registry."ghcr.io".oci]
        auth = { username = "open", password = "sesame" }
        [registry."registry.lan:5000"]
        type = "oci"
        [registry."registry.lan:5000".oci]
        auth = "cGluZzpwb25n"
        protocol = "http"
        [registry."warg.example".warg]
        config_file = "/a/path"
    "#;

    fn config(flag: Option<&str>) -> RegistryConfig {
        let (layer, settings) = user(USER);
        let project = project(json!({
            "registry": "project.example",
            "namespaces": {"acme": "ghcr.io/acme"},
        }));
        RegistryConfig {
            flag: flag.map(reg),
            project: vec![project],
            user: Some(layer),
            settings,
            ..RegistryConfig::default()
        }
    }

    #[test]
    fn the_most_specific_entry_wins() {
        let config = config(None);
        let chosen = |p: &str| config.choose(&pkg(p), None).unwrap();
        assert_eq!(chosen("acme:x").registry, reg("ghcr.io/acme"), "project namespace over user's");
        assert_eq!(
            chosen("other:pinned").registry,
            reg("pinned.example"),
            "user package over project default"
        );
        assert_eq!(
            chosen("other:x").registry,
            reg("project.example"),
            "project default over user's"
        );
        let wasi = chosen("wasi:http");
        assert_eq!(
            (wasi.registry, wasi.source),
            (reg("project.example"), config.project[0].source.clone())
        );
        assert_eq!(chosen("custom:x").registry, reg("localhost:1234"));

        let explicit = config.choose(&pkg("acme:x"), Some(&reg("e.example"))).unwrap();
        assert_eq!((explicit.registry, explicit.source), (reg("e.example"), Source::Manifest));
        let flagged = self::config(Some("http://127.0.0.1:5000"));
        assert_eq!(
            flagged.registry_for(&pkg("acme:x"), None).unwrap(),
            reg("http://127.0.0.1:5000")
        );
    }

    #[test]
    fn built_in_fallbacks_come_last() {
        let config = RegistryConfig::default();
        assert_eq!(config.registry_for(&pkg("wasi:io"), None).unwrap(), reg("wasi.dev"));
        assert_eq!(config.registry_for(&pkg("ba:x"), None).unwrap(), reg("bytecodealliance.org"));
        let err = config.registry_for(&pkg("acme:x"), None).unwrap_err();
        assert!(
            err.to_string().contains("no registry is configured for namespace `acme`"),
            "{err}"
        );
    }

    #[test]
    fn user_files_read_like_wkg_reads_them() {
        let (_, settings) = user(USER);
        let ghcr = &settings["ghcr.io"];
        let expected = Credentials::basic(
            "open",
            Secret::new("sesame"),
            "the wasm-pkg config `/home/u/.config/wasm-pkg/config.toml`",
        );
        assert_eq!(ghcr.credentials.as_ref(), Some(&expected));
        let lan = &settings["registry.lan:5000"];
        assert_eq!(lan.insecure, Some(true));
        let auth::Credential::Basic { username, password } =
            &lan.credentials.as_ref().unwrap().credential
        else {
            panic!("expected basic credentials")
        };
        assert_eq!((username.as_str(), password.expose()), ("ping", "pong"));
        assert_eq!(settings["localhost:1234"].location, Some(reg("ghcr.io/webassembly")));

        for bad in [
            "default_registry = 3",
            "[registry.\"x\".oci]\nprotocol = \"ftp\"",
            "[package_registry_overrides]\nnope = \"x\"",
        ] {
            assert!(parse_user_file(bad, Path::new("c.toml")).is_err(), "{bad}");
        }
    }

    #[test]
    fn project_tables_are_checked() {
        let layer = project(json!({"packages": {"acme:x": "localhost:5000"}}));
        assert_eq!(layer.packages[&pkg("acme:x")], reg("localhost:5000"));
        let source = Source::Project { manifest: "/p/Cargo.toml".into(), workspace: true };
        for bad in [
            json!({"registry": 1}),
            json!({"namespaces": "x"}),
            json!({"namespaces": {"Bad": "x"}}),
            json!({"packages": {"x": "y"}}),
        ] {
            let err = parse_project_table(&bad, source.clone()).unwrap_err();
            assert!(
                err.to_string().contains("[workspace.metadata.wreg] in `/p/Cargo.toml`"),
                "{err}"
            );
        }
        let a = project(json!({"namespaces": {"acme": "a.example"}}));
        let b = project(json!({"namespaces": {"acme": "b.example"}}));
        assert!(check_agreement(std::slice::from_ref(&a), &a).is_ok());
        let err = check_agreement(&[a], &b).unwrap_err();
        assert!(err.to_string().contains("map namespace acme to different registries"), "{err}");
    }

    #[test]
    fn entries_show_what_is_overridden() {
        let entries = config(None).entries();
        let acme: Vec<_> =
            entries.iter().filter(|e| e.key == Key::Namespace("acme".into())).collect();
        assert_eq!(acme.len(), 2);
        assert!(!acme[0].overridden && acme[1].overridden);
        assert!(matches!(acme[1].source, Source::User(_)));
        let wasi = entries.iter().find(|e| e.key == Key::Namespace("wasi".into())).unwrap();
        assert_eq!((wasi.source.clone(), wasi.overridden), (Source::BuiltIn, true), "by defaults");
        assert_eq!(entries.last().map(|e| e.source.clone()), Some(Source::BuiltIn));
        let bare = RegistryConfig::default().entries();
        assert!(bare.iter().all(|e| e.source == Source::BuiltIn && !e.overridden));
    }

    #[test]
    fn the_token_goes_to_the_main_registry_only() {
        let mut config = config(None);
        config.token =
            Some(Credentials::basic("ci", Secret::new("t"), "`CARGO_WREG_REGISTRY_TOKEN`"));
        assert_eq!(config.main_registry(), Some(&reg("project.example")));
        config.flag = Some(reg("ghcr.io/acme"));
        assert_eq!(config.main_registry(), Some(&reg("ghcr.io/acme")));
        let token = config.client_options(&reg("ghcr.io/acme")).credentials.unwrap();
        assert_eq!(token.source, "`CARGO_WREG_REGISTRY_TOKEN`");
        let other = config.client_options(&reg("ghcr.io")).credentials.unwrap();
        assert!(other.source.contains("wasm-pkg config"), "{}", other.source);
        assert_eq!(config.client_options(&reg("quay.io")).credentials, None);
    }
}
