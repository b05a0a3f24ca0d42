//! The built binary: exit codes, stderr shape, stdout contract and secrets (12.3 #12, 16).

use super::support::*;
use std::net::TcpListener;
use testkit::slack::{error, WEBHOOK_PATH};

fn s(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

#[test]
fn empty_webhook_outside_dry_run_is_exit_2_without_any_connection() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    let vars = vec![
        (
            "DATABASE_URL".to_string(),
            format!("postgres://u:pw@127.0.0.1:{port}/x"),
        ),
        ("SLACK_WEBHOOK_URL".to_string(), String::new()),
    ];
    let o = bin(&vars, &["digest"]);
    assert_eq!(o.status.code(), Some(2));
    let err = s(&o.stderr);
    assert!(err.trim_end().ends_with(" ERROR config SLACK_WEBHOOK_URL: empty — refusing to run (the original silently dry-ran)"), "{err}");
    assert_eq!(err.lines().count(), 1);
    assert!(o.stdout.is_empty());
    assert!(l.accept().is_err(), "no DB connection attempted");
}

#[test]
fn bad_values_exit_2_naming_the_variable() {
    for (var, val) in [
        ("DIGEST_WINDOW", "1w"),
        ("DIGEST_MAX_EDGES", "0"),
        (
            "SLACK_WEBHOOK_URL",
            "http://hooks.slack.com/services/T/B/s3cr3t",
        ),
    ] {
        let vars = vec![
            (
                "DATABASE_URL".to_string(),
                "host=127.0.0.1 dbname=x".to_string(),
            ),
            (
                "SLACK_WEBHOOK_URL".to_string(),
                "https://hooks.slack.com/services/T/B/x".to_string(),
            ),
            (var.to_string(), val.to_string()),
        ];
        let o = bin(&vars, &[]);
        assert_eq!(o.status.code(), Some(2), "{var}");
        let err = s(&o.stderr);
        assert!(err.contains(&format!(" ERROR config {var}: ")), "{err}");
        assert!(
            !err.contains("s3cr3t") && !err.contains("/services/"),
            "{err}"
        );
    }
    let o = bin(&[], &["--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    let o = bin(&[], &["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let help = s(&o.stdout);
    assert!(
        help.contains("Exit codes:") && help.contains("[env: DIGEST_MAX_EDGES] [default: 40]"),
        "{help}"
    );
}

#[test]
fn secrets_never_appear_in_any_output() {
    // 12.3 #16 with a password in the DSN (trust auth accepts it).
    let env = Env::new();
    env.edge("a", "b", "allow", "1 hour", 1);
    let pgw = testkit::HttpServer::start(|_| testkit::Reply::new(200));
    let dsn = format!(
        "postgres://postgres:Sup3rS3cretPw@127.0.0.1:{}/{DB}",
        env.pg.port()
    );
    let vars = vec![
        ("DATABASE_URL".to_string(), dsn),
        ("SLACK_WEBHOOK_URL".to_string(), env.slack.webhook_url()),
        ("SLACK_CHANNEL".to_string(), "#alerts".to_string()),
        ("PUSHGATEWAY_URL".to_string(), pgw.url()),
    ];
    let mut outputs = Vec::new();
    let o = bin(&vars, &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    outputs.push(o);
    env.edge("c", "d", "allow", "1 hour", 1);
    env.slack.push([error(404, "channel_not_found")]);
    let o = bin(&vars, &["--json"]);
    assert_eq!(o.status.code(), Some(4), "{}", s(&o.stderr));
    assert!(
        s(&o.stderr).contains(" ERROR slack rejected the digest: HTTP 404 channel_not_found — ")
    );
    outputs.push(o);
    env.slack
        .push([error(503, ""), error(503, ""), error(503, "")]);
    let o = bin(&vars, &["--json", "--dry-run"]);
    outputs.push(o);
    let mut bad = vars.clone();
    bad[0].1 = format!(
        "postgres://postgres:Sup3rS3cretPw@127.0.0.1:{}/nosuchdb",
        env.pg.port()
    );
    let o = bin(&bad, &["--json"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(s(&o.stderr).contains(" ERROR database: "));
    outputs.push(o);
    for o in &outputs {
        for text in [s(&o.stdout), s(&o.stderr)] {
            assert!(!text.contains("Sup3rS3cretPw"), "{text}");
            assert!(
                !text.contains(WEBHOOK_PATH) && !text.contains("s3cr3tW3bh00k"),
                "{text}"
            );
        }
        let err = s(&o.stderr);
        for line in err.lines() {
            let ts = line.split(' ').next().unwrap();
            assert!(
                time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
                    .is_ok(),
                "{line}"
            );
        }
    }
    assert!(s(&outputs[0].stderr).contains("webhook=http://127.0.0.1:"));
    for r in pgw.requests() {
        assert!(!r.body_str().contains("Sup3rS3cretPw") && !r.body_str().contains(WEBHOOK_PATH));
    }
    // stdout is exactly one JSON document.
    for o in &outputs {
        let _: serde_json::Value =
            serde_json::from_slice(&o.stdout).expect("stdout is one JSON document");
    }
}

#[test]
fn dry_run_binary_prints_exactly_the_text() {
    let env = Env::new();
    env.edge("a", "b", "allow", "1 hour", 1);
    let vars = vec![("DATABASE_URL".to_string(), env.pg.url(DB))];
    let o = bin(&vars, &["run", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    let out = s(&o.stdout);
    assert!(
        out.starts_with(
            "*1 new edge in last 24h*  (allow 1)\n• `a` → `b`  allow · 1 flow · first "
        ),
        "{out}"
    );
    assert_eq!(out.lines().count(), 2);
    assert!(env.slack.posts().is_empty());
    assert!(!env.state_tables_exist());
}

#[test]
fn digest_alias_and_migrate_through_the_binary() {
    let mut env = Env::new();
    env.edge("a", "b", "deny", "1 hour", 2);
    let vars = env.vars();
    // `args: ["digest"]` of the original CronJob keeps working.
    let o = bin(&vars, &["digest"]);
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    assert_eq!(env.slack.posts().len(), 1);
    assert!(o.stdout.is_empty(), "stdout is only for --dry-run/--json");
    let err = s(&o.stderr);
    assert!(
        err.contains(" INFO posted 1 new edges to #alerts (HTTP 200, 1 shown, 0 more)"),
        "{err}"
    );
    let o = bin(&vars, &["migrate"]);
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    let help = s(&bin(&[], &["--help"]).stdout);
    assert!(help.contains("digest"), "{help}");
    env.pg.stop();
    let o = bin(&vars, &["migrate"]);
    assert_eq!(o.status.code(), Some(3), "{}", s(&o.stderr));
    assert!(s(&o.stderr).contains(" ERROR database: "));
}
