//! Shared fixtures: the chain's gauges pushed the way the chain pushes them, a real-shaped
//! cluster, and a runner for the built binary with a clean environment.

#![allow(dead_code)]

use homelab_core::pushgateway::{render, Gauge};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use testkit::kube::{job, node, FakeCluster, FakeKube, TEST_TOKEN};
use testkit::{Pushgateway, SlackSink};

/// The report's clock in every scenario: the 2026-06-29 morning run (06:07Z).
pub const NOW: &str = "2026-06-29T06:07:00Z";
pub const NOW_S: i64 = 1_782_713_220;
/// 2026-06-28T23:00:00Z, the detector's run.
pub const T23: i64 = 1_782_687_600;
pub const NS: &str = "k8s-upgrade";

/// The 5.7 example, exactly as Slack renders it.
pub const EXAMPLE_57: &str = "*K8s upgrade nightly report — 2026-06-29*
⏸️ HELD — 1.36.2 not yet upgradable
Running: 1.35.6 (7 nodes)
Detector: last run 2026-06-28 23:00Z (7h 7m ago)
Target: 1.36.2 (minor)
*Action needed*
• calico 3.30.7 supports k8s ≤ 1.35; upgrade calico to >= 3.31
*Waiting on upstream*
• external-secrets 2.6.0 supports k8s ≤ 1.35; no released external-secrets version supports k8s 1.36 yet
• kyverno 1.18.1 supports k8s ≤ 1.35; no released kyverno version supports k8s 1.36 yet
*Pinned (held by us)*
• gpu-operator 25.3 supports k8s ≤ 1.35; pinned: 26.3 needs newer NVIDIA driver image + Ubuntu; 1.36 support from 26.3
*Recent jobs* (k8s-upgrade, last 24h)
• `k8s-version-check-29185380` ✅ Complete · 23:00Z · 0m14s
• `k8s-upgrade-preflight-1-36-2` ✅ Complete · 23:01Z · 1m02s";

/// Slack shows entities decoded; the spec's texts are written that way.
pub fn decode(s: &str) -> String {
    s.replace("&gt;", ">")
        .replace("&lt;", "<")
        .replace("&amp;", "&")
}

pub fn rfc(ts: i64) -> String {
    homelab_core::log::format_utc(time::OffsetDateTime::from_unix_timestamp(ts).unwrap())
}

// ---------------------------------------------------------------------------------------------
// Pushgateway fixtures

/// POST a group (text exposition), as the chain's scripts do.
pub fn seed(pg: &Pushgateway, job: &str, gauges: &[Gauge]) {
    pg.seed(&format!("/metrics/job/{job}"), &render(gauges));
}

/// The detector's push (`k8s-version-check`, 23:00): available{kind,running,target} + last run.
pub fn seed_detector(
    pg: &Pushgateway,
    target: &str,
    running: &str,
    kind: &str,
    avail: f64,
    last_run: i64,
) {
    seed(
        pg,
        "k8s-version-check",
        &[
            Gauge::new(
                "k8s_upgrade_available",
                "1 when a newer Kubernetes release is available",
                avail,
            )
            .label("kind", kind)
            .label("running", running)
            .label("target", target),
            Gauge::new(
                "k8s_version_check_last_run_timestamp",
                "last detector run",
                last_run as f64,
            ),
        ],
    );
}

/// The chain's own gauges (`k8s-upgrade` group): preflight/postflight.
#[derive(Debug, Clone, Copy, Default)]
pub struct Chain {
    pub in_flight: f64,
    pub started: f64,
    pub snapshot: f64,
    pub blocked: f64,
    pub held: f64,
}

pub fn seed_chain(pg: &Pushgateway, c: Chain) {
    seed(
        pg,
        "k8s-upgrade",
        &[
            Gauge::new(
                "k8s_upgrade_in_flight",
                "1 while the chain runs",
                c.in_flight,
            ),
            Gauge::new("k8s_upgrade_started_timestamp", "chain start", c.started),
            Gauge::new(
                "k8s_upgrade_snapshot_taken",
                "etcd snapshot taken",
                c.snapshot,
            ),
            Gauge::new(
                "k8s_upgrade_blocked",
                "1 when the gate refused (actionable)",
                c.blocked,
            ),
            Gauge::new(
                "k8s_upgrade_held",
                "1 when the gate held the target",
                c.held,
            ),
        ],
    );
}

/// Remove a group (between scenarios on one server).
pub fn delete_group(pg: &Pushgateway, job: &str) {
    let (st, _) = testkit::proc::http_request(
        "DELETE",
        &format!("{}/metrics/job/{job}", pg.url()),
        &[],
        None,
    )
    .expect("DELETE group");
    assert!((200..300).contains(&st), "DELETE {job}: {st}");
}

// ---------------------------------------------------------------------------------------------
// Cluster fixtures

/// The homelab: `k8s-master` + 6 workers at `kubelet`.
pub fn homelab_nodes(kubelet: &str) -> Vec<Value> {
    let mut v = vec![node("k8s-master", kubelet, "containerd://2.1.5")];
    for i in 1..=6 {
        v.push(node(&format!("k8s-node{i}"), kubelet, "containerd://2.1.5"));
    }
    v
}

/// The matrix fixture (calico, external-secrets, gpu-operator pinned, kyverno).
pub fn matrix_path() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/addon-compat.json"
    )
    .to_string()
}

/// The four addons of the matrix at the given image tags (kyverno also as its version label).
pub fn addons(c: &mut FakeCluster, calico: &str, eso: &str, gpu: &str, kyverno: &str) {
    use testkit::kube::workload;
    c.add_workload(workload(
        "DaemonSet",
        "calico-system",
        "calico-node",
        "calico-node",
        &format!("quay.io/calico/node:{calico}"),
        &[],
    ));
    c.add_workload(workload(
        "Deployment",
        "external-secrets",
        "external-secrets",
        "external-secrets",
        &format!("oci.external-secrets.io/external-secrets/external-secrets:{eso}"),
        &[],
    ));
    c.add_workload(workload(
        "Deployment",
        "gpu-operator",
        "gpu-operator",
        "gpu-operator",
        &format!("nvcr.io/nvidia/gpu-operator:{gpu}"),
        &[],
    ));
    c.add_workload(workload(
        "Deployment",
        "kyverno",
        "kyverno-admission-controller",
        "kyverno",
        &format!("reg.kyverno.io/kyverno/kyverno:{kyverno}"),
        &[("app.kubernetes.io/version", kyverno)],
    ));
}

pub fn cordon(mut n: Value) -> Value {
    n["spec"]["unschedulable"] = json!(true);
    n["spec"]["taints"] = json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": "2026-06-24T23:04:11Z"}]);
    n
}

pub fn not_ready(mut n: Value) -> Value {
    for c in n["status"]["conditions"].as_array_mut().unwrap() {
        if c["type"] == "Ready" {
            c["status"] = json!("Unknown");
            c["reason"] = json!("NodeStatusUnknown");
            c["message"] = json!("Kubelet stopped posting node status.");
        }
    }
    n
}

/// A Job of the chain's namespace, times as Unix seconds.
pub fn kjob(name: &str, state: &str, start: i64, end: Option<i64>) -> Value {
    let e = end.map(rfc);
    job(NS, name, state, &rfc(start), e.as_deref())
}

/// The night before 2026-06-29: detector + preflight (held).
pub fn night_jobs() -> Vec<Value> {
    vec![
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
    ]
}

pub fn cluster(nodes: Vec<Value>, jobs: Vec<Value>) -> FakeCluster {
    let mut c = FakeCluster::default();
    c.add("/v1/nodes", nodes);
    c.add("batch/v1/jobs", jobs);
    c
}

// ---------------------------------------------------------------------------------------------
// Running the binary

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nightly-report")
}

#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Neither stream carries the webhook's secret path or the API token.
    pub fn assert_no_secrets(&self) {
        for s in [&self.stdout, &self.stderr] {
            assert!(
                !s.contains("s3cr3tW3bh00kT0k3n"),
                "webhook token leaked:\n{s}"
            );
            assert!(
                !s.contains("/services/T0TESTKIT"),
                "webhook path leaked:\n{s}"
            );
            assert!(!s.contains(TEST_TOKEN), "API token leaked:\n{s}");
            assert!(!s.contains("fake-kube-sig"), "API token leaked:\n{s}");
        }
    }
}

/// Run the binary with exactly `env` (plus PATH and an empty HOME) and `args`.
pub fn run(env: &[(&str, String)], args: &[&str]) -> Out {
    let out = Command::new(bin())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent-home")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(args)
        .output()
        .expect("run nightly-report");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A morning's world: real Pushgateway, the HTTPS API fixture, the Slack stand-in.
pub struct World {
    pub pg: Pushgateway,
    pub kube: FakeKube,
    pub slack: SlackSink,
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl World {
    pub fn new(c: FakeCluster) -> World {
        Self::with_slack(c, SlackSink::start())
    }

    pub fn with_slack(c: FakeCluster, slack: SlackSink) -> World {
        let kube = FakeKube::start(c);
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = kube.write_kubeconfig(&dir.path().join("config"));
        World {
            pg: Pushgateway::start(),
            kube,
            slack,
            kubeconfig,
            _dir: dir,
        }
    }

    /// PUSHGATEWAY_URL, KUBECONFIG, SLACK_WEBHOOK_URL and the replayed clock.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PUSHGATEWAY_URL", self.pg.url()),
            ("KUBECONFIG", self.kubeconfig.display().to_string()),
            ("SLACK_WEBHOOK_URL", self.slack.webhook_url()),
            ("REPORT_NOW", NOW.to_string()),
        ]
    }

    /// Run with the world's env plus `extra` (later entries win).
    pub fn run(&self, extra: &[(&'static str, &str)], args: &[&str]) -> Out {
        let mut env = self.env();
        for (k, v) in extra {
            env.retain(|(n, _)| n != k);
            env.push((k, v.to_string()));
        }
        let out = run(&env, args);
        out.assert_no_secrets();
        out
    }

    /// The one posted text (asserts exactly one POST).
    pub fn posted(&self) -> String {
        let t = self.slack.texts();
        assert_eq!(t.len(), 1, "expected exactly one POST, got {t:?}");
        t[0].clone()
    }

    /// Only GETs reached the API server.
    pub fn assert_get_only(&self) {
        let reqs = self.kube.requests();
        assert!(!reqs.is_empty());
        assert!(reqs.iter().all(|r| r.method == "GET"), "{reqs:?}");
    }
}

/// The headline (second line) of a message.
pub fn headline(text: &str) -> String {
    text.lines().nth(1).unwrap_or_default().to_string()
}
