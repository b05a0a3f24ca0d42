//! `edges-digest [run|digest|migrate] [OPTIONS]` — see `--help` and the crate docs.
//!
//! Exit codes (spec §7): 0 posted, nothing new, dry-run or skipped (lock held) · 1 internal
//! error · 2 usage/config (incl. empty SLACK_WEBHOOK_URL outside dry-run) · 3 database ·
//! 4 Slack refused (3xx, 4xx other than 429) · 5 Slack transient after retries or ambiguous.

fn main() {
    std::process::exit(edges_digest::entry::run(std::env::args_os().collect()));
}
