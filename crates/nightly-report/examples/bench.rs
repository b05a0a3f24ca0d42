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
use std::os::unix::process::ExitStatusExt;
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

/// The compat-gate "homelab" objects when the gate runs (hook for the in-process gate).
fn nightly_gate_fixture(_c: &mut FakeCluster, _gate: bool) {}

fn seed(pg: &Pushgateway, groups: usize) {
    let detector = render(&[
        Gauge::new("k8s_upgrade_available", "a", 1.0)
            .label("kind", "minor")
            .label("running", "1.35.6")
            .label("target", "1.36.2"),
        Gauge::new("k8s_version_check_last_run_timestamp", "t", T23 as f64),
    ]);
    pg.seed("/metrics/job/k8s-version-check", &detector);
    let chain = render(&[
        Gauge::new("k8s_upgrade_in_flight", "f", 0.0),
        Gauge::new("k8s_upgrade_started_timestamp", "s", 0.0),
        Gauge::new("k8s_upgrade_snapshot_taken", "s", 0.0),
        Gauge::new("k8s_upgrade_blocked", "b", 0.0),
        Gauge::new("k8s_upgrade_held", "h", 1.0),
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

/// Run once: (wall, peak RSS KiB, exit code).
fn run_once(bin: &Path, env: &[(String, String)]) -> (Duration, u64, i32) {
    let t = Instant::now();
    let child = Command::new(bin)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nightly-report");
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: plain FFI call with valid out-pointers for a child we spawned and still own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall = t.elapsed();
    assert_eq!(r, pid, "wait4");
    std::mem::forget(child); // already reaped
    let code = std::process::ExitStatus::from_raw(status)
        .code()
        .unwrap_or(-1);
    (wall, ru.ru_maxrss as u64, code)
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
        seed(&pg, s.groups);
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
        ];
        let mut walls = Vec::new();
        let mut rss = 0;
        for _ in 0..RUNS {
            let (w, r, code) = run_once(&bin, &env);
            assert_eq!(code, 0, "{}: exit {code}", s.name);
            walls.push(w);
            rss = rss.max(r);
        }
        assert_eq!(slack.posts().len(), RUNS, "{}: one post per run", s.name);
        walls.sort();
        let med = walls[RUNS / 2];
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
