//! `goldmane-edge-aggregator`: streams Calico Goldmane flows over mutual TLS and keeps the
//! namespace-level `edge` table in Postgres (spec: goldmane-edge-aggregator.md).
//!
//! Exit codes (spec §2.3.2):
//! * 0 — clean shutdown with nothing pending, or `migrate` / `check` succeeded;
//! * 1 — runtime failure: shutdown flush failed, persistent DB authentication failure,
//!   `check` failed, a second signal during shutdown;
//! * 2 — usage or configuration error (bad flag/env value, unreadable or mismatched certs).

use clap::Parser;
use goldmane_edge_aggregator::cli::Cli;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    std::process::exit(goldmane_edge_aggregator::run(cli, &env));
}
