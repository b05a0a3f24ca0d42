//! Spec §11.3.1: a real Pushgateway (Debian `prometheus-pushgateway`), fixtures pushed with
//! `POST /metrics/job/<job>` exactly as the chain pushes them; every outcome from the gauges.

use super::common::*;
use homelab_core::pushgateway::Gauge;

const OFF: (&str, &str) = ("REPORT_GATE", "off");

fn dry(w: &World) -> Out {
    let o = w.run(&[OFF], &["--dry-run"]);
    assert_eq!(o.code, 0, "{o:?}");
    o
}

#[test]
fn every_outcome_from_pushed_gauges() {
    let w = World::new(cluster(homelab_nodes("v1.35.6"), night_jobs()));
    let started = (NOW_S - 1200) as f64;
    let cases: Vec<(&str, &str, f64, Chain, &str)> = vec![
        (
            "1.35.6",
            "1.35.6",
            0.0,
            Chain::default(),
            "⚪ NO UPGRADE NEEDED",
        ),
        (
            "1.36.2",
            "1.35.6",
            1.0,
            Chain {
                held: 1.0,
                blocked: 1.0,
                ..Chain::default()
            },
            "⏸️ HELD — 1.36.2 not yet upgradable",
        ),
        (
            "1.36.2",
            "1.35.6",
            1.0,
            Chain {
                blocked: 1.0,
                ..Chain::default()
            },
            "🔴 BLOCKED — 1.36.2 refused by the compat gate",
        ),
        (
            "1.36.2",
            "1.35.6",
            1.0,
            Chain::default(),
            "🟠 NOT UPGRADED — 1.36.2 available; 0/7 nodes at target",
        ),
        (
            "1.36.2",
            "1.35.6",
            1.0,
            Chain {
                in_flight: 1.0,
                started,
                snapshot: 1.0,
                ..Chain::default()
            },
            "🟡 IN PROGRESS — upgrading to 1.36.2 (started 20m ago)",
        ),
        (
            "1.35.6",
            "1.34.9",
            1.0,
            Chain::default(),
            "🟢 UPGRADED — 1.34.9 → 1.35.6",
        ),
    ];
    for (target, running, avail, chain, want) in cases {
        seed_detector(&w.pg, target, running, "minor", avail, T23);
        seed_chain(&w.pg, chain);
        let o = dry(&w);
        assert_eq!(headline(&o.stdout), want, "{}", o.stdout);
        assert!(
            o.stdout
                .contains("\nDetector: last run 2026-06-28 23:00Z (7h 7m ago)\n"),
            "{}",
            o.stdout
        );
        assert!(
            o.stderr.contains(" INFO source pushgateway ok ("),
            "{}",
            o.stderr
        );
    }
    assert!(w.slack.posts().is_empty(), "--dry-run never posts");
    w.assert_get_only();
}

#[test]
fn failed_chain_job_and_stale_detector() {
    let mut jobs = night_jobs();
    jobs.push(kjob(
        "k8s-upgrade-master-1-36-2",
        "failed",
        T23 + 130,
        Some(T23 + 400),
    ));
    let w = World::new(cluster(homelab_nodes("v1.35.6"), jobs));
    seed_detector(&w.pg, "1.36.2", "1.35.6", "minor", 1.0, T23);
    seed_chain(&w.pg, Chain::default());
    let o = dry(&w);
    assert_eq!(
        headline(&o.stdout),
        "🔴 FAILED — chain job k8s-upgrade-master-1-36-2 failed (BackoffLimitExceeded)"
    );
    assert!(
        o.stdout.contains(
            "• `k8s-upgrade-master-1-36-2` ❌ Failed (BackoffLimitExceeded) · 23:02Z · 4m30s"
        ),
        "{}",
        o.stdout
    );
    // Stale: push time cannot be faked on a real server, so the last-run value is old.
    seed_detector(
        &w.pg,
        "1.36.2",
        "1.35.6",
        "minor",
        1.0,
        NOW_S - 26 * 3600 - 1,
    );
    let o = dry(&w);
    assert_eq!(
        headline(&o.stdout),
        "⚠️ DETECTOR STALE — k8s-version-check last ran 26h 0m ago"
    );
    assert!(
        o.stdout
            .contains("\nDetector: last run 2026-06-28 04:06Z (26h 0m ago) ⚠️ stale\n"),
        "{}",
        o.stdout
    );
    // Exactly 26 h is still fresh.
    seed_detector(&w.pg, "1.36.2", "1.35.6", "minor", 1.0, NOW_S - 26 * 3600);
    assert!(headline(&dry(&w).stdout).starts_with("🔴 FAILED"));
}

#[test]
fn never_reported_and_absent_gauges() {
    let w = World::new(cluster(homelab_nodes("v1.35.6"), vec![]));
    // An empty gateway: nothing was ever pushed.
    let o = dry(&w);
    assert_eq!(
        headline(&o.stdout),
        "⚠️ DETECTOR STALE — k8s-version-check has never reported"
    );
    // Only the detector pushed (no chain group yet, e.g. `k8s_upgrade_held` never pushed).
    seed_detector(&w.pg, "1.36.2", "1.35.6", "minor", 1.0, T23);
    let o = dry(&w);
    assert_eq!(
        headline(&o.stdout),
        "🟠 NOT UPGRADED — 1.36.2 available; 0/7 nodes at target"
    );
    assert!(o.stdout.contains("\nTarget: 1.36.2 (minor)\n"));
}

#[test]
fn gauges_split_over_two_jobs_newest_push_wins_and_the_job_filter() {
    let w = World::new(cluster(homelab_nodes("v1.35.6"), night_jobs()));
    seed_detector(&w.pg, "1.36.2", "1.35.6", "minor", 1.0, T23);
    // An old copy of `k8s_upgrade_blocked` in another group, then the chain's newer push.
    seed(
        &w.pg,
        "compat-gate",
        &[Gauge::new("k8s_upgrade_blocked", "b", 1.0)],
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    seed_chain(
        &w.pg,
        Chain {
            held: 1.0,
            ..Chain::default()
        },
    );
    let o = dry(&w);
    assert_eq!(headline(&o.stdout), "⏸️ HELD — 1.36.2 not yet upgradable");
    assert!(
        o.stderr
            .contains(" WARN gauge k8s_upgrade_blocked in 2 groups; using job=k8s-upgrade\n"),
        "{}",
        o.stderr
    );
    // The newer group says blocked=0; with only the compat-gate group it would say 1.
    seed_chain(&w.pg, Chain::default());
    assert!(headline(&dry(&w).stdout).starts_with("🟠 NOT UPGRADED"));
    // REPORT_PUSHGATEWAY_JOB keeps one group: the detector's gauges are then absent.
    let o = w.run(
        &[OFF, ("REPORT_PUSHGATEWAY_JOB", "compat-gate")],
        &["--dry-run"],
    );
    assert_eq!(
        headline(&o.stdout),
        "⚠️ DETECTOR STALE — k8s-version-check has never reported"
    );
    assert!(!o.stderr.contains("in 2 groups"), "{}", o.stderr);
}

#[test]
fn nan_and_unparseable_labels_from_a_real_gateway() {
    let w = World::new(cluster(homelab_nodes("v1.35.6"), vec![]));
    seed_detector(&w.pg, "1.36.2", "1.35.6", "minor", 1.0, T23);
    seed(
        &w.pg,
        "k8s-upgrade",
        &[
            Gauge::new("k8s_upgrade_held", "h", f64::NAN),
            Gauge::new("k8s_upgrade_blocked", "b", 1.0),
        ],
    );
    let o = dry(&w);
    assert_eq!(
        headline(&o.stdout),
        "🔴 BLOCKED — 1.36.2 refused by the compat gate",
        "NaN held is not 1"
    );
    // Unparseable target: shown verbatim, never avail; empty kind shows `?`.
    seed_detector(&w.pg, "latest`<!channel>", "v1.35.6", "", 1.0, T23);
    let o = dry(&w);
    assert_eq!(headline(&o.stdout), "⚪ NO UPGRADE NEEDED");
    assert!(
        o.stdout
            .contains("\nTarget: `latest'&lt;!channel&gt;` (unparseable) (?)\n"),
        "{}",
        o.stdout
    );
    assert!(!o.stdout.contains("<!"));
    // Escaped label values (quote, backslash, newline) survive the real gateway and are escaped.
    seed_detector(
        &w.pg,
        "1.36.2",
        "v1.35.6 \"x\\y\"\n<!here> & co",
        "minor",
        1.0,
        T23,
    );
    let o = dry(&w);
    assert_eq!(
        headline(&o.stdout),
        "🔴 BLOCKED — 1.36.2 refused by the compat gate",
        "unparseable running: avail"
    );
    let o = w.run(&[OFF], &["--dry-run", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert!(!v["text"].as_str().unwrap().contains("<!"));
    seed_chain(&w.pg, Chain::default());
    seed_detector(&w.pg, "1.36.2", "1.36.2\"<!here>", "minor", 1.0, T23);
    seed_chain(
        &w.pg,
        Chain {
            in_flight: 0.0,
            ..Chain::default()
        },
    );
    let o = dry(&w);
    assert_eq!(
        headline(&o.stdout),
        "🟠 NOT UPGRADED — 1.36.2 available; 0/7 nodes at target"
    );
}

#[test]
fn pushgateway_stopped_still_posts_unknown_and_exits_0() {
    let mut w = World::new(cluster(homelab_nodes("v1.35.6"), night_jobs()));
    seed_detector(&w.pg, "1.36.2", "1.35.6", "minor", 1.0, T23);
    w.pg.kill();
    let o = w.run(&[], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let t = w.posted();
    assert_eq!(
        headline(&t),
        "❓ UNKNOWN — Pushgateway unreadable; outcome cannot be decided"
    );
    let last = t.lines().last().unwrap();
    assert!(
        last.starts_with("⚠️ Missing: pushgateway (GET /api/v1/metrics: "),
        "{t}"
    );
    assert!(
        t.contains("\nRunning: 1.35.6 (7 nodes)\n"),
        "nodes still shown: {t}"
    );
    assert!(
        t.contains("• `k8s-upgrade-preflight-1-36-2` ✅ Complete"),
        "{t}"
    );
    assert!(
        o.stderr.contains(" WARN source pushgateway failed: "),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains(" INFO outcome unknown target=- degraded=true\n"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains(" INFO posted (HTTP 200)\n"),
        "{}",
        o.stderr
    );
}
