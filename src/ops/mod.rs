//! The operations behind the commands. They know nothing of clap: each takes an options
//! value and does the work.

pub mod add;
pub mod build;
pub mod cargo_cmd;
pub mod componentize;
pub mod fetch;
pub mod fingerprint;
pub mod index;
pub mod info;
pub mod new;
pub mod publish;
pub mod pull;
pub mod tree;
pub mod update;
pub mod workspace;
