//! Rust bindings for a component's world: the `src/bindings.rs` that cargo-component users keep
//! as `mod bindings;` at the crate root and export through
//! `bindings::export!(Component with_types_in bindings)`.
//!
//! The code comes from wit-bindgen-rust, but the runtime crate it calls into differs between the
//! `wit-bindgen-rt` and `wit-bindgen` releases projects depend on: some lack `Cleanup`, others
//! `Resource` or `Map`. So the generated file carries a small hidden module that forwards the few
//! items every release has and implements the rest itself. Generated code reaches that module as
//! `crate::bindings::__wreg_rt`, which assumes the file is the crate's `bindings` module; the
//! `module_path` option says where it is otherwise.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use cargo_metadata::{DependencyKind, Metadata, NodeDep, Package};
use semver::Version;
use serde::Deserialize;
use wit_bindgen_core::{Files, WorldGenerator};
use wit_bindgen_rust::{Opts, WithOption};
use wit_parser::{Resolve, WorldId};

use crate::Help;

const KEY: &str = "package.metadata.component.bindings";
const DEFAULT_MODULE_PATH: &str = "crate::bindings";
const RT_MODULE: &str = "__wreg_rt";
/// Async bindings call the runtime's `async_support`, whose API moves with the generator: only
/// the `wit-bindgen` release line of our wit-bindgen-rust fits.
const ASYNC_RUNTIME_MINOR: u64 = 63;
/// The oldest runtime release line the generated code was checked against.
const OLDEST_RUNTIME_MINOR: u64 = 41;
const SUGGESTED_ASYNC: &str = r#"wit-bindgen = { version = "0.63", features = ["async"] }"#;
const SUGGESTED_RT: &str = r#"wit-bindgen-rt = { version = "0.44.0", features = ["bitflags"] }"#;

/// `[package.metadata.component.bindings]`, with the keys cargo-component uses.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct BindingsOptions {
    /// Extra derives for generated types, e.g. `serde::Serialize`.
    pub derives: Vec<String>,
    /// WIT interface or type name -> Rust path to use instead of generating it, or `"generate"`.
    pub with: BTreeMap<String, String>,
    pub ownership: Ownership,
    /// Accepted for compatibility; interfaces that `with` does not name are always generated,
    /// as cargo-component projects expect.
    pub generate_all: bool,
    pub generate_unused_types: bool,
    /// cargo-component's name for the exporting type. Accepted but without effect: current
    /// cargo-component projects name the type in their own `bindings::export!` call.
    pub implementor: Option<String>,
    /// Rust path of the module the generated file becomes; `crate::bindings` when unset.
    pub module_path: Option<String>,
    /// Keys this version does not know, for the caller to warn about.
    #[serde(flatten)]
    pub unknown: BTreeMap<String, serde_json::Value>,
}

/// Whether generated types own their data or borrow it in import parameters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ownership {
    #[default]
    Owning,
    Borrowing,
    BorrowingDuplicateIfNecessary,
}

impl BindingsOptions {
    /// Keys of the table that this version does not know.
    pub fn unknown_keys(&self) -> impl Iterator<Item = &str> {
        self.unknown.keys().map(String::as_str)
    }

    /// Keys that are understood but change nothing, for the caller to say so.
    pub fn ignored_keys(&self) -> impl Iterator<Item = &'static str> {
        self.implementor.as_ref().map(|_| "implementor").into_iter()
    }

    /// Checks the values that must be Rust paths.
    pub fn validate(&self) -> Result<()> {
        for derive in &self.derives {
            check_rust_path(derive, "derives")?;
        }
        for (name, path) in &self.with {
            if path != "generate" {
                check_rust_path(path, &format!("with.\"{name}\""))?;
            }
        }
        if let Some(path) = &self.module_path {
            check_rust_path(path, "module_path")?;
        }
        Ok(())
    }

    fn module_path(&self) -> &str {
        self.module_path.as_deref().unwrap_or(DEFAULT_MODULE_PATH)
    }

    /// The path `export!(Component)` uses, relative to where it is called: the crate root.
    fn bindings_module(&self) -> &str {
        let path = self.module_path();
        path.strip_prefix("crate::").unwrap_or(path)
    }
}

fn check_rust_path(path: &str, key: &str) -> Result<()> {
    let segments = path.strip_prefix("::").unwrap_or(path);
    if !segments.is_empty() && segments.split("::").all(is_identifier) {
        return Ok(());
    }
    bail!("invalid `{KEY}.{key}`: `{path}` is not a Rust path")
}

fn is_identifier(segment: &str) -> bool {
    let name = segment.strip_prefix("r#").unwrap_or(segment);
    let mut chars = name.chars();
    let first_ok = matches!(chars.next(), Some(c) if c == '_' || c.is_alphabetic());
    first_ok && name != "_" && chars.all(|c| c == '_' || c.is_alphanumeric())
}

/// The runtime crate a project depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    /// The name code uses for it, e.g. `wit_bindgen_rt`, or the rename in Cargo.toml.
    pub crate_name: String,
    pub kind: RuntimeKind,
    pub version: Version,
    pub features: Vec<String>,
}

/// Which runtime crate a project has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// `wit-bindgen-rt`: the runtime items are at the crate root.
    Rt,
    /// `wit-bindgen`: the runtime items are in its `rt` module.
    WitBindgen,
}

impl Runtime {
    fn package_name(&self) -> &'static str {
        match self.kind {
            RuntimeKind::Rt => "wit-bindgen-rt",
            RuntimeKind::WitBindgen => "wit-bindgen",
        }
    }

    /// The path of the module holding `run_ctors_once`, `bitflags` and the like.
    fn items_path(&self) -> String {
        match self.kind {
            RuntimeKind::Rt => format!("::{}", self.crate_name),
            RuntimeKind::WitBindgen => format!("::{}::rt", self.crate_name),
        }
    }

    fn has_feature(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }

    /// `wit-bindgen` always has a `bitflags` macro: a small stand-in without its feature.
    fn has_bitflags(&self) -> bool {
        self.kind == RuntimeKind::WitBindgen || self.has_feature("bitflags")
    }

    fn has_async(&self) -> bool {
        let line = (self.version.major, self.version.minor) == (0, ASYNC_RUNTIME_MINOR);
        self.kind == RuntimeKind::WitBindgen && line && self.has_feature("async")
    }

    /// The dependency line for Cargo.toml, keeping a rename.
    fn manifest_line(&self, version: &str, feature: &str) -> String {
        let package = self.package_name();
        let (key, rename) = if self.crate_name == package.replace('-', "_") {
            (package.to_string(), String::new())
        } else {
            (self.crate_name.clone(), format!("package = \"{package}\", "))
        };
        format!("{key} = {{ {rename}version = \"{version}\", features = [\"{feature}\"] }}")
    }
}

/// Finds the runtime crate among the resolved normal dependencies of `package`, preferring
/// `wit-bindgen` when both are there.
pub fn detect_runtime(metadata: &Metadata, package: &Package) -> Result<Runtime> {
    let resolve = metadata.resolve.as_ref().context("`cargo metadata` gave no dependency graph")?;
    let node = resolve.nodes.iter().find(|node| node.id == package.id).with_context(|| {
        format!("package `{}` is missing from the dependency graph", package.name)
    })?;
    let deps = node.deps.iter().filter(|dep| is_normal(dep));
    let mut runtimes: Vec<Runtime> = deps.filter_map(|dep| runtime_of(metadata, dep)).collect();
    runtimes.sort_by_key(|runtime| runtime.kind == RuntimeKind::Rt);

    let Some(runtime) = runtimes.into_iter().next() else {
        let name = &package.name;
        return Err(Help::error(
            format!("package `{name}` depends on neither `wit-bindgen-rt` nor `wit-bindgen`"),
            format!("add to `[dependencies]` in `{}`: `{SUGGESTED_RT}`", package.manifest_path),
        ));
    };
    check_supported(&runtime)?;
    tracing::debug!(?runtime, package = %package.name, "found the bindings runtime");
    Ok(runtime)
}

/// Older cargo versions leave `dep_kinds` empty; those deps count as normal.
fn is_normal(dep: &NodeDep) -> bool {
    dep.dep_kinds.is_empty() || dep.dep_kinds.iter().any(|kind| kind.kind == DependencyKind::Normal)
}

fn runtime_of(metadata: &Metadata, dep: &NodeDep) -> Option<Runtime> {
    let package = metadata.packages.iter().find(|package| package.id == dep.pkg)?;
    let kind = match package.name.as_str() {
        "wit-bindgen-rt" => RuntimeKind::Rt,
        "wit-bindgen" => RuntimeKind::WitBindgen,
        _ => return None,
    };
    let node = metadata.resolve.as_ref()?.nodes.iter().find(|node| node.id == dep.pkg)?;
    Some(Runtime {
        crate_name: dep.name.replace('-', "_"),
        kind,
        version: package.version.clone(),
        features: node.features.iter().map(|feature| feature.to_string()).collect(),
    })
}

fn check_supported(runtime: &Runtime) -> Result<()> {
    let version = &runtime.version;
    if version.major > 0 || version.minor >= OLDEST_RUNTIME_MINOR {
        return Ok(());
    }
    let line = match runtime.kind {
        RuntimeKind::Rt => runtime.manifest_line("0.44.0", "bitflags"),
        RuntimeKind::WitBindgen => runtime.manifest_line("0.63.0", "realloc"),
    };
    Err(Help::error(
        format!(
            "`{}` {version} is too old for the generated bindings, which need \
             0.{OLDEST_RUNTIME_MINOR} or newer",
            runtime.package_name()
        ),
        format!("update it in Cargo.toml: `{line}`"),
    ))
}

/// Generates the bindings source for `world` in `resolve`, for a crate whose runtime is
/// `runtime`.
pub fn generate(
    resolve: &Resolve,
    world: WorldId,
    options: &BindingsOptions,
    runtime: &Runtime,
) -> Result<String> {
    options.validate()?;
    let world_name = &resolve.worlds.get(world).context("the world is not in the resolve")?.name;
    let rt_path = format!("{}::{RT_MODULE}", options.module_path());

    let mut options = options.clone();
    options.with = versioned_with_keys(resolve, &options.with);
    let source = run_wit_bindgen(wit_bindgen_opts(&options, &rt_path), resolve, world)
        .with_context(|| format!("failed to generate Rust bindings for world `{world_name}`"))?;
    let source = source.as_str();

    let uses = |item: &str| source.contains(&format!("{rt_path}::{item}"));
    let needs = Needs { bitflags: uses("bitflags"), async_support: uses("async_support") };
    check_runtime(needs, runtime, world_name)?;
    Ok(format!("{HEADER}{source}{}", runtime_module(runtime, needs)))
}

/// wit-bindgen-rust's source for `world` with `options`, its failures (panics included) as
/// errors.
pub fn run_wit_bindgen(
    options: wit_bindgen_rust::Opts,
    resolve: &Resolve,
    world: WorldId,
) -> Result<String> {
    refuse_keyword_modules(resolve)?;
    // wit-bindgen-rust may add type ids to the resolve, so it gets its own copy.
    let mut files = Files::default();
    let generate = || options.build().generate(&mut resolve.clone(), world, &mut files);
    without_panics(generate).and_then(|generated| generated)?;
    let (_, bytes) = files.iter().next().context("wit-bindgen-rust generated no source")?;
    String::from_utf8(bytes.to_vec()).context("wit-bindgen-rust's source is not UTF-8")
}

/// wit-bindgen names a module after each package's namespace and name without escaping
/// Rust keywords, and then fails on its own output; refuse such a package by name instead.
fn refuse_keyword_modules(resolve: &Resolve) -> Result<()> {
    for (_, package) in resolve.packages.iter() {
        let name = &package.name;
        for part in [&name.namespace, &name.name] {
            let module = part.replace('-', "_");
            if wit_bindgen_rust::to_rust_ident(&module) != module {
                return Err(Help::error(
                    format!(
                        "package `{name}` cannot have Rust bindings: `{part}` is a Rust keyword, \
                         which wit-bindgen cannot name a module after"
                    ),
                    "for a component dependency, give it another key in Cargo.toml \
                     (`\"ns:other\" = { package = \"...\", version = \"...\" }`); a WIT package \
                     needs another name",
                ));
            }
        }
    }
    Ok(())
}

/// Runs `generate`, turning a panic inside it (wit-bindgen's, on input it cannot handle) into
/// an error, with the panic message kept off the terminal.
fn without_panics<T>(generate: impl FnOnce() -> T) -> Result<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(generate));
    std::panic::set_hook(hook);
    outcome.map_err(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        anyhow::anyhow!("wit-bindgen failed: {message}")
    })
}

/// wit-bindgen matches `with` keys against fully versioned names, which change whenever a
/// dependency is updated. A key naming an interface without a version, or with an older
/// compatible one (`wasi:io/poll`, `wasi:io/poll@0.2.0`), is moved to the version resolved.
fn versioned_with_keys(
    resolve: &Resolve,
    with: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    with.iter()
        .map(|(key, path)| {
            let (name, version) = match key.split_once('@') {
                Some((name, version)) => (name, semver::Version::parse(version).ok()),
                None => (key.as_str(), None),
            };
            let candidates: Vec<String> = resolve
                .interfaces
                .iter()
                .filter_map(|(id, _)| {
                    let full = resolve.id_of(id)?;
                    let (unversioned, found) = match full.split_once('@') {
                        Some((n, v)) => (n, semver::Version::parse(v).ok()),
                        None => (full.as_str(), None),
                    };
                    let compatible = match (&version, &found) {
                        (None, _) => true,
                        (Some(wanted), Some(found)) => {
                            semver::VersionReq::parse(&format!("^{wanted}"))
                                .is_ok_and(|req| req.matches(found))
                        }
                        (Some(_), None) => false,
                    };
                    (unversioned == name && compatible).then(|| full.clone())
                })
                .collect();
            match candidates.as_slice() {
                [only] if only != key => (only.clone(), path.clone()),
                _ => (key.clone(), path.clone()),
            }
        })
        .collect()
}

fn wit_bindgen_opts(options: &BindingsOptions, rt_path: &str) -> Opts {
    let with = options.with.iter().map(|(name, path)| match path.as_str() {
        "generate" => (name.clone(), WithOption::Generate),
        path => (name.clone(), WithOption::Path(path.to_string())),
    });
    let duplicate_if_necessary = options.ownership == Ownership::BorrowingDuplicateIfNecessary;
    let ownership = match options.ownership {
        Ownership::Owning => wit_bindgen_rust::Ownership::Owning,
        _ => wit_bindgen_rust::Ownership::Borrowing { duplicate_if_necessary },
    };
    Opts {
        format: true,
        ownership,
        runtime_path: Some(rt_path.to_string()),
        additional_derive_attributes: options.derives.clone(),
        with: with.collect(),
        // Without this, wit-bindgen refuses every import that `with` does not name.
        generate_all: true,
        generate_unused_types: options.generate_unused_types,
        default_bindings_module: Some(options.bindings_module().to_string()),
        pub_export_macro: true,
        ..Opts::default()
    }
}

/// What the generated code asks of the runtime beyond the items every release has; read off the
/// source rather than the world, so that unused or remapped types ask nothing.
#[derive(Debug, Clone, Copy)]
struct Needs {
    bitflags: bool,
    async_support: bool,
}

fn check_runtime(needs: Needs, runtime: &Runtime, world: &str) -> Result<()> {
    if needs.bitflags && !runtime.has_bitflags() {
        let line = runtime.manifest_line(&runtime.version.to_string(), "bitflags");
        return Err(Help::error(
            format!(
                "world `{world}` uses WIT flags, which need the `bitflags` feature of the runtime"
            ),
            format!("enable it in Cargo.toml: `{line}`"),
        ));
    }
    if needs.async_support && !runtime.has_async() {
        let (package, version) = (runtime.package_name(), &runtime.version);
        let wanted = format!("`wit-bindgen` 0.{ASYNC_RUNTIME_MINOR} with its `async` feature");
        return Err(Help::error(
            format!("world `{world}` uses async, which needs {wanted}, not `{package}` {version}"),
            format!("depend on it in Cargo.toml: `{SUGGESTED_ASYNC}`"),
        ));
    }
    Ok(())
}

/// The hidden module the generated code's `runtime_path` points at.
fn runtime_module(runtime: &Runtime, needs: Needs) -> String {
    let from = runtime.items_path();
    let mut forwards = format!(
        "    #[cfg(target_arch = \"wasm32\")]\n    pub use {from}::run_ctors_once;\n    \
         pub use {from}::maybe_link_cabi_realloc;\n"
    );
    if needs.bitflags {
        forwards.push_str(&format!("    pub use {from}::bitflags;\n"));
    }
    if needs.async_support {
        forwards.push_str(&format!("    pub use {from}::async_support;\n"));
    }
    format!("{RUNTIME_HEAD}{forwards}{RUNTIME_ITEMS}")
}

/// prettyplease formats the code already; `cargo fmt` would only reformat it differently.
const HEADER: &str = "// Written by cargo-wreg before each build; edits are overwritten.
#![cfg_attr(rustfmt, rustfmt::skip)]
";

const RUNTIME_HEAD: &str = "
/// Runtime support for the bindings above, written by cargo-wreg so that they build against any
/// `wit-bindgen` or `wit-bindgen-rt` release: what every release has is forwarded, the rest is
/// implemented here.
#[doc(hidden)]
#[allow(dead_code, unused_imports, clippy::all)]
pub mod __wreg_rt {
    extern crate alloc;

";

const RUNTIME_ITEMS: &str = r#"
    /// Memory lent to an import for one call, freed when this is dropped.
    pub struct Cleanup {
        ptr: core::ptr::NonNull<u8>,
        layout: core::alloc::Layout,
    }

    // The memory is owned by this value alone, as a `Box<[u8]>` owns its bytes.
    unsafe impl Send for Cleanup {}
    unsafe impl Sync for Cleanup {}

    impl Cleanup {
        /// Allocates `layout`; a zero-sized layout needs no memory and gets a null pointer.
        pub fn new(layout: core::alloc::Layout) -> (*mut u8, Option<Cleanup>) {
            if layout.size() == 0 {
                return (core::ptr::null_mut(), None);
            }
            // SAFETY: the layout has a non-zero size.
            let raw = unsafe { alloc::alloc::alloc(layout) };
            match core::ptr::NonNull::new(raw) {
                Some(ptr) => (raw, Some(Cleanup { ptr, layout })),
                None => alloc::alloc::handle_alloc_error(layout),
            }
        }

        /// Keeps the memory allocated because its new owner frees it.
        pub fn forget(self) { core::mem::forget(self) }
    }

    impl Drop for Cleanup {
        fn drop(&mut self) {
            // SAFETY: `ptr` was allocated with `layout` and is freed only here.
            unsafe { alloc::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
        }
    }

    /// A type that can back an exported resource: any type, kept in an `Option`.
    pub trait Resource: Sized + 'static { type Rep: ResourceRep<Self>; }
    impl<T: 'static> Resource for T { type Rep = Option<T>; }

    /// How a resource's value is kept in the memory whose address the host holds.
    ///
    /// # Safety
    ///
    /// The pointers passed to the methods point to a live value made by `rep_new`.
    pub unsafe trait ResourceRep<T> {
        fn rep_new(value: T) -> Self;
        unsafe fn rep_as_ref<'a>(ptr: *const Self) -> &'a T;
        unsafe fn rep_as_mut<'a>(ptr: *mut Self) -> &'a mut T;
        unsafe fn rep_take(ptr: *mut Self) -> T;
    }

    // SAFETY (all three methods): the caller passes a pointer to a live value.
    unsafe impl<T> ResourceRep<T> for Option<T> {
        fn rep_new(value: T) -> Self { Some(value) }
        unsafe fn rep_as_ref<'a>(ptr: *const Self) -> &'a T {
            unsafe { (*ptr).as_ref() }.unwrap_or_else(|| taken())
        }
        unsafe fn rep_as_mut<'a>(ptr: *mut Self) -> &'a mut T {
            unsafe { (*ptr).as_mut() }.unwrap_or_else(|| taken())
        }
        unsafe fn rep_take(ptr: *mut Self) -> T {
            unsafe { (*ptr).take() }.unwrap_or_else(|| taken())
        }
    }

    fn taken() -> ! {
        panic!("resource used after its value was taken")
    }

    /// The Rust type of a WIT `map`.
    pub type Map<K, V> = alloc::collections::BTreeMap<K, V>;

    /// What the generated code needs of a map type.
    pub trait WitMap<K, V>: Sized {
        fn wit_map_new(capacity: usize) -> Self;
        fn wit_map_push(&mut self, key: K, value: V);
        fn wit_map_len(&self) -> usize;
    }

    impl<K: Ord, V> WitMap<K, V> for Map<K, V> {
        fn wit_map_new(_capacity: usize) -> Self { Map::new() }
        fn wit_map_push(&mut self, key: K, value: V) { self.insert(key, value); }
        fn wit_map_len(&self) -> usize { self.len() }
    }
}
"#;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const WIT: &str = r#"
        package wreg:test@0.1.0;

        interface store {
            flags access { read, write }
            record entry { key: string, access: access }
            put: func(keys: list<string>) -> list<entry>;
        }

        interface counters {
            resource counter { constructor(name: string); name: func() -> string; }
        }

        world full {
            import store;
            export counters;
            export greet: func(names: list<string>) -> string;
        }

        world flagless { export greet: func(names: list<string>) -> string; }

        world waiting { export wait: async func(name: string) -> string; }
    "#;

    fn rt(kind: RuntimeKind, crate_name: &str, version: &str, features: &[&str]) -> Runtime {
        let version = version.parse().expect("a test version");
        let features = features.iter().map(|f| f.to_string()).collect();
        Runtime { crate_name: crate_name.to_string(), kind, version, features }
    }

    fn generate_for(world: &str, options: &BindingsOptions, runtime: &Runtime) -> Result<String> {
        let mut resolve = Resolve::default();
        let package = resolve.push_str("test.wit", WIT).expect("the test WIT parses");
        let world = resolve.select_world(&[package], Some(world)).expect("the world exists");
        generate(&resolve, world, options, runtime)
    }

    #[test]
    fn a_package_named_like_a_keyword_is_an_error_not_a_panic() {
        let mut resolve = Resolve::default();
        let text =
            "package kw:impl@0.1.0;\ninterface x { f: func() -> u32; }\nworld w { import x; }";
        let package = resolve.push_str("kw.wit", text).expect("the test WIT parses");
        let world = resolve.select_world(&[package], Some("w")).expect("the world exists");
        let runtime = rt(RuntimeKind::WitBindgen, "wit-bindgen", "0.46.0", &[]);
        let err = generate(&resolve, world, &BindingsOptions::default(), &runtime).unwrap_err();
        assert!(format!("{err:#}").contains("package `kw:impl@0.1.0` cannot have Rust bindings"));
    }

    #[test]
    fn a_panic_while_generating_becomes_an_error() {
        let err = without_panics(|| panic!("no such thing")).unwrap_err();
        assert_eq!(err.to_string(), "wit-bindgen failed: no such thing");
        assert_eq!(without_panics(|| 7).unwrap(), 7);
    }

    fn help_of(err: &anyhow::Error) -> String {
        err.downcast_ref::<Help>().map(|help| help.help().to_string()).unwrap_or_default()
    }

    #[test]
    fn forwards_to_the_root_of_wit_bindgen_rt() {
        let runtime = rt(RuntimeKind::Rt, "wit_bindgen_rt", "0.41.0", &["bitflags"]);
        let source = generate_for("full", &BindingsOptions::default(), &runtime).unwrap();
        assert!(source.starts_with(HEADER));
        for line in ["run_ctors_once;", "maybe_link_cabi_realloc;", "bitflags;"] {
            assert!(source.contains(&format!("pub use ::wit_bindgen_rt::{line}")), "{line}");
        }
        assert!(source.contains("crate::bindings::__wreg_rt::Cleanup::new("));
        assert!(source.contains("crate::bindings::__wreg_rt::Resource"));
        assert!(source.contains("bindings::export!($ty with_types_in bindings)"));
    }

    #[test]
    fn forwards_to_the_rt_module_of_a_renamed_wit_bindgen() {
        let runtime = rt(RuntimeKind::WitBindgen, "wb", "0.46.0", &[]);
        let source = generate_for("full", &BindingsOptions::default(), &runtime).unwrap();
        assert!(source.contains("pub use ::wb::rt::maybe_link_cabi_realloc;"));
        assert!(source.contains("pub use ::wb::rt::bitflags;"));
        assert!(!source.contains("async_support"));
    }

    #[test]
    fn module_path_moves_the_runtime_and_the_export_macro() {
        let module_path = Some("crate::generated::bindings".to_string());
        let options = BindingsOptions { module_path, ..BindingsOptions::default() };
        let runtime = rt(RuntimeKind::WitBindgen, "wit_bindgen", "0.63.0", &[]);
        let source = generate_for("full", &options, &runtime).unwrap();
        assert!(source.contains("crate::generated::bindings::__wreg_rt::Cleanup::new("));
        assert!(source.contains("generated::bindings::export!($ty with_types_in generated::"));
    }

    #[test]
    fn flags_without_the_bitflags_feature_show_the_fix() {
        let runtime = rt(RuntimeKind::Rt, "wit_bindgen_rt", "0.44.0", &[]);
        let err = generate_for("full", &BindingsOptions::default(), &runtime).unwrap_err();
        assert!(err.to_string().contains("world `full` uses WIT flags"), "{err}");
        assert!(help_of(&err).contains(SUGGESTED_RT), "{}", help_of(&err));

        let renamed = rt(RuntimeKind::Rt, "rt", "0.44.0", &[]);
        let err = generate_for("full", &BindingsOptions::default(), &renamed).unwrap_err();
        assert!(help_of(&err).contains(r#"rt = { package = "wit-bindgen-rt", version"#));

        let source = generate_for("flagless", &BindingsOptions::default(), &renamed).unwrap();
        assert!(!source.contains("bitflags"), "a world without flags needs no bitflags");
    }

    #[test]
    fn async_needs_wit_bindgen_of_the_generator_line_with_async() {
        let options = BindingsOptions::default();
        for runtime in [
            rt(RuntimeKind::Rt, "wit_bindgen_rt", "0.44.0", &["async"]),
            rt(RuntimeKind::WitBindgen, "wit_bindgen", "0.46.0", &["async"]),
            rt(RuntimeKind::WitBindgen, "wit_bindgen", "0.63.0", &["realloc"]),
        ] {
            let err = generate_for("waiting", &options, &runtime).unwrap_err();
            assert!(err.to_string().contains("world `waiting` uses async"), "{err}");
            assert!(help_of(&err).contains(r#"wit-bindgen = { version = "0.63""#));
        }
        let runtime = rt(RuntimeKind::WitBindgen, "wit_bindgen", "0.63.0", &["async"]);
        let source = generate_for("waiting", &options, &runtime).unwrap();
        assert!(source.contains("pub use ::wit_bindgen::rt::async_support;"));
    }

    #[test]
    fn with_remaps_an_interface_and_derives_are_added() {
        let runtime = rt(RuntimeKind::WitBindgen, "wit_bindgen", "0.63.0", &[]);
        let derives = vec!["Hash".to_string()];
        let options = BindingsOptions { derives, ..BindingsOptions::default() };
        let source = generate_for("full", &options, &runtime).unwrap();
        assert!(source.contains("#[derive(Clone, Hash)]"), "the record `entry` gets `Hash`");

        let with = BTreeMap::from([("wreg:test/store@0.1.0".into(), "crate::store".into())]);
        let options = BindingsOptions { with, ..BindingsOptions::default() };
        let source = generate_for("full", &options, &runtime).unwrap();
        assert!(source.contains("use crate::store as __with_name0;"));
        assert!(!source.contains("pub struct Entry"));
        let err = generate_for("flagless", &options, &runtime).unwrap_err();
        assert!(err.to_string().contains("world `flagless`"), "an unused `with` is an error");

        // Keys may leave out the version, which changes with every update.
        let with = BTreeMap::from([("wreg:test/store".into(), "crate::store".into())]);
        let options = BindingsOptions { with, ..BindingsOptions::default() };
        let source = generate_for("full", &options, &runtime).unwrap();
        assert!(source.contains("use crate::store as __with_name0;"));
    }

    #[test]
    fn options_read_cargo_component_keys_and_keep_unknown_ones() {
        let table = json!({
            "derives": ["serde::Serialize", "::core::hash::Hash"],
            "with": { "wasi:io/poll": "generate", "wreg:test/store": "crate::store" },
            "ownership": "borrowing-duplicate-if-necessary",
            "generate_all": true,
            "implementor": "Component",
            "resources": {},
            "format": true,
        });
        let options: BindingsOptions = serde_json::from_value(table).unwrap();
        assert_eq!(options.ownership, Ownership::BorrowingDuplicateIfNecessary);
        assert!(options.generate_all && !options.generate_unused_types);
        assert_eq!(options.with["wasi:io/poll"], "generate");
        assert_eq!(options.unknown_keys().collect::<Vec<_>>(), ["format", "resources"]);
        assert_eq!(options.ignored_keys().collect::<Vec<_>>(), ["implementor"]);
        options.validate().unwrap();
        assert!(serde_json::from_value::<BindingsOptions>(json!({ "ownership": "x" })).is_err());
    }

    #[test]
    fn values_that_are_not_rust_paths_name_their_key() {
        let derives = BindingsOptions { derives: vec![String::new()], ..Default::default() };
        let err = derives.validate().unwrap_err().to_string();
        assert!(err.contains("`package.metadata.component.bindings.derives`"), "{err}");

        let with = BTreeMap::from([("wasi:io/poll".into(), "my crate::poll".into())]);
        let err = BindingsOptions { with, ..Default::default() }.validate().unwrap_err();
        let key = r#"`package.metadata.component.bindings.with."wasi:io/poll"`"#;
        assert!(err.to_string().contains(key), "{err}");

        for path in ["Clone", "r#type::Thing", "::serde::Serialize", "_private::X"] {
            assert!(check_rust_path(path, "derives").is_ok(), "{path}");
        }
        for path in ["", "::", "a::", "a b", "1x", "_", "a::<T>"] {
            assert!(check_rust_path(path, "derives").is_err(), "{path}");
        }
    }

    /// A dependency graph in which package `app` has the given normal dependencies, each
    /// `(name in code, package, version, features)`.
    fn metadata(deps: &[(&str, &str, &str, &[&str])]) -> Metadata {
        let id = |name: &str, version: &str| format!("registry+test#{name}@{version}");
        let package = |name: &str, version: &str| {
            let manifest_path = format!("/w/{name}/Cargo.toml");
            json!({ "name": name, "version": version, "id": id(name, version),
                "dependencies": [], "targets": [], "features": {}, "manifest_path": manifest_path })
        };
        fn node(id: String, deps: Vec<serde_json::Value>, features: &[&str]) -> serde_json::Value {
            json!({ "id": id, "dependencies": [], "deps": deps, "features": features })
        }
        let app_deps = deps.iter().map(|(name, package, version, _)| {
            json!({ "name": name, "pkg": id(package, version), "dep_kinds": [{ "kind": null }] })
        });
        let mut packages = vec![package("app", "0.1.0")];
        let mut nodes = vec![node(id("app", "0.1.0"), app_deps.collect(), &[])];
        for (_, name, version, features) in deps {
            packages.push(package(name, version));
            nodes.push(node(id(name, version), Vec::new(), features));
        }
        let graph = json!({ "packages": packages, "workspace_members": [], "version": 1,
            "resolve": { "nodes": nodes, "root": null }, "target_directory": "/w/target",
            "workspace_root": "/w" });
        serde_json::from_value(graph).expect("valid test metadata")
    }

    fn detect(metadata: &Metadata) -> Result<Runtime> {
        let app = metadata.packages.iter().find(|p| p.name.as_str() == "app").unwrap();
        detect_runtime(metadata, app)
    }

    #[test]
    fn detect_runtime_reads_renames_versions_and_features() {
        let graph = metadata(&[("rt", "wit-bindgen-rt", "0.44.0", &["bitflags"])]);
        let expected = rt(RuntimeKind::Rt, "rt", "0.44.0", &["bitflags"]);
        assert_eq!(detect(&graph).unwrap(), expected);

        let both = metadata(&[
            ("wit_bindgen_rt", "wit-bindgen-rt", "0.41.0", &[]),
            ("wit_bindgen", "wit-bindgen", "0.63.0", &["async"]),
        ]);
        let expected = rt(RuntimeKind::WitBindgen, "wit_bindgen", "0.63.0", &["async"]);
        assert_eq!(detect(&both).unwrap(), expected);
    }

    #[test]
    fn detect_runtime_errors_show_the_fix() {
        let err = detect(&metadata(&[("serde", "serde", "1.0.0", &[])])).unwrap_err();
        assert!(err.to_string().contains("package `app` depends on neither"), "{err}");
        assert!(help_of(&err).contains(SUGGESTED_RT), "{}", help_of(&err));

        let err = detect(&metadata(&[("wit_bindgen", "wit-bindgen", "0.24.0", &[])])).unwrap_err();
        assert!(err.to_string().contains("`wit-bindgen` 0.24.0 is too old"), "{err}");
        assert!(help_of(&err).contains(r#"wit-bindgen = { version = "0.63.0""#));
    }
}
