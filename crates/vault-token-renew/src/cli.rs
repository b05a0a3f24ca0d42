//! Command line (spec §2.1.2, workspace W2.1/W2.2): every option has an env twin; a flag wins
//! over its env var. Empty env values count as unset (§2.1).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

pub const EXIT_CODES: &str = "\
Exit codes:
  run (default)   0  renewed (OK), healed (HEALED), or skipped because another run holds the lock
                  1  any failure: FAIL or DRIFT line logged (unit shows `failed`)
  run --dry-run   0  a real run would likely succeed, 1 it would likely fail
  status          0  HEALTHY, 1 STALE / WARNING / DRIFT, 2 ERROR (file problem or lookup failed)
  any             2  usage error (bad flag or value)

Log lines (`<ts> <TEXT>`, appended to <state>/vault-token-renew.log and copied to stderr) start
with `OK renewed`, `HEALED:`, `DRIFT:` or `FAIL:`. VAULT_TOKEN and BAO_TOKEN are ignored: the
token file is the object this tool maintains.

`run --dry-run` [env: VTR_DRY_RUN]: lookup-self (plus capabilities-self for a foreign token)
and report what a real run would do; nothing renewed, minted, written, revoked or logged.";

#[derive(Debug, Parser)]
#[command(
    name = "vault-token-renew",
    version = homelab_core::build_info::VERSION_LINE,
    about = "Renew this user's periodic Vault/OpenBao token in ~/.vault-token; heal a clobbered file \
             by re-minting with the clobbering token's authority; sweep stale periodic tokens.",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(flatten)]
    pub opts: Opts,
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Renew (or heal) the token; the default when no subcommand is given.
    Run(RunArgs),
    /// Read-only health report: one lookup-self, no renew, write or revoke.
    Status,
}

#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// Decide and report only: lookup-self (and capabilities-self for a foreign token); no
    /// renew, mint, write or revoke; nothing appended to the log.
    #[arg(long, env = "VTR_DRY_RUN", value_parser = clap::builder::FalseyValueParser::new(), default_value_t = false, hide_env_values = true)]
    pub dry_run: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct Opts {
    /// Vault/OpenBao address (http or https); a trailing `/` is stripped.
    /// [default: https://vault.viktorbarzin.me]
    #[arg(
        long,
        env = "VAULT_ADDR",
        global = true,
        value_name = "URL",
        hide_env_values = true
    )]
    pub vault_addr: Option<String>,

    /// Directory of the log, lock and state files. [default: $HOME/.local/state]
    #[arg(
        long,
        env = "XDG_STATE_HOME",
        global = true,
        value_name = "DIR",
        hide_env_values = true
    )]
    pub state_home: Option<PathBuf>,

    /// Home directory holding `.vault-token`. [default: the effective user's passwd home]
    #[arg(
        long,
        env = "HOME",
        global = true,
        value_name = "DIR",
        hide_env_values = true
    )]
    pub home: Option<PathBuf>,

    /// Optional JSON user map; when the file exists it replaces the built-in wizard/emo table.
    /// [default: /etc/homelab/vault-token-renew.json]
    #[arg(
        long,
        env = "VTR_CONFIG",
        global = true,
        value_name = "FILE",
        hide_env_values = true
    )]
    pub config: Option<PathBuf>,

    /// PEM bundle used as the TLS trust roots for Vault (as the vault CLI does). [default: none]
    #[arg(
        long,
        env = "VAULT_CACERT",
        global = true,
        value_name = "FILE",
        hide_env_values = true
    )]
    pub cacert: Option<PathBuf>,

    /// Vault namespace, sent as X-Vault-Namespace. [default: none]
    #[arg(
        long,
        env = "VAULT_NAMESPACE",
        global = true,
        value_name = "NS",
        hide_env_values = true
    )]
    pub namespace: Option<String>,

    /// Rewrite this Prometheus textfile (.prom) atomically after each run. [default: off]
    #[arg(
        long,
        env = "VTR_METRICS_TEXTFILE",
        global = true,
        value_name = "FILE",
        hide_env_values = true
    )]
    pub metrics_textfile: Option<PathBuf>,

    /// PUT the run's metrics to <URL>/metrics/job/vault_token_renew/user/<user>. [default: off]
    #[arg(
        long,
        env = "VTR_PUSHGATEWAY_URL",
        global = true,
        value_name = "URL",
        hide_env_values = true
    )]
    pub pushgateway_url: Option<String>,

    /// Act for this user map entry instead of the effective uid's passwd name (containers,
    /// tests). It selects names only; authority always comes from the token itself.
    /// [default: the effective user's name]
    #[arg(
        long,
        env = "VTR_USER",
        global = true,
        value_name = "NAME",
        hide_env_values = true
    )]
    pub user: Option<String>,

    /// Whole-request timeout per Vault call, in seconds (connect timeout is min(10, this)).
    /// [default: 30]
    #[arg(
        long,
        env = "VTR_HTTP_TIMEOUT",
        global = true,
        value_name = "SECS",
        hide_env_values = true
    )]
    pub http_timeout: Option<String>,

    /// Print one JSON document on stdout (run: summary; status: the report).
    #[arg(long, env = "VTR_JSON", global = true, value_parser = clap::builder::FalseyValueParser::new(), default_value_t = false, hide_env_values = true)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_names_every_env_twin_and_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        for env in [
            "VAULT_ADDR",
            "XDG_STATE_HOME",
            "HOME",
            "VTR_CONFIG",
            "VAULT_CACERT",
            "VAULT_NAMESPACE",
            "VTR_METRICS_TEXTFILE",
            "VTR_PUSHGATEWAY_URL",
            "VTR_USER",
            "VTR_HTTP_TIMEOUT",
            "VTR_JSON",
            "Exit codes:",
            "https://vault.viktorbarzin.me",
        ] {
            assert!(help.contains(env), "--help lacks {env}");
        }
    }

    #[test]
    fn help_never_shows_env_values() {
        // The README reference block is this text; it must not depend on HOME or VAULT_ADDR.
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("[env: HOME]"), "{help}");
        assert!(!help.contains("[env: HOME="), "{help}");
    }

    #[test]
    fn flags_parse_after_subcommand() {
        let c = Cli::try_parse_from(["vtr", "status", "--json", "--home", "/h"]).unwrap();
        assert!(c.opts.json);
        assert!(matches!(c.command, Some(Cmd::Status)));
        let c = Cli::try_parse_from(["vtr", "run", "--dry-run"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Cmd::Run(RunArgs { dry_run: true }))
        ));
    }
}
