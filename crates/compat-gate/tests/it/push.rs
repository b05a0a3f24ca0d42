//! §6 / §12.4 against the real Pushgateway (Debian `prometheus-pushgateway`): one POST per run
//! with all series, the chain's own series in the group survive, no push without `--push` or
//! with `--dry-run`, a dead Pushgateway leaves the exit code unchanged.

use super::common::*;
use testkit::kube::{Fault, FaultKind};
use testkit::Pushgateway;

/// One Pushgateway at a time (each test reads back whole groups).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The group our runs push to, unique per test process: a belt to the testkit's braces
/// (private `--persistence.file=`), so no other process's `job="k8s-upgrade"` group can ever be
/// read as ours. The default job name is covered by the command line's unit tests.
fn job() -> String {
    format!("k8s-upgrade-cgtest-{}", std::process::id())
}

/// `name{labels} value` lines of our group.
fn series(pg: &Pushgateway, name: &str) -> Vec<String> {
    pg.metrics_text()
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| l.contains(&format!("job=\"{}\"", job())))
        .map(str::to_string)
        .collect()
}

fn value(pg: &Pushgateway, name: &str, class: Option<&str>) -> Option<f64> {
    series(pg, name)
        .into_iter()
        .find(|l| class.is_none_or(|c| l.contains(&format!("class=\"{c}\""))))
        .and_then(|l| l.rsplit(' ').next().and_then(|v| v.parse().ok()))
}

fn gauges(pg: &Pushgateway) -> (f64, f64, f64, f64, f64, f64) {
    let v =
        |n: &str, c: Option<&str>| value(pg, n, c).unwrap_or_else(|| panic!("{n} {c:?} missing"));
    (
        v("k8s_upgrade_blocked", None),
        v("k8s_upgrade_held", None),
        v("k8s_upgrade_gate_error", None),
        v("k8s_upgrade_gate_blockers", Some("actionable")),
        v("k8s_upgrade_gate_blockers", Some("waiting")),
        v("k8s_upgrade_gate_blockers", Some("pinned")),
    )
}

fn run_push(env: &Env, pg: &Pushgateway, target: &str) -> Out {
    let mut e: Vec<(&str, String)> = vec![
        ("COMPAT_GATE_PUSH", "1".into()),
        ("PUSHGATEWAY_URL", pg.url()),
    ];
    e.push(("PUSHGATEWAY_JOB", job()));
    let refs: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.run(&[target], &refs)
}

#[test]
fn verdict_values_and_in_flight_survives() {
    let _g = serial();
    let pg = Pushgateway::start();
    // The chain's own series, pushed by upgrade-step.sh into the same group.
    pg.seed(
        &format!("/metrics/job/{}", job()),
        "# TYPE k8s_upgrade_in_flight gauge\nk8s_upgrade_in_flight 1\n",
    );
    // blocked
    let env = Env::scenario("cluster-1.34.9.json");
    let o = run_push(&env, &pg, "1.35.6");
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.contains(&format!(
            "INFO: pushed k8s_upgrade_blocked=1 k8s_upgrade_held=0 to {}/metrics/job/{}",
            pg.url(),
            job()
        )),
        "{}",
        o.stderr
    );
    assert_eq!(gauges(&pg), (1.0, 0.0, 0.0, 2.0, 0.0, 0.0));
    assert_eq!(
        value(&pg, "k8s_upgrade_in_flight", None),
        Some(1.0),
        "POST keeps the chain's series"
    );
    let ts = value(&pg, "k8s_upgrade_gate_last_run_timestamp_seconds", None).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - ts).abs() < 120.0, "{ts} vs {now}");
    // then safe: blocked back to 0 (one push, no flap).
    let env = Env::scenario("cluster-1.34.9-fixed.json");
    assert_eq!(run_push(&env, &pg, "1.35.6").code, 0);
    assert_eq!(gauges(&pg), (0.0, 0.0, 0.0, 0.0, 0.0, 0.0));
    // held
    let env = Env::scenario("cluster-1.35.6.json");
    assert_eq!(run_push(&env, &pg, "1.36.2").code, 4);
    assert_eq!(gauges(&pg), (0.0, 1.0, 0.0, 1.0, 2.0, 1.0));
    // error
    env.fk.with(|c| {
        c.faults.push(Fault {
            path_prefix: "/api/v1/nodes".into(),
            kind: FaultKind::Status(403, "nodes is forbidden".into()),
            times: None,
        })
    });
    assert_eq!(run_push(&env, &pg, "1.36.2").code, 3);
    let g = gauges(&pg);
    assert_eq!((g.0, g.1, g.2), (1.0, 0.0, 1.0));
    assert_eq!(value(&pg, "k8s_upgrade_in_flight", None), Some(1.0));
}

#[test]
fn no_push_without_flag_or_with_dry_run() {
    let _g = serial();
    let pg = Pushgateway::start();
    let env = Env::scenario("cluster-1.34.9.json");
    let url = pg.url();
    let j = job();
    let o = env.run(
        &["1.35.6"],
        &[("PUSHGATEWAY_URL", url.as_str()), ("PUSHGATEWAY_JOB", &j)],
    );
    assert_eq!(o.code, 2);
    let o = env.run(
        &["1.35.6", "--push", "--dry-run", "--pushgateway-url", &url],
        &[("PUSHGATEWAY_JOB", &j)],
    );
    assert_eq!(o.code, 2);
    assert!(
        o.stderr
            .contains("INFO: dry-run: would push k8s_upgrade_blocked=1 k8s_upgrade_held=0"),
        "{}",
        o.stderr
    );
    assert!(series(&pg, "k8s_upgrade_blocked").is_empty());
    assert!(
        !pg.metrics_text().contains(&format!("job=\"{j}\"")),
        "no group at all"
    );
}

#[test]
fn dead_pushgateway_keeps_exit_code() {
    let _g = serial();
    let mut pg = Pushgateway::start();
    let url = pg.url();
    pg.kill();
    let env = Env::scenario("cluster-1.35.6.json");
    let o = env.run(&["1.36.2", "--push", "--pushgateway-url", &url], &[]);
    assert_eq!(o.code, 4, "{o:?}");
    assert!(
        o.stderr
            .contains("ERROR: pushgateway push failed: POST /metrics/job/k8s-upgrade"),
        "{}",
        o.stderr
    );
    assert_eq!(
        o.stderr.matches("WARN: pushgateway push").count(),
        2,
        "two retries"
    );
    // Credentials in the URL are masked.
    let creds = url.replace("http://", "http://gate:s3cr3t-pw@");
    let o = env.run(
        &[
            "1.36.2",
            "--push",
            "--pushgateway-url",
            &creds,
            "--exit-zero-on-refusal",
        ],
        &[],
    );
    assert_eq!(o.code, 0, "exit-zero-on-refusal after the push");
    assert!(!o.stderr.contains("s3cr3t-pw"), "{}", o.stderr);
    assert!(o.stderr.contains("http://***@127.0.0.1"), "{}", o.stderr);
}
