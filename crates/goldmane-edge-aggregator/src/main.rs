//! `goldmane-edge-aggregator`: streams Calico Goldmane flows over mutual TLS and keeps the
//! namespace-level `edge` table in Postgres (spec: goldmane-edge-aggregator.md).
//!
//! Exit codes (spec §2.3.2):
//! * 0 — clean shutdown with nothing pending, or `migrate` / `check` succeeded;
//! * 1 — runtime failure: shutdown flush failed, persistent DB authentication failure,
//!   `check` failed, a second signal during shutdown;
//! * 2 — usage or configuration error (bad flag/env value, unreadable or mismatched certs).

fn main() {
    std::process::exit(goldmane_edge_aggregator::entry::run(
        std::env::args_os().collect(),
    ));
}
