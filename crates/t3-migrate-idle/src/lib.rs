//! `t3-migrate-idle`: drain deferred t3-serve restarts overnight, only when the user is idle.
//!
//! Flow: cli → config (validated once) → lock → sibling/freeze checks → per marker: validate,
//! systemctl facts, idle gate as the user (decide) → act (clear / backup + safe restart) →
//! report (lines, `--json`, metrics) → exit code (0 done/frozen/nothing, 1 restart failed and
//! recovery ran, 2 config/precondition error).

pub mod asuser;
pub mod cli;
pub mod config;
pub mod decide;
pub mod entry;
pub mod facts;
pub mod markers;
pub mod metrics;
pub mod report;
pub mod restart;
pub mod status;
pub mod sys;

use crate::asuser::UserInfo;
use crate::config::Config;
use crate::decide::{Action, Verdict};
use crate::facts::Facts;
use crate::report::{self as rp, Log};
use crate::restart::Ctx;
use crate::sys::{Commands, World};
use serde::Serialize;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Siblings whose activity makes a pass stand down (§4 step 3).
pub const SIBLINGS: [&str; 2] = ["t3-autoupdate.service", "t3-watchdog.service"];

/// How a pass ended (metrics `last_result`, JSON `result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PassResult {
    Ok,
    Frozen,
    Failed,
    Error,
    /// Lock busy or a sibling unit running.
    Skipped,
}

impl PassResult {
    pub fn as_str(self) -> &'static str {
        match self {
            PassResult::Ok => "ok",
            PassResult::Frozen => "frozen",
            PassResult::Failed => "failed",
            PassResult::Error => "error",
            PassResult::Skipped => "skipped",
        }
    }
}

/// Gate reading as reported.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GateReport {
    pub active: Option<i64>,
    pub idle_seconds: Option<i64>,
    pub verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One marker in the summary / status.
#[derive(Debug, Clone, Serialize)]
pub struct MarkerReport {
    pub user: String,
    pub target: Option<String>,
    pub marker_age_seconds: Option<i64>,
    pub unit_active: Option<bool>,
    pub unit_started: Option<String>,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl MarkerReport {
    fn new(user: String) -> Self {
        MarkerReport {
            user,
            target: None,
            marker_age_seconds: None,
            unit_active: None,
            unit_started: None,
            action: Action::Ignore,
            gate: None,
            reason: None,
        }
    }
}

/// The `--json` document of a pass (§10.4).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub result: PassResult,
    pub exit_code: i32,
    pub dry_run: bool,
    pub frozen: bool,
    pub migrated: u32,
    pub skipped: u32,
    pub markers: Vec<MarkerReport>,
}

/// Entry point used by `main`: exit code.
pub fn run(cli: cli::Cli) -> i32 {
    if let Some(cli::Command::AsUser { op }) = &cli.command {
        return asuser::child_main(op);
    }
    let cfg = match Config::from_cli(&cli, &|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("t3-migrate-idle: ERROR: {e}");
            return 2;
        }
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("t3-migrate-idle: ERROR: must run as root");
        return 2;
    }
    let world = sys::RealWorld;
    let cmds = commands(&cfg);
    if let Some(cli::Command::Status) = &cli.command {
        return status::status(&cfg, &world, &cmds);
    }
    let log = Log::new(&cfg.syslog_socket, cfg.json);
    let summary = drain(&cfg, &log, &world, &cmds);
    metrics::publish(&cfg, &log, &world, &summary);
    if cfg.json {
        println!(
            "{}",
            serde_json::to_string(&summary).unwrap_or_else(|_| "{}".into())
        );
    }
    summary.exit_code
}

/// External commands as configured.
pub fn commands(cfg: &Config) -> Commands {
    Commands {
        path: cfg.path.clone(),
        systemctl_timeout: cfg.systemctl_timeout,
        version_timeout: cfg.version_timeout,
        npm_timeout: cfg.npm_timeout,
    }
}

/// §4 step 4: any directory entry at FREEZE_FILE (a dangling symlink or a stat error other
/// than "not found" counts too).
pub fn is_frozen(p: &Path) -> bool {
    match std::fs::symlink_metadata(p) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

/// last_good (§4 step 6): file content without whitespace; missing/empty → installed.
pub fn last_good(cfg: &Config, installed: &mut Installed) -> String {
    let lg = std::fs::read(&cfg.last_good_file)
        .map(|b| decide::strip_ws(&String::from_utf8_lossy(&b)))
        .unwrap_or_default();
    if lg.is_empty() {
        installed.get().unwrap_or_default()
    } else {
        lg
    }
}

/// `t3 --version`, asked at most once per pass.
pub struct Installed<'a> {
    cmds: &'a Commands,
    cached: Option<Option<String>>,
}

impl<'a> Installed<'a> {
    pub fn new(cmds: &'a Commands) -> Self {
        Installed { cmds, cached: None }
    }
    pub fn get(&mut self) -> Option<String> {
        if self.cached.is_none() {
            self.cached = Some(self.cmds.installed_version());
        }
        self.cached.clone().flatten()
    }
}

/// §4 6f: the target version of a marker; Err(()) = no valid target (fail closed).
pub fn target_of(
    log: Option<&Log>,
    u: &str,
    content: &[u8],
    installed: &mut Installed,
) -> Option<String> {
    let t = decide::strip_ws(&String::from_utf8_lossy(content));
    if !t.is_empty() && decide::valid_version(&t) {
        return Some(t);
    }
    let ver = installed.get().filter(|v| decide::valid_version(v));
    if !t.is_empty() {
        if let (Some(l), Some(v)) = (log, ver.as_ref()) {
            l.line(&rp::invalid_marker_version(u, v));
        }
    }
    ver
}

/// §5 gate for one user: the verdict plus its report.
pub fn gate(cfg: &Config, world: &dyn World, user: &UserInfo) -> (Verdict, GateReport) {
    let reading = asuser::read_gate(
        &cfg.helper_exe,
        user,
        &cfg.db_path(&user.name),
        cfg.gate_timeout,
    );
    let v = decide::verdict(
        reading.as_ref().map_err(String::as_str),
        world.now(),
        cfg.quiet,
    );
    let active = reading.as_ref().ok().map(|r| r.active);
    let rep = match &v {
        Verdict::Safe { idle } => GateReport {
            active,
            idle_seconds: *idle,
            verdict: "safe",
            error: None,
        },
        Verdict::NotIdle { idle, .. } => GateReport {
            active,
            idle_seconds: *idle,
            verdict: "not-idle",
            error: None,
        },
        Verdict::Error(e) => GateReport {
            active,
            idle_seconds: None,
            verdict: "error",
            error: Some(e.clone()),
        },
    };
    (v, rep)
}

fn fmt_start(t: Option<i64>) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(t?).ok()?;
    Some(homelab_core::log::format_utc(t))
}

/// One drain pass (§4). Logging through `log`; the returned summary carries the exit code.
pub fn drain(cfg: &Config, log: &Log, world: &dyn World, cmds: &Commands) -> Summary {
    let mut s = Summary {
        result: PassResult::Ok,
        exit_code: 0,
        dry_run: cfg.dry_run,
        frozen: false,
        migrated: 0,
        skipped: 0,
        markers: Vec::new(),
    };
    let end = |mut s: Summary, r: PassResult, code: i32| {
        s.result = r;
        s.exit_code = code;
        s
    };
    // 2. lock
    let _lock = match homelab_core::fsx::try_lock(&cfg.lock_file) {
        Ok(g) => g,
        Err(homelab_core::fsx::LockError::Busy) => {
            log.line(&rp::lock_busy());
            return end(s, PassResult::Skipped, 0);
        }
        Err(homelab_core::fsx::LockError::Io(e)) => {
            log.line(&format!(
                "ERROR: cannot take lock {}: {e}",
                cfg.lock_file.display()
            ));
            return end(s, PassResult::Error, 2);
        }
    };
    // 3. siblings
    for sib in SIBLINGS {
        let answer = cmds.sibling_show(sib);
        match decide::sibling(answer.as_deref().map_err(String::as_str)) {
            decide::Sibling::Quiet => {}
            decide::Sibling::InProgress(seen) => {
                log.line(&rp::sibling_running(sib, &seen));
                return end(s, PassResult::Skipped, 0);
            }
            decide::Sibling::Unknown(seen) => {
                log.line(&rp::sibling_unknown(sib, &seen));
                return end(s, PassResult::Skipped, 0);
            }
        }
    }
    // 4. freeze
    if is_frozen(&cfg.freeze_file) {
        log.line(&rp::m1(&cfg.freeze_file));
        s.frozen = true;
        return end(s, PassResult::Frozen, 0);
    }
    // 5. DEFER_DIR
    if !cfg.defer_dir.is_dir() {
        return end(s, PassResult::Ok, 0);
    }
    let names = match markers::list(&cfg.defer_dir) {
        Ok(n) => n,
        Err(e) => {
            log.line(&format!(
                "ERROR: cannot read {}: {e}",
                cfg.defer_dir.display()
            ));
            return end(s, PassResult::Error, 2);
        }
    };
    // 6.
    let mut installed = Installed::new(cmds);
    let lg = last_good(cfg, &mut installed);
    let ctx = Ctx {
        cfg,
        log,
        world,
        cmds,
    };
    let now = world.now().unix_timestamp();
    // 6a for every entry first (in the main thread: a FIFO never blocks, nothing else runs),
    // then the read-only facts of the valid ones, gathered concurrently (see facts.rs).
    let entries = read_entries(cfg, &names);
    let todo: Vec<(String, i64)> = entries
        .iter()
        .filter_map(|e| e.marker.as_ref().ok().map(|(u, m)| (u.clone(), m.mtime)))
        .collect();
    let mut prefetched = facts::gather_all(cfg, world, cmds, &todo).into_iter();
    for e in entries {
        let path = cfg.defer_dir.join(&e.name);
        let mut rep = MarkerReport::new(e.shown.clone());
        // 6a
        let (u, marker) = match e.marker {
            Ok(x) => x,
            Err(r) => {
                log.line(&rp::ignoring(&e.shown, &r));
                rep.reason = Some(r);
                s.skipped += 1;
                s.markers.push(rep);
                continue;
            }
        };
        let Some(mut f) = prefetched.next() else {
            break;
        };
        if !cfg.dry_run && f.would_migrate() {
            // A restart is decided on a fresh reading only.
            f = facts::gather(cfg, world, cmds, &u, marker.mtime);
        }
        rep.marker_age_seconds = Some(now - marker.mtime);
        // 6b-6e on the facts
        let (user, start, verdict, g) = match f {
            Facts::NotActive => {
                rep.unit_active = Some(false);
                rep.action = Action::Clear;
                clear(cfg, log, &u, &path, &marker, &rp::m2_reason(&u));
                s.markers.push(rep);
                continue;
            }
            Facts::QueryFailed(r) => {
                log.line(&rp::cannot_query(&u, &r));
                rep.action = Action::SkipError;
                rep.reason = Some(r);
                s.skipped += 1;
                s.markers.push(rep);
                continue;
            }
            Facts::NoUser(r) => {
                rep.unit_active = Some(true);
                log.line(&rp::ignoring(&u, &r));
                rep.reason = Some(r);
                s.skipped += 1;
                s.markers.push(rep);
                continue;
            }
            Facts::Obsolete { start, after } => {
                rep.unit_active = Some(true);
                rep.unit_started = fmt_start(Some(start));
                rep.action = Action::Clear;
                clear(cfg, log, &u, &path, &marker, &rp::m3_reason(&u, after));
                s.markers.push(rep);
                continue;
            }
            Facts::Gate {
                user,
                start,
                verdict,
                report,
            } => (user, start, verdict, report),
        };
        rep.unit_active = Some(true);
        rep.unit_started = fmt_start(start);
        if start.is_none() {
            log.line(&rp::no_start_time(&u));
        }
        rep.gate = Some(g);
        let idle = match verdict {
            Verdict::Safe { idle } => idle,
            Verdict::NotIdle { active, idle } => {
                log.line(&rp::not_idle(&u, active, idle, cfg.quiet));
                rep.action = Action::SkipNotIdle;
                s.skipped += 1;
                s.markers.push(rep);
                continue;
            }
            Verdict::Error(e) => {
                log.line(&rp::gate_error(&u, &e));
                rep.action = Action::SkipError;
                rep.reason = Some(e);
                s.skipped += 1;
                s.markers.push(rep);
                continue;
            }
        };
        // 6f
        let Some(target) = target_of(Some(log), &u, &marker.content, &mut installed) else {
            log.line(&rp::no_target(&u));
            rep.action = Action::SkipError;
            rep.reason = Some("no valid target version".into());
            s.skipped += 1;
            s.markers.push(rep);
            continue;
        };
        rep.target = Some(target.clone());
        rep.action = Action::Migrate;
        // 6g
        if cfg.dry_run {
            log.line(&rp::m4(&u, &target));
            s.markers.push(rep);
            continue;
        }
        // 4.3 freeze re-check before a restart
        if is_frozen(&cfg.freeze_file) {
            log.line(&rp::m1(&cfg.freeze_file));
            s.frozen = true;
            rep.action = Action::Ignore;
            s.markers.push(rep);
            return end(s, PassResult::Frozen, 0);
        }
        // 6h
        let backup = match restart::backup_user(&ctx, &user, &target) {
            Ok(b) => b,
            Err(e) => {
                log.line(&rp::backup_detail(&u, &e));
                log.line(&rp::m5(&u));
                rep.action = Action::SkipError;
                rep.reason = Some(e);
                s.skipped += 1;
                s.markers.push(rep);
                continue;
            }
        };
        // 6i
        if restart::safe_restart_unit(&ctx, &user, &target, &lg, Some(&backup)) {
            log.line(&rp::m6(&u, &target));
            log.line(&rp::idle_note(&u, idle));
            delete(log, &u, &path, &marker);
            rep.action = Action::Migrated;
            s.migrated += 1;
            s.markers.push(rep);
        } else {
            log.line(&rp::m7(&u));
            rep.action = Action::Failed;
            s.markers.push(rep);
            s.frozen = is_frozen(&cfg.freeze_file);
            return end(s, PassResult::Failed, 1);
        }
    }
    // 7.
    log.line(&rp::m8(s.migrated, s.skipped));
    end(s, PassResult::Ok, 0)
}

/// One DEFER_DIR entry after §4 6a: its user name and marker, or why it is ignored.
pub struct Entry {
    pub name: std::ffi::OsString,
    pub shown: String,
    pub marker: Result<(String, markers::Marker), String>,
}

/// §4 6a over the listed names (name pattern, regular file, ≤ 256 bytes read).
pub fn read_entries(cfg: &Config, names: &[std::ffi::OsString]) -> Vec<Entry> {
    names
        .iter()
        .map(|name| {
            let shown = decide::shown_name(name.as_bytes());
            let marker = match decide::valid_user_name(name.as_bytes()) {
                Err(r) => Err(r.to_string()),
                Ok(u) => {
                    let path = cfg.defer_dir.join(name);
                    markers::entry_problem(&path)
                        .map_or_else(|| markers::read(&path).map_err(|e| e.to_string()), Err)
                        .map(|m| (u.to_string(), m))
                }
            };
            Entry {
                name: name.clone(),
                shown,
                marker,
            }
        })
        .collect()
}

/// M2/M3 (or their dry-run form, §4.1) and the compare-then-delete.
fn clear(cfg: &Config, log: &Log, u: &str, path: &Path, seen: &markers::Marker, reason: &str) {
    if cfg.dry_run {
        log.line(&rp::dry_clear(u, reason));
        return;
    }
    log.line(&rp::m2_m3(u, reason));
    delete(log, u, path, seen);
}

fn delete(log: &Log, u: &str, path: &Path, seen: &markers::Marker) {
    match markers::delete_if_unchanged(path, seen) {
        markers::Delete::Deleted | markers::Delete::AlreadyGone => {}
        markers::Delete::Changed => log.line(&rp::marker_changed(u)),
        markers::Delete::Failed(r) => log.line(&rp::delete_failed(u, &r)),
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;
    use std::time::Duration;

    /// A PATH directory whose `t3 --version` prints `t3 v0.0.34`, written once (no rewrite of
    /// an executable while other tests spawn), and an empty one (no t3 at all).
    fn dirs() -> &'static (tempfile::TempDir, tempfile::TempDir) {
        static D: OnceLock<(tempfile::TempDir, tempfile::TempDir)> = OnceLock::new();
        D.get_or_init(|| {
            use std::os::unix::fs::PermissionsExt;
            let with = tempfile::tempdir().unwrap();
            let t3 = with.path().join("t3");
            std::fs::write(&t3, "#!/bin/sh\necho 't3 v0.0.34'\n").unwrap();
            std::fs::set_permissions(&t3, std::fs::Permissions::from_mode(0o755)).unwrap();
            (with, tempfile::tempdir().unwrap())
        })
    }

    fn cmds(dir: &Path) -> Commands {
        Commands {
            path: Some(dir.as_os_str().to_owned()),
            systemctl_timeout: Duration::from_secs(5),
            version_timeout: Duration::from_secs(5),
            npm_timeout: Duration::from_secs(5),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// §4 6f over any marker content (≤ 256 bytes as read): the target is the content minus
        /// whitespace when that is a valid version, else the installed version, and with no
        /// installed version there is no target (fail closed).
        #[test]
        fn marker_target_any_content(
            content in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..=256),
                "[ \n]{0,3}[0-9A-Za-z][0-9A-Za-z.+_-]{0,40}[ \t\n]{0,3}".prop_map(String::into_bytes),
            ],
        ) {
            let (with, without) = dirs();
            let stripped = decide::strip_ws(&String::from_utf8_lossy(&content));
            let valid = !stripped.is_empty() && decide::valid_version(&stripped);
            let c = cmds(with.path());
            let got = target_of(None, "u", &content, &mut Installed::new(&c));
            prop_assert_eq!(got, Some(if valid { stripped.clone() } else { "0.0.34".to_string() }));
            let c = cmds(without.path());
            let got = target_of(None, "u", &content, &mut Installed::new(&c));
            prop_assert_eq!(got, valid.then_some(stripped));
        }
    }
}
