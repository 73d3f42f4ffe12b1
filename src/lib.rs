//! cargo-wreg: build and publish WebAssembly components against WIT packages held in OCI
//! registries, from the ordinary cargo workflow.
//!
//! The binary (`src/main.rs`) only parses the command line; everything it runs lives here.

pub mod bindings;
pub mod cache;
pub mod cli;
pub mod config;
pub mod digest;
pub mod fsutil;
pub mod lock;
pub mod manifest;
pub mod oci;
pub mod ops;
pub mod package;
pub mod registry;
pub mod resolve;
pub mod server;
pub mod shell;
pub mod wit;

/// An error that knows how the user can fix it; printed with a `help:` line.
#[derive(Debug)]
pub struct Help {
    message: String,
    help: String,
}

impl Help {
    /// Builds an error whose message is `message` and whose suggested fix is `help`.
    pub fn error(message: impl Into<String>, help: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Help { message: message.into(), help: help.into() })
    }

    pub fn help(&self) -> &str {
        &self.help
    }
}

impl std::fmt::Display for Help {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Help {}
