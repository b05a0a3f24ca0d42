//! Log lines (spec §6, byte-exact texts) and the Prometheus exposition (§8.3).

use crate::config::LogFormat;
use crate::decide::DropReason;
use homelab_core::log::{format_utc, timestamp};
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::OnceLock;

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

pub fn set_format(f: LogFormat) {
    let _ = FORMAT.set(f);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn word(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// Write one catalogue line (`<RFC 3339 ts> <LEVEL> <text>`) or its JSON form to stderr.
pub fn log(level: Level, id: &str, text: &str) {
    let ts = timestamp();
    let line = match FORMAT.get().copied().unwrap_or(LogFormat::Text) {
        LogFormat::Text => format!("{ts} {} {text}\n", level.word()),
        LogFormat::Json => {
            let mut s = serde_json::json!({"ts": ts, "level": level.word(), "id": id, "msg": text})
                .to_string();
            s.push('\n');
            s
        }
    };
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Unix seconds as `date -Is -u`.
pub fn ts(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format_utc(t),
        Err(_) => unix.to_string(),
    }
}

/// All counters and gauges behind `/metrics` and L-SUMMARY.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub flows_received: u64,
    pub dropped: [u64; 7],
    pub unknown_action: u64,
    pub time_clamped: u64,
    pub edges_upserted: u64,
    pub edges_new: u64,
    pub flushes_ok: u64,
    pub flushes_error: u64,
    pub flushes_ambiguous: u64,
    pub flush_duration_sum: f64,
    pub flush_duration_count: u64,
    pub pending_edges: u64,
    pub dedup_entries: u64,
    pub stream_up: bool,
    /// eof, status, transport, tls, stall
    pub reconnects: [u64; 5],
    pub last_flow_end: i64,
    pub last_flush_success: i64,
    pub cert_not_after: i64,
    /// Reconciliation passes by result, List flows read, keys the stream had missed.
    pub reconcile_ok: u64,
    pub reconcile_error: u64,
    pub reconcile_flows: u64,
    pub reconcile_inserted: u64,
    pub reconcile_extended: u64,
}

pub const RECONNECT_REASONS: [&str; 5] = ["eof", "status", "transport", "tls", "stall"];

impl Stats {
    pub fn drop(&mut self, r: DropReason) {
        self.dropped[r.index()] += 1;
    }
}

/// Prometheus text format 0.0.4, prefix `goldmane_edge_`.
pub fn render_metrics(s: &Stats, version: &str) -> String {
    let mut o = String::with_capacity(4096);
    let counter = |o: &mut String, name: &str, help: &str, v: u64| {
        let _ = writeln!(o, "# HELP goldmane_edge_{name} {help}");
        let _ = writeln!(o, "# TYPE goldmane_edge_{name} counter");
        let _ = writeln!(o, "goldmane_edge_{name} {v}");
    };
    counter(
        &mut o,
        "flows_received_total",
        "FlowResults received from Goldmane.",
        s.flows_received,
    );
    let _ = writeln!(
        o,
        "# HELP goldmane_edge_flows_dropped_total Flows not counted as an edge, by reason."
    );
    let _ = writeln!(o, "# TYPE goldmane_edge_flows_dropped_total counter");
    for r in DropReason::ALL {
        let _ = writeln!(
            o,
            "goldmane_edge_flows_dropped_total{{reason=\"{}\"}} {}",
            r.label(),
            s.dropped[r.index()]
        );
    }
    let _ = writeln!(
        o,
        "# HELP goldmane_edge_reconcile_runs_total Flows.List reconciliation passes by result."
    );
    let _ = writeln!(o, "# TYPE goldmane_edge_reconcile_runs_total counter");
    for (r, v) in [("ok", s.reconcile_ok), ("error", s.reconcile_error)] {
        let _ = writeln!(
            o,
            "goldmane_edge_reconcile_runs_total{{result=\"{r}\"}} {v}"
        );
    }
    counter(
        &mut o,
        "reconcile_flows_total",
        "Flows read by reconciliation passes.",
        s.reconcile_flows,
    );
    let _ = writeln!(
        o,
        "# HELP goldmane_edge_reconcile_missed_total Keys the stream had missed that reconciliation found: inserted (new key, List's count) or extended (first/last seen moved)."
    );
    let _ = writeln!(o, "# TYPE goldmane_edge_reconcile_missed_total counter");
    for (k, v) in [
        ("inserted", s.reconcile_inserted),
        ("extended", s.reconcile_extended),
    ] {
        let _ = writeln!(
            o,
            "goldmane_edge_reconcile_missed_total{{kind=\"{k}\"}} {v}"
        );
    }
    counter(
        &mut o,
        "unknown_action_total",
        "Flows with an unknown action value, stored as unspecified.",
        s.unknown_action,
    );
    counter(
        &mut o,
        "time_clamped_total",
        "Flows whose end time was in the future and was clamped.",
        s.time_clamped,
    );
    counter(
        &mut o,
        "edges_upserted_total",
        "Edge rows upserted.",
        s.edges_upserted,
    );
    counter(
        &mut o,
        "edges_new_total",
        "Edge rows inserted for the first time.",
        s.edges_new,
    );
    let _ = writeln!(
        o,
        "# HELP goldmane_edge_flushes_total Flush transactions by result."
    );
    let _ = writeln!(o, "# TYPE goldmane_edge_flushes_total counter");
    for (r, v) in [
        ("ok", s.flushes_ok),
        ("error", s.flushes_error),
        ("ambiguous", s.flushes_ambiguous),
    ] {
        let _ = writeln!(o, "goldmane_edge_flushes_total{{result=\"{r}\"}} {v}");
    }
    let _ = writeln!(
        o,
        "# HELP goldmane_edge_flush_duration_seconds Duration of flush transactions."
    );
    let _ = writeln!(o, "# TYPE goldmane_edge_flush_duration_seconds summary");
    let _ = writeln!(
        o,
        "goldmane_edge_flush_duration_seconds_sum {}",
        s.flush_duration_sum
    );
    let _ = writeln!(
        o,
        "goldmane_edge_flush_duration_seconds_count {}",
        s.flush_duration_count
    );
    let gauge = |o: &mut String, name: &str, help: &str, v: String| {
        let _ = writeln!(o, "# HELP goldmane_edge_{name} {help}");
        let _ = writeln!(o, "# TYPE goldmane_edge_{name} gauge");
        let _ = writeln!(o, "goldmane_edge_{name} {v}");
    };
    gauge(
        &mut o,
        "pending_edges",
        "Edges waiting for the next flush.",
        s.pending_edges.to_string(),
    );
    gauge(
        &mut o,
        "dedup_entries",
        "Fingerprints held for de-duplication.",
        s.dedup_entries.to_string(),
    );
    gauge(
        &mut o,
        "stream_up",
        "1 while a Goldmane stream is open.",
        u8::from(s.stream_up).to_string(),
    );
    let _ = writeln!(
        o,
        "# HELP goldmane_edge_stream_reconnects_total Stream reconnects by reason."
    );
    let _ = writeln!(o, "# TYPE goldmane_edge_stream_reconnects_total counter");
    for (i, r) in RECONNECT_REASONS.iter().enumerate() {
        let _ = writeln!(
            o,
            "goldmane_edge_stream_reconnects_total{{reason=\"{r}\"}} {}",
            s.reconnects[i]
        );
    }
    gauge(
        &mut o,
        "last_flow_end_timestamp_seconds",
        "End time of the newest flow received.",
        s.last_flow_end.to_string(),
    );
    gauge(
        &mut o,
        "last_flush_success_timestamp_seconds",
        "Time of the last successful flush or DB round trip.",
        s.last_flush_success.to_string(),
    );
    gauge(
        &mut o,
        "client_cert_not_after_timestamp_seconds",
        "Expiry of the Goldmane client certificate.",
        s.cert_not_after.to_string(),
    );
    gauge(&mut o, "build_info", "Build information.", String::new());
    // build_info carries its label; rewrite the last sample line.
    let cut = o.trim_end_matches('\n').rfind('\n').map_or(0, |i| i + 1);
    o.truncate(cut);
    let _ = writeln!(o, "goldmane_edge_build_info{{version=\"{version}\"}} 1");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_exact_text() {
        let mut s = Stats {
            flows_received: 7,
            edges_upserted: 3,
            edges_new: 3,
            flushes_ok: 1,
            flush_duration_sum: 0.25,
            flush_duration_count: 1,
            stream_up: true,
            last_flow_end: 1_800_000_015,
            last_flush_success: 1_800_000_020,
            cert_not_after: 1_900_000_000,
            ..Default::default()
        };
        s.drop(DropReason::SelfEdge);
        s.drop(DropReason::EmptyNamespace);
        s.drop(DropReason::EmptyNamespace);
        s.reconnects[3] = 2;
        let text = render_metrics(&s, "0.1.0");
        let expected = "\
# HELP goldmane_edge_flows_received_total FlowResults received from Goldmane.
# TYPE goldmane_edge_flows_received_total counter
goldmane_edge_flows_received_total 7
# HELP goldmane_edge_flows_dropped_total Flows not counted as an edge, by reason.
# TYPE goldmane_edge_flows_dropped_total counter
goldmane_edge_flows_dropped_total{reason=\"malformed\"} 0
goldmane_edge_flows_dropped_total{reason=\"empty_namespace\"} 2
goldmane_edge_flows_dropped_total{reason=\"invalid_namespace\"} 0
goldmane_edge_flows_dropped_total{reason=\"self_edge\"} 1
goldmane_edge_flows_dropped_total{reason=\"duplicate\"} 0
goldmane_edge_flows_dropped_total{reason=\"pending_full\"} 0
goldmane_edge_flows_dropped_total{reason=\"unknown_enum\"} 0
# HELP goldmane_edge_reconcile_runs_total Flows.List reconciliation passes by result.
# TYPE goldmane_edge_reconcile_runs_total counter
goldmane_edge_reconcile_runs_total{result=\"ok\"} 0
goldmane_edge_reconcile_runs_total{result=\"error\"} 0
# HELP goldmane_edge_reconcile_flows_total Flows read by reconciliation passes.
# TYPE goldmane_edge_reconcile_flows_total counter
goldmane_edge_reconcile_flows_total 0
# HELP goldmane_edge_reconcile_missed_total Keys the stream had missed that reconciliation found: inserted (new key, List's count) or extended (first/last seen moved).
# TYPE goldmane_edge_reconcile_missed_total counter
goldmane_edge_reconcile_missed_total{kind=\"inserted\"} 0
goldmane_edge_reconcile_missed_total{kind=\"extended\"} 0
# HELP goldmane_edge_unknown_action_total Flows with an unknown action value, stored as unspecified.
# TYPE goldmane_edge_unknown_action_total counter
goldmane_edge_unknown_action_total 0
# HELP goldmane_edge_time_clamped_total Flows whose end time was in the future and was clamped.
# TYPE goldmane_edge_time_clamped_total counter
goldmane_edge_time_clamped_total 0
# HELP goldmane_edge_edges_upserted_total Edge rows upserted.
# TYPE goldmane_edge_edges_upserted_total counter
goldmane_edge_edges_upserted_total 3
# HELP goldmane_edge_edges_new_total Edge rows inserted for the first time.
# TYPE goldmane_edge_edges_new_total counter
goldmane_edge_edges_new_total 3
# HELP goldmane_edge_flushes_total Flush transactions by result.
# TYPE goldmane_edge_flushes_total counter
goldmane_edge_flushes_total{result=\"ok\"} 1
goldmane_edge_flushes_total{result=\"error\"} 0
goldmane_edge_flushes_total{result=\"ambiguous\"} 0
# HELP goldmane_edge_flush_duration_seconds Duration of flush transactions.
# TYPE goldmane_edge_flush_duration_seconds summary
goldmane_edge_flush_duration_seconds_sum 0.25
goldmane_edge_flush_duration_seconds_count 1
# HELP goldmane_edge_pending_edges Edges waiting for the next flush.
# TYPE goldmane_edge_pending_edges gauge
goldmane_edge_pending_edges 0
# HELP goldmane_edge_dedup_entries Fingerprints held for de-duplication.
# TYPE goldmane_edge_dedup_entries gauge
goldmane_edge_dedup_entries 0
# HELP goldmane_edge_stream_up 1 while a Goldmane stream is open.
# TYPE goldmane_edge_stream_up gauge
goldmane_edge_stream_up 1
# HELP goldmane_edge_stream_reconnects_total Stream reconnects by reason.
# TYPE goldmane_edge_stream_reconnects_total counter
goldmane_edge_stream_reconnects_total{reason=\"eof\"} 0
goldmane_edge_stream_reconnects_total{reason=\"status\"} 0
goldmane_edge_stream_reconnects_total{reason=\"transport\"} 0
goldmane_edge_stream_reconnects_total{reason=\"tls\"} 2
goldmane_edge_stream_reconnects_total{reason=\"stall\"} 0
# HELP goldmane_edge_last_flow_end_timestamp_seconds End time of the newest flow received.
# TYPE goldmane_edge_last_flow_end_timestamp_seconds gauge
goldmane_edge_last_flow_end_timestamp_seconds 1800000015
# HELP goldmane_edge_last_flush_success_timestamp_seconds Time of the last successful flush or DB round trip.
# TYPE goldmane_edge_last_flush_success_timestamp_seconds gauge
goldmane_edge_last_flush_success_timestamp_seconds 1800000020
# HELP goldmane_edge_client_cert_not_after_timestamp_seconds Expiry of the Goldmane client certificate.
# TYPE goldmane_edge_client_cert_not_after_timestamp_seconds gauge
goldmane_edge_client_cert_not_after_timestamp_seconds 1900000000
# HELP goldmane_edge_build_info Build information.
# TYPE goldmane_edge_build_info gauge
goldmane_edge_build_info{version=\"0.1.0\"} 1
";
        assert_eq!(text, expected);
    }

    #[test]
    fn ts_is_utc_date_is() {
        assert_eq!(ts(0), "1970-01-01T00:00:00+00:00");
    }
}
