//! Process entry shared by `main.rs` and the multicall `homelab-ops` image binary.
use std::ffi::OsString;

/// The clap definition, for completions and man pages (`homelab-ops-docs`).
pub fn command() -> clap::Command {
    crate::cli::command()
}

/// Run with `args` (argv[0] first), the process environment and stdio; returns the exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    let env = |k: &str| std::env::var(k).ok();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    crate::cli::run(args, &env, &mut stdout.lock(), &mut stderr.lock())
}
