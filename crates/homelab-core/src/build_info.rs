//! Version and commit shared by all six binaries' `--version` (stamped by `build.rs`).

/// The workspace version (one `[workspace.package] version`, inherited by every crate).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Short commit of the build, `-dirty` when tracked files differed from it, `unknown` when
/// built outside a git checkout (a source tarball).
pub const GIT_COMMIT: &str = env!("HOMELAB_OPS_GIT_COMMIT");

/// What `--version` prints after the binary name: `0.2.0 (commit 1a2b3c4d5e6f)`.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("HOMELAB_OPS_GIT_COMMIT"),
    ")"
);

#[cfg(test)]
mod tests {
    #[test]
    fn version_line_names_version_and_commit() {
        assert!(super::VERSION_LINE.starts_with(super::VERSION));
        let c = super::GIT_COMMIT;
        let hex = c.strip_suffix("-dirty").unwrap_or(c);
        assert!(
            c == "unknown" || (hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit())),
            "{c}"
        );
    }
}
