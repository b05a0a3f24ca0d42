//! Slack incoming-webhook stand-in: records every post and answers from a script (Slack's
//! documented answers: `ok`, 404 `channel_not_found`, 429 with `Retry-After`, …). When the
//! script is exhausted it answers 200 `ok`, as Slack does.

use crate::httpd::{HttpServer, Reply, Request};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// The fake webhook path; its secret-looking segments let tests assert it never leaks.
pub const WEBHOOK_PATH: &str = "/services/T0TESTKIT/B0TESTKIT/s3cr3tW3bh00kT0k3n";

pub struct SlackSink {
    server: HttpServer,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

impl SlackSink {
    /// Always answers 200 `ok` until scripted otherwise.
    pub fn start() -> Self {
        Self::with_script(Vec::new())
    }

    /// Answers the first posts with `replies` in order, then 200 `ok`.
    pub fn with_script(replies: Vec<Reply>) -> Self {
        let script = Arc::new(Mutex::new(VecDeque::from(replies)));
        let s2 = Arc::clone(&script);
        let server = HttpServer::start(move |_req| {
            s2.lock()
                .expect("script lock")
                .pop_front()
                .unwrap_or_else(ok)
        });
        SlackSink { server, script }
    }

    /// Append answers to the script.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().expect("script lock").extend(replies);
    }

    /// The webhook URL to configure (a secret in production; treat it as one in tests).
    pub fn webhook_url(&self) -> String {
        format!("{}{WEBHOOK_PATH}", self.server.url())
    }
    pub fn base_url(&self) -> String {
        self.server.url()
    }
    /// Every request received (including failed deliveries).
    pub fn posts(&self) -> Vec<Request> {
        self.server.requests()
    }
    /// The `text` field of every post.
    pub fn texts(&self) -> Vec<String> {
        self.posts()
            .iter()
            .map(|r| r.json()["text"].as_str().unwrap_or_default().to_string())
            .collect()
    }
    pub fn server(&self) -> &HttpServer {
        &self.server
    }
}

/// Slack's success answer.
pub fn ok() -> Reply {
    Reply::text(200, "ok")
}
/// A Slack error answer with its documented body.
pub fn error(status: u16, body: &str) -> Reply {
    Reply::text(status, body)
}
/// 429 with a `Retry-After` header.
pub fn rate_limited(retry_after_secs: u64) -> Reply {
    Reply::text(429, "rate_limited").header("Retry-After", &retry_after_secs.to_string())
}
