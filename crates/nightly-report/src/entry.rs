//! Process entry shared by `main.rs` and the multicall `homelab-ops` image binary.
use clap::{CommandFactory, FromArgMatches};
use std::ffi::OsString;

/// The clap definition, for completions and man pages (`homelab-ops-docs`).
pub fn command() -> clap::Command {
    crate::cli::Cli::command()
}

/// Parse `args` (argv[0] first) and run; returns the exit code (clap's 2 on a usage error).
pub fn run(args: Vec<OsString>) -> i32 {
    match command()
        .try_get_matches_from(args)
        .and_then(|m| crate::cli::Cli::from_arg_matches(&m))
    {
        Ok(cli) => crate::run(&cli),
        Err(e) => {
            let _ = e.print();
            e.exit_code()
        }
    }
}
