//! `cargo wreg check|clippy|doc|test|run`: fetch (a no-op when nothing changed), then hand
//! over to the cargo command of the same name with the wasm target set, so editor
//! integrations and habits keep working. `test` and `run` execute wasm, through the runner
//! cargo is configured with or, when there is none, `wasmtime` from `PATH`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use toml_edit::DocumentMut;

use crate::Help;
use crate::ops::build::{self, BuildOptions, CargoFailed};
use crate::ops::fetch::{self, Prepared};
use crate::ops::workspace::Workspace;

/// The cargo commands cargo-wreg hands over to after a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CargoCommand {
    Check,
    Clippy,
    Doc,
    Test,
    Run,
}

impl CargoCommand {
    pub fn name(self) -> &'static str {
        match self {
            Self::Check => "check",
            Self::Clippy => "clippy",
            Self::Doc => "doc",
            Self::Test => "test",
            Self::Run => "run",
        }
    }

    /// Whether cargo executes what it builds, and so needs a runner for wasm.
    fn executes(self) -> bool {
        matches!(self, Self::Test | Self::Run)
    }
}

/// Fetches what the selected members need, then runs `command`.
pub async fn fetch_and_run(
    workspace: &Workspace,
    command: CargoCommand,
    options: &BuildOptions,
) -> Result<()> {
    let members = workspace.select(&options.packages)?;
    let prepared = fetch::fetch(workspace, &members, &options.fetch).await?;
    run(workspace.root(), &prepared, command, options)
}

/// Runs `cargo <command>` for the prepared members of the workspace at `root`, with its
/// output going straight to the terminal.
pub fn run(
    root: &Path,
    prepared: &[Prepared],
    command: CargoCommand,
    options: &BuildOptions,
) -> Result<()> {
    if command == CargoCommand::Run {
        check_runnable(prepared, &options.cargo_args)?;
    }
    let target = build::target_argument(options.target.as_deref())?;
    let mut cargo = build::cargo_command(command.name(), root, options, target.as_deref());
    // `cargo run` takes one package; which binary to run is cargo's choice when none is named.
    let packages: Vec<&str> = match command {
        CargoCommand::Run => options.packages.iter().map(String::as_str).collect(),
        _ => prepared.iter().map(|p| p.name.as_str()).collect(),
    };
    for package in packages {
        cargo.args(["-p", package]);
    }
    cargo.args(&options.cargo_args);
    // TODO: for wasm32-wasip1 the runner gets the core module cargo linked, not a component,
    // so a world's imports beyond WASI preview 1 are unmet under `run` and `test` there.
    let compile_only = options.cargo_args.iter().any(|a| a == "--no-run");
    if command.executes() && !compile_only {
        let triple = build::effective_target(options.target.as_deref())?;
        if let Some((var, runner)) = default_runner(&triple, command, &options.cargo_args)? {
            cargo.env(var, runner);
        }
    }
    spawn(&mut cargo, command)
}

fn spawn(cargo: &mut Command, command: CargoCommand) -> Result<()> {
    tracing::debug!(?cargo, "handing over to cargo");
    let status = cargo
        .status()
        .with_context(|| format!("failed to run `cargo {}`; is cargo on PATH?", command.name()))?;
    if !status.success() {
        return Err(CargoFailed(status.code().unwrap_or(101)).into());
    }
    Ok(())
}

/// `cargo run` needs a binary: a library component has only exports to call.
fn check_runnable(members: &[Prepared], cargo_args: &[String]) -> Result<()> {
    let names_example = cargo_args.iter().any(|a| a == "--example" || a.starts_with("--example="));
    if names_example || members.iter().any(|m| m.has_binary) {
        return Ok(());
    }
    let names: Vec<String> = members.iter().map(|m| format!("`{}`", m.name)).collect();
    let message = match names.as_slice() {
        [one] => format!("package {one} has no binary to run: its component is a library"),
        _ => format!("packages {} have no binary to run: they are libraries", names.join(", ")),
    };
    Err(Help::error(
        message,
        "call a library component's exports with `wasmtime run --invoke 'name(args)' \
         <component.wasm>` after `cargo wreg build`, or add a `src/main.rs`",
    ))
}

/// The environment variable and value that make `wasmtime` cargo's runner for `triple`, when
/// it is a wasm target and cargo has no runner configured for it. Without one, and without
/// `wasmtime` on `PATH`, or for `wasm32-unknown-unknown`, whose modules have nothing wasmtime
/// would call, `command` is refused rather than let run nothing and report success.
fn default_runner(
    triple: &str,
    command: CargoCommand,
    cargo_args: &[String],
) -> Result<Option<(String, PathBuf)>> {
    let var = runner_var(triple);
    if !triple.starts_with("wasm32-") || std::env::var_os(&var).is_some() {
        return Ok(None);
    }
    let mut configs = command_line_configs(cargo_args)?;
    configs.extend(build::cargo_configs()?);
    if configured_runner(triple, &configs) {
        return Ok(None);
    }
    let configure = format!("set `target.{triple}.runner` in `.cargo/config.toml`");
    if triple == "wasm32-unknown-unknown" {
        return Err(Help::error(
            format!(
                "`cargo {}` cannot run what it builds for `{triple}`: without WASI a module has \
                 no entry point or output, so wasmtime would run nothing and report success",
                command.name()
            ),
            format!("use `--target wasm32-wasip2` (or `wasm32-wasip1`), or {configure}"),
        ));
    }
    match find_on_path("wasmtime", std::env::var_os("PATH")) {
        Some(path) => Ok(Some((var, path))),
        None => Err(Help::error(
            format!("no runner is configured for `{triple}` and `wasmtime` is not on PATH"),
            format!("install wasmtime (https://wasmtime.dev), or {configure}"),
        )),
    }
}

/// The environment variable cargo reads the runner for `triple` from.
fn runner_var(triple: &str) -> String {
    format!("CARGO_TARGET_{}_RUNNER", triple.to_uppercase().replace(['-', '.'], "_"))
}

/// Whether one of cargo's `configs` sets a runner that applies to `triple`. Runners for
/// `cfg(..)` expressions count too: cargo would use them, and evaluating them is cargo's
/// business.
fn configured_runner(triple: &str, configs: &[(PathBuf, DocumentMut)]) -> bool {
    for (path, config) in configs {
        let Some(targets) = config.get("target").and_then(|t| t.as_table_like()) else {
            continue;
        };
        let applies = |key: &str| key == triple || key.starts_with("cfg(");
        let found = targets.iter().any(|(key, value)| {
            applies(key) && value.as_table_like().is_some_and(|t| t.contains_key("runner"))
        });
        if found {
            tracing::debug!(config = %path.display(), "cargo has a runner for {triple}");
            return true;
        }
    }
    false
}

/// The configuration that `--config` arguments give cargo: a file, or inline TOML such as
/// `target.wasm32-wasip2.runner="wasmtime"`.
fn command_line_configs(cargo_args: &[String]) -> Result<Vec<(PathBuf, DocumentMut)>> {
    let mut values: Vec<&str> = Vec::new();
    let mut args = cargo_args.iter().take_while(|a| *a != "--");
    while let Some(arg) = args.next() {
        if arg == "--config" {
            values.extend(args.next().map(String::as_str));
        } else if let Some(value) = arg.strip_prefix("--config=") {
            values.push(value);
        }
    }
    values
        .into_iter()
        .map(|value| {
            let path = Path::new(value);
            let (origin, text) = if path.is_file() {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("failed to read `{value}`"))?;
                (path.to_path_buf(), text)
            } else {
                (PathBuf::from("--config"), value.to_string())
            };
            let config = text.parse().with_context(|| format!("invalid `--config {value}`"))?;
            Ok((origin, config))
        })
        .collect()
}

/// The first executable file named `name` in the directories of `path`.
fn find_on_path(name: &str, path: Option<OsString>) -> Option<PathBuf> {
    let dirs: Vec<PathBuf> = path.iter().flat_map(std::env::split_paths).collect();
    dirs.into_iter().map(|dir| dir.join(name)).find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasmtime_is_found_on_path_only_when_executable() {
        let dir = tempfile::tempdir().unwrap();
        let wasmtime = dir.path().join("wasmtime");
        std::fs::write(&wasmtime, "#!/bin/sh\n").unwrap();
        let path = std::env::join_paths([dir.path()]).ok();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(find_on_path("wasmtime", path.clone()), None, "not executable yet");
            let executable = std::fs::Permissions::from_mode(0o755);
            std::fs::set_permissions(&wasmtime, executable).unwrap();
        }
        assert_eq!(find_on_path("wasmtime", path), Some(wasmtime));
        assert_eq!(find_on_path("wasmtime", None), None);
    }

    #[test]
    fn runners_given_with_config_arguments_count() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("runner.toml");
        std::fs::write(&file, "[target.'cfg(target_family = \"wasm\")']\nrunner = \"x\"\n")
            .unwrap();
        let args = |list: &[&str]| list.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let inline = args(&["--config", "target.wasm32-wasip2.runner=\"echo\""]);
        let configs = command_line_configs(&inline).unwrap();
        assert!(configured_runner("wasm32-wasip2", &configs));
        assert!(!configured_runner("wasm32-wasip1", &configs));
        let from_file = args(&["--release", &format!("--config={}", file.display())]);
        assert!(configured_runner("wasm32-wasip1", &command_line_configs(&from_file).unwrap()));
        let for_the_program = args(&["--", "--config", "target.wasm32-wasip2.runner=\"echo\""]);
        assert!(command_line_configs(&for_the_program).unwrap().is_empty());
    }

    #[test]
    fn runner_variables_are_named_as_cargo_reads_them() {
        assert_eq!(runner_var("wasm32-wasip2"), "CARGO_TARGET_WASM32_WASIP2_RUNNER");
        assert_eq!(runner_var("wasm32-wasip1"), "CARGO_TARGET_WASM32_WASIP1_RUNNER");
    }
}
