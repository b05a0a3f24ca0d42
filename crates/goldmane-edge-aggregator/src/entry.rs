//! Process entry shared by `main.rs` and the multicall `homelab-ops` image binary.
use clap::{CommandFactory, FromArgMatches};
use std::ffi::OsString;

/// The clap definition, for completions and man pages (`homelab-ops-docs`).
pub fn command() -> clap::Command {
    crate::cli::Cli::command()
}

/// Parse `args` (argv[0] first) and run with the process environment; returns the exit code
/// (2 on a usage error, 0 for `--help`/`--version`).
pub fn run(args: Vec<OsString>) -> i32 {
    match command()
        .try_get_matches_from(args)
        .and_then(|m| crate::cli::Cli::from_arg_matches(&m))
    {
        Ok(cli) => {
            let env: std::collections::HashMap<String, String> = std::env::vars().collect();
            crate::run(cli, &env)
        }
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            code
        }
    }
}
