//! Workspace-level contracts, one test binary: README ↔ CI, systemd units, deploy manifests,
//! install into a temporary root, generated README reference blocks.

mod ws {
    pub mod ci;
    pub mod deploy;
    pub mod image;
    pub mod install;
    pub mod monitoring;
    pub mod readme;
    pub mod release;
    pub mod scripts;
    pub mod systemd;
    pub mod tools;
}

use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Binary crates present in the workspace (a `src/main.rs`).
pub fn binaries() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("src/main.rs").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A built binary of the workspace in this profile's target dir (`cargo test --workspace`
/// builds every member's binaries before any test runs).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "binary {name} not built at {}: run `cargo test --workspace` (or `cargo build --workspace --bins`)",
        p.display()
    );
    p
}

/// The target profile dir holding the built binaries.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}
