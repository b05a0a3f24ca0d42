//! What the run tells: the log catalogue of spec §6 (byte-exact texts), the `--json` document
//! (§9.7) and the Pushgateway metrics (§9.8).

use crate::decide::{EdgeRow, Item};
use homelab_core::log::{format_utc, Severity};
use homelab_core::pushgateway::{render, Gauge};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

/// Where lines go: stderr (logs) and stdout (dry-run text, `--json`). Tests capture both.
pub trait Sink {
    fn log(&mut self, sev: Severity, text: &str);
    fn stdout(&mut self, text: &str);
}

/// The process's own streams: `<RFC 3339 ts> <LEVEL> <text>` on stderr.
pub struct StdSink;

impl Sink for StdSink {
    fn log(&mut self, sev: Severity, text: &str) {
        eprintln!("{}", homelab_core::log::leveled_line(sev, text));
    }
    fn stdout(&mut self, text: &str) {
        use std::io::Write;
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{text}");
        let _ = o.flush();
    }
}

pub fn ts(t: OffsetDateTime) -> String {
    format_utc(t)
}

pub fn l_start(state: &str, window: &str, channel: &str, webhook: &str, dry_run: bool) -> String {
    format!(
        "start state={state} window={window} channel={channel} webhook={webhook} dry_run={dry_run}"
    )
}
pub fn l_window(since: OffsetDateTime, until: OffsetDateTime, catchup: bool, n: i64) -> String {
    format!(
        "window since={} until={} catchup={catchup} candidates={n}",
        ts(since),
        ts(until)
    )
}
pub fn l_clip(max: &str, last_end: OffsetDateTime, since: OffsetDateTime) -> String {
    format!(
        "catch-up clipped to {max}: edges first seen {} .. {} are not announced",
        ts(last_end),
        ts(since)
    )
}
pub fn l_empty(since: OffsetDateTime) -> String {
    format!("no new edges since {} — nothing posted", ts(since))
}
pub fn l_dryrun(n: i64) -> String {
    format!("dry-run: {n} new edges, nothing posted or recorded")
}
pub fn l_posted(n: i64, ch: &str, code: u16, shown: usize, more: i64) -> String {
    format!("posted {n} new edges to {ch} (HTTP {code}, {shown} shown, {more} more)")
}
pub fn l_retry(i: u32, max: u32, reason: &str, secs: u64) -> String {
    format!("slack attempt {i}/{max}: {reason}; retrying in {secs}s")
}
pub fn l_slack(code: u16, body: &str, hint: &str, n: i64) -> String {
    let body: String = body.chars().take(200).collect();
    format!("slack rejected the digest: HTTP {code} {body} — {hint}; {n} edges NOT delivered")
}
pub fn l_slacktx(i: u32, reason: &str, n: i64) -> String {
    format!("slack unreachable after {i} attempts: {reason}; {n} edges NOT delivered")
}
pub fn l_ambig(reason: &str, n: i64) -> String {
    format!("slack response lost after sending ({reason}); not recorded — next run may repost {n} edges")
}
pub fn l_commitfail(err: &str, n: i64) -> String {
    format!("posted but not recorded: {err}; next run will repost {n} edges")
}
pub const L_NOTICE_OK: &str = "failure notice posted";
pub fn l_notice_failed(reason: &str) -> String {
    format!("failure notice failed: {reason}")
}
pub fn l_2xxbody(code: u16, body: &str) -> String {
    format!("slack answered HTTP {code} body {body} (expected \"ok\"); treated as delivered")
}
/// The aggregator's per-side migration (issue 13) has not run: `edge.reporter`,
/// `edge.pending_deny_last_seen` or `egress_edge` are missing.
pub const L_OLDSCHEMA: &str = "table edge has no reporter/pending_deny_last_seen column or table egress_edge is missing — run goldmane-edge-aggregator's migration (start the aggregator once, it applies migrations/0002 on start)";
pub const L_NOTABLE: &str =
    "table edge does not exist — is goldmane-edge-aggregator deployed and migrated?";
pub fn l_statemig(err: &str) -> String {
    format!("cannot create digest state tables: {err} (DIGEST_STATE=none runs without them)")
}
pub fn l_db(err: &str) -> String {
    format!("database: {err}")
}
pub const L_SKIP: &str = "another edges-digest run holds the lock — skipping";
pub fn l_push(reason: &str) -> String {
    format!("pushgateway: {reason}")
}
pub const L_MIGRATED: &str = "state tables edge_digest_run and edge_digest_announced are ready";
pub const L_MIGRATE_DRYRUN: &str =
    "dry-run: state tables edge_digest_run and edge_digest_announced would be created";

/// The `--json` document (§9.7); fields not known for an outcome stay `null`.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub result: &'static str,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub catchup: bool,
    pub new_edges: i64,
    pub by_action: Vec<(String, i64)>,
    pub shown: usize,
    pub more: i64,
    pub channel: Option<String>,
    pub http_status: Option<u16>,
    pub slack_error: Option<String>,
    pub text: Option<String>,
    pub edges: Vec<EdgeRow>,
    pub new_egress: i64,
    pub staged_denies: i64,
    pub egress: Vec<Item>,
    pub staged: Vec<Item>,
}

fn item_json(e: &Item, at: &str) -> Value {
    let mut m = Map::new();
    m.insert("src_ns".into(), json!(e.src_ns));
    if e.dst_type.is_empty() {
        m.insert("dst_ns".into(), json!(e.dst_ns));
    } else {
        m.insert("dst_type".into(), json!(e.dst_type));
        m.insert("dst_name".into(), json!(e.dst_name));
        m.insert("proto".into(), json!(e.proto));
        m.insert("dst_port".into(), json!(e.dst_port));
    }
    m.insert("action".into(), json!(e.action));
    m.insert("flow_count".into(), json!(e.flow_count));
    m.insert(at.into(), json!(rfc(e.at)));
    Value::Object(m)
}

/// W2.7: RFC 3339 with offset, seconds precision, like `date -Is -u`.
fn rfc(t: OffsetDateTime) -> String {
    format_utc(t)
}

impl Summary {
    pub fn to_json(&self) -> Value {
        let by: Map<String, Value> = self
            .by_action
            .iter()
            .map(|(a, n)| (a.clone(), json!(n)))
            .collect();
        let edges: Vec<Value> = self
            .edges
            .iter()
            .map(|e| {
                json!({
                    "src_ns": e.src_ns, "dst_ns": e.dst_ns, "action": e.action,
                    "flow_count": e.flow_count, "first_seen": rfc(e.first_seen),
                })
            })
            .collect();
        json!({
            "result": self.result,
            "since": self.since.map(rfc),
            "until": self.until.map(rfc),
            "catchup": self.catchup,
            "new_edges": self.new_edges,
            "by_action": by,
            "shown": self.shown,
            "more": self.more,
            "channel": self.channel,
            "http_status": self.http_status,
            "slack_error": self.slack_error,
            "text": self.text,
            "edges": edges,
            "new_egress": self.new_egress,
            "staged_denies": self.staged_denies,
            "egress": self.egress.iter().map(|e| item_json(e, "first_seen")).collect::<Vec<_>>(),
            "staged": self.staged.iter().map(|e| item_json(e, "pending_deny_last_seen")).collect::<Vec<_>>(),
        })
    }
}

/// §9.8: gauges for one run; the success timestamp only when the run succeeded.
pub fn render_metrics(result: &str, now_unix: i64, new_edges: i64) -> String {
    let mut g = vec![Gauge::new(
        "edges_digest_last_run_timestamp_seconds",
        "Unix time of the last edges-digest run.",
        now_unix as f64,
    )];
    for r in ["posted", "empty", "failed"] {
        g.push(
            Gauge::new(
                "edges_digest_result",
                "Outcome of the last edges-digest run (1 = this result).",
                f64::from(u8::from(r == result)),
            )
            .label("result", r),
        );
    }
    g.push(Gauge::new(
        "edges_digest_new_edges",
        "New edges found by the last edges-digest run.",
        new_edges as f64,
    ));
    if result != "failed" {
        g.push(Gauge::new(
            "edges_digest_last_success_timestamp_seconds",
            "Unix time of the last successful edges-digest run.",
            now_unix as f64,
        ));
    }
    render(&g)
}

/// §7 exit 1: a bug ends as one ERROR line and exit code 1, not an abort with a backtrace.
/// The line names only the code location; panic payloads are not printed, so no value that
/// could carry a secret reaches the log.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
        eprintln!(
            "{}",
            homelab_core::log::leveled_line(
                Severity::Error,
                &format!("internal error{at} — a bug in edges-digest; nothing was recorded unless posted")
            )
        );
        std::process::exit(1);
    }));
}

/// Severity helpers so call sites read like the catalogue.
pub fn info(s: &mut dyn Sink, t: &str) {
    s.log(Severity::Info, t);
}
pub fn warn(s: &mut dyn Sink, t: &str) {
    s.log(Severity::Warning, t);
}
pub fn error(s: &mut dyn Sink, t: &str) {
    s.log(Severity::Error, t);
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn metrics_success_and_failure() {
        let m = render_metrics("posted", 1_782_000_000, 8);
        assert!(m.contains("edges_digest_last_run_timestamp_seconds 1782000000\n"));
        assert!(m.contains("edges_digest_result{result=\"posted\"} 1\n"));
        assert!(m.contains("edges_digest_result{result=\"empty\"} 0\n"));
        assert!(m.contains("edges_digest_result{result=\"failed\"} 0\n"));
        assert!(m.contains("edges_digest_new_edges 8\n"));
        assert!(m.contains("edges_digest_last_success_timestamp_seconds 1782000000\n"));
        let f = render_metrics("failed", 5, 3);
        assert!(f.contains("edges_digest_result{result=\"failed\"} 1\n"));
        assert!(!f.contains("last_success"));
    }

    #[test]
    fn catalogue_texts() {
        let t = datetime!(2026-06-28 08:00:00 UTC);
        assert_eq!(l_window(t, t, false, 8), "window since=2026-06-28T08:00:00+00:00 until=2026-06-28T08:00:00+00:00 catchup=false candidates=8");
        assert_eq!(
            l_posted(8, "#alerts", 200, 8, 0),
            "posted 8 new edges to #alerts (HTTP 200, 8 shown, 0 more)"
        );
        assert_eq!(
            l_retry(1, 3, "HTTP 503", 2),
            "slack attempt 1/3: HTTP 503; retrying in 2s"
        );
        assert_eq!(
            l_empty(t),
            "no new edges since 2026-06-28T08:00:00+00:00 — nothing posted"
        );
        assert_eq!(
            l_slack(404, &"x".repeat(300), "h", 3),
            format!(
                "slack rejected the digest: HTTP 404 {} — h; 3 edges NOT delivered",
                "x".repeat(200)
            )
        );
        assert_eq!(
            l_2xxbody(200, "hm"),
            "slack answered HTTP 200 body hm (expected \"ok\"); treated as delivered"
        );
    }

    #[test]
    fn json_shape() {
        let s = Summary {
            result: "empty",
            since: Some(datetime!(2026-06-28 08:00:00 UTC)),
            ..Summary::default()
        };
        let v = s.to_json();
        assert_eq!(v["result"], "empty");
        assert_eq!(v["since"], "2026-06-28T08:00:00+00:00");
        assert!(v["text"].is_null() && v["http_status"].is_null());
        assert_eq!(v["edges"], json!([]));
    }
}
