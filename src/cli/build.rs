//! `cargo wreg build`.

use anyhow::{Context, Result, bail};
use clap::Args;

use super::ProjectArgs;
use crate::ops;
use crate::ops::build::BuildOptions;
use crate::ops::fetch::FetchOptions;
use crate::ops::fingerprint;
use crate::ops::workspace::Workspace;

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub cargo: CargoBuildArgs,
    /// Build every component of the workspace
    #[arg(long, conflicts_with = "packages")]
    pub workspace: bool,
}

/// The `cargo build` arguments cargo-wreg needs to see; the rest pass through.
#[derive(Debug, Clone, Args)]
pub struct CargoBuildArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Package(s) to build
    #[arg(short, long = "package", value_name = "SPEC")]
    pub packages: Vec<String>,
    /// Build in release mode
    #[arg(short, long)]
    pub release: bool,
    /// Target triple (default: build.target from cargo's config, else wasm32-wasip2)
    #[arg(long, value_name = "TRIPLE")]
    pub target: Option<String>,
    /// Further arguments for cargo, such as `--features a,b`
    #[arg(allow_hyphen_values = true, value_name = "CARGO_ARGS")]
    pub cargo_args: Vec<String>,
}

/// The flags above as they can appear among the cargo arguments, and whether each takes a
/// value: clap passes everything after the first flag it does not know through to cargo.
const OWN_FLAGS: &[(&str, bool)] = &[
    ("--manifest-path", true),
    ("--registry", true),
    ("--target", true),
    ("--package", true),
    ("-p", true),
    ("--release", false),
    ("-r", false),
    ("--offline", false),
    ("--locked", false),
    ("--frozen", false),
];

impl CargoBuildArgs {
    /// Takes cargo-wreg's own flags out of the cargo arguments (up to a `--`), so that
    /// `--features x --target t` sets the target rather than passing a second one to cargo.
    pub fn resolved(mut self) -> Result<Self> {
        let mut args = std::mem::take(&mut self.cargo_args).into_iter();
        while let Some(arg) = args.next() {
            if arg == "--" {
                self.cargo_args.push(arg);
                self.cargo_args.extend(args.by_ref());
                break;
            }
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) if name.starts_with("--") => (name, Some(value)),
                _ => (arg.as_str(), None),
            };
            let Some(&(flag, takes_value)) = OWN_FLAGS.iter().find(|(flag, _)| *flag == name)
            else {
                self.cargo_args.push(arg);
                continue;
            };
            let value = match (takes_value, inline) {
                (false, _) => None,
                (true, Some(value)) => Some(value.to_string()),
                (true, None) => {
                    Some(args.next().with_context(|| format!("`{flag}` needs a value"))?)
                }
            };
            self.apply(flag, value)?;
        }
        Ok(self)
    }

    fn apply(&mut self, flag: &str, value: Option<String>) -> Result<()> {
        let project = &mut self.project;
        match (flag, value) {
            ("--manifest-path", Some(path)) => project.manifest_path = Some(path.into()),
            ("--registry", Some(registry)) => {
                let registry = registry.parse().context("invalid value for `--registry`")?;
                project.registry.registry = Some(registry);
            }
            ("--target", target) => self.target = target,
            ("--package" | "-p", Some(package)) => self.packages.push(package),
            ("--release" | "-r", _) => self.release = true,
            ("--offline", _) => project.offline = true,
            ("--locked", _) => project.locked = true,
            ("--frozen", _) => project.frozen = true,
            (flag, value) => bail!("`{flag}` with {value:?} is not a flag of cargo-wreg"),
        }
        Ok(())
    }

    pub fn options(&self, workspace: &Workspace) -> Result<BuildOptions> {
        Ok(self.options_with(self.project.fetch_options(workspace)?))
    }

    pub(super) fn options_with(&self, fetch: FetchOptions) -> BuildOptions {
        BuildOptions {
            fetch,
            manifest_path: self.project.manifest_path.clone(),
            packages: self.packages.clone(),
            release: self.release,
            target: self.target.clone(),
            frozen: self.project.frozen,
            cargo_args: self.cargo_args.clone(),
        }
    }
}

pub async fn run(args: BuildArgs) -> Result<()> {
    let cargo = &args.cargo.resolved()?;
    let snapshot = cargo.project.snapshot_key(&super::selection(&cargo.packages, args.workspace));

    // Nothing a fetch reads has changed: straight to cargo.
    if let Some(fresh) = fingerprint::fresh(snapshot.manifest_path.as_deref(), &snapshot.key) {
        let options = cargo.options_with(cargo.project.flags());
        ops::build::compile(&fresh.root, &fresh.prepared, &options)?;
        return Ok(());
    }
    let workspace = cargo.project.workspace()?;
    let mut options = cargo.options(&workspace)?;
    if args.workspace {
        options.packages = workspace.member_names();
    }
    options.fetch.snapshot = Some(snapshot);
    ops::build::build(&workspace, &options).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn resolved(line: &str) -> super::CargoBuildArgs {
        let cli = Cli::try_parse_from(line.split(' ')).unwrap();
        let Command::Build(args) = cli.command else { panic!("not a build: {line}") };
        args.cargo.resolved().unwrap()
    }

    #[test]
    fn own_flags_after_cargo_flags_are_taken_back() {
        let args = resolved("w build --features x --target wasm32-wasip1 -p a --release --offline");
        assert_eq!(args.cargo_args, ["--features", "x"]);
        assert_eq!(args.target.as_deref(), Some("wasm32-wasip1"));
        assert_eq!(args.packages, ["a"]);
        assert!(args.release && args.project.offline);

        let args = resolved("w build -Z build-std --registry=localhost:5000 --manifest-path m");
        assert_eq!(args.cargo_args, ["-Z", "build-std"]);
        assert!(args.project.registry.registry.is_some());
        assert_eq!(args.project.manifest_path.as_deref(), Some("m".as_ref()));
    }

    #[test]
    fn a_flag_without_its_value_is_an_error() {
        let cli = Cli::try_parse_from(["w", "build", "--features", "x", "--target"]).unwrap();
        let Command::Build(args) = cli.command else { panic!("not a build") };
        assert!(args.cargo.resolved().is_err());
    }
}
