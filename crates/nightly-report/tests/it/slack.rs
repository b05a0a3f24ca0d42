//! Spec §11.3.4: the Slack stand-in replaying Slack's documented answers → exit codes of §6.3;
//! exactly one POST on success; `channel` only when set; the webhook never printed.

use super::common::*;
use testkit::slack::{error, ok, rate_limited};
use testkit::{Reply, SlackSink};

const OFF: (&str, &str) = ("REPORT_GATE", "off");

fn world(replies: Vec<Reply>) -> World {
    let w = World::with_slack(
        cluster(homelab_nodes("v1.35.6"), night_jobs()),
        SlackSink::with_script(replies),
    );
    seed_detector(&w.pg, "1.35.6", "1.35.6", "patch", 0.0, T23);
    seed_chain(&w.pg, Chain::default());
    w
}

#[test]
fn ok_is_exactly_one_post_without_channel_unless_set() {
    let w = world(vec![ok()]);
    let o = w.run(&[OFF], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let posts = w.slack.posts();
    assert_eq!(posts.len(), 1);
    let p = &posts[0];
    assert_eq!(p.method, "POST");
    assert_eq!(
        p.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let body = p.json();
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("*K8s upgrade nightly report — 2026-06-29*\n⚪ NO UPGRADE NEEDED\n"),
        "{text}"
    );
    assert!(!text.ends_with('\n'));
    assert!(
        o.stderr.contains(" INFO posted (HTTP 200)\n"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains(&format!(" INFO start namespace=k8s-upgrade pushgateway={} webhook=http://127.0.0.1:{}/… dry_run=false\n", w.pg.url(), w.slack.server().port())), "{}", o.stderr);
    assert!(
        o.stdout.is_empty(),
        "stdout only for --dry-run/--json: {}",
        o.stdout
    );
    // With SLACK_CHANNEL: the channel field is sent.
    let w = world(vec![]);
    let o = w.run(&[OFF, ("SLACK_CHANNEL", "#k8s-upgrades")], &[]);
    assert_eq!(o.code, 0);
    assert_eq!(w.slack.posts()[0].json()["channel"], "#k8s-upgrades");
}

fn refused(reply: Reply, code_body: &str, hint: &str) {
    let w = world(vec![reply]);
    let o = w.run(&[OFF, ("SLACK_CHANNEL", "#k8s-upgrades")], &[]);
    assert_eq!(o.code, 4, "{o:?}");
    assert_eq!(w.slack.posts().len(), 1, "never retried");
    let want = format!(" ERROR slack rejected the report: {code_body} — {hint}\n");
    assert!(o.stderr.contains(&want), "want {want:?} in\n{}", o.stderr);
}

#[test]
fn channel_not_found_is_exit_4_with_the_hint() {
    refused(
        error(404, "channel_not_found"),
        "HTTP 404 channel_not_found",
        "the webhook's Slack app is not a member of #k8s-upgrades or it does not exist (the 2026-06 #security failure); invite the app or change SLACK_CHANNEL",
    );
}

#[test]
fn archived_revoked_and_redirect_are_exit_4() {
    refused(
        error(410, "channel_is_archived"),
        "HTTP 410 channel_is_archived",
        "#k8s-upgrades is archived",
    );
    refused(
        error(403, "invalid_token"),
        "HTTP 403 invalid_token",
        "webhook revoked or disabled; rotate the k8s-upgrade-creds secret",
    );
    refused(
        error(400, "invalid_payload"),
        "HTTP 400 invalid_payload",
        "payload rejected — bug in nightly-report",
    );
    refused(
        Reply::text(302, "").header("Location", "https://example.invalid/"),
        "HTTP 302 ",
        "webhook URL redirects",
    );
}

#[test]
fn rate_limited_is_retried_after_retry_after() {
    let w = world(vec![rate_limited(1)]);
    let o = w.run(&[OFF], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(w.slack.posts().len(), 2);
    assert!(
        o.stderr
            .contains(" WARN slack attempt 1/3 failed: HTTP 429 rate_limited; retrying in 1s\n"),
        "{}",
        o.stderr
    );
    // Three 429s: exit 5 after 3 attempts.
    let w = world(vec![rate_limited(1), rate_limited(1), rate_limited(1)]);
    let o = w.run(&[OFF], &[]);
    assert_eq!(o.code, 5, "{o:?}");
    assert_eq!(w.slack.posts().len(), 3);
    assert!(
        o.stderr
            .contains(" ERROR slack unreachable after 3 attempts: HTTP 429 rate_limited\n"),
        "{}",
        o.stderr
    );
}

#[test]
fn server_errors_exhaust_three_attempts_exit_5() {
    let w = world(vec![
        error(500, "internal_error"),
        error(503, "busy"),
        error(500, "internal_error"),
    ]);
    let o = w.run(&[OFF], &[]);
    assert_eq!(o.code, 5, "{o:?}");
    assert_eq!(w.slack.posts().len(), 3);
    assert!(
        o.stderr
            .contains(" ERROR slack unreachable after 3 attempts: HTTP 500 internal_error\n"),
        "{}",
        o.stderr
    );
}

#[test]
fn hang_after_sending_is_ambiguous_exit_5_not_retried() {
    let w = world(vec![Reply::hang()]);
    let o = w.run(&[OFF, ("SLACK_TIMEOUT_SECS", "1")], &[]);
    assert_eq!(o.code, 5, "{o:?}");
    assert_eq!(w.slack.posts().len(), 1, "a retry could double-post");
    assert!(
        o.stderr
            .contains(" ERROR slack response lost after sending ("),
        "{}",
        o.stderr
    );
}

#[test]
fn unreachable_webhook_is_exit_5() {
    let w = world(vec![]);
    let port = testkit::free_port();
    let dead = format!("http://127.0.0.1:{port}/services/T0TESTKIT/B0TESTKIT/s3cr3tW3bh00kT0k3n");
    let o = w.run(&[OFF, ("SLACK_WEBHOOK_URL", &dead)], &[]);
    assert_eq!(o.code, 5, "{o:?}");
    assert!(
        o.stderr
            .contains(" ERROR slack unreachable after 3 attempts: "),
        "{}",
        o.stderr
    );
}

#[test]
fn json_reports_the_delivery() {
    let w = world(vec![error(404, "channel_not_found")]);
    let o = w.run(&[OFF], &["--json"]);
    assert_eq!(o.code, 4, "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["slack"]["posted"], false);
    assert_eq!(v["slack"]["http_status"], 404);
    assert!(v["slack"]["error"]
        .as_str()
        .unwrap()
        .starts_with("slack rejected the report: HTTP 404 channel_not_found — "));
    let w = world(vec![]);
    let o = w.run(&[OFF], &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(
        v["slack"],
        serde_json::json!({"posted": true, "http_status": 200, "error": null})
    );
}
