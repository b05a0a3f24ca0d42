//! Benchmark of the release binary (spec §9), run by `scripts/bench.d/nightly-report.sh`.
//!
//! ```text
//! cargo run --release -p nightly-report --example bench -- BIN OUT.md
//! ```
//! Loopback fixtures: a real Pushgateway seeded with N groups, the HTTPS API fixture (testkit
//! `FakeKube`) with nodes and Jobs (paged by 500), the Slack stand-in. Each scenario runs the
//! binary 5 times; the table shows the median wall time and the largest peak RSS (`wait4`).

use homelab_core::pushgateway::{render, Gauge};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testkit::kube::{job, node, FakeCluster, FakeKube};
use testkit::{Pushgateway, SlackSink};

const RUNS: usize = 5;
const T23: i64 = 1_782_687_600;
const NOW: &str = "2026-06-29T06:07:00Z";

fn rfc(ts: i64) -> String {
    homelab_core::log::format_utc(time::OffsetDateTime::from_unix_timestamp(ts).unwrap())
}

struct Scenario {
    name: &'static str,
    nodes: usize,
    jobs: usize,
    groups: usize,
    gate: bool,
    /// (target, measured) limits.
    wall_target: Duration,
    rss_target_kib: u64,
}

fn cluster(s: &Scenario) -> FakeCluster {
    let mut c = FakeCluster::default();
    let mut nodes = vec![node("k8s-master", "v1.35.6", "containerd://2.1.4")];
    for i in 1..s.nodes {
        nodes.push(node(
            &format!("k8s-node{i}"),
            "v1.35.6",
            "containerd://2.1.4",
        ));
    }
    c.add("/v1/nodes", nodes);
    let mut jobs: Vec<Value> = Vec::with_capacity(s.jobs);
    for i in 0..s.jobs as i64 {
        let start = T23 - 16 * 3600 + i * (16 * 3600 / s.jobs as i64);
        let name = if i % 10 == 0 {
            format!("k8s-upgrade-preflight-1-36-{i}")
        } else {
            format!("k8s-version-check-{}", 29_100_000 + i)
        };
        let state = if i % 7 == 3 { "failed" } else { "complete" };
        jobs.push(job(
            "k8s-upgrade",
            &name,
            state,
            &rfc(start),
            Some(&rfc(start + 30)),
        ));
    }
    c.add("batch/v1/jobs", jobs);
    nightly_gate_fixture(&mut c, s.gate);
    c
}

/// The bench's matrix: six addons; for 1.31.9 -> 1.32.4 calico and ESO are actionable,
/// gpu-operator pinned, the rest pass.
const MATRIX: &str = r#"{
  "calico": {"workload": "calico-system/daemonset/calico-node", "container": "calico-node", "versions": {"3.28": "1.31", "3.29": "1.32"}},
  "external-secrets": {"workload": "external-secrets/deployment/external-secrets", "versions": {"0.12": "1.31", "0.14": "1.32"}},
  "gpu-operator": {"workload": "gpu-operator/deployment/gpu-operator", "pinned": true, "pin_reason": "25.3 needs a newer driver", "versions": {"24.9": "1.31", "25.3": "1.32"}},
  "kyverno": {"workload": "kyverno/deployment/kyverno-admission-controller", "container": "kyverno", "versions": {"1.13": "1.32"}},
  "cert-manager": {"workload": "cert-manager/deployment/cert-manager", "versions": {"1.16": "1.32"}},
  "ingress-nginx": {"workload": "ingress-nginx/deployment/ingress-nginx-controller", "container": "controller", "versions": {"1.11": "1.32"}},
  "_containerd_min": {"1.32": ["1.7.22", "2.0.0"]}
}"#;

/// The compat-gate "homelab" load when the gate runs (spec §9.1): 6 addons, 2 000 objects in
/// the removal window's resources (flowschemas; 1.32 removed flowcontrol v1beta3), 60 Helm
/// releases, ~5 MB `/metrics`.
fn nightly_gate_fixture(c: &mut FakeCluster, gate: bool) {
    use testkit::kube::{applied_object, default_metrics, helm_release_secret, workload};
    if !gate {
        return;
    }
    c.git_version = "v1.31.9".into();
    for n in c.objects.get_mut("/v1/nodes").into_iter().flatten() {
        n["status"]["nodeInfo"]["kubeletVersion"] = "v1.31.9".into();
    }
    for (kind, ns, name, container, image) in [
        (
            "DaemonSet",
            "calico-system",
            "calico-node",
            "calico-node",
            "quay.io/calico/node:v3.28.2",
        ),
        (
            "Deployment",
            "external-secrets",
            "external-secrets",
            "external-secrets",
            "ghcr.io/external-secrets/external-secrets:v0.12.1",
        ),
        (
            "Deployment",
            "gpu-operator",
            "gpu-operator",
            "gpu-operator",
            "nvcr.io/nvidia/gpu-operator:v24.9",
        ),
        (
            "Deployment",
            "kyverno",
            "kyverno-admission-controller",
            "kyverno",
            "reg.kyverno.io/kyverno/kyverno:v1.13.4",
        ),
        (
            "Deployment",
            "cert-manager",
            "cert-manager",
            "cert-manager",
            "quay.io/jetstack/cert-manager-controller:v1.16.2",
        ),
        (
            "Deployment",
            "ingress-nginx",
            "ingress-nginx-controller",
            "controller",
            "registry.k8s.io/ingress-nginx/controller:v1.11.3",
        ),
    ] {
        c.add_workload(workload(kind, ns, name, container, image, &[]));
    }
    let objs: Vec<Value> = (0..2000)
        .map(|i| {
            let last = (i % 500 == 0).then_some("flowcontrol.apiserver.k8s.io/v1beta3");
            applied_object(
                "flowcontrol.apiserver.k8s.io/v1",
                "FlowSchema",
                None,
                &format!("fs-{i}"),
                last,
            )
        })
        .collect();
    c.add("flowcontrol.apiserver.k8s.io/v1/flowschemas", objs);
    let doc = "---\n# Source: app/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 2\n";
    for i in 0..60 {
        let manifest = doc.repeat(40);
        c.add(
            "/v1/secrets",
            [helm_release_secret(
                &format!("ns{i}"),
                &format!("release{i}"),
                3,
                ("app", "1.2.0"),
                &manifest,
                &[],
                true,
            )],
        );
    }
    let mut metrics = default_metrics(&[(
        "flowcontrol.apiserver.k8s.io",
        "v1beta3",
        "flowschemas",
        "1.32",
    )]);
    let mut i = 0u64;
    while metrics.len() < 5 * 1024 * 1024 {
        metrics.push_str(&format!(
            "apiserver_request_duration_seconds_bucket{{component=\"apiserver\",group=\"apps\",resource=\"r{}\",verb=\"LIST\",version=\"v1\",le=\"{}\"}} {}\n",
            i % 977,
            i % 40,
            i * 7
        ));
        i += 1;
    }
    c.metrics = metrics;
}

fn seed(pg: &Pushgateway, groups: usize, gate: bool) {
    let (running, target) = if gate {
        ("1.31.9", "1.32.4")
    } else {
        ("1.35.6", "1.36.2")
    };
    let detector = render(&[
        Gauge::new("k8s_upgrade_available", "a", 1.0)
            .label("kind", "minor")
            .label("running", running)
            .label("target", target),
        Gauge::new("k8s_version_check_last_run_timestamp", "t", T23 as f64),
    ]);
    pg.seed("/metrics/job/k8s-version-check", &detector);
    let chain = render(&[
        Gauge::new("k8s_upgrade_in_flight", "f", 0.0),
        Gauge::new("k8s_upgrade_started_timestamp", "s", 0.0),
        Gauge::new("k8s_upgrade_snapshot_taken", "s", 0.0),
        Gauge::new("k8s_upgrade_blocked", "b", if gate { 1.0 } else { 0.0 }),
        Gauge::new("k8s_upgrade_held", "h", if gate { 0.0 } else { 1.0 }),
    ]);
    pg.seed("/metrics/job/k8s-upgrade", &chain);
    // Other jobs' groups, as a shared gateway holds them.
    for i in 2..groups {
        let body = render(&[
            Gauge::new(
                "backup_last_success_timestamp_seconds",
                "b",
                1.78e9 + i as f64,
            ),
            Gauge::new("backup_bytes", "b", 1e9).label("target", "nas"),
            Gauge::new("job_duration_seconds", "d", 12.5),
        ]);
        pg.seed(
            &format!("/metrics/job/other-{i}/instance/host{}", i % 7),
            &body,
        );
    }
}

/// Run once: (wall, peak RSS KiB, exit code). The peak RSS comes from GNU time wrapping the
/// binary: a child forked from this (large) process would report this process's RSS as its
/// high-water mark (Linux keeps the pre-exec mm's peak), so the binary is forked by `time`.
fn run_once(bin: &Path, env: &[(String, String)], rss_file: &Path) -> (Duration, u64, i32) {
    let time_bin = testkit::require_bin("time", &["/usr/bin/time"], "apt-get install -y time");
    let t = Instant::now();
    let status = Command::new(time_bin)
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(rss_file)
        .arg(bin)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn nightly-report under time");
    let wall = t.elapsed();
    let rss = std::fs::read_to_string(rss_file)
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()))
        .expect("peak RSS from time -f %M");
    (wall, rss, status.code().unwrap_or(-1))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let bin = PathBuf::from(args.next().expect("usage: bench BIN OUT.md"));
    let out = PathBuf::from(args.next().expect("usage: bench BIN OUT.md"));
    let scenarios = [
        Scenario {
            name: "homelab, gate off",
            nodes: 7,
            jobs: 60,
            groups: 40,
            gate: false,
            wall_target: Duration::from_millis(300),
            rss_target_kib: 32 * 1024,
        },
        Scenario {
            name: "homelab, gate on",
            nodes: 7,
            jobs: 60,
            groups: 40,
            gate: true,
            wall_target: Duration::from_secs(2),
            rss_target_kib: 48 * 1024,
        },
        Scenario {
            name: "stress, gate off",
            nodes: 200,
            jobs: 2000,
            groups: 500,
            gate: false,
            wall_target: Duration::from_secs(4),
            rss_target_kib: 32 * 1024,
        },
    ];
    let mut rows = Vec::new();
    let mut all_ok = true;
    for s in &scenarios {
        let fk = FakeKube::start(cluster(s));
        let dir = tempfile::tempdir().unwrap();
        let kc = fk.write_kubeconfig(&dir.path().join("config"));
        let pg = Pushgateway::start();
        seed(&pg, s.groups, s.gate);
        let matrix = dir.path().join("addon-compat.json");
        std::fs::write(&matrix, MATRIX).unwrap();
        let slack = SlackSink::start();
        let env: Vec<(String, String)> = vec![
            ("PUSHGATEWAY_URL".into(), pg.url()),
            ("KUBECONFIG".into(), kc.display().to_string()),
            ("SLACK_WEBHOOK_URL".into(), slack.webhook_url()),
            ("REPORT_NOW".into(), NOW.into()),
            (
                "REPORT_GATE".into(),
                if s.gate { "on" } else { "off" }.into(),
            ),
            ("HOME".into(), "/nonexistent".into()),
            ("COMPAT_MATRIX".into(), matrix.display().to_string()),
        ];
        let mut env = env;
        // Extra variables for experiments: BENCH_ENV="K=V K2=V2".
        for kv in std::env::var("BENCH_ENV")
            .unwrap_or_default()
            .split_whitespace()
        {
            if let Some((k, v)) = kv.split_once('=') {
                env.push((k.into(), v.into()));
            }
        }
        let mut walls = Vec::new();
        let mut rss = 0;
        for _ in 0..RUNS {
            let (w, r, code) = run_once(&bin, &env, &dir.path().join("rss"));
            assert_eq!(code, 0, "{}: exit {code}", s.name);
            walls.push(w);
            rss = rss.max(r);
        }
        assert_eq!(slack.posts().len(), RUNS, "{}: one post per run", s.name);
        if s.gate {
            let t = &slack.texts()[0];
            assert!(
                t.contains("*Action needed*") && !t.contains("Live re-check failed"),
                "{}: the gate did not run cleanly:\n{t}",
                s.name
            );
        }
        walls.sort();
        let med = walls[RUNS / 2];
        // Reference in the same run: the Pushgateway's own answer to the Query API, which the
        // real gateway computes per request and which dominates the small scenarios.
        let mut refs: Vec<Duration> = (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                testkit::proc::http_get(&format!("{}/api/v1/metrics", pg.url()))
                    .expect("GET /api/v1/metrics");
                t.elapsed()
            })
            .collect();
        refs.sort();
        let pg_ref = refs[RUNS / 2];
        let wall_ok = med <= s.wall_target;
        let rss_ok = rss <= s.rss_target_kib;
        all_ok &= wall_ok && rss_ok;
        rows.push(format!(
            "| {} wall (median of {RUNS}) | ≤ {} ms | {:.0} ms | {:.2} {} |",
            s.name,
            s.wall_target.as_millis(),
            med.as_secs_f64() * 1000.0,
            med.as_secs_f64() / s.wall_target.as_secs_f64(),
            if wall_ok { "ok" } else { "OVER" }
        ));
        rows.push(format!(
            "| {} — Pushgateway `/api/v1/metrics` answer alone (reference) | — | {:.0} ms | report = {:.1}× the reference |",
            s.name,
            pg_ref.as_secs_f64() * 1000.0,
            med.as_secs_f64() / pg_ref.as_secs_f64()
        ));
        rows.push(format!(
            "| {} peak RSS | ≤ {} MiB | {:.1} MiB | {:.2} {} |",
            s.name,
            s.rss_target_kib / 1024,
            rss as f64 / 1024.0,
            rss as f64 / s.rss_target_kib as f64,
            if rss_ok { "ok" } else { "OVER" }
        ));
        eprintln!("{}: median {:?}, peak RSS {} KiB", s.name, med, rss);
    }
    let size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
    let size_ok = size <= 6 * 1024 * 1024;
    all_ok &= size_ok;
    rows.push(format!(
        "| stripped binary | ≤ 6 MiB | {:.2} MiB | {:.2} {} |",
        size as f64 / 1048576.0,
        size as f64 / (6.0 * 1048576.0),
        if size_ok { "ok" } else { "OVER" }
    ));
    let mut md = String::from("| figure | target | measured | ratio/ok |\n|---|---|---|---|\n");
    for r in rows {
        md.push_str(&r);
        md.push('\n');
    }
    if let Some(p) = out.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(&out, &md).unwrap();
    print!("{md}");
    if !all_ok {
        std::process::exit(1);
    }
}
