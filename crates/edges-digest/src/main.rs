//! `edges-digest [run|digest|migrate] [OPTIONS]` — see `--help` and the crate docs.
//!
//! Exit codes (spec §7): 0 posted, nothing new, dry-run or skipped (lock held) · 1 internal
//! error · 2 usage/config (incl. empty SLACK_WEBHOOK_URL outside dry-run) · 3 database ·
//! 4 Slack refused (3xx, 4xx other than 429) · 5 Slack transient after retries or ambiguous.

use edges_digest::config::{parse_config, ConfigError};
use homelab_core::log::{leveled_line, Severity};

fn main() {
    edges_digest::report::install_panic_hook();
    let args: Vec<String> = std::env::args().collect();
    let env = |k: &str| std::env::var(k).ok();
    let code = match parse_config(&env, &args) {
        Ok(cfg) => edges_digest::run(&cfg),
        Err(ConfigError::Cli(e)) => {
            let _ = e.print();
            e.exit_code()
        }
        Err(e) => {
            eprintln!("{}", leveled_line(Severity::Error, &e.to_string()));
            2
        }
    };
    std::process::exit(code);
}
