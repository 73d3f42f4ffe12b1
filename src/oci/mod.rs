//! The OCI side of cargo-wreg: the Wasm artifact layout (pure) and the registry client that
//! lists, fetches and pushes artifacts over the OCI distribution API.

pub mod client;
pub mod layout;

pub use client::{Client, Release};
pub use layout::{Artifact, Descriptor, ImageManifest};
