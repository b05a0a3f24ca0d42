//! Slack incoming webhooks: one text post, Slack's documented answers as typed outcomes,
//! retries only where a retry cannot double-post, and the mrkdwn escaping both reporters use.
//!
//! The webhook URL is a secret: it is only ever handed to the HTTP client, never formatted.
//! Reference: edges-digest spec §5.2 (classification), §6.1 (hints), §4.2 (`esc`).

use crate::http::{excerpt, Client, HttpConfig, HttpErrorKind, Redirects};
use crate::Secret;
use std::time::Duration;

/// Slack's documented error bodies for incoming webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackError {
    ChannelNotFound,
    ChannelIsArchived,
    NoService,
    InvalidToken,
    NoTeam,
    TeamDisabled,
    ActionProhibited,
    InvalidPayload,
    NoText,
    RateLimited,
    Other(String),
}

impl SlackError {
    /// Classify a trimmed response body (whatever the status).
    pub fn from_body(body: &str) -> SlackError {
        match body.trim() {
            "channel_not_found" => SlackError::ChannelNotFound,
            "channel_is_archived" => SlackError::ChannelIsArchived,
            "no_service" => SlackError::NoService,
            "invalid_token" => SlackError::InvalidToken,
            "no_team" => SlackError::NoTeam,
            "team_disabled" => SlackError::TeamDisabled,
            "action_prohibited" => SlackError::ActionProhibited,
            "invalid_payload" => SlackError::InvalidPayload,
            "no_text" => SlackError::NoText,
            "rate_limited" => SlackError::RateLimited,
            other => SlackError::Other(other.to_string()),
        }
    }
    /// The wire code, for `--json` and metrics.
    pub fn code(&self) -> &str {
        match self {
            SlackError::ChannelNotFound => "channel_not_found",
            SlackError::ChannelIsArchived => "channel_is_archived",
            SlackError::NoService => "no_service",
            SlackError::InvalidToken => "invalid_token",
            SlackError::NoTeam => "no_team",
            SlackError::TeamDisabled => "team_disabled",
            SlackError::ActionProhibited => "action_prohibited",
            SlackError::InvalidPayload => "invalid_payload",
            SlackError::NoText => "no_text",
            SlackError::RateLimited => "rate_limited",
            SlackError::Other(s) => s,
        }
    }
    /// Whether the failure notice (edges-digest §9.5) applies: the channel is the problem.
    pub fn is_channel_problem(&self) -> bool {
        matches!(
            self,
            SlackError::ChannelNotFound | SlackError::ChannelIsArchived
        )
    }
}

/// Names that make a hint actionable for a given binary.
#[derive(Debug, Clone)]
pub struct HintContext<'a> {
    /// The channel as shown to the operator (`#security` or `webhook-default`).
    pub channel: &'a str,
    /// The Kubernetes Secret holding the webhook (e.g. `goldmane-edges-slack`).
    pub secret_name: &'a str,
    /// The binary, for "bug in <binary>".
    pub binary: &'a str,
}

/// What the operator should do about an answer (edges-digest §6.1).
pub fn hint(status: u16, body: &str, ctx: &HintContext<'_>) -> String {
    match SlackError::from_body(body) {
        SlackError::ChannelNotFound => format!(
            "the webhook's Slack app is not a member of {} or it does not exist (the 2026-06 #security failure); invite the app or change SLACK_CHANNEL",
            ctx.channel
        ),
        SlackError::ChannelIsArchived => format!("{} is archived", ctx.channel),
        SlackError::NoService | SlackError::InvalidToken | SlackError::NoTeam | SlackError::TeamDisabled => {
            format!("webhook revoked or disabled; rotate the {} secret", ctx.secret_name)
        }
        SlackError::ActionProhibited => "workspace policy blocks this webhook".to_string(),
        SlackError::InvalidPayload | SlackError::NoText => format!("payload rejected — bug in {}", ctx.binary),
        _ if status == 400 => format!("payload rejected — bug in {}", ctx.binary),
        _ if (300..400).contains(&status) => "webhook URL redirects".to_string(),
        _ => "unexpected answer".to_string(),
    }
}

/// The decision for one attempt's result (pure; edges-digest §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx. `unexpected_body` is set when the body is not `ok` (L-2XXBODY).
    Delivered {
        status: u16,
        unexpected_body: Option<String>,
    },
    /// Try again after this long.
    Retry { after: Duration, reason: String },
    /// 3xx or 4xx other than 429: never retried (exit 4).
    Refused {
        status: u16,
        body: String,
        error: SlackError,
    },
    /// 429 with a Retry-After beyond the cap, or a 5xx that is not retried (exit 5).
    GiveUp { status: Option<u16>, reason: String },
    /// The request may have been processed; retrying could double-post (exit 5).
    Ambiguous { reason: String },
}

/// What one attempt produced, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    Answer {
        status: u16,
        body: String,
        retry_after: Option<String>,
    },
    /// Failed before the request was written (connect, DNS, TLS).
    NotSent { reason: String },
    /// Timed out or reset after the request was written.
    Lost { reason: String },
}

/// Retry schedule and limits.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// Total time budget for all attempts and waits.
    pub budget: Duration,
    /// Longest `Retry-After` honoured; longer gives up.
    pub max_retry_after: Duration,
    /// Used when a 429 has no parsable `Retry-After`.
    pub default_retry_after: Duration,
    /// Waits after a 5xx or a connect failure: attempt 1 → [0], attempt 2 → [1].
    pub backoff: Vec<Duration>,
    /// Per-attempt HTTP timeout.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            budget: Duration::from_secs(120),
            max_retry_after: Duration::from_secs(60),
            default_retry_after: Duration::from_secs(30),
            backoff: vec![Duration::from_secs(2), Duration::from_secs(4)],
            attempt_timeout: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// One attempt, 5 s: the failure notice (edges-digest §9.5).
    pub fn single(timeout: Duration) -> Self {
        RetryPolicy {
            max_attempts: 1,
            attempt_timeout: timeout,
            ..RetryPolicy::default()
        }
    }
}

/// Classify one attempt (pure). `attempt` is 1-based.
pub fn classify(result: &AttemptResult, attempt: u32, policy: &RetryPolicy) -> Verdict {
    match result {
        AttemptResult::Answer {
            status,
            body,
            retry_after,
        } => {
            let status = *status;
            let body = body.trim();
            if (200..300).contains(&status) {
                return Verdict::Delivered {
                    status,
                    unexpected_body: (body != "ok").then(|| body.to_string()),
                };
            }
            if status == 429 {
                let after = retry_after
                    .as_deref()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(policy.default_retry_after);
                if after > policy.max_retry_after {
                    return Verdict::GiveUp {
                        status: Some(429),
                        reason: format!(
                            "HTTP 429 Retry-After {}s exceeds {}s",
                            after.as_secs(),
                            policy.max_retry_after.as_secs()
                        ),
                    };
                }
                return Verdict::Retry {
                    after,
                    reason: format!("HTTP 429 {}", short(body)),
                };
            }
            if matches!(status, 500 | 502 | 503 | 504) {
                return Verdict::Retry {
                    after: backoff(policy, attempt),
                    reason: format!("HTTP {status} {}", short(body)),
                };
            }
            if status >= 500 {
                return Verdict::GiveUp {
                    status: Some(status),
                    reason: format!("HTTP {status} {}", short(body)),
                };
            }
            Verdict::Refused {
                status,
                body: short(body),
                error: SlackError::from_body(body),
            }
        }
        AttemptResult::NotSent { reason } => Verdict::Retry {
            after: backoff(policy, attempt),
            reason: reason.clone(),
        },
        AttemptResult::Lost { reason } => Verdict::Ambiguous {
            reason: reason.clone(),
        },
    }
}

fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let i = (attempt.saturating_sub(1)) as usize;
    policy
        .backoff
        .get(i)
        .or(policy.backoff.last())
        .copied()
        .unwrap_or(Duration::from_secs(2))
}

fn short(body: &str) -> String {
    excerpt(body, 200, &[])
}

/// The final result of a delivery with retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered {
        status: u16,
        attempts: u32,
        unexpected_body: Option<String>,
    },
    /// Exit 4: Slack said no; the hint says why.
    Refused {
        status: u16,
        body: String,
        error: SlackError,
        attempts: u32,
    },
    /// Exit 5: still failing after the allowed attempts (or Retry-After too long).
    Unreachable {
        status: Option<u16>,
        reason: String,
        attempts: u32,
    },
    /// Exit 5: the answer was lost after sending; not retried.
    Ambiguous { reason: String, attempts: u32 },
}

impl Outcome {
    /// Exit code shared by edges-digest and nightly-report: 0 / 4 / 5.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Delivered { .. } => 0,
            Outcome::Refused { .. } => 4,
            Outcome::Unreachable { .. } | Outcome::Ambiguous { .. } => 5,
        }
    }
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Outcome::Delivered { status, .. } | Outcome::Refused { status, .. } => Some(*status),
            Outcome::Unreachable { status, .. } => *status,
            Outcome::Ambiguous { .. } => None,
        }
    }
}

/// Side effects of the retry loop, injected so tests run without real sleeps.
pub trait Pacer {
    fn sleep(&mut self, d: Duration);
    /// Called before each retry wait (L-RETRY lines).
    fn on_retry(&mut self, _attempt: u32, _max: u32, _reason: &str, _after: Duration) {}
}

/// Real sleeps, no logging.
pub struct RealPacer;
impl Pacer for RealPacer {
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// The JSON body: `{"text": …}` plus `"channel"` when set.
pub fn payload(text: &str, channel: Option<&str>) -> serde_json::Value {
    let mut v = serde_json::json!({ "text": text });
    if let Some(c) = channel {
        v["channel"] = serde_json::Value::String(c.to_string());
    }
    v
}

/// Post `payload` to the webhook, retrying only where a retry is safe.
pub fn post(
    webhook: &Secret,
    payload: &serde_json::Value,
    policy: &RetryPolicy,
    extra_ca_pem: Option<&[u8]>,
    pacer: &mut dyn Pacer,
) -> Outcome {
    let cfg = HttpConfig {
        connect_timeout: policy.attempt_timeout.min(Duration::from_secs(10)),
        total_timeout: policy.attempt_timeout,
        ca_pem: extra_ca_pem.map(<[u8]>::to_vec),
        redirects: Redirects::Never,
        max_body: 4096,
        ..HttpConfig::default()
    };
    let body = serde_json::to_vec(payload).unwrap_or_default();
    let client = match Client::new(&cfg) {
        Ok(c) => c,
        Err(e) => {
            return Outcome::Unreachable {
                status: None,
                reason: e.reason(),
                attempts: 0,
            }
        }
    };
    let started = std::time::Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = match client.request(
            "POST",
            webhook.expose(),
            &[("Content-Type", "application/json; charset=utf-8")],
            Some(&body),
        ) {
            Ok(r) => AttemptResult::Answer {
                status: r.status,
                body: r.text(),
                retry_after: r.header("retry-after").map(str::to_string),
            },
            Err(e) => {
                let reason = e.reason();
                match e.kind {
                    HttpErrorKind::Config { .. } => {
                        return Outcome::Unreachable {
                            status: None,
                            reason,
                            attempts: attempt,
                        }
                    }
                    // Too large an answer still means Slack answered; treat as unexpected.
                    HttpErrorKind::Body { .. } => AttemptResult::Lost { reason },
                    _ if e.not_sent() => AttemptResult::NotSent { reason },
                    _ => AttemptResult::Lost { reason },
                }
            }
        };
        match classify(&result, attempt, policy) {
            Verdict::Delivered {
                status,
                unexpected_body,
            } => {
                return Outcome::Delivered {
                    status,
                    attempts: attempt,
                    unexpected_body,
                }
            }
            Verdict::Refused {
                status,
                body,
                error,
            } => {
                return Outcome::Refused {
                    status,
                    body,
                    error,
                    attempts: attempt,
                }
            }
            Verdict::GiveUp { status, reason } => {
                return Outcome::Unreachable {
                    status,
                    reason,
                    attempts: attempt,
                }
            }
            Verdict::Ambiguous { reason } => {
                return Outcome::Ambiguous {
                    reason,
                    attempts: attempt,
                }
            }
            Verdict::Retry { after, reason } => {
                let status = match &result {
                    AttemptResult::Answer { status, .. } => Some(*status),
                    _ => None,
                };
                let spent = started.elapsed() + after + policy.attempt_timeout;
                if attempt >= policy.max_attempts || spent > policy.budget {
                    return Outcome::Unreachable {
                        status,
                        reason,
                        attempts: attempt,
                    };
                }
                pacer.on_retry(attempt, policy.max_attempts, &reason, after);
                pacer.sleep(after);
            }
        }
    }
}

/// Escape a database or cluster string for mrkdwn (edges-digest §4.2): control characters →
/// U+FFFD, backtick → `'`, longer than `max_chars` scalar values → first `max_chars` + `…`,
/// then `&`, `<`, `>` as entities. No input can form a mention, link or broken code span.
pub fn esc(s: &str, max_chars: usize) -> String {
    let mut cut: String = String::with_capacity(s.len().min(max_chars * 4) + 3);
    let mut truncated = false;
    for (n, c) in s.chars().enumerate() {
        if n == max_chars {
            truncated = true;
            break;
        }
        cut.push(if c.is_control() {
            '\u{FFFD}'
        } else if c == '`' {
            '\''
        } else {
            c
        });
    }
    if truncated {
        cut.push('…');
    }
    let mut out = String::with_capacity(cut.len() + 8);
    for c in cut.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ans(status: u16, body: &str, ra: Option<&str>) -> AttemptResult {
        AttemptResult::Answer {
            status,
            body: body.into(),
            retry_after: ra.map(str::to_string),
        }
    }

    #[test]
    fn esc_rules() {
        assert_eq!(esc("a&b<c>d", 63), "a&amp;b&lt;c&gt;d");
        assert_eq!(esc("x`y", 63), "x'y");
        assert_eq!(esc("a\nb\u{7}", 63), "a\u{FFFD}b\u{FFFD}");
        assert_eq!(esc("*_~", 63), "*_~");
        assert_eq!(esc(&"é".repeat(70), 63), format!("{}…", "é".repeat(63)));
        assert_eq!(esc(&"a".repeat(63), 63), "a".repeat(63));
        // Truncation counts before entity expansion.
        assert_eq!(esc(&"<".repeat(5), 3), "&lt;&lt;&lt;…");
        assert_eq!(esc("<@U123>", 300), "&lt;@U123&gt;");
    }

    #[test]
    fn classify_table() {
        let p = RetryPolicy::default();
        assert_eq!(
            classify(&ans(200, "ok", None), 1, &p),
            Verdict::Delivered {
                status: 200,
                unexpected_body: None
            }
        );
        assert_eq!(
            classify(&ans(200, "weird", None), 1, &p),
            Verdict::Delivered {
                status: 200,
                unexpected_body: Some("weird".into())
            }
        );
        assert_eq!(
            classify(&ans(429, "rate_limited", Some("5")), 1, &p).clone(),
            Verdict::Retry {
                after: Duration::from_secs(5),
                reason: "HTTP 429 rate_limited".into()
            }
        );
        assert!(
            matches!(classify(&ans(429, "", None), 1, &p), Verdict::Retry { after, .. } if after == Duration::from_secs(30))
        );
        assert!(matches!(
            classify(&ans(429, "", Some("61")), 1, &p),
            Verdict::GiveUp {
                status: Some(429),
                ..
            }
        ));
        assert!(
            matches!(classify(&ans(503, "", None), 1, &p), Verdict::Retry { after, .. } if after == Duration::from_secs(2))
        );
        assert!(
            matches!(classify(&ans(500, "", None), 2, &p), Verdict::Retry { after, .. } if after == Duration::from_secs(4))
        );
        assert!(matches!(
            classify(&ans(501, "", None), 1, &p),
            Verdict::GiveUp {
                status: Some(501),
                ..
            }
        ));
        assert!(matches!(
            classify(&ans(404, "channel_not_found", None), 1, &p),
            Verdict::Refused {
                status: 404,
                error: SlackError::ChannelNotFound,
                ..
            }
        ));
        assert!(matches!(
            classify(&ans(410, "channel_is_archived", None), 1, &p),
            Verdict::Refused {
                error: SlackError::ChannelIsArchived,
                ..
            }
        ));
        assert!(matches!(
            classify(&ans(403, "action_prohibited", None), 1, &p),
            Verdict::Refused {
                error: SlackError::ActionProhibited,
                ..
            }
        ));
        assert!(matches!(
            classify(&ans(400, "invalid_payload", None), 1, &p),
            Verdict::Refused {
                error: SlackError::InvalidPayload,
                ..
            }
        ));
        assert!(matches!(
            classify(&ans(302, "", None), 1, &p),
            Verdict::Refused { status: 302, .. }
        ));
        assert!(matches!(
            classify(
                &AttemptResult::NotSent {
                    reason: "refused".into()
                },
                1,
                &p
            ),
            Verdict::Retry { .. }
        ));
        assert!(matches!(
            classify(
                &AttemptResult::Lost {
                    reason: "timeout".into()
                },
                1,
                &p
            ),
            Verdict::Ambiguous { .. }
        ));
    }

    #[test]
    fn hints_are_parameterised() {
        let ctx = HintContext {
            channel: "#security",
            secret_name: "k8s-upgrade-creds",
            binary: "nightly-report",
        };
        assert!(hint(404, "channel_not_found", &ctx).contains("not a member of #security"));
        assert_eq!(
            hint(410, "channel_is_archived", &ctx),
            "#security is archived"
        );
        assert_eq!(
            hint(404, "no_service", &ctx),
            "webhook revoked or disabled; rotate the k8s-upgrade-creds secret"
        );
        assert_eq!(
            hint(403, "invalid_token", &ctx),
            "webhook revoked or disabled; rotate the k8s-upgrade-creds secret"
        );
        assert_eq!(
            hint(403, "action_prohibited", &ctx),
            "workspace policy blocks this webhook"
        );
        assert_eq!(
            hint(400, "no_text", &ctx),
            "payload rejected — bug in nightly-report"
        );
        assert_eq!(
            hint(400, "whatever", &ctx),
            "payload rejected — bug in nightly-report"
        );
        assert_eq!(hint(301, "", &ctx), "webhook URL redirects");
        assert_eq!(hint(418, "teapot", &ctx), "unexpected answer");
    }

    #[test]
    fn payload_shape() {
        assert_eq!(payload("hi", None).to_string(), r#"{"text":"hi"}"#);
        assert_eq!(payload("hi", Some("#x"))["channel"], "#x");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(
            Outcome::Delivered {
                status: 200,
                attempts: 1,
                unexpected_body: None
            }
            .exit_code(),
            0
        );
        assert_eq!(
            Outcome::Refused {
                status: 404,
                body: String::new(),
                error: SlackError::ChannelNotFound,
                attempts: 1
            }
            .exit_code(),
            4
        );
        assert_eq!(
            Outcome::Ambiguous {
                reason: String::new(),
                attempts: 1
            }
            .exit_code(),
            5
        );
    }
}
