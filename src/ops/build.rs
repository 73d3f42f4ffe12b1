//! `cargo wreg build`: fetch (a no-op when nothing changed), then `cargo build` for a wasm
//! target, then make a component of each core module it produced (`wasm32-wasip1`,
//! `wasm32-unknown-unknown`) and report each component with its world.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};
use cargo_metadata::diagnostic::{Diagnostic, DiagnosticLevel};
use cargo_metadata::{Message, PackageId};

use crate::Help;
use crate::ops::componentize::{self, AdapterChoice};
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

/// Runs `cargo build` for the prepared members of the workspace at `root`, makes a component
/// of each core module it produced and reports each component.
pub fn compile(root: &Path, prepared: &[Prepared], options: &BuildOptions) -> Result<Vec<Built>> {
    // A wasip2 build is a component as linked; other targets are adapted after the build, so
    // a bad adapter is better found before it.
    if effective_target(options.target.as_deref())? != DEFAULT_TARGET {
        for adapter in prepared.iter().filter_map(|p| p.adapter.as_deref()) {
            componentize::check_adapter(adapter)?;
        }
    }
    let target = target_argument(options.target.as_deref())?;
    let mut command = cargo_command("build", root, options, target.as_deref());
    command.arg("--message-format=json-diagnostic-rendered-ansi");
    for member in prepared {
        command.args(["-p", member.name.as_str()]);
    }
    command.args(&options.cargo_args);
    let mut artifacts = run_cargo(&mut command, prepared)?;
    // Cargo reports them as its jobs finish; report them in the workspace's order.
    artifacts.sort_by_key(|a| prepared.iter().position(|p| p.id == a.package));

    let mut built = Vec::new();
    for artifact in artifacts {
        let Some(member) = prepared.iter().find(|p| p.id == artifact.package) else { continue };
        finish_component(&artifact, member)?;
        let path = artifact.path;
        shell::status("Component", format_args!("{} ({})", path.display(), member.world));
        built.push(Built { package: member.name.clone(), path, world: member.world.clone() });
    }
    if built.is_empty() {
        bail!(
            "cargo built no `.wasm` artifact for the selected components; \
             does each crate have `crate-type = [\"cdylib\"]` or a `main.rs`?"
        );
    }
    Ok(built)
}

/// The `--target` to pass to cargo: the one asked for, else none when cargo's configuration
/// names one (cargo applies it), else the default.
pub fn target_argument(asked: Option<&str>) -> Result<Option<String>> {
    Ok(match asked {
        Some(target) => Some(target.to_string()),
        None if configured_target()?.is_some() => None,
        None => Some(DEFAULT_TARGET.to_string()),
    })
}

/// The target cargo builds for: the one asked for, else cargo's configured one, else the
/// default.
pub fn effective_target(asked: Option<&str>) -> Result<String> {
    match asked {
        Some(target) => Ok(target.to_string()),
        None => Ok(configured_target()?.unwrap_or_else(|| DEFAULT_TARGET.to_string())),
    }
}

/// `cargo <subcommand>` for the workspace at `root` with the target and the options that
/// cargo-wreg passes through; the caller adds packages, then `options.cargo_args`.
pub fn cargo_command(
    subcommand: &str,
    root: &Path,
    options: &BuildOptions,
    target: Option<&str>,
) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.arg(subcommand);
    command.arg("--manifest-path").arg(root.join("Cargo.toml"));
    if let Some(target) = target {
        command.args(["--target", target]);
    }
    if options.release {
        command.arg("--release");
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
    command
}

/// A `.wasm` file cargo produced.
struct Artifact {
    /// Cargo did not relink it this time.
    fresh: bool,
    package: PackageId,
    path: PathBuf,
}

/// Runs cargo with its JSON messages on stdout, printing the compiler's diagnostics as they
/// come, and returns each `.wasm` artifact.
fn run_cargo(command: &mut Command, prepared: &[Prepared]) -> Result<Vec<Artifact>> {
    tracing::debug!(?command, "running cargo");
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .context("failed to run `cargo build`; is cargo on PATH?")?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("cargo's stdout was not captured"))?;
    let mut artifacts = Vec::new();
    let mut unimplemented = None;
    for message in Message::parse_stream(BufReader::new(stdout)) {
        match message.context("failed to read cargo's output")? {
            Message::CompilerArtifact(artifact) => {
                let wasm = artifact.filenames.iter().filter(|f| f.extension() == Some("wasm"));
                artifacts.extend(wasm.map(|file| Artifact {
                    fresh: artifact.fresh,
                    package: artifact.package_id.clone(),
                    path: file.clone().into_std_path_buf(),
                }));
            }
            Message::CompilerMessage(message) => {
                let _ = write!(anstream::stderr(), "{}", message.message);
                if unimplemented.is_none() && is_unimplemented_export(&message.message) {
                    unimplemented = prepared.iter().find(|p| p.id == message.package_id);
                }
            }
            _ => {}
        }
    }
    let status = child.wait().context("failed to wait for `cargo build`")?;
    match (status.success(), unimplemented) {
        (true, _) => Ok(artifacts),
        (false, Some(member)) => Err(unimplemented_error(member)),
        (false, None) => Err(CargoFailed(status.code().unwrap_or(101)).into()),
    }
}

/// Whether a compiler error says the crate's implementation of its world's `Guest` traits
/// does not match the world: a missing function, one the world does not have, or no impl.
fn is_unimplemented_export(diagnostic: &Diagnostic) -> bool {
    const CODES: &[&str] = &["E0046", "E0407", "E0277"];
    let coded = diagnostic.code.as_ref().is_some_and(|c| CODES.contains(&c.code.as_str()));
    let mentions_guest = diagnostic.message.contains("Guest")
        || diagnostic.spans.iter().flat_map(|s| &s.text).any(|line| line.text.contains("Guest"));
    diagnostic.level == DiagnosticLevel::Error && coded && mentions_guest
}

fn unimplemented_error(member: &Prepared) -> anyhow::Error {
    Help::error(
        format!(
            "package `{}` does not implement its target world `{}` as the bindings require",
            member.name, member.world
        ),
        "implement each function of the world's `Guest` traits, with the signatures that \
         `src/bindings.rs` declares, on the type passed to `bindings::export!`",
    )
}

/// Makes a component of a core module cargo produced, with the adapter its crate's
/// `[package.metadata.component]` asks for, or the proxy adapter for a `wasi:http/proxy` world.
fn finish_component(artifact: &Artifact, member: &Prepared) -> Result<()> {
    // What cargo did not relink is what was checked when it was: a glance at the header will
    // do, which keeps a no-op build close to plain cargo's time.
    if artifact.fresh && componentize::is_component_file(&artifact.path) {
        return Ok(());
    }
    let choice = AdapterChoice {
        proxy: member.proxy || is_proxy_world(&member.world),
        custom: member.adapter.clone(),
    };
    let outcome = componentize::ensure_component(&artifact.path, &choice)?;
    tracing::debug!(path = %artifact.path.display(), ?outcome, "checked the component");
    Ok(())
}

/// Whether `world` (as `ns:pkg/world@version`) is `wasi:http/proxy`, whose components may
/// import nothing beyond what the proxy adapter uses.
fn is_proxy_world(world: &str) -> bool {
    world.split_once('@').map_or(world, |(name, _)| name) == "wasi:http/proxy"
}

/// The target cargo's configuration chooses: `CARGO_BUILD_TARGET`, else `build.target` in the
/// nearest `.cargo/config.toml` above the current directory, else in `$CARGO_HOME`.
pub fn configured_target() -> Result<Option<String>> {
    if let Some(target) = std::env::var_os("CARGO_BUILD_TARGET") {
        return Ok(Some(target.to_string_lossy().into_owned()));
    }
    for (_, config) in cargo_configs()? {
        if let Some(target) =
            config.get("build").and_then(|b| b.get("target")).and_then(|t| t.as_str())
        {
            return Ok(Some(target.to_string()));
        }
    }
    Ok(None)
}

/// cargo's configuration files as cargo finds them, the one that wins first: `.cargo/config.toml`
/// (or `.cargo/config`) in the current directory and each one above it, then in `$CARGO_HOME`.
pub fn cargo_configs() -> Result<Vec<(PathBuf, toml_edit::DocumentMut)>> {
    let cwd = std::env::current_dir().context("failed to read the current directory")?;
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".cargo")));
    let mut configs = Vec::new();
    for dir in cwd.ancestors().map(|d| d.join(".cargo")).chain(cargo_home) {
        for name in ["config.toml", "config"] {
            let path = dir.join(name);
            // `$CARGO_HOME` is often also one of the directories above.
            if configs.iter().any(|(seen, _)| *seen == path) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            let config =
                text.parse().with_context(|| format!("failed to parse `{}`", path.display()))?;
            configs.push((path, config));
        }
    }
    Ok(configs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_http_proxy_world_counts_as_one() {
        assert!(is_proxy_world("wasi:http/proxy@0.2.6"));
        assert!(is_proxy_world("wasi:http/proxy"));
        assert!(!is_proxy_world("wasi:http/proxy-plus@0.2.6"));
        assert!(!is_proxy_world("acme:http/proxy@1.0.0"));
    }
}
