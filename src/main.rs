//! The `cargo-wreg` binary: parses the command line and hands over to the library.
//!
//! Exit codes: 0 success; 1 an error (printed as `error:` with its causes); 2 a usage
//! error; when `cargo build` itself fails, its exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use cargo_wreg::cli::{Cli, Command};
use cargo_wreg::ops::build::CargoFailed;
use cargo_wreg::server::{LogFormat, REQUEST_LOG_TARGET};
use cargo_wreg::shell;
use clap::Parser;

fn main() -> ExitCode {
    // cargo runs `cargo-wreg wreg <args>`; a direct `cargo-wreg <args>` works too.
    let mut args: Vec<_> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "wreg") {
        args.remove(1);
    }
    let cli = Cli::parse_from(args);
    shell::configure(cli.global.color, cli.global.quiet);
    let server_log = match &cli.command {
        Command::Registry(args) => args.server_log(),
        _ => None,
    };
    init_logging(cli.global.verbose, cli.global.quiet, server_log);
    let _ = rustls::crypto::ring::default_provider().install_default();

    // The registry server wants every core; a client command waits on the network and
    // starts faster on one thread.
    let mut builder = match &cli.command {
        Command::Registry(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            shell::error(&anyhow::Error::new(e).context("failed to start the async runtime"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.command.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<CargoFailed>() {
            Some(CargoFailed(code)) => ExitCode::from(u8::try_from(*code).unwrap_or(101)),
            None => {
                shell::error(&e);
                ExitCode::FAILURE
            }
        },
    }
}

/// Quiet by default; `-v` shows cargo-wreg's debug logs, `-vv` everything's. A registry
/// server (`server_log`) also logs each request at info level, unless `-q`, in its format.
/// `CARGO_WREG_LOG` takes a full filter for finer control.
fn init_logging(verbose: u8, quiet: bool, server_log: Option<LogFormat>) {
    let mut default = match verbose {
        0 => "warn",
        1 => "warn,cargo_wreg=debug",
        _ => "debug",
    }
    .to_string();
    if server_log.is_some() && !quiet {
        default.push_str(&format!(",{REQUEST_LOG_TARGET}=info"));
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("CARGO_WREG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logger = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match server_log {
        Some(LogFormat::Json) => logger.json().flatten_event(true).init(),
        _ => logger.with_ansi(std::io::stderr().is_terminal()).with_target(false).init(),
    }
}
