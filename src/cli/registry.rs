//! `cargo wreg registry ...`: the embedded OCI registry.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use crate::{server, shell};

#[derive(Debug, Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    pub command: RegistryCommand,
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Serve an OCI registry over HTTP; prints its URL on stdout once listening
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port)
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub addr: SocketAddr,
    /// Where releases are stored (default: a folder in the user's data directory)
    #[arg(long, value_name = "DIR")]
    pub storage: Option<PathBuf>,
}

pub async fn run(args: RegistryArgs) -> Result<()> {
    match args.command {
        RegistryCommand::Serve(args) => serve(args).await,
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    let storage = match args.storage {
        Some(dir) => dir,
        None => server::default_storage()?,
    };
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("failed to listen on `{}`", args.addr))?;
    let addr = listener.local_addr().context("failed to read the listening address")?;
    shell::status("Serving", format_args!("http://{addr} from `{}`", storage.display()));
    println!("http://{addr}");
    server::serve(listener, storage, shutdown_signal()).await
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
