//! Spec §11.3.2: a stand-in Pushgateway for what a real one will not do on demand: a 404 on
//! the Query API (old gateways) → text fallback, an old `push_time_seconds`, garbage, a hang.

use super::common::*;
use nightly_report::pushgw::{MetricsSource, Pushgateway as PgClient};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::{HttpServer, Reply};

/// What `/metrics` of a 1.x gateway serves for the night of 2026-06-28 (text 0.0.4).
fn exposition() -> String {
    format!(
        r#"# HELP k8s_upgrade_available 1 when a newer Kubernetes release is available
# TYPE k8s_upgrade_available gauge
k8s_upgrade_available{{instance="",job="k8s-version-check",kind="minor",running="1.35.6",target="1.36.2"}} 1
# HELP k8s_upgrade_held 1 when the gate held the target
# TYPE k8s_upgrade_held gauge
k8s_upgrade_held{{instance="",job="k8s-upgrade"}} 1
k8s_upgrade_blocked{{instance="",job="k8s-upgrade",note="say \"hi\"\\n"}} 0
# TYPE k8s_version_check_last_run_timestamp gauge
k8s_version_check_last_run_timestamp{{instance="",job="k8s-version-check"}} {last:e}
push_time_seconds{{instance="",job="k8s-upgrade"}} 1.7826877e+09
push_time_seconds{{instance="",job="k8s-version-check"}} 1.782687601e+09
pushgateway_build_info{{branch="",goversion="go1.22",version="1.5.1"}} 1
process_resident_memory_bytes 1.2345e+07
"#,
        last = T23 as f64
    )
}

fn world_with_pg(pg_url: &str) -> (World, Vec<(&'static str, String)>) {
    let w = World::new(cluster(homelab_nodes("v1.35.6"), night_jobs()));
    let mut env = w.env();
    env.retain(|(k, _)| *k != "PUSHGATEWAY_URL");
    env.push(("PUSHGATEWAY_URL", pg_url.to_string()));
    env.push(("REPORT_GATE", "off".to_string()));
    (w, env)
}

#[test]
fn api_404_falls_back_to_the_text_exposition() {
    let srv = HttpServer::start(|r| match r.path() {
        "/api/v1/metrics" => Reply::text(404, "404 page not found"),
        "/metrics" => {
            Reply::text(200, exposition()).header("Content-Type", "text/plain; version=0.0.4")
        }
        _ => Reply::text(404, ""),
    });
    let (w, env) = world_with_pg(&srv.url());
    let o = run(&env, &["--dry-run"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        headline(&o.stdout),
        "⏸️ HELD — 1.36.2 not yet upgradable",
        "{}",
        o.stdout
    );
    assert!(o
        .stdout
        .contains("\nDetector: last run 2026-06-28 23:00Z (7h 7m ago)\n"));
    let paths: Vec<String> = srv
        .requests()
        .iter()
        .map(|r| r.path().to_string())
        .collect();
    assert_eq!(paths, ["/api/v1/metrics", "/metrics"]);
    drop(w);
}

#[test]
fn both_endpoints_failing_is_a_degraded_unknown() {
    let srv = HttpServer::start(|_| Reply::text(404, "404 page not found"));
    let (w, env) = world_with_pg(&srv.url());
    let o = run(&env, &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let t = w.posted();
    assert_eq!(
        headline(&t),
        "❓ UNKNOWN — Pushgateway unreadable; outcome cannot be decided"
    );
    assert!(
        t.ends_with("\n⚠️ Missing: pushgateway (GET /api/v1/metrics: HTTP 404: 404 page not found; text fallback: GET /metrics: HTTP 404: 404 page not found)"),
        "{t}"
    );
}

#[test]
fn old_push_time_with_a_fresh_last_run_gauge_is_fresh() {
    let doc = json!({"status": "success", "data": [
        {"labels": {"job": "k8s-version-check", "instance": ""}, "last_push_successful": true,
         "push_time_seconds": {"time_stamp": "2026-05-01T23:00:01Z", "type": "GAUGE", "metrics": [{"labels": {"job": "k8s-version-check", "instance": ""}, "value": "1.7776764e+09"}]},
         "k8s_upgrade_available": {"time_stamp": "2026-05-01T23:00:01Z", "type": "GAUGE", "help": "a", "metrics": [{"labels": {"job": "k8s-version-check", "instance": "", "kind": "patch", "running": "v1.35.5", "target": "1.35.6"}, "value": "1"}]},
         "k8s_version_check_last_run_timestamp": {"time_stamp": "2026-05-01T23:00:01Z", "type": "GAUGE", "metrics": [{"labels": {"job": "k8s-version-check", "instance": ""}, "value": "1.7826876e+09"}]}}
    ]});
    let srv = HttpServer::start(move |_| Reply::json(200, &doc));
    let (_w, env) = world_with_pg(&srv.url());
    let o = run(&env, &["--dry-run"]);
    assert_eq!(
        headline(&o.stdout),
        "🟢 UPGRADED — 1.35.5 → 1.35.6",
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("\nTarget: 1.35.6 (patch)\n"));
    assert!(!o.stdout.contains("stale"));
}

#[test]
fn push_time_stands_in_when_the_last_run_gauge_is_absent() {
    let doc = json!({"status": "success", "data": [
        {"labels": {"job": "k8s-version-check"},
         "push_time_seconds": {"metrics": [{"labels": {"job": "k8s-version-check"}, "value": "1.7826876e+09"}]},
         "k8s_upgrade_available": {"metrics": [{"labels": {"job": "k8s-version-check", "kind": "minor", "running": "1.35.6", "target": "1.36.2"}, "value": "1.0"}]}}
    ]});
    let srv = HttpServer::start(move |_| Reply::json(200, &doc));
    let (_w, env) = world_with_pg(&srv.url());
    let o = run(&env, &["--dry-run"]);
    assert!(
        o.stdout
            .contains("\nDetector: last run 2026-06-28 23:00Z (7h 7m ago) (push time)\n"),
        "{}",
        o.stdout
    );
}

#[test]
fn clock_skew_counts_as_age_zero_with_a_warning() {
    let future = (NOW_S + 3600) as f64;
    let doc = json!({"status": "success", "data": [
        {"labels": {"job": "k8s-version-check"},
         "k8s_upgrade_available": {"metrics": [{"labels": {"job": "k8s-version-check", "kind": "minor", "running": "1.35.6", "target": "1.36.2"}, "value": "1"}]},
         "k8s_version_check_last_run_timestamp": {"metrics": [{"labels": {"job": "k8s-version-check"}, "value": format!("{future:e}")}]}}
    ]});
    let srv = HttpServer::start(move |_| Reply::json(200, &doc));
    let (_w, env) = world_with_pg(&srv.url());
    let o = run(&env, &["--dry-run"]);
    assert!(
        o.stdout
            .contains("\nDetector: last run 2026-06-29 07:07Z (0m ago)\n"),
        "{}",
        o.stdout
    );
    assert!(o.stderr.contains(" WARN clock skew"), "{}", o.stderr);
}

#[test]
fn garbage_and_error_status_are_unknown() {
    for reply in [
        Reply::text(200, "<html>not json</html>").header("Content-Type", "application/json"),
        Reply::json(200, &json!({"status": "error", "error": "boom"})),
        Reply::json(200, &json!({"status": "success", "data": "nope"})),
    ] {
        let srv = HttpServer::start(move |_| reply.clone());
        let (w, env) = world_with_pg(&srv.url());
        let o = run(&env, &[]);
        assert_eq!(o.code, 0, "{o:?}");
        let t = w.posted();
        assert!(
            t.starts_with("*K8s upgrade nightly report — 2026-06-29*\n❓ UNKNOWN"),
            "{t}"
        );
        assert!(
            t.contains("\n⚠️ Missing: pushgateway (GET /api/v1/metrics: "),
            "{t}"
        );
    }
}

#[test]
fn transient_5xx_is_retried() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = Arc::clone(&n);
    let srv = HttpServer::start(move |_| {
        if n2.fetch_add(1, Ordering::SeqCst) < 2 {
            Reply::text(503, "busy")
        } else {
            Reply::json(200, &json!({"status": "success", "data": []}))
        }
    });
    let c = PgClient {
        url: srv.url(),
        timeout: Duration::from_secs(2),
        backoff: vec![Duration::from_millis(10), Duration::from_millis(10)],
    };
    assert_eq!(c.groups().unwrap(), vec![]);
    assert_eq!(n.load(Ordering::SeqCst), 3, "two retries");
    // A 4xx other than 404/429 is not retried.
    let srv = HttpServer::start(|_| Reply::text(401, "unauthorized"));
    let c = PgClient {
        url: srv.url(),
        ..c
    };
    let e = c.groups().unwrap_err();
    assert!(e.starts_with("GET /api/v1/metrics: HTTP 401"), "{e}");
    assert_eq!(srv.request_count(), 1);
}

#[test]
fn hang_ends_at_the_request_timeout_and_at_the_report_deadline() {
    let srv = HttpServer::start(|_| Reply::hang());
    let c = PgClient {
        url: srv.url(),
        timeout: Duration::from_millis(300),
        backoff: vec![],
    };
    let t = Instant::now();
    assert!(c.groups().is_err());
    assert!(t.elapsed() < Duration::from_secs(5));
    // The binary: the gathering deadline ends the wait; the report still posts.
    let (w, env) = world_with_pg(&srv.url());
    let mut env = env;
    env.push(("REPORT_DEADLINE_SECONDS", "2".into()));
    env.push(("GATE_DEADLINE_SECONDS", "1".into()));
    let o = run(&env, &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let t = w.posted();
    assert!(
        t.starts_with("*K8s upgrade nightly report — 2026-06-29*\n❓ UNKNOWN"),
        "{t}"
    );
    assert!(t.ends_with("\n⚠️ Missing: pushgateway (deadline)"), "{t}");
    assert!(t.contains("\nRunning: 1.35.6 (7 nodes)\n"), "{t}");
    assert!(
        o.stderr
            .contains(" WARN source pushgateway failed: deadline\n"),
        "{}",
        o.stderr
    );
}

#[test]
fn garbage_values_and_float_forms() {
    let doc = json!({"status": "success", "data": [
        {"labels": {"job": "k8s-version-check"},
         "push_time_seconds": {"metrics": [{"labels": {"job": "k8s-version-check"}, "value": "1.78e+09"}]},
         "k8s_upgrade_available": {"metrics": [
             {"labels": {"job": "k8s-version-check", "kind": "minor", "running": "v1.35.6", "target": "1.36.2"}, "value": "1.0e0"},
             {"labels": {"job": "k8s-version-check", "kind": "minor", "running": "v1.35.6", "target": "1.37.0"}, "value": "yes"}]},
         "k8s_version_check_last_run_timestamp": {"metrics": [{"labels": {"job": "k8s-version-check"}, "value": "1.7826876e+09"}]}},
        {"labels": {"job": "k8s-upgrade"},
         "k8s_upgrade_held": {"metrics": [{"labels": {"job": "k8s-upgrade"}, "value": "+Inf"}]},
         "k8s_upgrade_blocked": {"metrics": [{"labels": {"job": "k8s-upgrade"}, "value": "garbage"}]},
         "k8s_upgrade_in_flight": {"metrics": [{"labels": {"job": "k8s-upgrade"}, "value": "NaN"}]}}
    ]});
    let srv = HttpServer::start(move |_| Reply::json(200, &doc));
    let (_w, env) = world_with_pg(&srv.url());
    let o = run(&env, &["--dry-run", "--json"]);
    assert_eq!(o.code, 0, "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(
        v["outcome"], "not_upgraded",
        "garbage/NaN/Inf are not 1: {v}"
    );
    assert_eq!(
        v["target"], "1.36.2",
        "the garbage 1.37.0 series is ignored"
    );
    assert_eq!(v["gauges"]["k8s_upgrade_held"], serde_json::Value::Null);
    assert_eq!(v["gauges"]["k8s_upgrade_blocked"], serde_json::Value::Null);
    assert_eq!(
        v["gauges"]["k8s_upgrade_in_flight"],
        serde_json::Value::Null
    );
    assert_eq!(v["gauges"]["k8s_upgrade_available"], 1.0);
    assert!(
        o.stderr.contains(
            " WARN gauge k8s_upgrade_blocked: ignored 1 sample(s) that are not finite numbers"
        ),
        "{}",
        o.stderr
    );
}
