//! Spec §11.3.6 and §8: `--dry-run` sends no POST and prints exactly the text; `--json`
//! matches §8.2; no output carries the webhook path or the service-account token.

use super::common::*;
use serde_json::Value;

#[test]
fn dry_run_prints_exactly_what_would_be_posted() {
    let w = World::new(cluster(homelab_nodes("v1.35.6"), night_jobs()));
    seed_detector(&w.pg, "1.36.2", "1.35.6", "minor", 1.0, T23);
    seed_chain(
        &w.pg,
        Chain {
            held: 1.0,
            ..Chain::default()
        },
    );
    let dry = w.run(&[("REPORT_GATE", "off")], &["--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(w.slack.posts().is_empty());
    let o = w.run(&[("REPORT_GATE", "off")], &[]);
    assert_eq!(o.code, 0);
    assert_eq!(format!("{}\n", w.posted()), dry.stdout);
    assert!(
        dry.stdout
            .contains("\nTarget: 1.36.2 (minor)\n(live re-check disabled)\n*Recent jobs*"),
        "{}",
        dry.stdout
    );
}

#[test]
fn json_document_matches_8_2() {
    let w = World::new(cluster(homelab_nodes("v1.35.6"), night_jobs()));
    seed_detector(&w.pg, "1.36.2", "1.35.6", "minor", 1.0, T23);
    seed_chain(
        &w.pg,
        Chain {
            held: 1.0,
            blocked: 1.0,
            ..Chain::default()
        },
    );
    let o = w.run(&[], &["--json", "--dry-run"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(w.slack.posts().is_empty(), "--json --dry-run posts nothing");
    assert_eq!(o.stdout.lines().count(), 1, "one document");
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    for k in [
        "schema",
        "generated_at",
        "outcome",
        "headline",
        "text",
        "degraded",
        "target",
        "kind",
        "running",
        "detector",
        "gauges",
        "reasons",
        "gate",
        "jobs",
        "sources",
        "slack",
    ] {
        assert!(keys.contains(&k), "missing {k}: {v}");
    }
    assert_eq!(v["schema"], 1);
    assert_eq!(v["generated_at"], "2026-06-29T06:07:00+00:00");
    assert_eq!(v["outcome"], "held");
    assert_eq!(v["headline"], "⏸️ HELD — 1.36.2 not yet upgradable");
    assert!(v["text"]
        .as_str()
        .unwrap()
        .starts_with("*K8s upgrade nightly report — 2026-06-29*\n⏸️ HELD"));
    assert_eq!(v["target"], "1.36.2");
    assert_eq!(v["kind"], "minor");
    assert_eq!(v["running"], serde_json::json!(["1.35.6"]));
    assert_eq!(
        v["detector"],
        serde_json::json!({"last_run": "2026-06-28T23:00:00+00:00", "age_s": 25620, "stale": false})
    );
    assert_eq!(v["gauges"]["k8s_upgrade_held"], 1.0);
    assert_eq!(v["gauges"]["k8s_upgrade_blocked"], 1.0);
    assert_eq!(v["gauges"]["k8s_upgrade_in_flight"], 0.0);
    assert_eq!(
        v["gauges"]["k8s_version_check_last_run_timestamp"],
        T23 as f64
    );
    assert_eq!(v["gauges"].as_object().unwrap().len(), 7);
    for k in ["actionable", "waiting", "pinned", "other"] {
        assert!(v["reasons"][k].is_array(), "{v}");
    }
    assert_eq!(v["gate"]["ran"], true, "held + available → gate");
    assert!(v["jobs"].as_array().unwrap().len() == 2);
    assert_eq!(
        v["jobs"][1],
        serde_json::json!({"name": "k8s-upgrade-preflight-1-36-2", "state": "complete", "reason": null, "start": "2026-06-28T23:01:00+00:00", "end": "2026-06-28T23:02:02+00:00"})
    );
    for s in ["pushgateway", "nodes", "jobs", "gate"] {
        assert!(v["sources"][s]["ok"].is_boolean(), "{s}: {v}");
        assert!(v["sources"][s]["ms"].is_u64(), "{s}: {v}");
    }
    assert_eq!(v["sources"]["pushgateway"]["error"], Value::Null);
    assert_eq!(
        v["slack"],
        serde_json::json!({"posted": false, "http_status": null, "error": null})
    );
}

#[test]
fn json_when_everything_failed() {
    let mut w = World::new(cluster(vec![], vec![]));
    w.pg.kill();
    let o = w.run(&[("KUBECONFIG", "")], &["--json", "--dry-run"]);
    assert_eq!(o.code, 0, "{o:?}");
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["outcome"], "unknown");
    assert_eq!(v["degraded"], true);
    assert_eq!(v["target"], Value::Null);
    assert_eq!(v["gauges"]["k8s_upgrade_available"], Value::Null);
    assert_eq!(v["sources"]["pushgateway"]["ok"], false);
    assert!(v["sources"]["nodes"]["error"]
        .as_str()
        .unwrap()
        .starts_with("no Kubernetes credentials"));
    let text = v["text"].as_str().unwrap();
    assert!(
        text.contains("\n⚠️ Missing: pushgateway (GET /api/v1/metrics: "),
        "{text}"
    );
    assert!(
        text.contains("), nodes (no Kubernetes credentials"),
        "{text}"
    );
}

#[test]
fn no_output_contains_the_webhook_or_the_token() {
    // World::run asserts this for every run; here also the posted text and --json with a post.
    let w = World::new(cluster(homelab_nodes("v1.35.6"), night_jobs()));
    seed_detector(&w.pg, "1.36.2", "1.35.6", "minor", 1.0, T23);
    let o = w.run(&[("REPORT_GATE", "off")], &["--json"]);
    assert_eq!(o.code, 0);
    let t = w.posted();
    assert!(!t.contains("s3cr3t") && !t.contains("fake-kube-sig"));
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["slack"]["posted"], true);
    // A Pushgateway URL with userinfo is logged as ***.
    let url = w.pg.url().replace("http://", "http://reader:pgpass123@");
    let o = w.run(
        &[("PUSHGATEWAY_URL", &url), ("REPORT_GATE", "off")],
        &["--dry-run"],
    );
    assert!(
        !o.stderr.contains("pgpass123") && !o.stdout.contains("pgpass123"),
        "{o:?}"
    );
    assert!(
        o.stderr.contains(" pushgateway=http://***@127.0.0.1:"),
        "{}",
        o.stderr
    );
}

/// §8.3: `7-day:` after Target from Prometheus `query_range`; a Prometheus failure drops the
/// line with a WARN and changes nothing else.
#[test]
fn seven_day_trend_from_prometheus_and_its_failure() {
    use testkit::{HttpServer, Reply};
    // 06:00Z of 2026-06-23 .. 2026-06-29.
    let end = 1_782_712_800i64;
    let day = move |i: i64| end - (6 - i) * 86400;
    let prom = HttpServer::start(move |r| {
        let q = r.query_param("query").unwrap_or_default().to_string();
        let pts: Vec<(i64, &str)> = if q.contains("k8s_upgrade_available") {
            vec![
                (day(1), "1"),
                (day(2), "1"),
                (day(3), "1"),
                (day(4), "1"),
                (day(5), "1"),
                (day(6), "1"),
            ]
        } else if q.contains("k8s_upgrade_blocked") {
            vec![(day(1), "1"), (day(2), "1"), (day(6), "0")]
        } else if q.contains("k8s_upgrade_held") {
            vec![(day(5), "1"), (day(6), "1")]
        } else if q.contains("k8s_upgrade_in_flight") {
            vec![(day(3), "1"), (day(4), "0")]
        } else {
            vec![]
        };
        let values: Vec<Value> = pts
            .iter()
            .map(|(t, v)| serde_json::json!([*t, v]))
            .collect();
        Reply::json(
            200,
            &serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]}}),
        )
    });
    let w = World::new(cluster(homelab_nodes("v1.35.6"), night_jobs()));
    seed_detector(&w.pg, "1.36.2", "1.35.6", "minor", 1.0, T23);
    seed_chain(
        &w.pg,
        Chain {
            held: 1.0,
            ..Chain::default()
        },
    );
    let o = w.run(
        &[("REPORT_GATE", "off"), ("PROMETHEUS_URL", &prom.url())],
        &["--dry-run"],
    );
    assert!(
        o.stdout
            .contains("\nTarget: 1.36.2 (minor)\n7-day: ·🔴🔴🟡🟠⏸️⏸️\n"),
        "{}",
        o.stdout
    );
    assert!(
        o.stderr.contains(" INFO source prometheus ok ("),
        "{}",
        o.stderr
    );
    let reqs = prom.requests();
    assert_eq!(reqs.len(), 4);
    assert!(reqs.iter().all(|r| r.path() == "/api/v1/query_range"
        && r.query_param("step") == Some("86400")
        && r.query_param("end") == Some("1782712800")
        && r.query_param("start") == Some(&(end - 6 * 86400).to_string())));
    // Prometheus down: no trend line, a WARN, same outcome, not degraded.
    let dead = format!("http://127.0.0.1:{}", testkit::free_port());
    let o = w.run(
        &[("REPORT_GATE", "off"), ("PROMETHEUS_URL", &dead)],
        &["--json", "--dry-run"],
    );
    assert_eq!(o.code, 0);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert!(!v["text"].as_str().unwrap().contains("7-day"));
    assert_eq!(v["outcome"], "held");
    assert_eq!(v["degraded"], false);
    assert!(
        o.stderr.contains(" WARN source prometheus failed: "),
        "{}",
        o.stderr
    );
}
