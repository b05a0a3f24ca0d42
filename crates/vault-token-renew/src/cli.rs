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
    /// [default: https://vault.viktorbarzin.me] [BAO_ADDR wins over VAULT_ADDR]
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
    /// [BAO_CACERT wins over VAULT_CACERT]
    #[arg(
        long,
        env = "VAULT_CACERT",
        global = true,
        value_name = "FILE",
        hide_env_values = true
    )]
    pub cacert: Option<PathBuf>,

    /// Directory of PEM CA certificates (read recursively; files without a certificate are
    /// skipped, as the bao CLI does), added to the trust roots with --cacert. [default: none]
    /// [BAO_CAPATH wins over VAULT_CAPATH]
    #[arg(
        long,
        env = "VAULT_CAPATH",
        global = true,
        value_name = "DIR",
        hide_env_values = true
    )]
    pub capath: Option<PathBuf>,

    /// PEM client certificate for mutual TLS (needs --client-key). [default: none]
    /// [BAO_CLIENT_CERT wins over VAULT_CLIENT_CERT]
    #[arg(
        long,
        env = "VAULT_CLIENT_CERT",
        global = true,
        value_name = "FILE",
        hide_env_values = true
    )]
    pub client_cert: Option<PathBuf>,

    /// PEM private key of --client-cert; it must match the certificate. [default: none]
    /// [BAO_CLIENT_KEY wins over VAULT_CLIENT_KEY]
    #[arg(
        long,
        env = "VAULT_CLIENT_KEY",
        global = true,
        value_name = "FILE",
        hide_env_values = true
    )]
    pub client_key: Option<PathBuf>,

    /// Name to verify the server certificate against (and send as SNI) instead of the
    /// VAULT_ADDR host. [default: none] [BAO_TLS_SERVER_NAME wins over VAULT_TLS_SERVER_NAME]
    #[arg(
        long,
        env = "VAULT_TLS_SERVER_NAME",
        global = true,
        value_name = "NAME",
        hide_env_values = true
    )]
    pub tls_server_name: Option<String>,

    /// Vault namespace, sent as X-Vault-Namespace. [default: none]
    /// [BAO_NAMESPACE wins over VAULT_NAMESPACE]
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

    /// A renewed token whose TTL is under this is a failure ("renewed but not extended"):
    /// a token without period, near its explicit_max_ttl, or capped by the mount's
    /// max_lease_ttl would otherwise expire silently. Vault duration (`168h`, `7d`) or
    /// seconds. [default: 7d]
    #[arg(
        long,
        env = "VTR_MIN_TTL",
        global = true,
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub min_ttl: Option<String>,

    /// Time budget of the heal's full accessor scan (after the accessors this tool minted,
    /// which are revoked first); at the budget the scan stops with a warning naming how
    /// many accessors were left. Vault duration or seconds, at most 1h. [default: 120s]
    #[arg(
        long,
        env = "VTR_SWEEP_BUDGET",
        global = true,
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub sweep_budget: Option<String>,

    /// Print one JSON document on stdout (run: summary; status: the report).
    #[arg(long, env = "VTR_JSON", global = true, value_parser = clap::builder::FalseyValueParser::new(), default_value_t = false, hide_env_values = true)]
    pub json: bool,
}

/// The `BAO_*` twins of the `VAULT_*` variables (issue 15 item 5), as `(arg id, BAO name)`.
pub const BAO_TWINS: [(&str, &str); 7] = [
    ("vault_addr", "BAO_ADDR"),
    ("cacert", "BAO_CACERT"),
    ("capath", "BAO_CAPATH"),
    ("client_cert", "BAO_CLIENT_CERT"),
    ("client_key", "BAO_CLIENT_KEY"),
    ("tls_server_name", "BAO_TLS_SERVER_NAME"),
    ("namespace", "BAO_NAMESPACE"),
];

/// Parse the command line, then let a present `BAO_*` twin replace the `VAULT_*` value when
/// no flag was given: openbao/openbao v2.6.2 `api/env.go` `ReadBaoVariable` prefers the
/// `BAO_` variable whenever it is present, even when empty (empty then means unset).
pub fn parse_from(args: Vec<std::ffi::OsString>) -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let m = Cli::command().try_get_matches_from(args)?;
    let mut cli = Cli::from_arg_matches(&m)?;
    let flagged = |id: &str| {
        m.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
            || m.subcommand().is_some_and(|(_, sm)| {
                sm.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
            })
    };
    apply_bao_twins(&mut cli.opts, &flagged, &|k| std::env::var_os(k));
    Ok(cli)
}

/// Pure part of [`parse_from`].
pub fn apply_bao_twins(
    o: &mut Opts,
    flagged: &dyn Fn(&str) -> bool,
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) {
    for (id, bao) in BAO_TWINS {
        if flagged(id) {
            continue;
        }
        let Some(v) = env(bao) else { continue };
        let s = v.to_string_lossy().into_owned();
        match id {
            "vault_addr" => o.vault_addr = Some(s),
            "cacert" => o.cacert = Some(PathBuf::from(v)),
            "capath" => o.capath = Some(PathBuf::from(v)),
            "client_cert" => o.client_cert = Some(PathBuf::from(v)),
            "client_key" => o.client_key = Some(PathBuf::from(v)),
            "tls_server_name" => o.tls_server_name = Some(s),
            _ => o.namespace = Some(s),
        }
    }
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
            "VAULT_CAPATH",
            "VAULT_CLIENT_CERT",
            "VAULT_CLIENT_KEY",
            "VAULT_TLS_SERVER_NAME",
            "VAULT_NAMESPACE",
            "BAO_ADDR",
            "BAO_CAPATH",
            "VTR_METRICS_TEXTFILE",
            "VTR_PUSHGATEWAY_URL",
            "VTR_USER",
            "VTR_HTTP_TIMEOUT",
            "VTR_MIN_TTL",
            "VTR_SWEEP_BUDGET",
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
    fn bao_twins_win_unless_a_flag_was_given() {
        let mut o = Opts {
            vault_addr: Some("http://vault:8200".into()),
            namespace: Some("v".into()),
            ..Opts::default()
        };
        let env = |k: &str| match k {
            "BAO_ADDR" => Some("http://bao:8200".into()),
            "BAO_NAMESPACE" => Some("".into()),
            "BAO_CAPATH" => Some("/etc/bao/ca".into()),
            _ => None,
        };
        apply_bao_twins(&mut o, &|id| id == "capath", &env);
        assert_eq!(o.vault_addr.as_deref(), Some("http://bao:8200"));
        // Present but empty still wins (then means unset), as ReadBaoVariable.
        assert_eq!(o.namespace.as_deref(), Some(""));
        // A flag beats both.
        assert_eq!(o.capath, None);
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
