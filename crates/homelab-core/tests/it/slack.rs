use homelab_core::slack::{self, Outcome, Pacer, RetryPolicy, SlackError};
use homelab_core::Secret;
use std::time::Duration;
use testkit::slack::{error, rate_limited};
use testkit::{Reply, SlackSink};

/// Records waits instead of sleeping.
#[derive(Default)]
struct Recorder {
    sleeps: Vec<Duration>,
    retries: Vec<String>,
}
impl Pacer for Recorder {
    fn sleep(&mut self, d: Duration) {
        self.sleeps.push(d);
    }
    fn on_retry(&mut self, attempt: u32, max: u32, reason: &str, after: Duration) {
        self.retries
            .push(format!("{attempt}/{max}: {reason}; {}s", after.as_secs()));
    }
}

fn deliver(sink: &SlackSink, policy: &RetryPolicy) -> (Outcome, Recorder) {
    let mut rec = Recorder::default();
    let out = slack::post(
        &Secret::new(sink.webhook_url()),
        &slack::payload("*hello* &amp;", Some("#security")),
        policy,
        None,
        &mut rec,
    );
    (out, rec)
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        attempt_timeout: Duration::from_secs(2),
        ..RetryPolicy::default()
    }
}

#[test]
fn delivered_once_with_exact_payload() {
    let sink = SlackSink::start();
    let (out, rec) = deliver(&sink, &fast());
    assert_eq!(
        out,
        Outcome::Delivered {
            status: 200,
            attempts: 1,
            unexpected_body: None
        }
    );
    assert!(rec.sleeps.is_empty());
    let posts = sink.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0].header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        posts[0].body_str(),
        r##"{"channel":"#security","text":"*hello* &amp;"}"##
    );
}

#[test]
fn channel_not_found_is_refused_without_retry() {
    let sink = SlackSink::with_script(vec![error(404, "channel_not_found")]);
    let (out, rec) = deliver(&sink, &fast());
    match &out {
        Outcome::Refused {
            status: 404,
            error: SlackError::ChannelNotFound,
            attempts: 1,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(out.exit_code(), 4);
    assert_eq!(sink.posts().len(), 1);
    assert!(rec.sleeps.is_empty());
}

#[test]
fn documented_4xx_answers_map_to_typed_errors() {
    for (status, body, want) in [
        (410, "channel_is_archived", SlackError::ChannelIsArchived),
        (404, "no_service", SlackError::NoService),
        (400, "invalid_payload", SlackError::InvalidPayload),
        (400, "no_text", SlackError::NoText),
        (403, "action_prohibited", SlackError::ActionProhibited),
        (403, "invalid_token", SlackError::InvalidToken),
    ] {
        let sink = SlackSink::with_script(vec![error(status, body)]);
        let (out, _) = deliver(&sink, &fast());
        match out {
            Outcome::Refused {
                status: s, error, ..
            } => {
                assert_eq!((s, error), (status, want));
            }
            other => panic!("{body}: {other:?}"),
        }
        assert_eq!(sink.posts().len(), 1, "{body} must not be retried");
    }
}

#[test]
fn rate_limit_short_is_retried_long_gives_up() {
    let sink = SlackSink::with_script(vec![rate_limited(1)]);
    let (out, rec) = deliver(&sink, &fast());
    assert!(
        matches!(out, Outcome::Delivered { attempts: 2, .. }),
        "{out:?}"
    );
    assert_eq!(rec.sleeps, vec![Duration::from_secs(1)]);
    assert_eq!(rec.retries, vec!["1/3: HTTP 429 rate_limited; 1s"]);

    let sink = SlackSink::with_script(vec![rate_limited(120)]);
    let (out, rec) = deliver(&sink, &fast());
    assert!(
        matches!(
            out,
            Outcome::Unreachable {
                status: Some(429),
                attempts: 1,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(out.exit_code(), 5);
    assert!(rec.sleeps.is_empty());
}

#[test]
fn server_errors_retry_with_backoff_then_give_up() {
    let sink = SlackSink::with_script(vec![error(503, ""), error(500, ""), error(502, "")]);
    let (out, rec) = deliver(&sink, &fast());
    assert!(
        matches!(
            out,
            Outcome::Unreachable {
                status: Some(502),
                attempts: 3,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(
        rec.sleeps,
        vec![Duration::from_secs(2), Duration::from_secs(4)]
    );
    assert_eq!(sink.posts().len(), 3);
}

#[test]
fn hang_after_body_is_ambiguous_and_not_retried() {
    let sink = SlackSink::with_script(vec![Reply::hang()]);
    let (out, _) = deliver(&sink, &fast());
    assert!(
        matches!(out, Outcome::Ambiguous { attempts: 1, .. }),
        "{out:?}"
    );
    assert_eq!(sink.posts().len(), 1);
}

#[test]
fn redirect_is_refused_and_never_followed() {
    let sink = SlackSink::with_script(vec![
        Reply::new(302).header("Location", "http://127.0.0.1:9/x")
    ]);
    let (out, _) = deliver(&sink, &fast());
    assert!(
        matches!(out, Outcome::Refused { status: 302, .. }),
        "{out:?}"
    );
}

#[test]
fn unreachable_webhook_retries_then_fails_without_leaking_url() {
    let port = testkit::free_port();
    let url = format!("http://127.0.0.1:{port}{}", testkit::slack::WEBHOOK_PATH);
    let mut rec = Recorder::default();
    let out = slack::post(
        &Secret::new(url.clone()),
        &slack::payload("x", None),
        &fast(),
        None,
        &mut rec,
    );
    assert!(
        matches!(out, Outcome::Unreachable { attempts: 3, .. }),
        "{out:?}"
    );
    let shown = format!("{out:?} {:?}", rec.retries);
    assert!(
        !shown.contains("s3cr3tW3bh00kT0k3n") && !shown.contains("/services/"),
        "{shown}"
    );
}
