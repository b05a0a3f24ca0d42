//! Slack's answers (§5.2, §6.1, §8, 12.3 #4–7): nothing is recorded unless Slack said 2xx.

use super::support::*;
use homelab_core::log::Severity;
use std::time::{Duration, Instant};
use testkit::slack::{error, ok, rate_limited};
use testkit::Reply;

fn seeded() -> Env {
    let env = Env::new();
    env.edge("a", "b", "allow", "1 hour", 2);
    env.edge("c", "d", "deny", "2 hours", 3);
    env
}

#[test]
fn channel_not_found_is_loud_notifies_and_records_nothing_then_next_run_posts() {
    // 12.3 #4
    let env = seeded();
    env.slack.push([error(404, "channel_not_found")]);
    let r = env.run(&["--json"]);
    assert_eq!(r.code, 4, "{}", r.all());
    assert_eq!(
        r.line("slack rejected the digest: "),
        "slack rejected the digest: HTTP 404 channel_not_found — the webhook's Slack app is not a member of #alerts or it does not exist (the 2026-06 #security failure); invite the app or change SLACK_CHANNEL; 2 edges NOT delivered"
    );
    assert_eq!(r.level("slack rejected"), Severity::Error);
    assert!(r.has("failure notice posted"));
    let posts = env.slack.posts();
    assert_eq!(posts.len(), 2);
    let notice = posts[1].json();
    assert!(notice.get("channel").is_none(), "{notice}");
    assert_eq!(
        notice["text"],
        ":warning: edges-digest could not post to #alerts: HTTP 404 channel_not_found — the webhook's Slack app is not a member of #alerts or it does not exist (the 2026-06 #security failure); invite the app or change SLACK_CHANNEL. 2 new edges NOT delivered."
    );
    assert_eq!(env.announced(), 0);
    assert_eq!(env.runs(), 0);
    let j = r.json();
    assert_eq!(
        (
            j["result"].as_str(),
            j["http_status"].as_u64(),
            j["slack_error"].as_str()
        ),
        (Some("failed"), Some(404), Some("channel_not_found"))
    );

    let r = env.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let texts = env.slack.texts();
    assert_eq!(texts.len(), 3);
    assert_eq!(texts[2], posts[0].json()["text"].as_str().unwrap());
    assert_eq!(env.announced(), 2);
}

#[test]
fn archived_channel_notifies_failure_notice_off_does_not() {
    let env = seeded();
    env.slack.push([error(410, "channel_is_archived")]);
    let r = env.run(&[]);
    assert_eq!(r.code, 4);
    assert!(r.has("slack rejected the digest: HTTP 410 channel_is_archived — #alerts is archived; 2 edges NOT delivered"));
    assert_eq!(env.slack.posts().len(), 2);

    env.slack.push([error(404, "channel_not_found")]);
    let r = env.run(&["--failure-notice=0"]);
    assert_eq!(r.code, 4);
    assert!(!r.has("failure notice"));
    assert_eq!(env.slack.posts().len(), 3);

    // No SLACK_CHANNEL: the webhook's own channel failed; nowhere else to tell.
    env.slack.push([error(404, "channel_not_found")]);
    let mut vars = env.vars();
    vars.retain(|(k, _)| k != "SLACK_CHANNEL");
    let r = run(&config(&vars, &[]));
    assert_eq!(r.code, 4);
    assert!(r
        .line("slack rejected")
        .contains("not a member of webhook-default"));
    assert_eq!(env.slack.posts().len(), 4);
    assert!(env.slack.posts()[3].json().get("channel").is_none());
}

#[test]
fn failed_notice_is_a_warning_and_exit_stays_4() {
    let env = seeded();
    env.slack
        .push([error(404, "channel_not_found"), error(500, "rollup_error")]);
    let r = env.run(&[]);
    assert_eq!(r.code, 4);
    assert_eq!(
        r.line("failure notice failed: "),
        "failure notice failed: HTTP 500 rollup_error"
    );
    assert_eq!(r.level("failure notice failed"), Severity::Warning);
    assert_eq!(env.slack.posts().len(), 2, "notice is a single attempt");
}

#[test]
fn other_4xx_are_refused_with_hint_and_no_notice() {
    let cases = [
        (
            400,
            "invalid_payload",
            "payload rejected — bug in edges-digest",
        ),
        (400, "no_text", "payload rejected — bug in edges-digest"),
        (
            403,
            "action_prohibited",
            "workspace policy blocks this webhook",
        ),
        (
            403,
            "invalid_token",
            "webhook revoked or disabled; rotate the goldmane-edges-slack secret",
        ),
        (
            404,
            "no_service",
            "webhook revoked or disabled; rotate the goldmane-edges-slack secret",
        ),
        (302, "", "webhook URL redirects"),
        (418, "teapot", "unexpected answer"),
    ];
    let env = seeded();
    for (i, (status, body, hint)) in cases.iter().enumerate() {
        env.slack.push([error(*status, body)]);
        let r = env.run(&[]);
        assert_eq!(r.code, 4, "{status} {body}: {}", r.all());
        assert_eq!(
            r.line("slack rejected"),
            format!(
                "slack rejected the digest: HTTP {status} {body} — {hint}; 2 edges NOT delivered"
            )
        );
        assert!(!r.has("failure notice"));
        assert_eq!(env.slack.posts().len(), i + 1, "one attempt, no notice");
        assert_eq!(env.announced(), 0);
    }
}

#[test]
fn rate_limited_twice_then_ok_retries_after_retry_after() {
    // 12.3 #5 (real sleeps: requests ≥ 1 s apart)
    let env = seeded();
    env.slack.push([rate_limited(1), rate_limited(1), ok()]);
    let t0 = Instant::now();
    let r = run_sleeping(&env.config(&[]), true);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(t0.elapsed() >= Duration::from_secs(2));
    assert_eq!(env.slack.posts().len(), 3);
    assert_eq!(r.sleeps, vec![Duration::from_secs(1); 2]);
    assert_eq!(
        r.line("slack attempt 1/3"),
        "slack attempt 1/3: HTTP 429 rate_limited; retrying in 1s"
    );
    assert_eq!(r.level("slack attempt 2/3"), Severity::Warning);
    assert_eq!(env.announced(), 2);
}

#[test]
fn long_retry_after_gives_up_with_exit_5() {
    let env = seeded();
    env.slack.push([rate_limited(120)]);
    let r = env.run(&[]);
    assert_eq!(r.code, 5);
    assert!(r
        .line("slack unreachable after 1 attempts: ")
        .contains("Retry-After 120s"));
    assert_eq!(env.slack.posts().len(), 1);
    assert_eq!(env.announced(), 0);
}

#[test]
fn service_unavailable_three_times_exit_5_nothing_recorded() {
    // 12.3 #6
    let env = seeded();
    env.slack
        .push([error(503, ""), error(503, ""), error(503, "")]);
    let r = env.run(&["--json"]);
    assert_eq!(r.code, 5, "{}", r.all());
    assert_eq!(
        r.sleeps,
        vec![Duration::from_secs(2), Duration::from_secs(4)]
    );
    assert_eq!(env.slack.posts().len(), 3);
    assert!(r
        .line("slack unreachable after 3 attempts: HTTP 503")
        .ends_with("; 2 edges NOT delivered"));
    assert_eq!(env.runs(), 0);
    assert_eq!(r.json()["result"], "failed");

    env.slack.push([error(500, "rollup_error"), ok()]);
    let r = env.run(&[]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.line("slack attempt 1/3"),
        "slack attempt 1/3: HTTP 500 rollup_error; retrying in 2s"
    );

    env.edge("x", "y", "allow", "1 hour", 1);
    env.slack.push([error(501, "not_implemented")]);
    let r = env.run(&[]);
    assert_eq!(r.code, 5);
    assert!(r.has("slack unreachable after 1 attempts: HTTP 501 not_implemented"));
}

#[test]
fn hang_after_body_is_ambiguous_and_not_retried() {
    // 12.3 #7
    let env = seeded();
    env.slack.push([Reply::hang()]);
    let r = env.run(&["--slack-timeout-secs", "1"]);
    assert_eq!(r.code, 5, "{}", r.all());
    assert_eq!(env.slack.posts().len(), 1);
    let l = r.line("slack response lost after sending (");
    assert!(
        l.ends_with("); not recorded — next run may repost 2 edges"),
        "{l}"
    );
    assert_eq!(env.announced(), 0);
}

#[test]
fn close_after_read_is_ambiguous() {
    let env = seeded();
    env.slack.push([Reply::drop_connection()]);
    let r = env.run(&[]);
    assert_eq!(r.code, 5, "{}", r.all());
    assert_eq!(env.slack.posts().len(), 1);
    assert!(r.has("slack response lost after sending ("));
}

#[test]
fn unexpected_2xx_body_is_delivered_with_warning() {
    let env = seeded();
    env.slack.push([Reply::text(200, "hmm")]);
    let r = env.run(&[]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.line("slack answered"),
        "slack answered HTTP 200 body hmm (expected \"ok\"); treated as delivered"
    );
    assert_eq!(env.announced(), 2);
}

#[test]
fn unexpected_2xx_body_is_logged_on_one_bounded_line() {
    let env = seeded();
    let body = format!("<html>\n<body>{}</body>\n</html>", "y".repeat(500));
    env.slack.push([Reply::text(202, body)]);
    let r = env.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let l = r.line("slack answered HTTP 202 body <html> <body>yyy");
    assert!(!l.contains('\n') && l.chars().count() < 300, "{l}");
    assert!(
        l.ends_with("… (expected \"ok\"); treated as delivered"),
        "{l}"
    );
    assert_eq!(env.announced(), 2);
}

#[test]
fn post_empty_posts_zero_line_and_dry_run_prints_text_only() {
    let env = Env::new();
    let r = env.run(&["--post-empty"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        env.slack.texts(),
        vec!["*0 new edges in last 24h*".to_string()]
    );
    assert_eq!(
        env.sql("SELECT posted, new_edges FROM edge_digest_run"),
        "t|0"
    );

    env.edge("a", "b", "allow", "1 hour", 2);
    let r = env.run(&["--dry-run"]);
    assert_eq!(r.code, 0);
    assert_eq!(r.cap.stdout.len(), 1);
    assert!(r.cap.stdout[0]
        .starts_with("*1 new edge in last 24h*  (allow 1)\n• `a` → `b`  allow · 2 flows"));
    assert_eq!(
        r.line("dry-run"),
        "dry-run: 1 new edges, nothing posted or recorded"
    );
    assert_eq!(env.slack.posts().len(), 1);
    assert_eq!(env.announced(), 0);
}

#[test]
fn connection_refused_is_retried_then_exit_5_nothing_recorded() {
    // §5.2: a connect failure happens before the request is written, so it is retried (2 s,
    // 4 s) and ends as L-SLACKTX with exit 5.
    let env = seeded();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut vars = env.vars();
    vars[1].1 = format!("http://127.0.0.1:{port}/services/T9/B9/cl0s3dP0rtS3cr3t");
    let r = run(&config(&vars, &["--json"]));
    assert_eq!(r.code, 5, "{}", r.all());
    assert_eq!(
        r.sleeps,
        vec![Duration::from_secs(2), Duration::from_secs(4)]
    );
    assert!(r.has("slack attempt 1/3: ") && r.has("slack attempt 2/3: "));
    let l = r.line("slack unreachable after 3 attempts: ");
    assert!(l.ends_with("; 2 edges NOT delivered"), "{l}");
    assert_eq!(r.level("slack unreachable"), Severity::Error);
    assert!(!r.all().contains("cl0s3dP0rtS3cr3t"), "{}", r.all());
    assert!(!r.all().contains("/services/"), "{}", r.all());
    assert_eq!((env.runs(), env.announced()), (0, 0));
    let j = r.json();
    assert_eq!(j["result"], "failed");
    assert!(j["http_status"].is_null());
}

#[test]
fn bad_gateway_and_gateway_timeout_are_retried() {
    let env = seeded();
    env.slack.push([error(502, ""), error(504, ""), ok()]);
    let r = env.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        r.sleeps,
        vec![Duration::from_secs(2), Duration::from_secs(4)]
    );
    assert_eq!(env.slack.posts().len(), 3);
    let texts = env.slack.texts();
    assert!(
        texts.iter().all(|t| *t == texts[0]),
        "same body each attempt"
    );
    assert_eq!(env.announced(), 2);
    assert_eq!(
        r.line("posted "),
        "posted 2 new edges to #alerts (HTTP 200, 2 shown, 0 more)"
    );
}

#[test]
fn rate_limited_without_retry_after_waits_30s_and_three_429s_give_up() {
    let env = seeded();
    env.slack.push([
        Reply::text(429, "rate_limited"),
        rate_limited(1),
        rate_limited(1),
    ]);
    let r = env.run(&[]);
    assert_eq!(r.code, 5, "{}", r.all());
    assert_eq!(
        r.sleeps,
        vec![Duration::from_secs(30), Duration::from_secs(1)]
    );
    assert!(r.has("slack unreachable after 3 attempts: HTTP 429 rate_limited"));
    assert_eq!((env.runs(), env.announced()), (0, 0));
}
