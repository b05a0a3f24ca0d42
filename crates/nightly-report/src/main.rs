//! `nightly-report` — the morning summary of the Kubernetes upgrade chain.
//!
//! Exit codes (spec §6.3): 0 posted (complete or degraded), `--dry-run` or `--json` printed ·
//! 1 internal error · 2 usage/config error (incl. no webhook outside `--dry-run`) · 4 Slack
//! refused the post (3xx, 4xx other than 429) · 5 Slack unreachable after retries (429, 5xx,
//! transport) or the answer was lost after sending.

fn main() {
    std::process::exit(nightly_report::entry::run(std::env::args_os().collect()));
}
