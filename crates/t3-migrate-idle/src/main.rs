//! `t3-migrate-idle` — see `lib.rs` and `--help`.
//!
//! Exit codes: 0 = pass done / frozen / nothing to do / another pass or a sibling unit running;
//! 1 = a restart failed verification (recovery + freeze ran); 2 = configuration or precondition
//! error (invalid variable, not root, unreadable DEFER_DIR, lock error).

fn main() {
    std::process::exit(t3_migrate_idle::entry::run(std::env::args_os().collect()));
}
