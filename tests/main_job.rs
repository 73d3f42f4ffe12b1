//! The main job end to end against the embedded registry: publish WIT packages, build a
//! component against them, run it, publish it and pull it back.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Registry, Sandbox, Target, main_job_scenario};

/// The scenario itself lives in `common`, so that the same assertions run against other
/// registries too (see `tests/registries.rs`).
#[test]
fn main_job() {
    let registry = Registry::start();
    main_job_scenario(&Target::new(registry.url()), &Sandbox::new());
}

/// Cargo finds `cargo-wreg` on `PATH` and runs it as `cargo-wreg wreg ...`.
#[test]
fn cargo_runs_the_subcommand() {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_cargo-wreg")).parent().expect("the binary's dir");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(bin_dir.to_path_buf()).chain(std::env::split_paths(&path));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["wreg", "--help"])
        .env("PATH", std::env::join_paths(dirs).expect("join PATH"))
        .output()
        .expect("run `cargo wreg --help`");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("publish"), "help lacks the publish command:\n{stdout}");
}
