//! §10.2 metrics: node-exporter textfile (atomic rewrite) and/or a Pushgateway push (job
//! `t3_migrate_idle`). Failures are WARN lines; they never change the exit code.

use crate::config::Config;
use crate::report::{self as rp, Log};
use crate::sys::World;
use crate::{decide, markers, PassResult, Summary};
use homelab_core::pushgateway::{self, Gauge, Method};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// Markers waiting in DEFER_DIR after the pass: (printable name, age in seconds). Counted from
/// the directory itself (valid names, regular files, hidden names skipped) so a frozen pass,
/// which reads no marker, still exposes their ages for the "marker older than 3 days" alert.
pub fn waiting_markers(defer_dir: &Path, now: i64) -> Vec<(String, i64)> {
    let Ok(names) = markers::list(defer_dir) else {
        return Vec::new();
    };
    names
        .into_iter()
        .filter_map(|n| {
            let u = decide::valid_user_name(n.as_bytes()).ok()?.to_string();
            let m = std::fs::symlink_metadata(defer_dir.join(&n)).ok()?;
            m.is_file().then(|| (u, now - m.mtime()))
        })
        .collect()
}

/// The series of one pass.
pub fn gauges(s: &Summary, waiting: &[(String, i64)], now: i64) -> Vec<Gauge> {
    let mut g = vec![
        Gauge::new(
            "t3_migrate_idle_last_run_timestamp_seconds",
            "Unix time of the last pass.",
            now as f64,
        ),
        Gauge::new(
            "t3_migrate_idle_frozen",
            "1 if the t3 freeze file is present.",
            if s.frozen { 1.0 } else { 0.0 },
        ),
        Gauge::new(
            "t3_migrate_idle_markers",
            "Deferral markers waiting after the last pass.",
            waiting.len() as f64,
        ),
    ];
    for (user, age) in waiting {
        g.push(
            Gauge::new(
                "t3_migrate_idle_marker_age_seconds",
                "Age of each waiting deferral marker (alert when > 3 days).",
                *age as f64,
            )
            .label("user", user),
        );
    }
    g.push(Gauge::new(
        "t3_migrate_idle_last_pass_migrated",
        "Instances migrated by the last pass.",
        f64::from(s.migrated),
    ));
    g.push(Gauge::new(
        "t3_migrate_idle_last_pass_skipped",
        "Markers skipped by the last pass.",
        f64::from(s.skipped),
    ));
    let current = match s.result {
        PassResult::Skipped => "ok",
        r => r.as_str(),
    };
    for r in ["ok", "frozen", "failed", "error"] {
        g.push(
            Gauge::new(
                "t3_migrate_idle_last_result",
                "Outcome of the last pass (1 = this result).",
                if r == current { 1.0 } else { 0.0 },
            )
            .label("result", r),
        );
    }
    g
}

/// Write/push when configured. A pass skipped for the lock or a sibling publishes nothing.
pub fn publish(cfg: &Config, log: &Log, world: &dyn World, s: &Summary) {
    if s.result == PassResult::Skipped
        || (cfg.metrics_textfile.is_none() && cfg.pushgateway_url.is_none())
    {
        return;
    }
    let now = world.now().unix_timestamp();
    let waiting = waiting_markers(&cfg.defer_dir, now);
    let body = pushgateway::render(&gauges(s, &waiting, now));
    if let Some(p) = &cfg.metrics_textfile {
        if let Err(e) = homelab_core::fsx::atomic_write_mode(p, body.as_bytes(), 0o644) {
            log.line(&rp::metrics_failed(
                "textfile",
                &format!("{}: {e}", p.display()),
            ));
        }
    }
    if let Some(u) = &cfg.pushgateway_url {
        // PUT replaces the whole group, so the age series of a marker cleared since the last
        // pass disappears instead of lingering (POST would keep it).
        if let Err(e) = pushgateway::push(
            u.expose(),
            "t3_migrate_idle",
            &[],
            &body,
            Method::Put,
            Duration::from_secs(10),
        ) {
            log.line(&rp::metrics_failed("push", &push_error(&e)));
        }
    }
}

/// A Pushgateway failure for the log: the answer body and transport texts are outside text
/// (issue 15 item 2), so only the status, the kind and a projection appear.
fn push_error(e: &homelab_core::http::HttpError) -> String {
    use homelab_core::http::HttpErrorKind as K;
    let what = match &e.kind {
        K::Status { code, excerpt } => {
            format!(
                "HTTP {code}, answer {}",
                decide::outside(excerpt.as_bytes())
            )
        }
        K::Timeout { .. } => e.reason(),
        K::Transport { reason, .. } => format!("transport {}", decide::outside(reason.as_bytes())),
        K::Redirect { reason } => format!("redirect {}", decide::outside(reason.as_bytes())),
        K::Config { reason } => format!("config {}", decide::outside(reason.as_bytes())),
        K::Body { reason } => format!("body {}", decide::outside(reason.as_bytes())),
    };
    format!("{} {}: {what}", e.method, e.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(result: PassResult, frozen: bool) -> Summary {
        Summary {
            result,
            exit_code: 0,
            dry_run: false,
            frozen,
            migrated: 2,
            skipped: 3,
            markers: Vec::new(),
        }
    }

    #[test]
    fn series_of_a_pass() {
        let waiting = vec![("wizard".to_string(), 300_000), ("bob".to_string(), 5)];
        let text = pushgateway::render(&gauges(
            &summary(PassResult::Failed, true),
            &waiting,
            1_700_000_000,
        ));
        for want in [
            "t3_migrate_idle_last_run_timestamp_seconds 1700000000\n",
            "t3_migrate_idle_frozen 1\n",
            "t3_migrate_idle_markers 2\n",
            "t3_migrate_idle_marker_age_seconds{user=\"wizard\"} 300000\n",
            "t3_migrate_idle_marker_age_seconds{user=\"bob\"} 5\n",
            "t3_migrate_idle_last_pass_migrated 2\n",
            "t3_migrate_idle_last_pass_skipped 3\n",
            "t3_migrate_idle_last_result{result=\"failed\"} 1\n",
            "t3_migrate_idle_last_result{result=\"ok\"} 0\n",
            "t3_migrate_idle_last_result{result=\"frozen\"} 0\n",
            "t3_migrate_idle_last_result{result=\"error\"} 0\n",
        ] {
            assert!(text.contains(want), "lacks {want:?}:\n{text}");
        }
        assert_eq!(text.matches("# TYPE ").count(), 7);
    }

    #[test]
    fn a_frozen_pass_reports_frozen_and_no_marker_series_when_none_wait() {
        let text = pushgateway::render(&gauges(&summary(PassResult::Frozen, true), &[], 1));
        assert!(text.contains("t3_migrate_idle_last_result{result=\"frozen\"} 1\n"));
        assert!(text.contains("t3_migrate_idle_markers 0\n"));
        assert!(!text.contains("t3_migrate_idle_marker_age_seconds{"));
    }
}
