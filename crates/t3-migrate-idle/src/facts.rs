//! What the world says about one marker, gathered in the order of §4 6b-6e with the same early
//! stops (unit not active → nothing more is asked; no such user → no start time; restarted
//! after the deferral → no gate read). Gathering only reads: systemctl `is-active`/`show`,
//! passwd, and the idle gate run as the user.
//!
//! A pass first gathers the facts of all markers concurrently (a few at a time: each gate read
//! is a separate process scanning one DB, so a 2-core host drains 50 users in about half the
//! time). Acting is sequential and, in a live pass, a marker about to be migrated has its
//! facts gathered again right before the backup, so a restart is only ever decided on a fresh
//! reading. A stale "not idle" only postpones a user to the next tick (fail closed); a stale
//! "inactive"/"restarted after the deferral" is monotonic for the marker (§6.3), so clearing on
//! it is what a fresh read would do too.

use crate::asuser::UserInfo;
use crate::config::Config;
use crate::decide::{self, Verdict};
use crate::report as rp;
use crate::sys::{Active, Commands, World};
use crate::GateReport;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Facts about one marker: where the 6b-6e sequence stopped, with what it saw.
#[derive(Debug, Clone)]
pub enum Facts {
    /// 6b: `is-active` said inactive (exit 1-3).
    NotActive,
    /// 6b: `systemctl` itself failed (exit >= 4, spawn error, timeout).
    QueryFailed(String),
    /// 6c: not in passwd, or uid 0.
    NoUser(String),
    /// 6d: the unit entered "active" `after` seconds after the deferral.
    Obsolete { start: i64, after: i64 },
    /// 6e: the idle gate was read (start time may be unknown).
    Gate {
        user: UserInfo,
        start: Option<i64>,
        verdict: Verdict,
        report: GateReport,
    },
}

impl Facts {
    /// The gate said safe: the only path that goes on to act beyond clearing.
    pub fn would_migrate(&self) -> bool {
        matches!(self, Facts::Gate { verdict, .. } if verdict.is_safe())
    }
}

/// §4 6b-6e for user `u` whose marker has mtime `mtime`.
pub fn gather(cfg: &Config, world: &dyn World, cmds: &Commands, u: &str, mtime: i64) -> Facts {
    let unit = rp::unit(u);
    match cmds.is_active(&unit) {
        Active::Yes => {}
        Active::No => return Facts::NotActive,
        Active::Unknown(r) => return Facts::QueryFailed(r),
    }
    let user = match UserInfo::lookup(u) {
        Ok(x) => x,
        Err(r) => return Facts::NoUser(r),
    };
    let start = cmds.start_time(&unit);
    if let (Some(st), Some(after)) = (start, decide::obsolete_after(start, mtime)) {
        return Facts::Obsolete { start: st, after };
    }
    let (verdict, report) = crate::gate(cfg, world, &user);
    Facts::Gate {
        user,
        start,
        verdict,
        report,
    }
}

/// How many markers are gathered at once.
pub fn parallelism() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4)
}

/// Gather the facts of every `(user, mtime)` concurrently; results in input order.
pub fn gather_all(
    cfg: &Config,
    world: &dyn World,
    cmds: &Commands,
    items: &[(String, i64)],
) -> Vec<Facts> {
    let workers = parallelism().min(items.len());
    if workers <= 1 {
        return items
            .iter()
            .map(|(u, m)| gather(cfg, world, cmds, u, *m))
            .collect();
    }
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<Facts>>> = Mutex::new(vec![None; items.len()]);
    std::thread::scope(|sc| {
        for _ in 0..workers {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((u, m)) = items.get(i) else { break };
                let f = gather(cfg, world, cmds, u, *m);
                out.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(f);
            });
        }
    });
    out.into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .zip(items)
        .map(|(f, (u, m))| f.unwrap_or_else(|| gather(cfg, world, cmds, u, *m)))
        .collect()
}
