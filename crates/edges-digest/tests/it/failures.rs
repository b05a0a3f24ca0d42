//! Database failures, metrics and `--json` (§8 first row, §9.7, §9.8, 12.3 #11, 15, 17).

use super::support::*;
use testkit::slack::error;
use testkit::{HttpServer, Reply};

#[test]
fn database_down_is_exit_3_without_post() {
    let mut env = Env::new();
    env.edge("a", "b", "allow", "1 hour", 1);
    env.pg.stop();
    let r = env.run(&["--json"]);
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.line("database: ").len() > "database: ".len());
    assert!(env.slack.posts().is_empty());
    assert_eq!(r.json()["result"], "failed");
}

#[test]
fn missing_edge_table_is_notable_exit_3() {
    let env = Env::with_ddl(None);
    let r = env.run(&[]);
    assert_eq!(r.code, 3, "{}", r.all());
    assert_eq!(
        r.line("table edge"),
        "table edge does not exist — is goldmane-edge-aggregator deployed and migrated?"
    );
    assert!(env.slack.posts().is_empty());
    assert_eq!(env.runs(), 0);
}

#[test]
fn role_without_create_fails_state_tables_and_state_none_still_works() {
    let env = Env::new();
    env.edge("a", "b", "allow", "1 hour", 1);
    env.sql(
        "CREATE ROLE reader LOGIN PASSWORD 'r34d3rPw'; GRANT SELECT ON edge, egress_edge TO reader",
    );
    let mut vars = env.vars();
    vars[0].1 = format!(
        "postgres://reader:r34d3rPw@127.0.0.1:{}/{DB}",
        env.pg.port()
    );
    let r = run(&config(&vars, &[]));
    assert_eq!(r.code, 3, "{}", r.all());
    let l = r.line("cannot create digest state tables: ");
    assert!(
        l.ends_with(" (DIGEST_STATE=none runs without them)") && l.contains("permission denied"),
        "{l}"
    );
    assert!(!r.all().contains("r34d3rPw"));
    assert!(env.slack.posts().is_empty());

    let r = run(&config(&vars, &["--state", "none"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(env.slack.posts().len(), 1);
    assert!(!env.state_tables_exist());

    // Once an owner created the tables, the reader role cannot insert there → still exit 3.
    env.run(&["migrate"]);
    env.sql("GRANT SELECT ON edge_digest_run, edge_digest_announced TO reader");
    env.edge("c", "d", "allow", "1 hour", 1);
    let r = run(&config(&vars, &[]));
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.line("database: ").contains("permission denied"));
    assert_eq!(env.slack.posts().len(), 1);
}

#[test]
fn dry_run_without_webhook_prints_text_and_touches_nothing() {
    // 12.3 #12 (first half; the second is a binary test)
    let env = Env::new();
    env.edge("a", "b", "deny", "1 hour", 4);
    let vars = vec![
        ("DATABASE_URL".to_string(), env.pg.dsn(DB)),
        ("DRY_RUN".to_string(), "1".to_string()),
    ];
    let r = run(&config(&vars, &[]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.cap.stdout.len(), 1);
    assert!(r.cap.stdout[0]
        .starts_with("*1 new edge in last 24h*  (deny 1)\n• `a` → `b`  *deny* · 4 flows · first "));
    assert!(r
        .line("start ")
        .ends_with("channel=webhook-default webhook=none dry_run=true"));
    assert!(!env.state_tables_exist());
    assert!(env.slack.posts().is_empty());
}

#[test]
fn since_later_than_db_now_is_exit_2() {
    let env = Env::new();
    let r = env.run(&["--since", "2999-01-01"]);
    assert_eq!(r.code, 2);
    assert!(
        r.has("config DIGEST_SINCE: 2999-01-01T00:00:00+00:00 is later than the database's now() ")
    );
}

#[test]
fn pushgateway_gets_post_and_no_success_timestamp_after_failure() {
    // 12.3 #15
    let env = Env::new();
    env.edge("a", "b", "allow", "1 hour", 1);
    let pgw = HttpServer::start(|_| Reply::new(200));
    let mut vars = env.vars();
    vars.push(("PUSHGATEWAY_URL".into(), pgw.url()));
    let r = run(&config(&vars, &[]));
    assert_eq!(r.code, 0);
    let reqs = pgw.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path()),
        ("POST", "/metrics/job/edges_digest")
    );
    let b = reqs[0].body_str();
    assert!(
        b.contains("edges_digest_result{result=\"posted\"} 1\n")
            && b.contains("edges_digest_new_edges 1\n")
    );
    assert!(b.contains("edges_digest_last_success_timestamp_seconds "));
    assert!(b.contains("edges_digest_last_run_timestamp_seconds "));

    env.edge("c", "d", "allow", "1 hour", 1);
    env.slack.push([error(404, "channel_not_found")]);
    let r = run(&config(&vars, &["--failure-notice=false"]));
    assert_eq!(r.code, 4);
    let b = pgw.requests()[1].body_str();
    assert!(
        b.contains("edges_digest_result{result=\"failed\"} 1\n"),
        "{b}"
    );
    assert!(!b.contains("last_success"), "{b}");

    let _ = run(&config(&vars, &["--dry-run"]));
    assert_eq!(pgw.requests().len(), 2, "no metrics for dry-run");

    // Empty run pushes `empty`; a dead gateway is only a warning.
    env.slack.push([testkit::slack::ok()]);
    let r = run(&config(&vars, &[]));
    assert_eq!(r.code, 0);
    let r2 = run(&config(&vars, &[]));
    assert!(pgw.requests()[3]
        .body_str()
        .contains("edges_digest_result{result=\"empty\"} 1\n"));
    assert_eq!(r2.code, 0);
    drop(pgw);
    let r = run(&config(&vars, &[]));
    assert_eq!(r.code, 0);
    assert!(r.line("pushgateway: ").len() > 13);
    assert_eq!(
        r.level("pushgateway: "),
        homelab_core::log::Severity::Warning
    );
}

#[test]
fn json_for_posted_empty_failed_and_dry_run() {
    // 12.3 #17
    let env = Env::new();
    env.edge("a", "b", "allow", "1 hour", 2);
    env.edge("c", "d", "deny", "1 hour", 1);
    let r = env.run(&["--json", "--dry-run"]);
    let j = r.json();
    assert_eq!(j["result"], "dry_run");
    assert_eq!(j["new_edges"], 2);
    assert_eq!(j["by_action"], serde_json::json!({"deny": 1, "allow": 1}));
    assert!(j["text"].as_str().unwrap().starts_with("*2 new edges"));

    let r = env.run(&["--json"]);
    let j = r.json();
    for k in [
        "result",
        "since",
        "until",
        "catchup",
        "new_edges",
        "by_action",
        "shown",
        "more",
        "channel",
        "http_status",
        "slack_error",
        "text",
        "edges",
    ] {
        assert!(j.get(k).is_some(), "missing {k}: {j}");
    }
    assert_eq!(
        (
            j["result"].as_str(),
            j["http_status"].as_u64(),
            j["shown"].as_u64(),
            j["more"].as_u64()
        ),
        (Some("posted"), Some(200), Some(2), Some(0))
    );
    assert_eq!(j["channel"], "#alerts");
    assert_eq!(j["edges"][0]["src_ns"], "c");
    assert_eq!(j["edges"][0]["action"], "deny");
    assert_eq!(j["edges"][0]["flow_count"], 1);
    assert!(j["edges"][0]["first_seen"]
        .as_str()
        .unwrap()
        .ends_with("+00:00"));
    assert_eq!(j["text"], env.slack.texts()[0].as_str());
    assert!(time::OffsetDateTime::parse(
        j["since"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339
    )
    .is_ok());

    let j = env.run(&["--json"]).json();
    assert_eq!(
        (j["result"].as_str(), j["new_edges"].as_i64()),
        (Some("empty"), Some(0))
    );
    assert!(j["text"].is_null());

    env.edge("e", "f", "allow", "1 hour", 2);
    env.slack.push([error(403, "invalid_token")]);
    let j = env.run(&["--json"]).json();
    assert_eq!(
        (
            j["result"].as_str(),
            j["slack_error"].as_str(),
            j["http_status"].as_u64()
        ),
        (Some("failed"), Some("invalid_token"), Some(403))
    );
    assert!(!j.to_string().contains(testkit::slack::WEBHOOK_PATH));
}

#[test]
fn commit_failure_after_delivery_is_exit_3_and_the_next_run_reposts() {
    // §8 last row / L-COMMITFAIL: Slack accepted, then the session died before COMMIT.
    let env = Env::new();
    env.edge("a", "b", "allow", "1 hour", 1);
    env.run(&["migrate"]);
    env.slack
        .push([testkit::slack::ok().delay(std::time::Duration::from_secs(4))]);
    let cfg = env.config(&["--json"]);
    let h = std::thread::spawn(move || run(&cfg));
    testkit::wait_until(20, "the digest POST", || env.slack.posts().len() == 1);
    env.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'edges-digest' AND pid <> pg_backend_pid()",
    );
    let r = h.join().unwrap();
    assert_eq!(r.code, 3, "{}", r.all());
    let l = r.line("posted but not recorded: ");
    assert!(l.ends_with("; next run will repost 1 edges"), "{l}");
    assert_eq!(
        r.level("posted but not recorded"),
        homelab_core::log::Severity::Error
    );
    assert!(!r.has("posted 1 new edges"));
    assert_eq!(r.json()["result"], "failed");
    assert_eq!((env.runs(), env.announced()), (0, 0));
    // The only duplicate case: the next run posts the same edge again, then it is recorded.
    let r = env.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let texts = env.slack.texts();
    assert_eq!(texts.len(), 2);
    assert_eq!(texts[0], texts[1]);
    assert_eq!(env.announced(), 1);
}

#[test]
fn wrong_password_is_exit_3_and_the_password_is_never_shown() {
    let env = Env::new();
    env.edge("a", "b", "allow", "1 hour", 1);
    env.sql("CREATE ROLE digest LOGIN PASSWORD 'R1ghtPassw0rd'; GRANT ALL ON DATABASE goldmane_edges TO digest");
    // Password auth for this role only; the superuser keeps trust for the fixture's psql.
    let hba = env.sql("SHOW hba_file");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("host all digest 127.0.0.1/32 scram-sha-256\n{old}"),
    )
    .unwrap();
    env.sql("SELECT pg_reload_conf()");
    let port = env.pg.port();
    for dsn in [
        format!("postgres://digest:Wr0ngPassw0rd@127.0.0.1:{port}/{DB}"),
        format!("host=127.0.0.1 port={port} user=digest password=Wr0ngPassw0rd dbname={DB}"),
    ] {
        let mut vars = env.vars();
        vars[0].1 = dsn;
        let r = run(&config(&vars, &["--json"]));
        assert_eq!(r.code, 3, "{}", r.all());
        let l = r.line("database: ");
        assert!(l.contains("password authentication failed"), "{l}");
        assert!(!r.all().contains("Wr0ngPassw0rd"), "{}", r.all());
        assert_eq!(r.json()["result"], "failed");
        let o = bin(&vars, &[]);
        assert_eq!(o.status.code(), Some(3));
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            out.contains(" ERROR database: ") && !out.contains("Wr0ngPassw0rd"),
            "{out}"
        );
    }
    assert!(env.slack.posts().is_empty());
    assert!(!env.state_tables_exist());
}

#[test]
fn real_pushgateway_keeps_the_success_timestamp_across_a_failure() {
    // §9.8: POST (not PUT) so `last_success` survives a failed run; §11.5 alerts on its age.
    let env = Env::new();
    env.edge("a", "b", "allow", "1 hour", 1);
    let pgw = testkit::Pushgateway::start();
    let mut vars = env.vars();
    vars.push(("PUSHGATEWAY_URL".into(), pgw.url()));
    let sample = |text: &str, name: &str| -> Option<String> {
        text.lines()
            .find(|l| l.starts_with(name) && !l.starts_with('#'))
            .map(|l| l.rsplit(' ').next().unwrap_or("").to_string())
    };
    assert_eq!(run(&config(&vars, &[])).code, 0);
    let m = pgw.metrics_text();
    let success = sample(&m, "edges_digest_last_success_timestamp_seconds")
        .expect("success timestamp after a posted run");
    assert!(
        m.contains("edges_digest_result{") && m.contains("job=\"edges_digest\""),
        "{m}"
    );
    assert_eq!(sample(&m, "edges_digest_new_edges{").as_deref(), Some("1"));

    env.edge("c", "d", "allow", "1 hour", 1);
    env.slack.push([error(403, "invalid_token")]);
    assert_eq!(run(&config(&vars, &[])).code, 4);
    let m = pgw.metrics_text();
    let failed = m
        .lines()
        .find(|l| l.starts_with("edges_digest_result{") && l.contains("result=\"failed\""))
        .unwrap_or_else(|| panic!("{m}"));
    assert!(failed.ends_with(" 1"), "{failed}");
    assert_eq!(
        sample(&m, "edges_digest_last_success_timestamp_seconds").as_deref(),
        Some(success.as_str()),
        "the failure must not erase or move the last success"
    );
    assert!(!m.contains(testkit::slack::WEBHOOK_PATH));
}

#[test]
fn a_config_that_slipped_past_validation_is_exit_1_not_success() {
    // §7 exit 1: an internal inconsistency (no webhook outside dry-run) fails loudly.
    let env = Env::new();
    env.edge("a", "b", "allow", "1 hour", 1);
    let mut cfg = env.config(&["--json"]);
    cfg.webhook = None;
    let r = run(&cfg);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.has("internal error: no SLACK_WEBHOOK_URL outside dry-run"));
    assert_eq!(r.json()["result"], "failed");
    assert_eq!((env.runs(), env.announced()), (0, 0));
    assert!(env.slack.posts().is_empty());
}
