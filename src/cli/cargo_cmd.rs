//! `cargo wreg check|clippy|doc|test|run`.

use anyhow::Result;
use clap::Args;

use super::build::CargoBuildArgs;
use crate::ops;
use crate::ops::build::BuildOptions;
use crate::ops::cargo_cmd::CargoCommand;
use crate::ops::fetch::FetchOptions;
use crate::ops::fingerprint;

#[derive(Debug, Args)]
pub struct CargoCmdArgs {
    #[command(flatten)]
    pub cargo: CargoBuildArgs,
    /// Arguments for the program (`run`) or the test binaries (`test`)
    #[arg(last = true, value_name = "ARGS")]
    pub program_args: Vec<String>,
}

impl CargoCmdArgs {
    /// The options for cargo, with what followed `--` passed on after a `--` of its own. clap
    /// keeps a `--` among the cargo arguments when some came before it, and takes it when
    /// none did.
    fn options(&self, fetch: FetchOptions) -> BuildOptions {
        let mut options = self.cargo.options_with(fetch);
        if !self.program_args.is_empty() {
            options.cargo_args.push("--".to_string());
            options.cargo_args.extend(self.program_args.iter().cloned());
        }
        options
    }
}

pub async fn run(command: CargoCommand, args: CargoCmdArgs) -> Result<()> {
    let args = CargoCmdArgs { cargo: args.cargo.resolved()?, ..args };
    let project = &args.cargo.project;
    let snapshot = project.snapshot_key(&args.cargo.packages);

    // Nothing a fetch reads has changed: straight to cargo.
    if let Some(fresh) = fingerprint::fresh(snapshot.manifest_path.as_deref(), &snapshot.key) {
        let options = args.options(project.flags());
        return ops::cargo_cmd::run(&fresh.root, &fresh.prepared, command, &options);
    }
    let workspace = project.workspace()?;
    let mut options = args.options(project.fetch_options(&workspace)?);
    options.fetch.snapshot = Some(snapshot);
    ops::cargo_cmd::fetch_and_run(&workspace, command, &options).await
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    /// What `cargo-wreg <line>` passes on to cargo after its own options.
    fn cargo_args(line: &str) -> Vec<String> {
        let cli = Cli::try_parse_from(line.split(' ')).unwrap();
        let (Command::Run(args) | Command::Test(args) | Command::Check(args)) = cli.command else {
            panic!("not a cargo command: {line}");
        };
        let args = super::CargoCmdArgs { cargo: args.cargo.resolved().unwrap(), ..args };
        args.options(Default::default()).cargo_args
    }

    #[test]
    fn arguments_after_a_double_dash_stay_after_one() {
        assert_eq!(cargo_args("w test -- --nocapture"), ["--", "--nocapture"]);
        assert_eq!(cargo_args("w run -p app -- upper hi"), ["--", "upper", "hi"]);
        let features = cargo_args("w test --features x -- --exact a");
        assert_eq!(features, ["--features", "x", "--", "--exact", "a"]);
        let check = cargo_args("w check --message-format=json --registry localhost:5000");
        assert_eq!(check, ["--message-format=json"]);
    }
}
