//! The Slack message (spec §5), the `--json` document (§8.2) and the stable log lines (§6.1).

use crate::decide::{Decision, JobState, Node, OutcomeId};
use crate::gate::{GateResult, GateVerdict, Reasons};
use crate::gauges::{self, Gauges};
use crate::version::{parse_server, parse_target, show, Ver};
use homelab_core::slack::esc;
use std::collections::BTreeMap;

/// Largest message (§5.1).
pub const MAX_BYTES: usize = 3500;
/// Per-item cap for source strings (§5.1).
pub const ESC_CAP: usize = 300;
/// Reason lines per group before `+<n> more` (§5.4).
pub const GROUP_CAP: usize = 10;

fn e(s: &str) -> String {
    esc(s, ESC_CAP)
}

/// `<m>m` (< 1 h), `<h>h <m>m` (< 48 h), else `<d>d <h>h` (§5.5).
pub fn fmt_age(secs: i64) -> String {
    let s = secs.max(0);
    if s < 3600 {
        format!("{}m", s / 60)
    } else if s < 48 * 3600 {
        format!("{}h {}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d {}h", s / 86400, (s % 86400) / 3600)
    }
}

/// `<m>m<ss>s`, or `<h>h<mm>m` from one hour (§5.5).
pub fn fmt_duration(secs: i64) -> String {
    let s = secs.max(0);
    if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

fn utc(secs: i64) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(secs).ok()
}

/// `YYYY-MM-DD`
pub fn fmt_date(secs: i64) -> String {
    utc(secs).map_or_else(
        || "?".into(),
        |t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
    )
}

/// `HH:MM`
pub fn fmt_hm(secs: i64) -> String {
    utc(secs).map_or_else(
        || "?".into(),
        |t| format!("{:02}:{:02}", t.hour(), t.minute()),
    )
}

/// RFC 3339 UTC with seconds, for `--json`.
pub fn fmt_rfc3339(secs: i64) -> String {
    utc(secs).map_or_else(|| "?".into(), homelab_core::log::format_utc)
}

/// A failed source, as named on the Missing line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub source: &'static str,
    pub reason: String,
}

/// Everything the message is made from.
#[derive(Debug, Clone)]
pub struct View<'a> {
    pub now: i64,
    pub namespace: &'a str,
    pub lookback_hours: u32,
    pub max_jobs: usize,
    pub decision: &'a Decision,
    pub gauges: Result<&'a Gauges, ()>,
    pub nodes: Result<&'a [Node], ()>,
    /// `None`: the gate did not run.
    pub gate: Option<&'a GateResult>,
    /// `REPORT_GATE=off`.
    pub gate_disabled: bool,
    /// The 7-day trend symbols (§8.3), when Prometheus answered.
    pub trend: Option<String>,
    pub missing: &'a [Missing],
}

impl View<'_> {
    fn available(&self) -> Option<&gauges::Gauge> {
        self.gauges.ok().and_then(|g| g.get(gauges::AVAILABLE))
    }
    fn target_text(&self) -> String {
        match (
            self.decision.target,
            self.available().and_then(|a| a.label("target")),
        ) {
            (Some(t), _) => t.to_string(),
            (None, Some(raw)) => show(raw, None),
            (None, None) => self
                .job_target()
                .map_or_else(|| "?".to_string(), |t| t.to_string()),
        }
    }
    /// The target of a running chain Job (`…-1-36-2`), when the gauges do not say.
    fn job_target(&self) -> Option<Ver> {
        self.decision.listed.iter().rev().find_map(|(j, s)| {
            if *s != JobState::Running || !crate::decide::is_chain_job(&j.name) {
                return None;
            }
            let parts: Vec<&str> = j.name.rsplitn(4, '-').collect();
            (parts.len() == 4)
                .then(|| parse_target(&format!("{}.{}.{}", parts[2], parts[1], parts[0])))
                .flatten()
        })
    }
    fn running_label(&self) -> Option<String> {
        self.available()
            .and_then(|a| a.label("running"))
            .map(|r| show(r, parse_server(r)))
    }
    fn kind(&self) -> String {
        match self.available().and_then(|a| a.label("kind")) {
            Some(k) if !k.trim().is_empty() => e(k),
            _ => "?".into(),
        }
    }

    /// The headline (§5.3), exact.
    pub fn headline(&self) -> String {
        let d = self.decision;
        let t = self.target_text();
        match d.outcome {
            OutcomeId::InProgress => {
                let mut h = format!("🟡 IN PROGRESS — upgrading to {t}");
                if let Some(a) = d.progress.as_ref().and_then(|p| p.started_age_s) {
                    h.push_str(&format!(" (started {} ago)", fmt_age(a)));
                }
                h
            }
            OutcomeId::Unknown => {
                "❓ UNKNOWN — Pushgateway unreadable; outcome cannot be decided".into()
            }
            OutcomeId::DetectorStale => match d.detector.age_s {
                Some(a) => format!(
                    "⚠️ DETECTOR STALE — k8s-version-check last ran {} ago",
                    fmt_age(a)
                ),
                None => "⚠️ DETECTOR STALE — k8s-version-check has never reported".into(),
            },
            OutcomeId::Upgraded => {
                format!(
                    "🟢 UPGRADED — {} → {t}",
                    self.running_label().unwrap_or_else(|| "?".into())
                )
            }
            OutcomeId::Held => format!("⏸️ HELD — {t} not yet upgradable"),
            OutcomeId::Blocked => format!("🔴 BLOCKED — {t} refused by the compat gate"),
            OutcomeId::Failed => {
                let (j, r) = d.failed_job.clone().unwrap_or_default();
                format!("🔴 FAILED — chain job {} failed ({})", e(&j), e(&r))
            }
            OutcomeId::NotUpgraded => {
                let (k, n) = d
                    .at_target
                    .map_or(("?".to_string(), "?".to_string()), |(k, n)| {
                        (k.to_string(), n.to_string())
                    });
                format!("🟠 NOT UPGRADED — {t} available; {k}/{n} nodes at target")
            }
            OutcomeId::NoUpgrade => "⚪ NO UPGRADE NEEDED".into(),
        }
    }

    fn running_line(&self) -> String {
        match self.nodes {
            Ok(nodes) if !nodes.is_empty() => {
                let mut by: BTreeMap<(Option<Ver>, String), usize> = BTreeMap::new();
                for n in nodes {
                    let p = parse_server(&n.kubelet);
                    let key = (
                        p,
                        if p.is_some() {
                            String::new()
                        } else {
                            n.kubelet.clone()
                        },
                    );
                    *by.entry(key).or_default() += 1;
                }
                // Parsed versions ascending, unparseable ones last.
                let mut groups: Vec<((Option<Ver>, String), usize)> = by.into_iter().collect();
                groups.sort_by_key(|((v, raw), _)| (v.is_none(), *v, raw.clone()));
                if groups.len() == 1 {
                    let ((v, raw), n) = &groups[0];
                    format!("Running: {} ({n} nodes)", show(raw, *v))
                } else {
                    let parts: Vec<String> = groups
                        .iter()
                        .map(|((v, raw), n)| format!("{} ×{n}", show(raw, *v)))
                        .collect();
                    format!("Running: mixed — {} ⚠️", parts.join(", "))
                }
            }
            _ => match self.running_label() {
                Some(r) => format!("Running: {r} (per detector; nodes unreadable)"),
                None => "Running: unknown (nodes unreadable)".into(),
            },
        }
    }

    fn detector_line(&self) -> String {
        if self.gauges.is_err() {
            return "Detector: unknown (Pushgateway unreadable)".into();
        }
        let d = &self.decision.detector;
        let (Some(ts), Some(age)) = (d.last_run, d.age_s) else {
            return "Detector: never reported ⚠️ stale".into();
        };
        let ts = ts.floor() as i64;
        let mut l = format!(
            "Detector: last run {} {}Z ({} ago)",
            fmt_date(ts),
            fmt_hm(ts),
            fmt_age(age)
        );
        if d.from_push_time {
            l.push_str(" (push time)");
        }
        if d.stale {
            l.push_str(" ⚠️ stale");
        }
        l
    }

    fn target_line(&self) -> String {
        if self.gauges.is_err() {
            return "Target: unknown (Pushgateway unreadable)".into();
        }
        let d = self.decision;
        if d.avail {
            return format!("Target: {} ({})", self.target_text(), self.kind());
        }
        if let Some(a) = self.available() {
            if a.value == 1.0 && d.target.is_none() {
                if let Some(raw) = a.label("target") {
                    return format!("Target: {} ({})", show(raw, None), self.kind());
                }
            }
        }
        let current = self
            .available()
            .and_then(|a| a.label("running"))
            .and_then(parse_server)
            .map(|v| v.to_string())
            .or_else(|| match self.nodes {
                Ok(ns) if !ns.is_empty() => {
                    let v: Vec<Option<Ver>> = ns.iter().map(|n| parse_server(&n.kubelet)).collect();
                    (v.iter().all(|x| *x == v[0]) && v[0].is_some())
                        .then(|| v[0].map(|x| x.to_string()))
                        .flatten()
                }
                _ => None,
            })
            .unwrap_or_else(|| "unknown".into());
        format!("Target: none — {current} is current")
    }

    fn detail_lines(&self, reason_budget: usize) -> Vec<String> {
        let d = self.decision;
        let mut out = Vec::new();
        match d.outcome {
            OutcomeId::InProgress => {
                // The snapshot gauge is only known when the Pushgateway was read (D1 can also
                // come from a running chain Job alone).
                if let (Some(p), Ok(_)) = (&d.progress, self.gauges) {
                    out.push(format!(
                        "Snapshot: {}",
                        if p.snapshot { "taken" } else { "not taken" }
                    ));
                    if p.too_long {
                        out.push("⚠️ running longer than 90 min — see K8sUpgradeStalled".into());
                    }
                }
            }
            OutcomeId::Held | OutcomeId::Blocked => {
                if self.gate_disabled {
                    out.push("(live re-check disabled)".into());
                    return out;
                }
                let Some(g) = self.gate else {
                    return out;
                };
                let reasons = Reasons::group(&g.lines);
                let mut budget = reason_budget;
                for (title, lines) in reasons.sections() {
                    out.push(title.to_string());
                    let shown = lines.len().min(GROUP_CAP).min(budget);
                    budget -= shown;
                    for l in &lines[..shown] {
                        out.push(format!("• {}", e(l)));
                    }
                    if lines.len() > shown {
                        out.push(format!("+{} more", lines.len() - shown));
                    }
                }
                match g.verdict {
                    GateVerdict::Error => out.push(format!(
                        "Live re-check failed: {}",
                        e(g.error.as_deref().unwrap_or("unknown error"))
                    )),
                    v => {
                        if v == GateVerdict::Safe && reasons.is_empty() {
                            out.push("No blockers found now.".into());
                        }
                        let recorded = if d.outcome == OutcomeId::Held {
                            GateVerdict::Held
                        } else {
                            GateVerdict::Blocked
                        };
                        if v != recorded {
                            out.push(format!(
                                "Live re-check: {} — the next nightly run should {}",
                                v.word(),
                                if v == GateVerdict::Safe {
                                    "proceed"
                                } else {
                                    "stay refused"
                                }
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
        out
    }

    fn node_health(&self) -> Option<String> {
        let Ok(nodes) = self.nodes else { return None };
        let mut items = Vec::new();
        for n in nodes {
            if n.unschedulable {
                items.push(format!("{} cordoned", e(&n.name)));
            }
            if !n.ready {
                items.push(format!("{} NotReady", e(&n.name)));
            }
        }
        if items.is_empty() {
            return None;
        }
        let more = items.len().saturating_sub(GROUP_CAP);
        items.truncate(GROUP_CAP);
        let mut l = format!("⚠️ Nodes: {}", items.join(", "));
        if more > 0 {
            l.push_str(&format!(", +{more} more"));
        }
        Some(l)
    }

    fn job_lines(&self, cap: usize) -> Vec<String> {
        let mut out = vec![format!(
            "*Recent jobs* ({}, last {}h)",
            e(self.namespace),
            self.lookback_hours
        )];
        if self.missing.iter().any(|m| m.source == "jobs") {
            out.push("• unknown (jobs unreadable)".into());
            return out;
        }
        let listed = &self.decision.listed;
        if listed.is_empty() {
            out.push("• none".into());
            return out;
        }
        // The first `cap` Jobs by start time; the size cut (§5.6) drops lines from the end.
        let shown = listed.len().min(cap);
        for (j, s) in &listed[..shown] {
            let start = j.started().unwrap_or(self.now);
            let state = match s {
                JobState::Complete => "✅ Complete".to_string(),
                JobState::Failed(r) => format!("❌ Failed ({})", e(r)),
                JobState::Running => "🔄 Running".into(),
                JobState::Pending => "⏳ Pending".into(),
                JobState::Suspended => "⏸ Suspended".into(),
            };
            let dur = match j.end() {
                Some(end) => fmt_duration(end - start),
                None => "running".into(),
            };
            out.push(format!(
                "• `{}` {state} · {}Z · {dur}",
                e(&j.name),
                fmt_hm(start)
            ));
        }
        if listed.len() > shown {
            out.push(format!("+{} more", listed.len() - shown));
        }
        out
    }

    fn missing_line(&self) -> Option<String> {
        if self.missing.is_empty() {
            return None;
        }
        let parts: Vec<String> = self
            .missing
            .iter()
            .map(|m| format!("{} ({})", m.source, e(&m.reason)))
            .collect();
        Some(format!("⚠️ Missing: {}", parts.join(", ")))
    }

    fn render_with(&self, job_cap: usize, reason_budget: usize) -> String {
        let mut lines = vec![
            format!("*K8s upgrade nightly report — {}*", fmt_date(self.now)),
            self.headline(),
            self.running_line(),
            self.detector_line(),
            self.target_line(),
        ];
        if let Some(t) = &self.trend {
            lines.push(format!("7-day: {t}"));
        }
        lines.extend(self.detail_lines(reason_budget));
        lines.extend(self.node_health());
        lines.extend(self.job_lines(job_cap));
        lines.extend(self.missing_line());
        lines.join("\n")
    }

    /// The message text: ≤ 3 500 bytes, dropping job lines, then reason lines, from the end
    /// (§5.6).
    pub fn text(&self) -> String {
        let mut jobs = self.max_jobs;
        let mut reasons = usize::MAX;
        loop {
            let t = self.render_with(jobs, reasons);
            if t.len() <= MAX_BYTES {
                return t;
            }
            if jobs > 0 {
                jobs -= 1;
            } else {
                let have = self.gate.map_or(0, |g| g.lines.len());
                if reasons == usize::MAX {
                    reasons = have;
                }
                if reasons == 0 {
                    return t;
                }
                reasons -= 1;
            }
        }
    }
}

/// Slack delivery as reported in `--json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlackReport {
    pub posted: bool,
    pub http_status: Option<u16>,
    pub error: Option<String>,
}

/// One source's result for `--json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceReport {
    pub name: &'static str,
    pub ok: bool,
    pub error: Option<String>,
    pub ms: u64,
}

/// The `--json` document (§8.2).
pub fn json_doc(
    v: &View<'_>,
    text: &str,
    sources: &[SourceReport],
    slack: &SlackReport,
) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let d = v.decision;
    let mut gauges = Map::new();
    for n in gauges::NAMES {
        let val = v.gauges.ok().and_then(|g| g.value(n));
        gauges.insert(n.to_string(), val.map_or(Value::Null, |x| json!(x)));
    }
    let reasons = v.gate.map(|g| Reasons::group(&g.lines)).unwrap_or_default();
    let running: Vec<Value> = match v.nodes {
        Ok(ns) => {
            let mut vs: Vec<String> = ns
                .iter()
                .map(|n| {
                    parse_server(&n.kubelet).map_or_else(|| n.kubelet.clone(), |x| x.to_string())
                })
                .collect();
            vs.sort();
            vs.dedup();
            vs.into_iter().map(Value::String).collect()
        }
        Err(()) => Vec::new(),
    };
    let jobs: Vec<Value> = d
        .listed
        .iter()
        .map(|(j, s)| {
            json!({
                "name": j.name,
                "state": s.word(),
                "reason": match s { JobState::Failed(r) => Value::String(r.clone()), _ => Value::Null },
                "start": j.started().map(fmt_rfc3339),
                "end": j.end().map(fmt_rfc3339),
            })
        })
        .collect();
    let mut srcs = Map::new();
    for s in sources {
        srcs.insert(
            s.name.to_string(),
            json!({"ok": s.ok, "error": s.error, "ms": s.ms}),
        );
    }
    let target = d.target.map(|t| t.to_string()).or_else(|| {
        v.available()
            .and_then(|a| a.label("target"))
            .map(str::to_string)
    });
    json!({
        "schema": 1,
        "generated_at": fmt_rfc3339(v.now),
        "outcome": d.outcome.id(),
        "headline": v.headline(),
        "text": text,
        "degraded": !v.missing.is_empty(),
        "target": target,
        "kind": v.available().and_then(|a| a.label("kind")).filter(|k| !k.is_empty()),
        "running": running,
        "detector": {
            "last_run": d.detector.last_run.map(|t| fmt_rfc3339(t.floor() as i64)),
            "age_s": d.detector.age_s,
            "stale": d.detector.stale,
        },
        "gauges": gauges,
        "reasons": {
            "actionable": reasons.actionable,
            "waiting": reasons.waiting,
            "pinned": reasons.pinned,
            "other": reasons.other,
        },
        "gate": {
            "ran": v.gate.is_some(),
            "verdict": v.gate.map(|g| g.verdict.word()),
            "error": v.gate.and_then(|g| g.error.clone()),
        },
        "jobs": jobs,
        "sources": srcs,
        "slack": {"posted": slack.posted, "http_status": slack.http_status, "error": slack.error},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::tests::{job, night, nodes, CFG, NOW};
    use crate::decide::{decide, Inputs, Job, JobCondition};

    /// Slack shows entities decoded; the spec's texts are written that way.
    pub fn decode(s: &str) -> String {
        s.replace("&gt;", ">")
            .replace("&lt;", "<")
            .replace("&amp;", "&")
    }

    fn view_text(inp: &Inputs, gate: Option<&GateResult>, missing: &[Missing]) -> String {
        let d = decide(inp, NOW, &CFG);
        let g = inp.gauges.as_ref().map_err(|_| ());
        let n = inp.nodes.as_ref().map(Vec::as_slice).map_err(|_| ());
        View {
            now: NOW,
            namespace: "k8s-upgrade",
            lookback_hours: 24,
            max_jobs: 15,
            decision: &d,
            gauges: g,
            nodes: n,
            gate,
            gate_disabled: false,
            trend: None,
            missing,
        }
        .text()
    }

    fn held_gate() -> GateResult {
        GateResult {
            verdict: GateVerdict::Held,
            lines: vec![
                "[WAITING] external-secrets 2.6.0 supports k8s ≤ 1.35; no released external-secrets version supports k8s 1.36 yet".into(),
                "[WAITING] kyverno 1.18.1 supports k8s ≤ 1.35; no released kyverno version supports k8s 1.36 yet".into(),
                "[PINNED] gpu-operator 25.3 supports k8s ≤ 1.35; pinned: 26.3 needs newer NVIDIA driver image + Ubuntu; 1.36 support from 26.3".into(),
                "[ACTIONABLE] calico 3.30.7 supports k8s ≤ 1.35; upgrade calico to >= 3.31".into(),
            ],
            error: None,
        }
    }

    pub const EXAMPLE_57: &str = "*K8s upgrade nightly report — 2026-06-29*
⏸️ HELD — 1.36.2 not yet upgradable
Running: 1.35.6 (7 nodes)
Detector: last run 2026-06-28 23:00Z (7h 7m ago)
Target: 1.36.2 (minor)
*Action needed*
• calico 3.30.7 supports k8s ≤ 1.35; upgrade calico to >= 3.31
*Waiting on upstream*
• external-secrets 2.6.0 supports k8s ≤ 1.35; no released external-secrets version supports k8s 1.36 yet
• kyverno 1.18.1 supports k8s ≤ 1.35; no released kyverno version supports k8s 1.36 yet
*Pinned (held by us)*
• gpu-operator 25.3 supports k8s ≤ 1.35; pinned: 26.3 needs newer NVIDIA driver image + Ubuntu; 1.36 support from 26.3
*Recent jobs* (k8s-upgrade, last 24h)
• `k8s-version-check-29185380` ✅ Complete · 23:00Z · 0m14s
• `k8s-upgrade-preflight-1-36-2` ✅ Complete · 23:01Z · 1m02s";

    fn example_jobs() -> Vec<Job> {
        let t23 = 1_782_687_600;
        let mut pre = job("k8s-upgrade-preflight-1-36-2", t23 + 60, "complete");
        pre.completion = Some(t23 + 60 + 62);
        vec![job("k8s-version-check-29185380", t23, "complete"), pre]
    }

    #[test]
    fn example_5_7_exact() {
        let inp = Inputs {
            gauges: Ok(night(
                "1.36.2",
                "1.35.6",
                &[(gauges::HELD, 1.0), (gauges::BLOCKED, 0.0)],
            )),
            nodes: Ok(nodes(&["v1.35.6"; 7])),
            jobs: Ok(example_jobs()),
        };
        let t = view_text(&inp, Some(&held_gate()), &[]);
        assert!(t.contains("upgrade calico to &gt;= 3.31"), "{t}");
        assert_eq!(decode(&t), EXAMPLE_57);
    }

    #[test]
    fn original_2_blocked_with_reason_lines_and_live_recheck() {
        let inp = Inputs {
            gauges: Ok(night("1.35.6", "1.34.9", &[(gauges::BLOCKED, 1.0)])),
            nodes: Ok(nodes(&["v1.34.9"; 3])),
            jobs: Ok(vec![]),
        };
        let gate = GateResult {
            verdict: GateVerdict::Blocked,
            lines: vec![
                "[ACTIONABLE] external-secrets 0.12.1 supports k8s ≤ 1.31; upgrade external-secrets to >= 2.6".into(),
                "[ACTIONABLE] kyverno 1.16.0 supports k8s ≤ 1.34; upgrade kyverno to >= 1.18".into(),
            ],
            error: None,
        };
        let t = decode(&view_text(&inp, Some(&gate), &[]));
        assert!(
            t.contains("\n🔴 BLOCKED — 1.35.6 refused by the compat gate\n"),
            "{t}"
        );
        assert!(t.contains("*Action needed*\n• external-secrets 0.12.1 supports k8s ≤ 1.31; upgrade external-secrets to >= 2.6\n• kyverno"), "{t}");
        assert!(!t.contains("Live re-check"));
        // The addon got upgraded during the day: the gate now says safe.
        let safe = GateResult {
            verdict: GateVerdict::Safe,
            lines: vec![],
            error: None,
        };
        let t = view_text(&inp, Some(&safe), &[]);
        assert!(t.contains("\nNo blockers found now.\nLive re-check: safe — the next nightly run should proceed\n"), "{t}");
        let err = GateResult::error("GET /api/v1/nodes: HTTP 403");
        let t = view_text(
            &inp,
            Some(&err),
            &[Missing {
                source: "gate",
                reason: "GET /api/v1/nodes: HTTP 403".into(),
            }],
        );
        assert!(
            t.contains("\nLive re-check failed: GET /api/v1/nodes: HTTP 403\n"),
            "{t}"
        );
        assert!(
            t.ends_with("\n⚠️ Missing: gate (GET /api/v1/nodes: HTTP 403)"),
            "{t}"
        );
        assert!(t.contains("🔴 BLOCKED"));
    }

    #[test]
    fn original_9_held_headline_exact() {
        let inp = Inputs {
            gauges: Ok(night("1.36.2", "1.35.6", &[(gauges::HELD, 1.0)])),
            nodes: Ok(nodes(&["v1.35.6"])),
            jobs: Ok(vec![]),
        };
        let t = view_text(&inp, Some(&held_gate()), &[]);
        assert_eq!(
            t.lines().nth(1),
            Some("⏸️ HELD — 1.36.2 not yet upgradable")
        );
        // Held recorded, blocked now: the differing verdict is named.
        let g = GateResult {
            verdict: GateVerdict::Blocked,
            lines: vec!["[ACTIONABLE] x".into()],
            error: None,
        };
        assert!(view_text(&inp, Some(&g), &[])
            .contains("\nLive re-check: blocked — the next nightly run should stay refused\n"));
    }

    fn headline_of(inp: Inputs) -> String {
        view_text(&inp, None, &[])
            .lines()
            .nth(1)
            .unwrap()
            .to_string()
    }

    #[test]
    fn every_headline_exact() {
        let ok = |g| Inputs {
            gauges: Ok(g),
            nodes: Ok(nodes(&["v1.35.6", "v1.35.6"])),
            jobs: Ok(vec![]),
        };
        assert_eq!(
            headline_of(ok(night(
                "1.36.2",
                "1.35.6",
                &[
                    (gauges::IN_FLIGHT, 1.0),
                    (gauges::STARTED, (NOW - 3720) as f64)
                ]
            ))),
            "🟡 IN PROGRESS — upgrading to 1.36.2 (started 1h 2m ago)"
        );
        assert_eq!(
            headline_of(ok(night(
                "1.36.2",
                "1.35.6",
                &[(gauges::IN_FLIGHT, 1.0), (gauges::STARTED, 0.0)]
            ))),
            "🟡 IN PROGRESS — upgrading to 1.36.2"
        );
        assert_eq!(
            headline_of(Inputs {
                gauges: Err("x".into()),
                nodes: Ok(vec![]),
                jobs: Ok(vec![])
            }),
            "❓ UNKNOWN — Pushgateway unreadable; outcome cannot be decided"
        );
        let mut stale = night("1.36.2", "1.35.6", &[]);
        stale.map.get_mut(gauges::LAST_RUN).unwrap().value = (NOW - 3 * 86400 - 7200) as f64;
        assert_eq!(
            headline_of(ok(stale)),
            "⚠️ DETECTOR STALE — k8s-version-check last ran 3d 2h ago"
        );
        assert_eq!(
            headline_of(ok(Gauges::default())),
            "⚠️ DETECTOR STALE — k8s-version-check has never reported"
        );
        assert_eq!(
            headline_of(ok(night("1.35.6", "v1.34.9", &[]))),
            "🟢 UPGRADED — 1.34.9 → 1.35.6"
        );
        assert_eq!(
            headline_of(ok(night("1.36.2", "1.35.6", &[(gauges::HELD, 1.0)]))),
            "⏸️ HELD — 1.36.2 not yet upgradable"
        );
        assert_eq!(
            headline_of(ok(night("1.36.2", "1.35.6", &[(gauges::BLOCKED, 1.0)]))),
            "🔴 BLOCKED — 1.36.2 refused by the compat gate"
        );
        let failed = Inputs {
            gauges: Ok(night("1.36.2", "1.35.6", &[])),
            nodes: Ok(nodes(&["v1.35.6"])),
            jobs: Ok(vec![job("k8s-upgrade-worker-1-36-2", NOW - 600, "failed")]),
        };
        assert_eq!(
            headline_of(failed),
            "🔴 FAILED — chain job k8s-upgrade-worker-1-36-2 failed (BackoffLimitExceeded)"
        );
        assert_eq!(
            headline_of(ok(night("1.36.2", "1.35.6", &[]))),
            "🟠 NOT UPGRADED — 1.36.2 available; 0/2 nodes at target"
        );
        assert_eq!(
            headline_of(ok(night("1.35.6", "1.35.6", &[]))),
            "⚪ NO UPGRADE NEEDED"
        );
    }

    #[test]
    fn original_1_3_4_5_6_messages() {
        let t = view_text(
            &Inputs {
                gauges: Ok(night("1.35.6", "1.35.6", &[])),
                nodes: Ok(nodes(&["v1.35.6"; 2])),
                jobs: Ok(vec![]),
            },
            None,
            &[],
        );
        assert!(
            t.contains("\n⚪ NO UPGRADE NEEDED\nRunning: 1.35.6 (2 nodes)\n"),
            "{t}"
        );
        assert!(
            t.contains(
                "\nTarget: none — 1.35.6 is current\n*Recent jobs* (k8s-upgrade, last 24h)\n• none"
            ),
            "{t}"
        );
        // 3 and 4: upgraded, plain and v-prefixed kubelets.
        for kv in ["1.35.6", "v1.35.6"] {
            let t = view_text(
                &Inputs {
                    gauges: Ok(night("1.35.6", "1.34.9", &[])),
                    nodes: Ok(nodes(&[kv; 3])),
                    jobs: Ok(vec![]),
                },
                None,
                &[],
            );
            assert!(
                t.contains("\n🟢 UPGRADED — 1.34.9 → 1.35.6\nRunning: 1.35.6 (3 nodes)\n"),
                "{t}"
            );
        }
        // 5: in flight, snapshot, the 90-minute warning.
        let t = view_text(
            &Inputs {
                gauges: Ok(night(
                    "1.36.2",
                    "1.35.6",
                    &[
                        (gauges::IN_FLIGHT, 1.0),
                        (gauges::SNAPSHOT, 1.0),
                        (gauges::STARTED, (NOW - 6000) as f64),
                    ],
                )),
                nodes: Ok(nodes(&["v1.36.2", "v1.35.6"])),
                jobs: Ok(vec![]),
            },
            None,
            &[],
        );
        assert!(
            t.contains("\nRunning: mixed — 1.35.6 ×1, 1.36.2 ×1 ⚠️\n"),
            "{t}"
        );
        assert!(
            t.contains(
                "\nSnapshot: taken\n⚠️ running longer than 90 min — see K8sUpgradeStalled\n"
            ),
            "{t}"
        );
        // 6: stale detector line.
        let mut g = night("1.36.2", "1.35.6", &[]);
        g.map.get_mut(gauges::LAST_RUN).unwrap().value = (NOW - 27 * 3600) as f64;
        let t = view_text(
            &Inputs {
                gauges: Ok(g),
                nodes: Ok(nodes(&["1.35.6"])),
                jobs: Ok(vec![]),
            },
            None,
            &[],
        );
        assert!(
            t.contains("\nDetector: last run 2026-06-28 03:07Z (27h 0m ago) ⚠️ stale\n"),
            "{t}"
        );
    }

    #[test]
    fn original_7_job_states_and_8_formats() {
        let mut susp = job("k8s-upgrade-postflight-1-36-2", NOW - 100, "");
        susp.conditions.push(JobCondition {
            type_: "Suspended".into(),
            status: "True".into(),
            ..Default::default()
        });
        let mut long = job("k8s-upgrade-master-1-36-2", NOW - 20000, "complete");
        long.completion = Some(NOW - 20000 + 3900);
        let jobs = vec![
            job("k8s-upgrade-preflight-1-36-2", NOW - 30000, "complete"),
            long,
            job("k8s-upgrade-worker-a-1-36-2", NOW - 5000, "failed"),
            job("k8s-upgrade-worker-b-1-36-2", NOW - 300, "running"),
            job("other", NOW - 200, ""),
            susp,
        ];
        let t = view_text(
            &Inputs {
                gauges: Ok(night("1.35.6", "1.35.6", &[])),
                nodes: Ok(nodes(&["1.35.6"])),
                jobs: Ok(jobs),
            },
            None,
            &[],
        );
        let tail: Vec<&str> = t
            .lines()
            .skip_while(|l| !l.starts_with("*Recent jobs*"))
            .collect();
        assert_eq!(
            tail,
            [
                "*Recent jobs* (k8s-upgrade, last 24h)",
                "• `k8s-upgrade-preflight-1-36-2` ✅ Complete · 21:47Z · 0m14s",
                "• `k8s-upgrade-master-1-36-2` ✅ Complete · 00:33Z · 1h05m",
                "• `k8s-upgrade-worker-a-1-36-2` ❌ Failed (BackoffLimitExceeded) · 04:43Z · 1m02s",
                "• `k8s-upgrade-worker-b-1-36-2` 🔄 Running · 06:02Z · running",
                "• `other` ⏳ Pending · 06:03Z · running",
                "• `k8s-upgrade-postflight-1-36-2` ⏸ Suspended · 06:05Z · running",
            ]
        );
        assert_eq!(fmt_age(59), "0m");
        assert_eq!(fmt_age(25_620), "7h 7m");
        assert_eq!(fmt_age(48 * 3600 - 1), "47h 59m");
        assert_eq!(fmt_age(48 * 3600), "2d 0h");
        assert_eq!(fmt_duration(14), "0m14s");
        assert_eq!(fmt_duration(62), "1m02s");
        assert_eq!(fmt_duration(3600 + 300), "1h05m");
    }

    #[test]
    fn degraded_lines_name_what_is_missing() {
        let miss = [
            Missing { source: "pushgateway", reason: "GET /api/v1/metrics: connection failed".into() },
            Missing { source: "nodes", reason: "GET /api/v1/nodes: HTTP 403: nodes is forbidden".into() },
            Missing { source: "jobs", reason: "GET /apis/batch/v1/namespaces/k8s-upgrade/jobs: HTTP 403: jobs.batch is forbidden".into() },
        ];
        let t = view_text(
            &Inputs {
                gauges: Err("x".into()),
                nodes: Err("y".into()),
                jobs: Err("z".into()),
            },
            None,
            &miss,
        );
        assert_eq!(
            t,
            "*K8s upgrade nightly report — 2026-06-29*
❓ UNKNOWN — Pushgateway unreadable; outcome cannot be decided
Running: unknown (nodes unreadable)
Detector: unknown (Pushgateway unreadable)
Target: unknown (Pushgateway unreadable)
*Recent jobs* (k8s-upgrade, last 24h)
• unknown (jobs unreadable)
⚠️ Missing: pushgateway (GET /api/v1/metrics: connection failed), nodes (GET /api/v1/nodes: HTTP 403: nodes is forbidden), jobs (GET /apis/batch/v1/namespaces/k8s-upgrade/jobs: HTTP 403: jobs.batch is forbidden)"
        );
        // Nodes unreadable: running comes from the detector's label.
        let t = view_text(
            &Inputs {
                gauges: Ok(night("1.35.6", "v1.34.9", &[])),
                nodes: Err("y".into()),
                jobs: Ok(vec![]),
            },
            None,
            &miss[1..2],
        );
        assert!(t.contains("\n🟠 NOT UPGRADED — 1.35.6 available; ?/? nodes at target\nRunning: 1.34.9 (per detector; nodes unreadable)\n"), "{t}");
    }

    #[test]
    fn node_health_and_unparseable_versions() {
        let mut ns = nodes(&["v1.35.6", "weird`<!channel>", "v1.35.6"]);
        ns[0].name = "k8s-master".into();
        ns[0].unschedulable = true;
        ns[2].ready = false;
        let g = night("nope", "also`bad", &[]);
        let t = view_text(
            &Inputs {
                gauges: Ok(g),
                nodes: Ok(ns),
                jobs: Ok(vec![]),
            },
            None,
            &[],
        );
        assert!(
            t.contains(
                "\nRunning: mixed — 1.35.6 ×2, `weird'&lt;!channel&gt;` (unparseable) ×1 ⚠️\n"
            ),
            "{t}"
        );
        assert!(
            t.contains("\nTarget: `nope` (unparseable) (minor)\n"),
            "{t}"
        );
        assert!(
            t.contains("\n⚠️ Nodes: k8s-master cordoned, k8s-node2 NotReady\n"),
            "{t}"
        );
        assert!(!t.contains("<!"));
    }

    #[test]
    fn escaping_of_labels_reasons_and_job_names() {
        let inp = Inputs {
            gauges: Ok(night("1.36.2", "1.35.6", &[(gauges::HELD, 1.0)])),
            nodes: Ok(nodes(&["v1.35.6"])),
            jobs: Ok(vec![job(
                "k8s-upgrade-preflight-<!channel>&`x`\n-1-36-2",
                NOW - 60,
                "complete",
            )]),
        };
        let gate = GateResult {
            verdict: GateVerdict::Held,
            lines: vec!["[WAITING] a <!channel> & `b`\nc".into()],
            error: None,
        };
        let t = view_text(&inp, Some(&gate), &[]);
        assert!(!t.contains("<!"), "{t}");
        assert!(
            t.contains("• a &lt;!channel&gt; &amp; 'b'\u{FFFD}c\n"),
            "{t}"
        );
        assert!(
            t.contains("• `k8s-upgrade-preflight-&lt;!channel&gt;&amp;'x'\u{FFFD}-1-36-2` ✅"),
            "{t}"
        );
    }

    #[test]
    fn over_3500_bytes_drops_jobs_then_reasons_keeping_fixed_lines() {
        let jobs: Vec<Job> = (0..50)
            .map(|i| {
                job(
                    &format!("k8s-upgrade-worker-{}-{i:02}-1-36-2", "n".repeat(80)),
                    NOW - 3000 + i * 10,
                    "complete",
                )
            })
            .collect();
        let gate = GateResult {
            verdict: GateVerdict::Held,
            lines: (0..40)
                .map(|i| {
                    format!(
                        "[{}] addon-{i} {}",
                        ["WAITING", "PINNED", "ACTIONABLE", "X"][i % 4],
                        "r".repeat(250)
                    )
                })
                .collect(),
            error: None,
        };
        let miss = [Missing {
            source: "prometheus",
            reason: "down".into(),
        }];
        let inp = Inputs {
            gauges: Ok(night("1.36.2", "1.35.6", &[(gauges::HELD, 1.0)])),
            nodes: Ok(nodes(&["1.35.6"])),
            jobs: Ok(jobs),
        };
        let t = view_text(&inp, Some(&gate), &miss);
        assert!(t.len() <= MAX_BYTES, "{}", t.len());
        let l: Vec<&str> = t.lines().collect();
        assert_eq!(l[1], "⏸️ HELD — 1.36.2 not yet upgradable");
        assert!(
            l[2].starts_with("Running: ")
                && l[3].starts_with("Detector: ")
                && l[4].starts_with("Target: ")
        );
        assert_eq!(*l.last().unwrap(), "⚠️ Missing: prometheus (down)");
        assert!(
            t.contains("*Recent jobs*\u{20}(k8s-upgrade, last 24h)\n+50 more"),
            "{t}"
        );
        assert!(t.contains("+10 more") || t.contains("more\n"), "{t}");
    }
}
