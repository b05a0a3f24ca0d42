//! `t3-migrate-idle status [--json]` (§10.1): read-only. Nothing is deleted, restarted or sent
//! to syslog; the gate still reads each DB as its owner.

use crate::config::Config;
use crate::decide::{self, Action, Verdict};
use crate::facts::{self, Facts};
use crate::sys::{Commands, World};
use crate::{markers, report as rp, Installed, MarkerReport};
use serde::Serialize;
use std::os::unix::fs::MetadataExt;

#[derive(Debug, Serialize)]
pub struct Freeze {
    pub path: String,
    pub present: bool,
    pub age_seconds: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub freeze: Freeze,
    pub installed_version: Option<String>,
    pub last_good: String,
    pub quiet_seconds: u64,
    pub defer_dir: String,
    pub markers: Vec<MarkerReport>,
}

/// Gather the status document.
pub fn gather(cfg: &Config, world: &dyn World, cmds: &Commands) -> Result<Status, String> {
    let now = world.now().unix_timestamp();
    let present = crate::is_frozen(&cfg.freeze_file);
    let age = std::fs::symlink_metadata(&cfg.freeze_file)
        .ok()
        .map(|m| now - m.mtime());
    let mut installed = Installed::new(cmds);
    let iv = installed.get();
    let lg = crate::last_good(cfg, &mut installed);
    let mut out = Vec::new();
    let names = if cfg.defer_dir.is_dir() {
        markers::list(&cfg.defer_dir)
            .map_err(|e| format!("cannot read {}: {e}", cfg.defer_dir.display()))?
    } else {
        Vec::new()
    };
    let entries = crate::read_entries(cfg, &names);
    let todo: Vec<(String, i64)> = entries
        .iter()
        .filter_map(|e| e.marker.as_ref().ok().map(|(u, m)| (u.clone(), m.mtime)))
        .collect();
    let mut facts = facts::gather_all(cfg, world, cmds, &todo).into_iter();
    for e in entries {
        let mut rep = MarkerReport::new(e.shown.clone());
        let (u, marker) = match e.marker {
            Ok(x) => x,
            Err(r) => {
                rep.reason = Some(r);
                out.push(rep);
                continue;
            }
        };
        let Some(f) = facts.next() else { break };
        rep.marker_age_seconds = Some(now - marker.mtime);
        let t = decide::strip_ws(&String::from_utf8_lossy(&marker.content));
        rep.target = if decide::valid_version(&t) {
            Some(t)
        } else {
            iv.clone().filter(|v| decide::valid_version(v))
        };
        match f {
            Facts::NotActive => {
                rep.unit_active = Some(false);
                rep.action = Action::Clear;
                rep.reason = Some(rp::m2_reason(&u));
            }
            Facts::QueryFailed(r) => {
                rep.action = Action::SkipError;
                rep.reason = Some(r);
            }
            Facts::NoUser(r) => {
                rep.unit_active = Some(true);
                rep.reason = Some(r);
            }
            Facts::Obsolete { start, after } => {
                rep.unit_active = Some(true);
                rep.unit_started = super::fmt_start(Some(start));
                rep.action = Action::Clear;
                rep.reason = Some(rp::m3_reason(&u, after));
            }
            Facts::Gate {
                start,
                verdict,
                report,
                ..
            } => {
                rep.unit_active = Some(true);
                rep.unit_started = super::fmt_start(start);
                rep.gate = Some(report);
                rep.action = match verdict {
                    Verdict::Safe { .. } if rep.target.is_some() => Action::Migrate,
                    Verdict::Safe { .. } => {
                        rep.reason = Some("no valid target version".into());
                        Action::SkipError
                    }
                    Verdict::NotIdle { .. } => Action::SkipNotIdle,
                    Verdict::Error(e) => {
                        rep.reason = Some(e);
                        Action::SkipError
                    }
                };
            }
        }
        out.push(rep);
    }
    Ok(Status {
        freeze: Freeze {
            path: cfg.freeze_file.display().to_string(),
            present,
            age_seconds: if present { age } else { None },
        },
        installed_version: iv,
        last_good: lg,
        quiet_seconds: cfg.quiet,
        defer_dir: cfg.defer_dir.display().to_string(),
        markers: out,
    })
}

/// Human rendering.
pub fn render(s: &Status) -> String {
    let mut o = String::new();
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    match (s.freeze.present, s.freeze.age_seconds) {
        (true, Some(a)) => o.push_str(&format!("freeze: {} present (age {a}s)\n", s.freeze.path)),
        (true, None) => o.push_str(&format!("freeze: {} present\n", s.freeze.path)),
        (false, _) => o.push_str(&format!("freeze: {} absent\n", s.freeze.path)),
    }
    o.push_str(&format!("installed: {}\n", opt(&s.installed_version)));
    o.push_str(&format!(
        "last_good: {}\n",
        if s.last_good.is_empty() {
            "unknown"
        } else {
            &s.last_good
        }
    ));
    o.push_str(&format!("quiet: {}s\n", s.quiet_seconds));
    o.push_str(&format!(
        "markers in {}: {}\n",
        s.defer_dir,
        s.markers.len()
    ));
    for m in &s.markers {
        let mut l = format!(
            "  {}: action={} target={} marker_age={}",
            m.user,
            m.action.as_str(),
            opt(&m.target),
            m.marker_age_seconds
                .map_or_else(|| "unknown".into(), |a| format!("{a}s"))
        );
        if let Some(a) = m.unit_active {
            l.push_str(&format!(" unit={}", if a { "active" } else { "inactive" }));
        }
        if let Some(st) = &m.unit_started {
            l.push_str(&format!(" started={st}"));
        }
        if let Some(g) = &m.gate {
            l.push_str(&format!(
                " gate=[active={} idle={} verdict={}]",
                g.active.map_or_else(|| "?".into(), |a| a.to_string()),
                g.idle_seconds
                    .map_or_else(|| "none".into(), |i| format!("{i}s")),
                g.verdict
            ));
        }
        if let Some(r) = &m.reason {
            l.push_str(&format!(" ({r})"));
        }
        o.push_str(&l);
        o.push('\n');
    }
    o
}

/// The subcommand: exit 0, or 2 when DEFER_DIR cannot be read.
pub fn status(cfg: &Config, world: &dyn World, cmds: &Commands) -> i32 {
    match gather(cfg, world, cmds) {
        Ok(s) => {
            if cfg.json {
                println!(
                    "{}",
                    serde_json::to_string(&s).unwrap_or_else(|_| "{}".into())
                );
            } else {
                print!("{}", render(&s));
            }
            0
        }
        Err(e) => {
            eprintln!("t3-migrate-idle: ERROR: {e}");
            2
        }
    }
}
