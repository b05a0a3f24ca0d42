//! The in-process compat gate (spec §3.6, §4.4, §5.4) run by the binary against the HTTPS API
//! fixture: fresh reasons grouped by class, the live re-check line, gate errors and deadlines.

use super::common::*;
use std::time::Duration;
use testkit::kube::{Fault, FaultKind};

fn world_1_36_2(calico: &str) -> World {
    let mut c = cluster(homelab_nodes("v1.35.6"), night_jobs());
    addons(&mut c, calico, "v2.6.0", "v25.3", "v1.18.1");
    let w = World::new(c);
    seed_detector(&w.pg, "1.36.2", "1.35.6", "minor", 1.0, T23);
    seed_chain(
        &w.pg,
        Chain {
            held: 1.0,
            ..Chain::default()
        },
    );
    w
}

#[test]
fn night_2026_06_28_reproduces_the_5_7_example_with_the_real_gate() {
    let w = world_1_36_2("v3.30.7");
    let m = matrix_path();
    let o = w.run(&[("COMPAT_MATRIX", &m)], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let t = w.posted();
    assert!(
        t.contains("upgrade calico to &gt;= 3.31"),
        "travels as an entity: {t}"
    );
    assert_eq!(decode(&t), EXAMPLE_57);
    assert!(o.stderr.contains(" INFO source gate ok ("), "{}", o.stderr);
    w.assert_get_only();
    // The gate read the addon workloads through the same client.
    assert!(w
        .kube
        .requests()
        .iter()
        .any(|r| r.path() == "/apis/apps/v1/namespaces/calico-system/daemonsets/calico-node"));
}

#[test]
fn night_2026_06_20_blocked_two_action_lines_from_the_real_gate() {
    let mut c = cluster(
        homelab_nodes("v1.34.9"),
        vec![
            kjob(
                "k8s-version-check-29185380",
                "complete",
                T23,
                Some(T23 + 14),
            ),
            kjob(
                "k8s-upgrade-preflight-1-35-6",
                "complete",
                T23 + 60,
                Some(T23 + 95),
            ),
        ],
    );
    c.git_version = "v1.34.9".into();
    addons(&mut c, "v3.30.2", "v0.12.1", "v25.3", "v1.16.2");
    let w = World::new(c);
    seed_detector(&w.pg, "1.35.6", "1.34.9", "minor", 1.0, T23);
    seed_chain(
        &w.pg,
        Chain {
            blocked: 1.0,
            ..Chain::default()
        },
    );
    let m = matrix_path();
    let o = w.run(&[("COMPAT_MATRIX", &m)], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let t = decode(&w.posted());
    let want_head = "*K8s upgrade nightly report — 2026-06-29*
🔴 BLOCKED — 1.35.6 refused by the compat gate
Running: 1.34.9 (7 nodes)
Detector: last run 2026-06-28 23:00Z (7h 7m ago)
Target: 1.35.6 (minor)
*Action needed*
• external-secrets 0.12.1 supports k8s ≤ 1.31; upgrade external-secrets to >= 2.6
• kyverno 1.16.2 supports k8s ≤ 1.34; upgrade kyverno to >= 1.18
*Recent jobs* (k8s-upgrade, last 24h)
";
    assert!(t.starts_with(want_head), "{t}");
    assert!(
        !t.contains("Live re-check"),
        "same verdict as last night: {t}"
    );
}

#[test]
fn addon_upgraded_during_the_day_the_live_recheck_says_held_not_blocked() {
    // Last night: blocked (calico actionable only). Today calico is at 3.31, the rest waits.
    let w = world_1_36_2("v3.31.0");
    seed_chain(
        &w.pg,
        Chain {
            blocked: 1.0,
            ..Chain::default()
        },
    );
    let m = matrix_path();
    let o = w.run(&[("COMPAT_MATRIX", &m)], &["--dry-run"]);
    assert_eq!(o.code, 0, "{o:?}");
    let t = decode(&o.stdout);
    assert_eq!(
        headline(&t),
        "🔴 BLOCKED — 1.36.2 refused by the compat gate"
    );
    assert!(!t.contains("*Action needed*"), "{t}");
    assert!(
        t.contains("\nLive re-check: held — the next nightly run should stay refused\n"),
        "{t}"
    );
}

#[test]
fn missing_matrix_is_a_gate_error_and_the_report_still_posts() {
    let w = world_1_36_2("v3.30.7");
    let o = w.run(&[("COMPAT_MATRIX", "/nonexistent/addon-compat.json")], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let t = w.posted();
    assert_eq!(headline(&t), "⏸️ HELD — 1.36.2 not yet upgradable");
    assert!(
        t.contains("\nLive re-check failed: matrix /nonexistent/addon-compat.json"),
        "{t}"
    );
    assert!(
        t.contains("\n⚠️ Missing: gate (matrix /nonexistent/addon-compat.json"),
        "{t}"
    );
    assert!(
        o.stderr
            .contains(" WARN source gate failed: matrix /nonexistent/addon-compat.json"),
        "{}",
        o.stderr
    );
    // --json: the gate ran, with its error.
    let o = w.run(
        &[("COMPAT_MATRIX", "/nonexistent/addon-compat.json")],
        &["--json", "--dry-run"],
    );
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["gate"]["ran"], true);
    assert_eq!(v["gate"]["verdict"], "error");
    assert!(v["gate"]["error"]
        .as_str()
        .unwrap()
        .starts_with("matrix /nonexistent/addon-compat.json"));
    assert_eq!(v["degraded"], true);
}

#[test]
fn gate_deadline_keeps_the_headline() {
    let w = world_1_36_2("v3.30.7");
    w.kube.with(|c| {
        c.faults.push(Fault {
            path_prefix: "/apis/apps/v1/namespaces/calico-system".into(),
            kind: FaultKind::Delay(Duration::from_secs(4)),
            times: None,
        })
    });
    let m = matrix_path();
    let o = w.run(
        &[
            ("COMPAT_MATRIX", &m),
            ("GATE_DEADLINE_SECONDS", "1"),
            ("REPORT_DEADLINE_SECONDS", "30"),
        ],
        &[],
    );
    assert_eq!(o.code, 0, "{o:?}");
    let t = w.posted();
    assert_eq!(headline(&t), "⏸️ HELD — 1.36.2 not yet upgradable");
    assert!(t.contains("\nLive re-check failed: "), "{t}");
    assert!(t.contains("deadline"), "{t}");
    assert!(t.contains("\n⚠️ Missing: gate ("), "{t}");
}

#[test]
fn gate_forbidden_reads_are_a_gate_error_not_a_failed_report() {
    let w = world_1_36_2("v3.30.7");
    w.kube.with(|c| {
        c.faults.push(Fault {
            path_prefix: "/apis/apps/v1/namespaces/gpu-operator".into(),
            kind: FaultKind::Status(403, "deployments.apps \"gpu-operator\" is forbidden".into()),
            times: None,
        })
    });
    let m = matrix_path();
    let o = w.run(&[("COMPAT_MATRIX", &m)], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let t = decode(&w.posted());
    assert_eq!(headline(&t), "⏸️ HELD — 1.36.2 not yet upgradable");
    assert!(t.contains("\nLive re-check failed: "), "{t}");
    assert!(t.contains("HTTP 403"), "{t}");
}

fn scenario(file: &str) -> testkit::kube::FakeCluster {
    let p = format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    testkit::kube::cluster_from_scenario(&doc).unwrap()
}

/// The demo's fixture files (fake-kube scenarios with Jobs and node health) stay valid.
#[test]
fn demo_scenarios_held_and_upgraded_mornings() {
    let w = World::new(scenario("morning-held.json"));
    seed_detector(&w.pg, "1.36.2", "1.35.6", "minor", 1.0, T23);
    seed_chain(
        &w.pg,
        Chain {
            held: 1.0,
            ..Chain::default()
        },
    );
    let m = matrix_path();
    let o = w.run(&[("COMPAT_MATRIX", &m)], &["--dry-run"]);
    assert_eq!(decode(o.stdout.trim_end()), EXAMPLE_57);
    let w = World::new(scenario("morning-upgraded.json"));
    seed_detector(&w.pg, "1.36.2", "1.35.6", "minor", 1.0, T23);
    seed_chain(&w.pg, Chain::default());
    let o = w.run(&[("COMPAT_MATRIX", &m)], &["--dry-run"]);
    let t = &o.stdout;
    assert_eq!(headline(t), "🟢 UPGRADED — 1.35.6 → 1.36.2", "{t}");
    assert!(t.contains("\nRunning: 1.36.2 (7 nodes)\n"), "{t}");
    assert!(t.contains("\n⚠️ Nodes: k8s-node3 NotReady\n"), "{t}");
    assert!(
        t.contains("• `k8s-upgrade-postflight-1-36-2` ✅ Complete · 23:59Z · 0m31s\n"),
        "{t}"
    );
}
