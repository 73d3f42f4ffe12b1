//! Turning the core modules that `wasm32-wasip1` and `wasm32-unknown-unknown` builds produce
//! into components: wit-component reads the world our bindings embed in the module and, when
//! the module calls WASI preview 1, links in the preview 1 adapter that implements those calls
//! with WASI 0.2 imports.
//!
//! The component replaces the core module at the path cargo reported, as cargo-component
//! does, so `target/<triple>/<profile>/<name>.wasm` is what gets run and published.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use wasi_preview1_component_adapter_provider as provider;
use wasmparser::{Parser, Payload, TypeRef, Validator, WasmFeatures};

use crate::Help;
use crate::fsutil;

/// The module name core modules import WASI preview 1 from, and the name its adapters fill.
pub const PREVIEW1: &str = provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME;

/// The adapter that implements a core module's WASI preview 1 imports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adapter {
    /// Exports `wasi:cli/run`, calling the module's `_start`: for binaries.
    Command,
    /// Adds no exports: for libraries.
    Reactor,
    /// Limited to what `wasi:http/proxy` imports: for `proxy = true`.
    Proxy,
    /// `adapter = "path"` in the manifest.
    Custom(PathBuf),
}

/// What a crate's `[package.metadata.component]` says about adapters.
#[derive(Debug, Clone, Default)]
pub struct AdapterChoice {
    pub proxy: bool,
    pub custom: Option<PathBuf>,
}

/// What `ensure_component` did with a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It was a component already (a wasm32-wasip2 build, or cargo left an earlier result).
    AlreadyComponent,
    /// It was a core module and is now a component, adapted with this adapter if any.
    Encoded(Option<Adapter>),
}

impl Adapter {
    /// The adapter `choice` picks for `module`, or `None` when the module does not import
    /// WASI preview 1 and so needs none.
    pub fn for_module(module: &ModuleFacts, choice: &AdapterChoice) -> Option<Self> {
        if !module.imports_preview1 {
            return None;
        }
        Some(match (&choice.custom, choice.proxy, module.exports_start) {
            (Some(path), _, _) => Self::Custom(path.clone()),
            (None, true, _) => Self::Proxy,
            (None, false, true) => Self::Command,
            (None, false, false) => Self::Reactor,
        })
    }

    fn bytes(&self) -> Result<Cow<'static, [u8]>> {
        Ok(match self {
            Self::Command => Cow::Borrowed(provider::WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER),
            Self::Reactor => Cow::Borrowed(provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER),
            Self::Proxy => Cow::Borrowed(provider::WASI_SNAPSHOT_PREVIEW1_PROXY_ADAPTER),
            Self::Custom(path) => Cow::Owned(read_custom_adapter(path)?),
        })
    }
}

impl std::fmt::Display for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Command => f.write_str("the command adapter"),
            Self::Reactor => f.write_str("the reactor adapter"),
            Self::Proxy => f.write_str("the proxy adapter"),
            Self::Custom(path) => write!(f, "adapter `{}`", path.display()),
        }
    }
}

/// Reads a custom adapter, checking that it is a core module before wit-component sees it.
fn read_custom_adapter(path: &Path) -> Result<Vec<u8>> {
    let help = "`adapter` in `[package.metadata.component]` must name a core wasm module \
                that implements `wasi_snapshot_preview1`, relative to the crate's Cargo.toml";
    let bytes = std::fs::read(path).map_err(|e| {
        Help::error(format!("failed to read adapter `{}`: {e}", path.display()), help)
    })?;
    if !Parser::is_core_wasm(&bytes) {
        let what = if Parser::is_component(&bytes) {
            "a component, not a core wasm module"
        } else {
            "not wasm at all"
        };
        return Err(Help::error(format!("adapter `{}` is {what}", path.display()), help));
    }
    Ok(bytes)
}

/// Checks that the `adapter` a manifest names can be read and is a core module, so that a
/// mistake shows before a build rather than after it.
pub fn check_adapter(path: &Path) -> Result<()> {
    read_custom_adapter(path).map(drop)
}

/// The facts about a core module that decide its adapter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModuleFacts {
    /// It imports functions from `wasi_snapshot_preview1`.
    pub imports_preview1: bool,
    /// It exports `_start`, the entry point of a binary.
    pub exports_start: bool,
}

impl ModuleFacts {
    pub fn read(module: &[u8]) -> Result<Self> {
        let mut facts = Self::default();
        for payload in Parser::new(0).parse_all(module) {
            match payload.context("failed to parse the core module")? {
                Payload::ImportSection(imports) => {
                    for import in imports.into_imports() {
                        let import = import.context("failed to parse the core module")?;
                        facts.imports_preview1 |= import.module == PREVIEW1
                            && matches!(import.ty, TypeRef::Func(_) | TypeRef::FuncExact(_));
                    }
                }
                Payload::ExportSection(exports) => {
                    for export in exports {
                        let export = export.context("failed to parse the core module")?;
                        facts.exports_start |= export.name == "_start";
                    }
                }
                _ => {}
            }
        }
        Ok(facts)
    }
}

/// Encodes `module` as a component, with `adapter` for its WASI preview 1 imports.
pub fn componentize(module: &[u8], adapter: Option<&Adapter>) -> Result<Vec<u8>> {
    let mut encoder = wit_component::ComponentEncoder::default();
    encoder.module(module).context("failed to read the world embedded in the core module")?;
    encoder.validate(true);
    if let Some(adapter) = adapter {
        encoder
            .adapter(PREVIEW1, &adapter.bytes()?)
            .with_context(|| format!("failed to use {adapter}"))?;
    }
    encoder.encode().context("failed to encode the component")
}

/// Whether the file at `path` starts like a component (its preamble alone is read); a file
/// that cannot be read is not, and the full check that follows reports why.
pub fn is_component_file(path: &Path) -> bool {
    let mut preamble = [0; 8];
    let read = std::fs::File::open(path)
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut preamble));
    read.is_ok() && Parser::is_component(&preamble)
}

/// Makes the wasm file at `path` a component: a core module is encoded, with the adapter
/// `choice` picks, and written over it atomically; a component is validated and kept.
pub fn ensure_component(path: &Path, choice: &AdapterChoice) -> Result<Outcome> {
    let bytes =
        std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
    if Parser::is_component(&bytes) {
        Validator::new_with_features(WasmFeatures::all())
            .validate_all(&bytes)
            .with_context(|| format!("`{}` is not a valid component", path.display()))?;
        return Ok(Outcome::AlreadyComponent);
    }

    // A bad custom adapter is an error even when this module happens not to need it.
    if let Some(custom) = &choice.custom {
        read_custom_adapter(custom)?;
    }
    let facts = ModuleFacts::read(&bytes)
        .with_context(|| format!("`{}` is not a valid core module", path.display()))?;
    let adapter = Adapter::for_module(&facts, choice);
    tracing::debug!(path = %path.display(), ?facts, ?adapter, "componentizing");
    let component = componentize(&bytes, adapter.as_ref())
        .with_context(|| format!("failed to make a component of `{}`", path.display()))?;
    fsutil::write_atomic(path, &component)?;
    Ok(Outcome::Encoded(adapter))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module with function imports `imports`, exported empty functions `exports` and,
    /// when `memory`, an exported memory.
    fn module(imports: &[(&str, &str)], exports: &[&str], memory: bool) -> Vec<u8> {
        let mut out = b"\0asm\x01\0\0\0".to_vec();
        section(&mut out, 1, &[1, 0x60, 0, 0]);
        let mut body = leb(imports.len());
        for (module, name) in imports {
            body.extend(name_bytes(module));
            body.extend(name_bytes(name));
            body.extend([0, 0]);
        }
        section(&mut out, 2, &body);
        let mut funcs = leb(exports.len());
        funcs.extend(exports.iter().map(|_| 0u8));
        section(&mut out, 3, &funcs);
        if memory {
            section(&mut out, 5, &[1, 0, 1]);
        }
        let mut body = leb(exports.len() + usize::from(memory));
        for (i, name) in exports.iter().enumerate() {
            body.extend(name_bytes(name));
            body.push(0);
            body.extend(leb(imports.len() + i));
        }
        if memory {
            body.extend(name_bytes("memory"));
            body.extend([2, 0]);
        }
        section(&mut out, 7, &body);
        let mut code = leb(exports.len());
        code.extend(exports.iter().flat_map(|_| [2, 0, 0x0b]));
        section(&mut out, 10, &code);
        out
    }

    fn section(out: &mut Vec<u8>, id: u8, body: &[u8]) {
        out.push(id);
        out.extend(leb(body.len()));
        out.extend(body);
    }

    fn name_bytes(name: &str) -> Vec<u8> {
        let mut bytes = leb(name.len());
        bytes.extend(name.as_bytes());
        bytes
    }

    fn leb(mut value: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                bytes.push(byte);
                return bytes;
            }
            bytes.push(byte | 0x80);
        }
    }

    fn choice(proxy: bool, custom: Option<&str>) -> AdapterChoice {
        AdapterChoice { proxy, custom: custom.map(PathBuf::from) }
    }

    #[test]
    fn facts_come_from_imports_and_exports() {
        let binary = module(&[(PREVIEW1, "fd_write")], &["_start"], true);
        let facts = ModuleFacts::read(&binary).unwrap();
        assert_eq!(facts, ModuleFacts { imports_preview1: true, exports_start: true });
        let library = module(&[("env", "f")], &["greet"], false);
        assert_eq!(ModuleFacts::read(&library).unwrap(), ModuleFacts::default());
    }

    #[test]
    fn adapter_follows_entry_point_proxy_and_custom_path() {
        let binary = ModuleFacts { imports_preview1: true, exports_start: true };
        let library = ModuleFacts { imports_preview1: true, exports_start: false };
        assert_eq!(Adapter::for_module(&binary, &choice(false, None)), Some(Adapter::Command));
        assert_eq!(Adapter::for_module(&library, &choice(false, None)), Some(Adapter::Reactor));
        assert_eq!(Adapter::for_module(&library, &choice(true, None)), Some(Adapter::Proxy));
        let custom = Adapter::for_module(&binary, &choice(true, Some("a.wasm")));
        assert_eq!(custom, Some(Adapter::Custom(PathBuf::from("a.wasm"))));
    }

    #[test]
    fn modules_without_preview1_imports_need_no_adapter() {
        let bare = ModuleFacts { imports_preview1: false, exports_start: true };
        assert_eq!(Adapter::for_module(&bare, &choice(true, Some("a.wasm"))), None);
    }

    #[test]
    fn a_module_without_imports_becomes_a_component_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bare.wasm");
        std::fs::write(&path, module(&[], &["f"], true)).unwrap();

        assert_eq!(ensure_component(&path, &choice(false, None)).unwrap(), Outcome::Encoded(None));
        let component = std::fs::read(&path).unwrap();
        assert!(Parser::is_component(&component));
        let again = ensure_component(&path, &choice(false, None)).unwrap();
        assert_eq!(again, Outcome::AlreadyComponent);
        assert_eq!(std::fs::read(&path).unwrap(), component, "a component is left alone");
    }

    #[test]
    fn a_missing_or_non_module_adapter_is_an_error_that_leaves_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.wasm");
        let core = module(&[(PREVIEW1, "fd_write")], &["_start"], true);
        std::fs::write(&path, &core).unwrap();
        let text = dir.path().join("adapter.txt");
        std::fs::write(&text, "not wasm").unwrap();

        let missing = dir.path().join("missing.wasm");
        let err = ensure_component(&path, &choice(false, missing.to_str())).unwrap_err();
        assert!(err.to_string().starts_with("failed to read adapter `"), "{err}");
        let err = ensure_component(&path, &choice(false, text.to_str())).unwrap_err();
        assert!(err.to_string().ends_with("is not wasm at all"), "{err}");
        assert!(err.downcast_ref::<Help>().is_some(), "errors carry a hint");
        assert_eq!(std::fs::read(&path).unwrap(), core);
    }
}
