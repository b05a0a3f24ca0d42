//! Spec §11.3.3: the HTTPS Kubernetes API fixture (testkit `FakeKube`, test CA, bearer token):
//! real-shaped node and Job lists (paged), RBAC refusals, mixed versions, a cordoned master.

use super::common::*;
use serde_json::json;
use testkit::kube::{Fault, FaultKind};

const OFF: (&str, &str) = ("REPORT_GATE", "off");

fn seeded(w: &World, target: &str, running: &str, chain: Chain) {
    seed_detector(&w.pg, target, running, "minor", 1.0, T23);
    seed_chain(&w.pg, chain);
}

#[test]
fn a_thousand_jobs_are_paged_and_capped_at_max_jobs() {
    let mut jobs = night_jobs();
    for i in 0..1000 {
        jobs.push(kjob(
            &format!("k8s-version-check-{}", 29_100_000 + i),
            "complete",
            T23 - 16 * 3600 + i * 60,
            Some(T23 - 16 * 3600 + i * 60 + 9),
        ));
    }
    // Older than the lookback: not listed.
    jobs.push(kjob(
        "k8s-upgrade-master-1-36-1",
        "failed",
        NOW_S - 25 * 3600,
        Some(NOW_S - 25 * 3600 + 60),
    ));
    // The report's own Jobs are never listed.
    jobs.push(kjob(
        "k8s-upgrade-nightly-report-29186767",
        "running",
        NOW_S - 10,
        None,
    ));
    jobs.push(kjob(
        "nightly-report-test",
        "complete",
        NOW_S - 3600,
        Some(NOW_S - 3590),
    ));
    let w = World::new(cluster(homelab_nodes("v1.35.6"), jobs));
    seeded(&w, "1.35.6", "1.35.6", Chain::default());
    let o = w.run(&[OFF, ("MAX_JOBS", "5")], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let t = w.posted();
    assert_eq!(headline(&t), "⚪ NO UPGRADE NEEDED", "{t}");
    let tail: Vec<&str> = t
        .lines()
        .skip_while(|l| !l.starts_with("*Recent jobs*"))
        .collect();
    assert_eq!(tail.len(), 1 + 5 + 1, "{t}");
    assert_eq!(tail[0], "*Recent jobs* (k8s-upgrade, last 24h)");
    assert_eq!(
        tail[1],
        "• `k8s-version-check-29100000` ✅ Complete · 07:00Z · 0m09s"
    );
    assert_eq!(tail[6], "+997 more");
    assert!(!t.contains("nightly-report"), "{t}");
    assert!(!t.contains("1-36-1"), "{t}");
    let reqs = w.kube.requests();
    let job_pages: Vec<_> = reqs
        .iter()
        .filter(|r| r.path() == "/apis/batch/v1/namespaces/k8s-upgrade/jobs")
        .collect();
    assert_eq!(job_pages.len(), 3, "1 005 Jobs in pages of 500");
    assert!(job_pages[1].query_param("continue").is_some());
    w.assert_get_only();
}

#[test]
fn forbidden_jobs_list_is_a_missing_line_and_still_posts() {
    let w = World::new(cluster(homelab_nodes("v1.35.6"), night_jobs()));
    seeded(&w, "1.36.2", "1.35.6", Chain::default());
    w.kube.with(|c| {
        c.faults.push(Fault {
            path_prefix: "/apis/batch/v1/namespaces/k8s-upgrade/jobs".into(),
            kind: FaultKind::Status(403, "jobs.batch is forbidden: User \"system:serviceaccount:k8s-upgrade:nightly-report\" cannot list resource \"jobs\" in API group \"batch\" in the namespace \"k8s-upgrade\"".into()),
            times: None,
        })
    });
    let o = w.run(&[OFF], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let t = w.posted();
    assert_eq!(
        headline(&t),
        "🟠 NOT UPGRADED — 1.36.2 available; 0/7 nodes at target"
    );
    assert!(
        t.contains("\n*Recent jobs* (k8s-upgrade, last 24h)\n• unknown (jobs unreadable)\n"),
        "{t}"
    );
    assert!(
        t.ends_with("\n⚠️ Missing: jobs (GET /apis/batch/v1/namespaces/k8s-upgrade/jobs: HTTP 403: jobs.batch is forbidden: User \"system:serviceaccount:k8s-upgrade:nightly-report\" cannot list resource \"jobs\" in API group \"batch\" in the namespace \"k8s-upgrade\")"),
        "{t}"
    );
    assert!(o.stderr.contains(" WARN source jobs failed: GET /apis/batch/v1/namespaces/k8s-upgrade/jobs: HTTP 403: jobs.batch is forbidden"), "{}", o.stderr);
    assert!(
        o.stderr
            .contains(" INFO outcome not_upgraded target=1.36.2 degraded=true\n"),
        "{}",
        o.stderr
    );
}

#[test]
fn forbidden_nodes_never_reads_as_upgraded() {
    let w = World::new(cluster(homelab_nodes("v1.35.6"), night_jobs()));
    seeded(&w, "1.35.6", "1.34.9", Chain::default());
    w.kube.with(|c| {
        c.faults.push(Fault {
            path_prefix: "/api/v1/nodes".into(),
            kind: FaultKind::Status(403, "nodes is forbidden: User \"system:serviceaccount:k8s-upgrade:nightly-report\" cannot list resource \"nodes\" in API group \"\" at the cluster scope".into()),
            times: None,
        })
    });
    let o = w.run(&[OFF], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let t = w.posted();
    assert_eq!(
        headline(&t),
        "🟠 NOT UPGRADED — 1.35.6 available; ?/? nodes at target",
        "D10: {t}"
    );
    assert!(
        t.contains("\nRunning: 1.34.9 (per detector; nodes unreadable)\n"),
        "{t}"
    );
    assert!(t.ends_with("\n⚠️ Missing: nodes (GET /api/v1/nodes: HTTP 403: nodes is forbidden: User \"system:serviceaccount:k8s-upgrade:nightly-report\" cannot list resource \"nodes\" in API group \"\" at the cluster scope)"), "{t}");
}

#[test]
fn zero_nodes_is_a_failed_source() {
    let w = World::new(cluster(vec![], night_jobs()));
    seeded(&w, "1.35.6", "1.34.9", Chain::default());
    let o = w.run(&[OFF], &["--dry-run"]);
    assert_eq!(
        headline(&o.stdout),
        "🟠 NOT UPGRADED — 1.35.6 available; ?/? nodes at target",
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .ends_with("\n⚠️ Missing: nodes (GET /api/v1/nodes: no nodes listed)\n"),
        "{}",
        o.stdout
    );
}

#[test]
fn mixed_versions_cordoned_master_not_ready_worker() {
    let mut nodes = homelab_nodes("v1.35.6");
    nodes[0] = cordon(testkit::kube::node(
        "k8s-master",
        "v1.36.2",
        "containerd://2.1.4",
    ));
    nodes[3] = not_ready(nodes[3].clone());
    let w = World::new(cluster(nodes, night_jobs()));
    seeded(&w, "1.36.2", "1.35.6", Chain::default());
    let o = w.run(&[OFF], &["--dry-run"]);
    let t = &o.stdout;
    assert_eq!(
        headline(t),
        "🟠 NOT UPGRADED — 1.36.2 available; 1/7 nodes at target",
        "{t}"
    );
    assert!(
        t.contains("\nRunning: mixed — 1.35.6 ×6, 1.36.2 ×1 ⚠️\n"),
        "{t}"
    );
    assert!(
        t.contains("\n⚠️ Nodes: k8s-master cordoned, k8s-node3 NotReady\n*Recent jobs*"),
        "{t}"
    );
    w.assert_get_only();
}

#[test]
fn the_2026_06_24_wedge_in_flight_over_90_minutes_without_an_active_job() {
    let mut nodes = homelab_nodes("v1.35.6");
    nodes[0] = cordon(nodes[0].clone());
    let mut jobs = night_jobs();
    jobs.push(kjob(
        "k8s-upgrade-master-1-36-2",
        "complete",
        T23 + 130,
        Some(T23 + 900),
    ));
    let w = World::new(cluster(nodes, jobs));
    seeded(
        &w,
        "1.36.2",
        "1.35.6",
        Chain {
            in_flight: 1.0,
            started: (T23 + 60) as f64,
            snapshot: 1.0,
            ..Chain::default()
        },
    );
    let o = w.run(&[OFF], &["--dry-run"]);
    let t = &o.stdout;
    assert_eq!(
        headline(t),
        "🟡 IN PROGRESS — upgrading to 1.36.2 (started 7h 6m ago)",
        "{t}"
    );
    assert!(
        t.contains("\nTarget: 1.36.2 (minor)\nSnapshot: taken\n⚠️ running longer than 90 min — see K8sUpgradeStalled\n⚠️ Nodes: k8s-master cordoned\n"),
        "{t}"
    );
}

#[test]
fn running_chain_job_is_in_progress_even_without_gauges() {
    let mut jobs = night_jobs();
    jobs.push(kjob(
        "k8s-upgrade-worker-k8s-node2-1-36-2",
        "running",
        NOW_S - 300,
        None,
    ));
    let w = World::new(cluster(homelab_nodes("v1.35.6"), jobs));
    // Pushgateway empty: D1 still wins via the Job (before D2/D3).
    let o = w.run(&[OFF], &["--dry-run"]);
    assert_eq!(
        headline(&o.stdout),
        "🟡 IN PROGRESS — upgrading to 1.36.2",
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("• `k8s-upgrade-worker-k8s-node2-1-36-2` 🔄 Running · 06:02Z · running"),
        "{}",
        o.stdout
    );
}

#[test]
fn jobs_in_every_state() {
    let mut suspended = kjob("k8s-upgrade-postflight-1-36-2", "pending", T23 + 3000, None);
    suspended["spec"]["suspend"] = json!(true);
    suspended["status"] = json!({"conditions": [{"type": "Suspended", "status": "True", "reason": "JobSuspended", "message": "Job suspended", "lastProbeTime": rfc(T23 + 3000), "lastTransitionTime": rfc(T23 + 3000)}]});
    let mut pending = kjob(
        "k8s-upgrade-worker-k8s-node9-1-36-2",
        "pending",
        T23 + 4000,
        None,
    );
    pending["metadata"]["creationTimestamp"] = json!(rfc(T23 + 4000));
    let jobs = vec![
        kjob(
            "k8s-version-check-29185380",
            "complete",
            T23,
            Some(T23 + 14),
        ),
        kjob(
            "k8s-upgrade-preflight-1-36-2",
            "complete",
            T23 + 60,
            Some(T23 + 122),
        ),
        kjob(
            "k8s-upgrade-master-1-36-2",
            "complete",
            T23 + 130,
            Some(T23 + 130 + 3900),
        ),
        kjob(
            "k8s-upgrade-worker-k8s-node1-1-36-2",
            "failed",
            T23 + 1000,
            Some(T23 + 1062),
        ),
        suspended,
        pending,
        kjob(
            "k8s-upgrade-worker-k8s-node2-1-36-2",
            "running",
            T23 + 5000,
            None,
        ),
    ];
    let w = World::new(cluster(homelab_nodes("v1.35.6"), jobs));
    seeded(&w, "1.36.2", "1.35.6", Chain::default());
    let o = w.run(&[OFF], &["--dry-run"]);
    let tail: Vec<&str> = o
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("*Recent jobs*"))
        .collect();
    assert_eq!(
        tail,
        [
            "*Recent jobs* (k8s-upgrade, last 24h)",
            "• `k8s-version-check-29185380` ✅ Complete · 23:00Z · 0m14s",
            "• `k8s-upgrade-preflight-1-36-2` ✅ Complete · 23:01Z · 1m02s",
            "• `k8s-upgrade-master-1-36-2` ✅ Complete · 23:02Z · 1h05m",
            "• `k8s-upgrade-worker-k8s-node1-1-36-2` ❌ Failed (BackoffLimitExceeded) · 23:16Z · 1m02s",
            "• `k8s-upgrade-postflight-1-36-2` ⏸ Suspended · 23:50Z · running",
            "• `k8s-upgrade-worker-k8s-node9-1-36-2` ⏳ Pending · 00:06Z · running",
            "• `k8s-upgrade-worker-k8s-node2-1-36-2` 🔄 Running · 00:23Z · running",
        ],
        "{}",
        o.stdout
    );
    // A running chain Job: D1.
    assert!(
        headline(&o.stdout).starts_with("🟡 IN PROGRESS — upgrading to 1.36.2"),
        "{}",
        o.stdout
    );
}

#[test]
fn wrong_token_is_a_401_and_never_printed() {
    let w = World::new(cluster(homelab_nodes("v1.35.6"), night_jobs()));
    seeded(&w, "1.36.2", "1.35.6", Chain::default());
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("token");
    std::fs::write(&tok, "wrong-token-not-for-output-7731").unwrap();
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, w.kube.ca_pem()).unwrap();
    let o = w.run(
        &[
            OFF,
            ("KUBECONFIG", ""),
            ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
            ("KUBERNETES_SERVICE_PORT", &w.kube.port().to_string()),
            ("KUBE_TOKEN_FILE", tok.to_str().unwrap()),
            ("KUBE_CA_FILE", ca.to_str().unwrap()),
        ],
        &[],
    );
    assert_eq!(o.code, 0, "{o:?}");
    let t = w.posted();
    assert!(t.ends_with("\n⚠️ Missing: nodes (GET /api/v1/nodes: HTTP 401: Unauthorized), jobs (GET /apis/batch/v1/namespaces/k8s-upgrade/jobs: HTTP 401: Unauthorized)"), "{t}");
    for s in [&o.stdout, &o.stderr, &t] {
        assert!(!s.contains("wrong-token-not-for-output"), "{s}");
    }
}

#[test]
fn in_cluster_service_account_reads_nodes_and_jobs() {
    let w = World::new(cluster(homelab_nodes("v1.35.6"), night_jobs()));
    seeded(&w, "1.35.6", "1.35.6", Chain::default());
    let dir = tempfile::tempdir().unwrap();
    let (tok, ca) = w.kube.write_sa_dir(dir.path());
    let o = w.run(
        &[
            OFF,
            ("KUBECONFIG", ""),
            ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
            ("KUBERNETES_SERVICE_PORT", &w.kube.port().to_string()),
            ("KUBE_TOKEN_FILE", tok.to_str().unwrap()),
            ("KUBE_CA_FILE", ca.to_str().unwrap()),
        ],
        &["--json", "--dry-run"],
    );
    assert_eq!(o.code, 0, "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["sources"]["nodes"]["ok"], true, "{v}");
    assert_eq!(v["sources"]["jobs"]["ok"], true, "{v}");
    assert_eq!(v["outcome"], "no_upgrade");
}

#[test]
fn no_credentials_at_all_still_posts_what_it_knows() {
    let w = World::new(cluster(vec![], vec![]));
    seeded(
        &w,
        "1.36.2",
        "1.35.6",
        Chain {
            held: 1.0,
            ..Chain::default()
        },
    );
    let o = w.run(&[("KUBECONFIG", "")], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let t = w.posted();
    assert_eq!(headline(&t), "⏸️ HELD — 1.36.2 not yet upgradable", "{t}");
    assert!(
        t.contains("\n⚠️ Missing: nodes (no Kubernetes credentials: "),
        "{t}"
    );
    // nightly-report has no --server flag: the hint must not name one (issue 14 parity).
    assert!(!t.contains("--server"), "{t}");
    assert!(t.contains(", gate ("), "the gate could not run either: {t}");
    assert!(t.contains("\nLive re-check failed: "), "{t}");
}

#[test]
fn running_chain_job_with_the_pushgateway_down_is_in_progress_without_a_snapshot_claim() {
    let mut jobs = night_jobs();
    jobs.push(kjob(
        "k8s-upgrade-master-1-36-2",
        "running",
        NOW_S - 600,
        None,
    ));
    let mut w = World::new(cluster(homelab_nodes("v1.35.6"), jobs));
    w.pg.kill();
    let o = w.run(&[], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let t = w.posted();
    assert_eq!(
        headline(&t),
        "🟡 IN PROGRESS — upgrading to 1.36.2",
        "D1 before D2: {t}"
    );
    assert!(!t.contains("Snapshot:"), "{t}");
    assert!(
        t.ends_with(
            "\n⚠️ Missing: pushgateway (GET /api/v1/metrics: Connection refused (os error 111))"
        ),
        "{t}"
    );
}
