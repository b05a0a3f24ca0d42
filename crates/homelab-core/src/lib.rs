//! Shared plumbing for the homelab-ops binaries.
//!
//! Only what two or more binaries use lives here (workspace spec W1.5); binary-specific logic
//! stays in its own crate.

pub mod build_info;
pub mod fsx;
pub mod http;
pub mod kube;
pub mod log;
pub mod pgtls;
pub mod pushgateway;
pub mod redact;
pub mod secret;
pub mod slack;
pub mod tls;
pub mod version;

pub use redact::{redact_dsn, redact_url};
pub use secret::Secret;
