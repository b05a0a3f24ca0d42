//! `vault-token-renew` — renew this user's periodic Vault/OpenBao token, heal drift, sweep
//! stale periodic tokens (spec `vault-token-renew.md`).
//!
//! Exit codes (the contract; also in `--help`):
//! - `run` (default): 0 renewed (`OK renewed`), healed (`HEALED:`), or skipped because another
//!   run holds the lock (`SKIP:` on stderr); 1 any `FAIL:`/`DRIFT:` outcome, or the log file
//!   could not be written.
//! - `run --dry-run`: 0 a real run would likely succeed, 1 it would likely fail.
//! - `status`: 0 HEALTHY, 1 STALE / WARNING / DRIFT, 2 ERROR.
//! - 2: usage error (clap).

fn main() {
    std::process::exit(vault_token_renew::entry::run(std::env::args_os().collect()));
}
