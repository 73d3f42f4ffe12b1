//! `cargo wreg login`: check credentials against a registry, then store them where Docker
//! tools read them too. The password never appears on the command line.

use std::io::Read;

use anyhow::{Context, Result};
use clap::Args;

use crate::Help;
use crate::config::RegistryConfig;
use crate::oci::auth::{self, Credentials, Secret};
use crate::registry::Registry;
use crate::shell;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry: a name such as `wasi.dev` (its OCI registry gets the credentials) or an
    /// address such as `ghcr.io` or `http://127.0.0.1:5000`
    #[arg(value_name = "REGISTRY")]
    pub registry: Registry,
    /// The user name
    #[arg(short, long)]
    pub username: String,
    /// Read the password or token from standard input
    #[arg(long)]
    pub password_stdin: bool,
}

pub async fn run(args: LoginArgs) -> Result<()> {
    if !args.password_stdin {
        return Err(Help::error(
            "the password or token must come from standard input",
            format!(
                "pipe it in: `printf %s \"$TOKEN\" | cargo wreg login {} --username {} \
                 --password-stdin`",
                args.registry, args.username
            ),
        ));
    }
    let password = read_password()?;
    let config = RegistryConfig::load(None)?;
    let mut options = config.client_options(&args.registry);
    options.credentials =
        Some(Credentials::basic(&args.username, password.clone(), auth::LOGIN_SOURCE));
    let client = crate::oci::Client::with_options(args.registry.clone(), options)?;
    client.check_access().await?;

    let host = client.location().await?.host().to_string();
    let place = auth::save_docker_credentials(&host, &args.username, &password)
        .await
        .with_context(|| format!("failed to save the credentials for `{host}`"))?;
    shell::status("Logged in", format_args!("to {host} as {} (saved in {place})", args.username));
    Ok(())
}

fn read_password() -> Result<Secret> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("failed to read the password from stdin")?;
    let password = input.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        anyhow::bail!("standard input held no password or token");
    }
    Ok(Secret::new(password))
}
