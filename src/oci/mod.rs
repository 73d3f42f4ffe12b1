//! The OCI side of cargo-wreg: the Wasm artifact layout (pure), registry discovery,
//! authentication, and the registry client that lists, fetches and pushes artifacts over the
//! OCI distribution API.

pub mod auth;
pub mod client;
pub mod discovery;
#[cfg(test)]
mod fake;
pub mod layout;
pub mod names;
mod transport;

pub use client::{Client, ClientOptions, Release};
pub use layout::{Artifact, Descriptor, ImageManifest};
