//! Process entry shared by `main.rs` and the multicall `homelab-ops` image binary.
use crate::config::{parse_config, ConfigError};
use clap::CommandFactory;
use homelab_core::log::{leveled_line, Severity};
use std::ffi::OsString;

/// The clap definition, for completions and man pages (`homelab-ops-docs`).
pub fn command() -> clap::Command {
    crate::cli::Cli::command()
}

/// Parse `args` (argv[0] first) and the process environment, then run; returns the exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    crate::report::install_panic_hook();
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let env = |k: &str| std::env::var(k).ok();
    match parse_config(&env, &args) {
        Ok(cfg) => crate::run(&cfg),
        Err(ConfigError::Cli(e)) => {
            let _ = e.print();
            e.exit_code()
        }
        Err(e) => {
            eprintln!("{}", leveled_line(Severity::Error, &e.to_string()));
            2
        }
    }
}
