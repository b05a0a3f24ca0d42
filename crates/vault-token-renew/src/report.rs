//! The log line catalogue (spec §6, byte-exact), the reporter that appends lines to the log
//! file and copies them to stderr (§4.1, §6.2), and the `--json` summary (§8.3).

use crate::quote::q;
use homelab_core::log::{timestamp, Channel, Logger};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// syslog identifier of the original script (kept for journal/Loki rules).
pub const IDENT: &str = "vault-token-renew";

/// Sweep result text (§5.5; issue 15 item 7 adds the list-denied-but-minted-revoked and the
/// time-budget forms, both keeping the `revoked <N> stale periodic token(s)` start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    Skipped,
    Revoked(u64),
    /// The LIST was denied, but remembered minted accessors were revoked.
    ListDenied(u64),
    /// The full scan stopped at its time budget with `left` of `total` keys unchecked.
    Budget {
        revoked: u64,
        left: u64,
        total: u64,
    },
}

impl Sweep {
    pub fn text(self) -> String {
        match self {
            Sweep::Skipped => "accessor sweep skipped (list denied)".to_string(),
            Sweep::Revoked(n) => format!("revoked {n} stale periodic token(s)"),
            Sweep::ListDenied(n) => {
                format!("revoked {n} stale periodic token(s); accessor list denied")
            }
            Sweep::Budget {
                revoked,
                left,
                total,
            } => format!(
                "revoked {revoked} stale periodic token(s); sweep stopped at its time budget with {left} of {total} accessors unchecked"
            ),
        }
    }
    pub fn count(self) -> u64 {
        match self {
            Sweep::Skipped => 0,
            Sweep::Revoked(n) | Sweep::ListDenied(n) => n,
            Sweep::Budget { revoked, .. } => revoked,
        }
    }
}

// ---- catalogue (texts after `<ts> `) ----

/// L-OK.
pub fn ok(dn: &str, ttl: Option<i64>) -> String {
    let ttl = ttl.map_or_else(|| "?".to_string(), |t| t.to_string());
    format!("OK renewed (dn={dn} ttl={ttl}s)")
}

/// L-HEALED.
pub fn healed(foreign_dn: &str, sweep: Sweep) -> String {
    format!(
        "HEALED: re-minted periodic token from foreign dn={} ({})",
        q(foreign_dn),
        sweep.text()
    )
}

/// Issue 15 item 4 (supersedes spec §7 "renew as usual"): renew-self succeeded but the TTL
/// is under `VTR_MIN_TTL`, so the token will expire although the unit is green.
pub fn not_extended(
    ttl: Option<i64>,
    period: Option<i64>,
    explicit_max_ttl: Option<i64>,
    expires: &str,
    hint: &str,
) -> String {
    let n = |v: Option<i64>| v.map_or_else(|| "?".to_string(), |t| t.to_string());
    format!(
        "FAIL: renewed but not extended: ttl={}s period={}s explicit_max_ttl={}s expires={expires}; re-mint a periodic token. Manual re-mint: {hint}",
        n(ttl),
        n(period),
        n(explicit_max_ttl)
    )
}

/// Renew-self `warnings`, escaped for the end of a line: `q()` quoting plus `:` escaped, so
/// server text can never carry a catalogue prefix (`FAIL:`, `DRIFT:`, `HEALED:`,
/// `OK renewed`) of its own. Empty when there are none.
pub fn warnings_suffix(warnings: &[String]) -> String {
    if warnings.is_empty() {
        return String::new();
    }
    let joined = warnings.join("; ");
    let flat = crate::vault::one_line(&joined, &[]);
    format!("; warnings: {}", q(&flat).replace(':', "\\:"))
}

/// L-MAP.
pub fn unmapped(user: &str, source: &str) -> String {
    format!(
        "FAIL: no policy mapping for OS user {} \u{2014} add it to the user map ({source})",
        q(user)
    )
}

/// L-LOOKUP.
pub fn lookup_failed(err: &str) -> String {
    format!("FAIL: token lookup: {err}")
}

/// L-DRIFT.
pub fn drift_denied(dn: &str, err: &str, hint: &str) -> String {
    format!(
        "DRIFT: ~/.vault-token is dn={} \u{2014} heal denied, foreign token lacks create authority ({err}); investigate what wrote it. Manual re-mint: {hint}",
        q(dn)
    )
}

/// L-DRIFT2.
pub fn drift_failed(dn: &str, err: &str, hint: &str) -> String {
    format!(
        "DRIFT: ~/.vault-token is dn={} \u{2014} heal failed ({err}); will retry next run. Manual re-mint: {hint}",
        q(dn)
    )
}

/// The 5.3c suffix after revoke-self of a minted token that is not written.
pub fn revoke_suffix(r: &Result<(), String>) -> String {
    match r {
        Ok(()) => "; minted token revoked".to_string(),
        Err(e) => format!("; minted token NOT revoked: {e}"),
    }
}

/// L-HLOOKUP.
pub fn heal_lookup_failed(err: &str, suffix: &str) -> String {
    format!("FAIL: heal minted a token but its lookup failed: {err}{suffix}")
}

/// L-HBAD.
pub fn heal_unexpected(dn: &str, csv: &str, suffix: &str) -> String {
    format!(
        "FAIL: heal minted an unexpected token (dn={} policies={}) \u{2014} not writing it{suffix}",
        q(dn),
        q(csv)
    )
}

/// L-RENEW.
pub fn renew_failed(err: &str) -> String {
    format!("FAIL: {err}")
}

pub fn not_renewable(dn: &str) -> String {
    format!(
        "FAIL: token dn={dn} is not renewable \u{2014} not calling renew-self; re-mint per runbook"
    )
}

pub fn write_failed(err: &str, suffix: &str) -> String {
    format!("FAIL: heal could not write ~/.vault-token: {err}{suffix}")
}

pub fn changed_during_heal(suffix: &str) -> String {
    format!("FAIL: ~/.vault-token changed during heal \u{2014} not overwriting{suffix}")
}

pub fn config_failed(e: &impl std::fmt::Display) -> String {
    format!("FAIL: {e}")
}

pub fn skip(lock: &Path) -> String {
    format!(
        "SKIP: another vault-token-renew run holds {}",
        lock.display()
    )
}

// ---- reporter ----

/// Writes `<ts> <TEXT>` lines to the log file and stderr; remembers a failed log write, which
/// turns the exit code into 1 (§6.2).
pub struct Reporter {
    logger: Logger,
    path: PathBuf,
    pub log_failed: bool,
    pub last_line: Option<String>,
}

impl Reporter {
    pub fn new(log_file: &Path) -> Self {
        Reporter {
            logger: Logger::with_syslog_path(IDENT, Channel::File(log_file.to_path_buf()), None),
            path: log_file.to_path_buf(),
            log_failed: false,
            last_line: None,
        }
    }

    pub fn line(&mut self, text: &str) {
        let line = format!("{} {text}", timestamp());
        eprintln!("{line}");
        if let Err(e) = self.logger.write_human(&line) {
            self.log_failed = true;
            eprintln!(
                "WARNING: could not append to log {}: {e} (exit code forced to 1)",
                self.path.display()
            );
        }
        self.last_line = Some(text.to_string());
    }
}

// ---- outcome and --json ----

/// The result label of a run (metrics labels of §8.5; JSON `result` of §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunResult {
    Ok,
    Healed,
    Drift,
    Fail,
    NotRenewable,
}

impl RunResult {
    pub const ALL: [RunResult; 5] = [
        RunResult::Ok,
        RunResult::Healed,
        RunResult::Drift,
        RunResult::Fail,
        RunResult::NotRenewable,
    ];
    /// Metrics label.
    pub fn label(self) -> &'static str {
        match self {
            RunResult::Ok => "ok",
            RunResult::Healed => "healed",
            RunResult::Drift => "drift",
            RunResult::Fail => "fail",
            RunResult::NotRenewable => "not_renewable",
        }
    }
    /// `--json` result (§8.3 has four values; not renewable is a failure).
    pub fn json_word(self) -> &'static str {
        match self {
            RunResult::NotRenewable => "fail",
            r => r.label(),
        }
    }
    pub fn success(self) -> bool {
        matches!(self, RunResult::Ok | RunResult::Healed)
    }
}

/// What a run did, for the exit code, `--json` and metrics.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub result: RunResult,
    pub dn: Option<String>,
    pub ttl: Option<i64>,
    pub period: Option<i64>,
    pub swept: u64,
    /// The logged line text (FAIL/DRIFT) when the run failed.
    pub error: Option<String>,
}

impl Outcome {
    pub fn fail(result: RunResult, text: String) -> Self {
        Outcome {
            result,
            dn: None,
            ttl: None,
            period: None,
            swept: 0,
            error: Some(text),
        }
    }
    pub fn to_json(&self) -> Value {
        json!({
            "result": self.result.json_word(),
            "dn": self.dn,
            "ttl": self.ttl,
            "swept": self.swept,
            "error": self.error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_byte_exact() {
        assert_eq!(
            ok("token-devvm-wizard", Some(2_764_800)),
            "OK renewed (dn=token-devvm-wizard ttl=2764800s)"
        );
        assert_eq!(ok("d", None), "OK renewed (dn=d ttl=?s)");
        assert_eq!(
            healed("token-oidc-vbarzin", Sweep::Revoked(1)),
            "HEALED: re-minted periodic token from foreign dn=token-oidc-vbarzin (revoked 1 stale periodic token(s))"
        );
        assert_eq!(
            healed("a b", Sweep::Skipped),
            "HEALED: re-minted periodic token from foreign dn=a\\ b (accessor sweep skipped (list denied))"
        );
        assert_eq!(
            unmapped("nobody-xyz", "built-in table"),
            "FAIL: no policy mapping for OS user nobody-xyz — add it to the user map (built-in table)"
        );
        assert_eq!(lookup_failed("x"), "FAIL: token lookup: x");
        assert_eq!(
            drift_denied("kubernetes-woodpecker-default", "E", "H"),
            "DRIFT: ~/.vault-token is dn=kubernetes-woodpecker-default — heal denied, foreign token lacks create authority (E); investigate what wrote it. Manual re-mint: H"
        );
        assert_eq!(
            drift_failed("x", "E", "H"),
            "DRIFT: ~/.vault-token is dn=x — heal failed (E); will retry next run. Manual re-mint: H"
        );
        assert_eq!(
            heal_lookup_failed("E", &revoke_suffix(&Ok(()))),
            "FAIL: heal minted a token but its lookup failed: E; minted token revoked"
        );
        assert_eq!(
            heal_unexpected("token-devvm-wizard", "default,vault-admin", &revoke_suffix(&Err("E".into()))),
            "FAIL: heal minted an unexpected token (dn=token-devvm-wizard policies=default\\,vault-admin) — not writing it; minted token NOT revoked: E"
        );
        assert_eq!(renew_failed("E"), "FAIL: E");
        assert_eq!(
            not_renewable("token-devvm-wizard"),
            "FAIL: token dn=token-devvm-wizard is not renewable — not calling renew-self; re-mint per runbook"
        );
        assert_eq!(
            changed_during_heal(""),
            "FAIL: ~/.vault-token changed during heal — not overwriting"
        );
        assert_eq!(
            write_failed("E", ""),
            "FAIL: heal could not write ~/.vault-token: E"
        );
    }

    #[test]
    fn not_extended_and_warnings() {
        assert_eq!(
            not_extended(Some(3600), Some(0), Some(7200), "2026-12-04T20:00:00Z", "H"),
            "FAIL: renewed but not extended: ttl=3600s period=0s explicit_max_ttl=7200s expires=2026-12-04T20:00:00Z; re-mint a periodic token. Manual re-mint: H"
        );
        assert_eq!(warnings_suffix(&[]), "");
        assert_eq!(
            warnings_suffix(&["FAIL: x".into(), "OK renewed".into()]),
            "; warnings: FAIL\\:\\ x\\;\\ OK\\ renewed"
        );
    }

    #[test]
    fn json_words() {
        assert_eq!(RunResult::NotRenewable.json_word(), "fail");
        assert_eq!(RunResult::NotRenewable.label(), "not_renewable");
        let o = Outcome::fail(RunResult::Drift, "DRIFT: x".into());
        assert_eq!(o.to_json()["result"], "drift");
        assert_eq!(o.to_json()["error"], "DRIFT: x");
    }
}
