//! The operations behind the commands. They know nothing of clap: each takes an options
//! value and does the work.

pub mod build;
pub mod fetch;
pub mod index;
pub mod publish;
pub mod pull;
pub mod workspace;
