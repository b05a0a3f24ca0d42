//! The byte-exact log catalogue (§3.3), the logger (§3.1: syslog `<13>t3-migrate-idle: <msg>`
//! plus a `t3-migrate-idle: <msg>` line on stdout, stderr under `--json`), the JSON summary
//! (§10.4) and the metrics (§10.2).

use homelab_core::log::{Channel, Logger, Severity};
use std::path::Path;
use std::sync::Mutex;

pub const IDENT: &str = "t3-migrate-idle";

/// `t3-serve@<u>.service`
pub fn unit(u: &str) -> String {
    format!("t3-serve@{u}.service")
}

// ---- catalogue (§3.3); `—` is U+2014 ----
pub fn m1(freeze: &Path) -> String {
    format!(
        "FROZEN: {} present — not draining deferrals",
        freeze.display()
    )
}
pub fn m2_reason(u: &str) -> String {
    format!("{} not active", unit(u))
}
pub fn m3_reason(u: &str, n: i64) -> String {
    format!("{} already restarted {n}s after the deferral", unit(u))
}
pub fn m2_m3(u: &str, reason: &str) -> String {
    format!("clearing marker for {u}: {reason}")
}
pub fn dry_clear(u: &str, reason: &str) -> String {
    format!("DRY_RUN: would clear marker for {u}: {reason}")
}
pub fn m4(u: &str, target: &str) -> String {
    format!(
        "DRY_RUN: would migrate {} -> {target} (idle gate satisfied)",
        unit(u)
    )
}
pub fn m5(u: &str) -> String {
    format!("WARN: pre-restart backup failed for {u} — skipping (fail closed)")
}
pub fn m6(u: &str, target: &str) -> String {
    format!("migrated {} -> {target} (idle restart)", unit(u))
}
pub fn m7(u: &str) -> String {
    format!(
        "migrate FAILED for {} — recovery+freeze handled by safe_restart_unit; stopping drain",
        unit(u)
    )
}
pub fn m8(m: u32, s: u32) -> String {
    format!("idle-migrate pass complete (migrated={m} skipped={s})")
}
pub fn r1(u: &str) -> String {
    format!("WARN: systemctl restart {} returned non-zero", unit(u))
}
pub fn r2(u: &str) -> String {
    format!("no authentik mapping for {u} — skipping dispatch verify")
}
pub fn r3(u: &str, target: &str) -> String {
    format!(
        "restarted {} -> {target} (pairing verified via dispatch)",
        unit(u)
    )
}
pub fn r4(u: &str, target: &str) -> String {
    format!("HEALTH-CHECK FAILED: {u} pairing broken AFTER restart onto {target} — rolling back + restoring its DB")
}
pub fn r5(target: &str, lg: &str) -> String {
    format!("rolling back binary {target} -> {lg}")
}
pub fn r6(lg: &str) -> String {
    format!("rolled back to {lg}")
}
pub fn r7(lg: &str) -> String {
    format!(
        "ROLLBACK FAILED — could not reinstall t3@{lg} (t3 may be broken; manual fix per runbook)"
    )
}
/// §7.4b: the one new line that deliberately matches the critical alert.
pub const NO_LAST_GOOD: &str =
    "ROLLBACK FAILED — no valid last-good version recorded (manual fix per runbook)";
pub fn r8(u: &str, backup: &Path) -> String {
    format!("restored {u} state.sqlite from {}", backup.display())
}
pub fn r9(freeze: &Path, u: &str, target: &str, lg: &str) -> String {
    format!(
        "FROZEN ({}) after {u} failed on {target}; last_good stays {lg} — investigate, then remove the freeze file to resume",
        freeze.display()
    )
}

// ---- new lines (N*) ----
pub fn lock_busy() -> String {
    "skipping: another t3-migrate-idle pass is running".into()
}
pub fn sibling_running(unit: &str, seen: &str) -> String {
    format!("skipping: {unit} is running ({seen})")
}
/// Issue 15 item 3: an unknown sibling state stands down (fail closed).
pub fn sibling_unknown(unit: &str, seen: &str) -> String {
    format!("skipping: cannot tell whether {unit} is running ({seen}) — standing down")
}
pub fn ignoring(name: &str, reason: &str) -> String {
    format!("WARN: ignoring marker {name}: {reason}")
}
pub fn cannot_query(u: &str, reason: &str) -> String {
    format!("WARN: cannot query {} — skipping ({reason})", unit(u))
}
pub fn no_start_time(u: &str) -> String {
    format!("WARN: cannot read start time of {}", unit(u))
}
pub fn not_idle(u: &str, active: i64, idle: Option<i64>, quiet: u64) -> String {
    let i = idle.map_or_else(|| "none".to_string(), |i| i.to_string());
    format!(
        "skipping {}: not idle (active_turns={active} idle={i}s quiet={quiet}s)",
        unit(u)
    )
}
pub fn gate_error(u: &str, reason: &str) -> String {
    format!(
        "skipping {}: idle gate error — fail closed ({reason})",
        unit(u)
    )
}
pub fn invalid_marker_version(u: &str, ver: &str) -> String {
    format!("WARN: marker {u} holds an invalid version — using installed {ver}")
}
pub fn no_target(u: &str) -> String {
    format!("WARN: cannot determine target version for {u} — skipping (fail closed)")
}
pub fn delete_failed(u: &str, reason: &str) -> String {
    format!("WARN: could not delete marker {u}: {reason}")
}
pub fn marker_changed(u: &str) -> String {
    format!("WARN: marker {u} changed during the pass — kept")
}
pub fn stop_failed(u: &str) -> String {
    format!("WARN: could not stop {} — DB restore skipped", unit(u))
}
pub fn no_backup(u: &str) -> String {
    format!("WARN: no pre-restart backup found for {u} — DB not restored")
}
pub fn restore_failed(u: &str, reason: &str) -> String {
    format!("WARN: DB restore failed for {u}: {reason}")
}
pub fn start_failed(u: &str) -> String {
    format!("WARN: systemctl start {} returned non-zero", unit(u))
}
pub fn freeze_create_failed(p: &Path, reason: &str) -> String {
    format!(
        "WARN: could not create freeze file {}: {reason}",
        p.display()
    )
}
pub fn backup_detail(u: &str, reason: &str) -> String {
    format!("WARN: backup of {u}: {reason}")
}
pub fn metrics_failed(what: &str, reason: &str) -> String {
    format!("WARN: metrics {what} failed: {reason}")
}
pub fn idle_note(u: &str, idle: Option<i64>) -> String {
    match idle {
        Some(i) => format!("{} was idle {}m", unit(u), i / 60),
        None => format!("{} had no threads", unit(u)),
    }
}

/// Emits every line twice (§3.1). Tests may capture the messages instead.
pub struct Log {
    logger: Logger,
    capture: Option<Mutex<Vec<String>>>,
}

impl Log {
    /// Production: syslog to `socket`, human copy to stdout (stderr with `--json`).
    pub fn new(socket: &Path, json: bool) -> Log {
        let ch = if json {
            Channel::Stderr
        } else {
            Channel::Stdout
        };
        Log {
            logger: Logger::with_syslog_path(IDENT, ch, Some(socket.to_path_buf())),
            capture: None,
        }
    }

    /// In-memory only (library tests).
    pub fn capture() -> Log {
        Log {
            logger: Logger::with_syslog_path(IDENT, Channel::Discard, None),
            capture: Some(Mutex::new(Vec::new())),
        }
    }

    pub fn line(&self, msg: &str) {
        let _ = self
            .logger
            .emit(Severity::Notice, &format!("{IDENT}: {msg}"), msg);
        if let Some(c) = &self.capture {
            c.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(msg.to_string());
        }
    }

    /// Captured messages (empty for production loggers).
    pub fn lines(&self) -> Vec<String> {
        self.capture
            .as_ref()
            .map(|c| c.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .unwrap_or_default()
    }
}

/// Substrings the Loki alert rules match (§3.2).
pub const ALERT_WORDS: [&str; 4] = ["FROZEN", "rolling back", "rolled back", "ROLLBACK FAILED"];

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    // §9.2.11: every catalogue line byte-exact.
    #[test]
    fn catalogue_is_byte_exact() {
        let f = PathBuf::from("/etc/t3-autoupdate.freeze");
        let b =
            PathBuf::from("/var/backups/t3-state/wizard/state-prebump-0.1-20260621-010203.sqlite");
        let cases: Vec<(String, &str)> = vec![
            (m1(&f), "FROZEN: /etc/t3-autoupdate.freeze present \u{2014} not draining deferrals"),
            (m2_m3("wizard", &m2_reason("wizard")), "clearing marker for wizard: t3-serve@wizard.service not active"),
            (m2_m3("wizard", &m3_reason("wizard", 42)), "clearing marker for wizard: t3-serve@wizard.service already restarted 42s after the deferral"),
            (m4("wizard", "0.1"), "DRY_RUN: would migrate t3-serve@wizard.service -> 0.1 (idle gate satisfied)"),
            (m5("wizard"), "WARN: pre-restart backup failed for wizard \u{2014} skipping (fail closed)"),
            (m6("wizard", "0.1"), "migrated t3-serve@wizard.service -> 0.1 (idle restart)"),
            (m7("wizard"), "migrate FAILED for t3-serve@wizard.service \u{2014} recovery+freeze handled by safe_restart_unit; stopping drain"),
            (m8(1, 2), "idle-migrate pass complete (migrated=1 skipped=2)"),
            (r1("wizard"), "WARN: systemctl restart t3-serve@wizard.service returned non-zero"),
            (r2("wizard"), "no authentik mapping for wizard \u{2014} skipping dispatch verify"),
            (r3("wizard", "0.1"), "restarted t3-serve@wizard.service -> 0.1 (pairing verified via dispatch)"),
            (r4("wizard", "0.1"), "HEALTH-CHECK FAILED: wizard pairing broken AFTER restart onto 0.1 \u{2014} rolling back + restoring its DB"),
            (r5("0.1", "0.0"), "rolling back binary 0.1 -> 0.0"),
            (r6("0.0"), "rolled back to 0.0"),
            (r7("0.0"), "ROLLBACK FAILED \u{2014} could not reinstall t3@0.0 (t3 may be broken; manual fix per runbook)"),
            (r8("wizard", &b), "restored wizard state.sqlite from /var/backups/t3-state/wizard/state-prebump-0.1-20260621-010203.sqlite"),
            (r9(&f, "wizard", "0.1", "0.0"), "FROZEN (/etc/t3-autoupdate.freeze) after wizard failed on 0.1; last_good stays 0.0 \u{2014} investigate, then remove the freeze file to resume"),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    // §9.2.11: no new line carries an alert substring (except NO_LAST_GOOD).
    #[test]
    fn new_lines_do_not_alert() {
        let p = PathBuf::from("/x");
        let new = [
            lock_busy(),
            sibling_running(
                "t3-autoupdate.service",
                "Type=oneshot ActiveState=activating SubState=start",
            ),
            sibling_unknown("t3-autoupdate.service", "Type=? ActiveState=? SubState=?"),
            ignoring("x", "y"),
            cannot_query("u", "r"),
            no_start_time("u"),
            not_idle("u", 1, None, 900),
            gate_error("u", "r"),
            invalid_marker_version("u", "1"),
            no_target("u"),
            delete_failed("u", "r"),
            marker_changed("u"),
            stop_failed("u"),
            no_backup("u"),
            restore_failed("u", "r"),
            start_failed("u"),
            freeze_create_failed(&p, "r"),
            backup_detail("u", "r"),
            metrics_failed("push", "r"),
            idle_note("u", Some(61)),
            dry_clear("u", &m2_reason("u")),
        ];
        for l in new {
            for w in ALERT_WORDS {
                assert!(!l.contains(w), "{l:?} contains {w:?}");
            }
        }
        assert!(NO_LAST_GOOD.contains("ROLLBACK FAILED"));
    }
}
