//! `cargo wreg build`: fetch (a no-op when nothing changed), then `cargo build` for a wasm
//! target, then check and report each component produced.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};
use cargo_metadata::{Message, PackageId};

use crate::ops::fetch::{self, FetchOptions, Prepared};
use crate::ops::workspace::Workspace;
use crate::shell;

/// The target used when neither the command line nor cargo's configuration names one.
pub const DEFAULT_TARGET: &str = "wasm32-wasip2";

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub fetch: FetchOptions,
    pub manifest_path: Option<PathBuf>,
    pub packages: Vec<String>,
    pub release: bool,
    pub target: Option<String>,
    /// `--frozen` is passed to cargo as such (it implies offline and locked).
    pub frozen: bool,
    /// Everything else, passed to `cargo build` untouched.
    pub cargo_args: Vec<String>,
}

/// A component the build produced.
#[derive(Debug, Clone)]
pub struct Built {
    pub package: String,
    pub path: PathBuf,
    pub world: String,
}

/// An error from cargo itself; its diagnostics are already on stderr, so only the exit
/// code is passed on.
#[derive(Debug)]
pub struct CargoFailed(pub i32);

impl std::fmt::Display for CargoFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cargo build failed (exit code {})", self.0)
    }
}

impl std::error::Error for CargoFailed {}

pub async fn build(workspace: &Workspace, options: &BuildOptions) -> Result<Vec<Built>> {
    let members = workspace.select(&options.packages)?;
    let prepared = fetch::fetch(workspace, &members, &options.fetch).await?;
    compile(workspace.root(), &prepared, options)
}

/// Runs `cargo build` for the prepared members of the workspace at `root` and checks what it
/// produced.
pub fn compile(root: &Path, prepared: &[Prepared], options: &BuildOptions) -> Result<Vec<Built>> {
    let target = match &options.target {
        Some(target) => Some(target.clone()),
        None if configured_target()?.is_some() => None,
        None => Some(DEFAULT_TARGET.to_string()),
    };
    let mut command = cargo_command(root, options, target.as_deref(), prepared);
    let artifacts = run_cargo(&mut command)?;

    let mut built = Vec::new();
    for (id, path) in artifacts {
        let Some(prepared) = prepared.iter().find(|p| p.id == id) else { continue };
        check_component(&path, target.as_deref())?;
        shell::status("Component", format_args!("{} ({})", path.display(), prepared.world));
        built.push(Built { package: prepared.name.clone(), path, world: prepared.world.clone() });
    }
    if built.is_empty() {
        bail!(
            "cargo built no `.wasm` artifact for the selected components; \
             does each crate have `crate-type = [\"cdylib\"]` or a `main.rs`?"
        );
    }
    Ok(built)
}

fn cargo_command(
    root: &Path,
    options: &BuildOptions,
    target: Option<&str>,
    prepared: &[Prepared],
) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.arg("build").arg("--message-format=json-render-diagnostics");
    command.arg("--manifest-path").arg(root.join("Cargo.toml"));
    if let Some(target) = target {
        command.args(["--target", target]);
    }
    if options.release {
        command.arg("--release");
    }
    for member in prepared {
        command.args(["-p", member.name.as_str()]);
    }
    if options.frozen {
        command.arg("--frozen");
    } else {
        if options.fetch.offline {
            command.arg("--offline");
        }
        if options.fetch.locked {
            command.arg("--locked");
        }
    }
    command.args(&options.cargo_args);
    command
}

/// Runs cargo with its JSON messages on stdout (diagnostics still rendered on stderr) and
/// returns each `.wasm` artifact with the package that produced it.
fn run_cargo(command: &mut Command) -> Result<Vec<(PackageId, PathBuf)>> {
    tracing::debug!(?command, "running cargo");
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .context("failed to run `cargo build`; is cargo on PATH?")?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("cargo's stdout was not captured"))?;
    let mut artifacts = Vec::new();
    for message in Message::parse_stream(BufReader::new(stdout)) {
        if let Message::CompilerArtifact(artifact) =
            message.context("failed to read cargo's output")?
        {
            let wasm = artifact.filenames.into_iter().filter(|f| f.extension() == Some("wasm"));
            for file in wasm {
                artifacts.push((artifact.package_id.clone(), file.into_std_path_buf()));
            }
        }
    }
    let status = child.wait().context("failed to wait for `cargo build`")?;
    if !status.success() {
        return Err(CargoFailed(status.code().unwrap_or(101)).into());
    }
    Ok(artifacts)
}

/// Checks that what cargo produced is a component (what wasm32-wasip2 links).
fn check_component(path: &Path, target: Option<&str>) -> Result<()> {
    let bytes =
        std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
    if wasmparser::Parser::is_component(&bytes) {
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&bytes)
            .with_context(|| format!("`{}` is not a valid component", path.display()))?;
        return Ok(());
    }
    // TODO: componentize core modules of wasm32-wasip1 and wasm32-unknown-unknown with an adapter.
    bail!(
        "`{}` is a core wasm module, not a component; target `{}` is not supported yet, use `{DEFAULT_TARGET}`",
        path.display(),
        target.unwrap_or("from .cargo/config.toml")
    )
}

/// The target cargo's configuration chooses: `CARGO_BUILD_TARGET`, else `build.target` in the
/// nearest `.cargo/config.toml` above the current directory, else in `$CARGO_HOME`.
pub fn configured_target() -> Result<Option<String>> {
    if let Some(target) = std::env::var_os("CARGO_BUILD_TARGET") {
        return Ok(Some(target.to_string_lossy().into_owned()));
    }
    let cwd = std::env::current_dir().context("failed to read the current directory")?;
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".cargo")));
    let candidates = cwd.ancestors().map(|d| d.join(".cargo")).chain(cargo_home);
    for dir in candidates {
        for name in ["config.toml", "config"] {
            let path = dir.join(name);
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            let doc: toml_edit::DocumentMut =
                text.parse().with_context(|| format!("failed to parse `{}`", path.display()))?;
            if let Some(target) =
                doc.get("build").and_then(|b| b.get("target")).and_then(|t| t.as_str())
            {
                return Ok(Some(target.to_string()));
            }
        }
    }
    Ok(None)
}
