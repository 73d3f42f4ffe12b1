//! `cargo wreg registry ...`: the embedded OCI registry: serve it, manage its access tokens,
//! and collect its garbage.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use crate::server::{self, GcOptions, LogFormat, Scope, Server, ServerOptions, TlsFiles};
use crate::shell;

#[derive(Debug, Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    pub command: RegistryCommand,
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Serve an OCI registry; prints its URL on stdout once listening
    Serve(ServeArgs),
    /// Create, list or revoke the registry's access tokens
    Token(TokenArgs),
    /// Remove blobs no manifest references, stale uploads and leftovers of interrupted writes
    Gc(GcArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port)
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub addr: SocketAddr,
    /// Where releases are stored (default: a folder in the user's data directory)
    #[arg(long, value_name = "DIR")]
    pub storage: Option<PathBuf>,
    /// Require the tokens in this file (see `registry token add`); without it anyone who can
    /// reach the server may push and pull
    #[arg(long, value_name = "FILE")]
    pub auth_file: Option<PathBuf>,
    /// Let anyone pull without a token; pushing still needs one
    #[arg(long, requires = "auth_file")]
    pub public_read: bool,
    /// Let a release tag such as `1.2.3` be pushed again with other content
    #[arg(long)]
    pub allow_tag_overwrite: bool,
    /// Largest manifest accepted, in bytes or with a KiB, MiB or GiB suffix
    #[arg(long, value_name = "SIZE", default_value = "4MiB", value_parser = parse_size)]
    pub max_manifest_size: u64,
    /// Largest blob accepted, in bytes or with a KiB, MiB or GiB suffix
    #[arg(long, value_name = "SIZE", default_value = "2GiB", value_parser = parse_size)]
    pub max_blob_size: u64,
    /// Remove upload sessions idle for this long (`90s`, `30m`, `1h`)
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub upload_expiry: Duration,
    /// Serve HTTPS with this PEM certificate chain
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Format of the request log on stderr: `text` or `json`
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints it, the only time it is shown, as the last line on stdout
    Add {
        /// The auth file the server reads (created if missing)
        #[arg(long, value_name = "FILE")]
        auth_file: PathBuf,
        /// A permission: `pull:<namespace>` or `push:<namespace>` (push implies pull), with
        /// `*` for every namespace; repeat for several
        #[arg(long = "scope", value_name = "SCOPE", required = true)]
        scopes: Vec<Scope>,
        /// A note on who or what the token is for
        #[arg(long)]
        label: Option<String>,
    },
    /// List the tokens of an auth file (their ids and scopes; secrets are never stored)
    List {
        #[arg(long, value_name = "FILE")]
        auth_file: PathBuf,
    },
    /// Revoke a token; a running server stops accepting it within a second
    Remove {
        #[arg(long, value_name = "FILE")]
        auth_file: PathBuf,
        /// The token's id, as `token list` shows it
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// The storage directory (default: the one `registry serve` uses by default)
    #[arg(long, value_name = "DIR")]
    pub storage: Option<PathBuf>,
    /// List what would be removed without removing anything
    #[arg(long)]
    pub dry_run: bool,
    /// Keep anything modified within this period, so pushes in progress on a running server
    /// are safe (`90s`, `30m`, `1h`)
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub grace: Duration,
}

impl RegistryArgs {
    /// The request log format when this command runs a server.
    pub fn server_log(&self) -> Option<LogFormat> {
        match &self.command {
            RegistryCommand::Serve(args) => Some(args.log_format),
            _ => None,
        }
    }
}

pub async fn run(args: RegistryArgs) -> Result<()> {
    match args.command {
        RegistryCommand::Serve(args) => serve(args).await,
        RegistryCommand::Token(args) => token(args.command),
        RegistryCommand::Gc(args) => gc(args).await,
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    let storage = match args.storage {
        Some(dir) => dir,
        None => server::default_storage()?,
    };
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => None,
    };
    let options = ServerOptions {
        auth_file: args.auth_file,
        public_read: args.public_read,
        allow_tag_overwrite: args.allow_tag_overwrite,
        max_manifest_size: args.max_manifest_size,
        max_blob_size: args.max_blob_size,
        upload_expiry: args.upload_expiry,
        tls,
        ..ServerOptions::new(storage.clone())
    };
    // Listen first: a taken port should leave no storage directory behind.
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("failed to listen on `{}`", args.addr))?;
    let server = Server::new(options).await?;
    let addr = listener.local_addr().context("failed to read the listening address")?;
    let url = format!("{}://{addr}", server.scheme());
    if server.is_open() {
        shell::warn(concat!(
            "the registry is open: anyone who can reach it may push and pull; ",
            "pass `--auth-file` to require tokens"
        ));
    }
    shell::status("Serving", format_args!("{url} from `{}`", storage.display()));
    println!("{url}");
    serve_until_signalled(server, listener).await
}

/// Serves until SIGTERM or Ctrl-C, then lets requests in flight (uploads above all) finish;
/// a second signal stops at once.
async fn serve_until_signalled(server: Server, listener: tokio::net::TcpListener) -> Result<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = server.serve(listener, async move {
        let _ = stopped.await;
    });
    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => return result,
        () = shutdown_signal() => {}
    }
    shell::status("Stopping", "once requests in flight finish; signal again to stop at once");
    let _ = stop.send(());
    tokio::select! {
        result = serving => result,
        () = shutdown_signal() => bail!("stopped with requests still in flight"),
    }
}

fn token(command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Add { auth_file, scopes, label } => {
            let names = scopes.iter().map(Scope::to_string).collect::<Vec<_>>().join(", ");
            let token = server::add_token(&auth_file, scopes, label)?;
            shell::status(
                "Created",
                format_args!("token {} ({names}) in `{}`", token.id, auth_file.display()),
            );
            println!("{}", token.secret);
        }
        TokenCommand::List { auth_file } => {
            for token in server::list_tokens(&auth_file)? {
                let scopes = token.scopes.iter().map(Scope::to_string).collect::<Vec<_>>();
                let label = token.label.unwrap_or_default();
                println!("{}\t{}\t{label}", token.id, scopes.join(","));
            }
        }
        TokenCommand::Remove { auth_file, id } => {
            if !server::remove_token(&auth_file, &id)? {
                bail!("no token `{id}` in `{}`", auth_file.display());
            }
            shell::status("Removed", format_args!("token {id} from `{}`", auth_file.display()));
        }
    }
    Ok(())
}

async fn gc(args: GcArgs) -> Result<()> {
    let storage = match args.storage {
        Some(dir) => dir,
        None => server::default_storage()?,
    };
    let options = GcOptions { dry_run: args.dry_run, grace: args.grace };
    let root = storage.clone();
    let report = tokio::task::spawn_blocking(move || server::collect_garbage(&root, &options))
        .await
        .context("garbage collection failed")?
        .with_context(|| format!("failed to collect garbage in `{}`", storage.display()))?;
    for digest in &report.blobs {
        println!("{digest}");
    }
    let verb = if args.dry_run { "Would remove" } else { "Removed" };
    let mib = report.blob_bytes as f64 / (1024.0 * 1024.0);
    shell::status(
        verb,
        format_args!(
            "{} ({mib:.1} MiB), {} and {} of interrupted writes",
            shell::counted(report.blobs.len(), "blob"),
            shell::counted(report.uploads, "upload"),
            shell::counted(report.leftovers, "leftover"),
        ),
    );
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Parses a size such as `4194304`, `4MiB` or `4M` (suffixes are binary multiples).
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" | "k" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        other => return Err(format!("unknown size unit `{other}`: use KiB, MiB or GiB")),
    };
    let number: u64 = number.parse().map_err(|_| format!("invalid size `{text}`"))?;
    number.checked_mul(1 << shift).ok_or_else(|| format!("size `{text}` is too large"))
}

/// Parses a duration such as `90`, `90s`, `30m` or `1h`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        other => return Err(format!("unknown duration unit `{other}`: use s, m, h or d")),
    };
    let number: u64 = number.parse().map_err(|_| format!("invalid duration `{text}`"))?;
    let total =
        number.checked_mul(seconds).ok_or_else(|| format!("duration `{text}` is too long"))?;
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("4 TB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
    }
}
