//! The gate's result: verdict, blockers, checks, and its renderings (human lines §5.1, JSON
//! schema 1 §5.3, exit code §5.4, gauges §6.3).

use homelab_core::pushgateway::Gauge;
use homelab_core::version::KubeVersion;
use serde_json::{json, Value};

/// Blocker class (§1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    Waiting,
    Pinned,
    Actionable,
}

impl Class {
    /// `[WAITING]`, `[PINNED]`, `[ACTIONABLE]`.
    pub fn tag(self) -> &'static str {
        match self {
            Class::Waiting => "[WAITING]",
            Class::Pinned => "[PINNED]",
            Class::Actionable => "[ACTIONABLE]",
        }
    }
    /// `waiting`, `pinned`, `actionable` (JSON, gauge label).
    pub fn word(self) -> &'static str {
        match self {
            Class::Waiting => "waiting",
            Class::Pinned => "pinned",
            Class::Actionable => "actionable",
        }
    }
    /// Waiting and pinned hold the upgrade (nobody here can act yet).
    pub fn is_held(self) -> bool {
        matches!(self, Class::Waiting | Class::Pinned)
    }
}

/// Which check raised a blocker (sort order of §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckKind {
    Version,
    Addon,
    Containerd,
    RemovedApi,
    Data,
}

impl CheckKind {
    pub fn word(self) -> &'static str {
        match self {
            CheckKind::Version => "version",
            CheckKind::Addon => "addon",
            CheckKind::Containerd => "containerd",
            CheckKind::RemovedApi => "removed_api",
            CheckKind::Data => "data",
        }
    }
}

/// One reason the upgrade is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    pub class: Class,
    pub check: CheckKind,
    pub subject: String,
    pub current: Option<String>,
    pub required: Option<String>,
    pub remediation: Option<String>,
    /// The human line, starting with the tag.
    pub line: String,
}

impl Blocker {
    /// An `[ACTIONABLE]` blocker with `text` after the tag.
    pub fn actionable(check: CheckKind, subject: impl Into<String>, text: &str) -> Blocker {
        Blocker::new(Class::Actionable, check, subject, text)
    }
    pub fn new(class: Class, check: CheckKind, subject: impl Into<String>, text: &str) -> Blocker {
        Blocker {
            class,
            check,
            subject: subject.into(),
            current: None,
            required: None,
            remediation: None,
            line: format!("{} {text}", class.tag()),
        }
    }
    pub fn current(mut self, v: impl Into<String>) -> Self {
        self.current = Some(v.into());
        self
    }
    pub fn required(mut self, v: impl Into<String>) -> Self {
        self.required = Some(v.into());
        self
    }
    pub fn remediation(mut self, v: impl Into<String>) -> Self {
        self.remediation = Some(v.into());
        self
    }
    fn to_json(&self) -> Value {
        json!({"class": self.class.word(), "check": self.check.word(), "subject": self.subject,
               "current": self.current, "required": self.required, "remediation": self.remediation,
               "line": self.line})
    }
}

/// Final verdict (precedence error > held > blocked > safe, §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Safe,
    Blocked,
    Held,
    Error,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Safe => "safe",
            Verdict::Blocked => "blocked",
            Verdict::Held => "held",
            Verdict::Error => "error",
        }
    }
    /// §5.4.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Safe => 0,
            Verdict::Blocked => 2,
            Verdict::Error => 3,
            Verdict::Held => 4,
        }
    }
}

/// Patch or minor upgrade (§3.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeKind {
    Patch,
    Minor,
}

impl UpgradeKind {
    pub fn word(self) -> &'static str {
        match self {
            UpgradeKind::Patch => "patch",
            UpgradeKind::Minor => "minor",
        }
    }
}

/// Check status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    Skipped,
    Error,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skipped => "skipped",
            Status::Error => "error",
        }
    }
}

/// Per-check counts (§9.5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scanned {
    pub objects: u64,
    pub helm_releases: u64,
    pub metric_series: u64,
}

impl Scanned {
    pub fn total(&self) -> u64 {
        self.objects + self.helm_releases + self.metric_series
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// `version`, `addons`, `containerd`, `removed_apis`.
    pub name: &'static str,
    pub status: Status,
    pub reason: Option<String>,
    pub duration_ms: u64,
    pub scanned: Scanned,
    pub blockers: usize,
}

impl CheckResult {
    /// L-CHECK (exact catalogue format; the reason is in the JSON).
    pub fn log_line(&self) -> String {
        format!(
            "INFO: check {}: {} blockers={} scanned={} ({} ms)",
            self.name,
            self.status.word(),
            self.blockers,
            self.scanned.total(),
            self.duration_ms
        )
    }
}

/// One node as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub kubelet: KubeVersion,
    pub runtime: String,
}

/// What was read from the cluster (None = not read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterInfo {
    pub apiserver: Option<KubeVersion>,
    pub nodes: Vec<NodeInfo>,
}

/// Identification of the data used (JSON `matrix`/`removed_api_table`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataInfo {
    pub matrix_path: String,
    pub matrix_sha256: String,
    pub table_origin: String,
    pub table_checked: String,
    pub table_covers_through: String,
}

/// An API the apiserver reports deprecated with no removal release (`removed_release=""`: a
/// CRD version marked `deprecated: true`, or a GA deprecation such as core `v1` Endpoints since
/// 1.33) that is still requested. Informational: it never changes the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeprecatedApi {
    /// `group/version resource`.
    pub subject: String,
    /// Requested resources/subresources (at most 5, sorted).
    pub examples: Vec<String>,
    pub count: usize,
}

impl DeprecatedApi {
    pub fn new(subject: &str, all: Vec<String>) -> DeprecatedApi {
        DeprecatedApi {
            subject: subject.to_string(),
            count: all.len(),
            examples: all.into_iter().take(5).collect(),
        }
    }
    /// The human line (stderr, `INFO: deprecated: …`); outside-controlled names are escaped.
    pub fn line(&self) -> String {
        let mut ex = self
            .examples
            .iter()
            .map(|e| escape_text(e))
            .collect::<Vec<_>>()
            .join(", ");
        if self.count > self.examples.len() {
            ex.push_str(", \u{2026}");
        }
        format!(
            "deprecated API {} (no removal release scheduled) still requested via apiserver requests (e.g. {ex}); plan the migration before a release removes it",
            escape_text(&self.subject)
        )
    }
}

/// What one apiserver instance's `/metrics` gave (JSON `apiservers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiserverRead {
    /// `addr:port` from the EndpointSlice (or `configured server`).
    pub endpoint: String,
    /// `read`, `not-ready` (skipped) or `error`.
    pub status: &'static str,
    pub series: u64,
    /// `apiserver_requested_deprecated_apis` series seen there.
    pub deprecated_series: u64,
}

/// Control characters and non-ASCII in outside-controlled text (metric labels, names) as
/// `\u{..}` escapes, so it can never forge a line of its own.
pub fn escape_text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c.to_string()
            } else {
                c.escape_unicode().to_string()
            }
        })
        .collect()
}

/// The result of [`crate::evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub verdict: Verdict,
    pub kind: Option<UpgradeKind>,
    pub target: KubeVersion,
    pub cluster: ClusterInfo,
    /// Sorted per §5.2.
    pub blockers: Vec<Blocker>,
    pub notices: Vec<String>,
    /// `WARN: …` lines (unparseable annotations, …) for stderr.
    pub warnings: Vec<String>,
    pub checks: Vec<CheckResult>,
    /// The exit-3 reason (`verdict == Error`).
    pub error: Option<String>,
    /// Deprecated-without-removal APIs still requested (never a blocker).
    pub deprecated: Vec<DeprecatedApi>,
    /// Per-apiserver metrics reads (HA control planes).
    pub apiservers: Vec<ApiserverRead>,
    pub data: DataInfo,
    /// RFC 3339 time the report was made.
    pub generated_at: String,
}

/// §5.2 order: class (WAITING, PINNED, ACTIONABLE), check, subject, line.
pub fn sort_blockers(b: &mut [Blocker]) {
    b.sort_by(|x, y| {
        (x.class, x.check, &x.subject, &x.line).cmp(&(y.class, y.check, &y.subject, &y.line))
    });
}

/// Verdict from the blockers and the error (§4.3).
pub fn verdict_of(blockers: &[Blocker], error: bool) -> Verdict {
    if error {
        Verdict::Error
    } else if blockers.iter().any(|b| b.class.is_held()) {
        Verdict::Held
    } else if !blockers.is_empty() {
        Verdict::Blocked
    } else {
        Verdict::Safe
    }
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

impl Report {
    /// §5.4.
    pub fn exit_code(&self) -> i32 {
        self.verdict.exit_code()
    }

    pub fn count(&self, class: Class) -> usize {
        self.blockers.iter().filter(|b| b.class == class).count()
    }

    /// The human stdout (§5.1), one entry per line.
    pub fn stdout_lines(&self) -> Vec<String> {
        let t = self.target;
        let mut out = Vec::new();
        match self.verdict {
            Verdict::Safe => out.push(format!("OK: cluster is safe to upgrade to {t}")),
            Verdict::Blocked => out.push(format!(
                "BLOCKED: upgrade to {t} refused \u{2014} {} actionable blocker(s)",
                self.count(Class::Actionable)
            )),
            Verdict::Held => out.push(format!(
                "HELD: upgrade to {t} held \u{2014} waiting={} pinned={} actionable={}",
                self.count(Class::Waiting),
                self.count(Class::Pinned),
                self.count(Class::Actionable)
            )),
            Verdict::Error => {}
        }
        out.extend(self.blockers.iter().map(|b| b.line.clone()));
        if self.verdict == Verdict::Error {
            out.push(format!(
                "[ACTIONABLE] gate error: {} \u{2014} refusing (fail-safe)",
                self.error.as_deref().unwrap_or("unknown")
            ));
        }
        out
    }

    /// The `--json` document (§5.3, schema 1).
    pub fn to_json(&self) -> Value {
        let nodes: Vec<Value> = self
            .cluster
            .nodes
            .iter()
            .map(
                |n| json!({"name": n.name, "kubelet": n.kubelet.to_string(), "runtime": n.runtime}),
            )
            .collect();
        let checks: Vec<Value> = self
            .checks
            .iter()
            .map(|c| {
                json!({"name": c.name, "status": c.status.word(), "reason": c.reason,
                       "duration_ms": c.duration_ms,
                       "scanned": {"objects": c.scanned.objects, "helm_releases": c.scanned.helm_releases,
                                   "metric_series": c.scanned.metric_series}})
            })
            .collect();
        let opt = |s: &str| {
            if s.is_empty() {
                Value::Null
            } else {
                json!(s)
            }
        };
        json!({
            "schema": 1,
            "tool_version": env!("CARGO_PKG_VERSION"),
            "generated_at": self.generated_at,
            "target": self.target.to_string(),
            "kubeadm_target": self.target.kubeadm_arg(),
            "kind": self.kind.map(UpgradeKind::word),
            "verdict": self.verdict.word(),
            "exit_code": self.exit_code(),
            "cluster": {"apiserver": self.cluster.apiserver.map(|a| a.to_string()),
                        "nodes": nodes},
            "blockers": self.blockers.iter().map(Blocker::to_json).collect::<Vec<_>>(),
            "notices": self.notices,
            "deprecated": self.deprecated.iter().map(|d| json!({
                "subject": d.subject, "count": d.count, "examples": d.examples, "line": d.line()
            })).collect::<Vec<_>>(),
            "apiservers": self.apiservers.iter().map(|a| json!({
                "endpoint": a.endpoint, "status": a.status, "series": a.series,
                "deprecated_series": a.deprecated_series
            })).collect::<Vec<_>>(),
            "checks": checks,
            "matrix": {"path": opt(&self.data.matrix_path), "sha256": opt(&self.data.matrix_sha256)},
            "removed_api_table": {"origin": opt(&self.data.table_origin), "checked": opt(&self.data.table_checked),
                                  "covers_through": opt(&self.data.table_covers_through)},
            "error": self.error,
        })
    }

    /// The §6.3 series, stamped `now` (Unix seconds).
    pub fn gauges_at(&self, now: f64) -> Vec<Gauge> {
        let (b, h, e) = match self.verdict {
            Verdict::Safe => (0.0, 0.0, 0.0),
            Verdict::Blocked => (1.0, 0.0, 0.0),
            Verdict::Held => (0.0, 1.0, 0.0),
            Verdict::Error => (1.0, 0.0, 1.0),
        };
        let mut g = vec![
            Gauge::new(
                "k8s_upgrade_blocked",
                "1 if the compat gate refused the target (actionable blocker or gate error).",
                b,
            ),
            Gauge::new(
                "k8s_upgrade_held",
                "1 if the target is held: waiting on upstream or pinned (no alert).",
                h,
            ),
            Gauge::new(
                "k8s_upgrade_gate_error",
                "1 if the compat gate could not decide (fail-safe refusal).",
                e,
            ),
        ];
        for c in [Class::Actionable, Class::Waiting, Class::Pinned] {
            g.push(
                Gauge::new(
                    "k8s_upgrade_gate_blockers",
                    "Blockers found by the compat gate, by class.",
                    self.count(c) as f64,
                )
                .label("class", c.word()),
            );
        }
        g.push(Gauge::new(
            "k8s_upgrade_gate_last_run_timestamp_seconds",
            "Unix time of the last compat gate verdict.",
            now,
        ));
        g
    }

    /// [`Report::gauges_at`] now.
    pub fn gauges(&self) -> Vec<Gauge> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as f64)
            .unwrap_or(0.0);
        self.gauges_at(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(blockers: Vec<Blocker>, error: Option<&str>) -> Report {
        let mut blockers = blockers;
        sort_blockers(&mut blockers);
        Report {
            verdict: verdict_of(&blockers, error.is_some()),
            kind: Some(UpgradeKind::Minor),
            target: KubeVersion::new(1, 36, 2),
            cluster: ClusterInfo::default(),
            blockers,
            notices: vec![],
            warnings: vec![],
            checks: vec![],
            error: error.map(str::to_string),
            deprecated: vec![],
            apiservers: vec![],
            data: DataInfo::default(),
            generated_at: now_rfc3339(),
        }
    }

    fn values(r: &Report) -> Vec<(String, f64)> {
        r.gauges_at(1.0)
            .into_iter()
            .map(|g| {
                let l = g
                    .labels
                    .first()
                    .map(|(_, v)| format!("{{{v}}}"))
                    .unwrap_or_default();
                (format!("{}{l}", g.name), g.value)
            })
            .collect()
    }

    #[test]
    fn verdicts_lines_gauges() {
        let a = Blocker::actionable(
            CheckKind::Addon,
            "calico",
            "calico 3.30.2 supports k8s \u{2264} 1.35; upgrade calico to >= 3.31",
        );
        let v = Blocker::actionable(
            CheckKind::Version,
            "apiserver",
            "target 1.36.2 skips minor 1.35 (apiserver runs 1.34.9); upgrade one minor at a time",
        );
        let w = Blocker::new(Class::Waiting, CheckKind::Addon, "kyverno", "kyverno 1.18.1 supports k8s \u{2264} 1.35; no released kyverno version supports k8s 1.36 yet");
        let p = Blocker::new(
            Class::Pinned,
            CheckKind::Addon,
            "gpu-operator",
            "gpu-operator 25.3 supports k8s \u{2264} 1.35; pinned: x",
        );
        // Safe.
        let r = report(vec![], None);
        assert_eq!(
            r.stdout_lines(),
            ["OK: cluster is safe to upgrade to 1.36.2"]
        );
        assert_eq!(r.exit_code(), 0);
        assert_eq!(
            values(&r)[..3],
            [
                ("k8s_upgrade_blocked".into(), 0.0),
                ("k8s_upgrade_held".into(), 0.0),
                ("k8s_upgrade_gate_error".into(), 0.0)
            ]
        );
        // Blocked: ordered version before addon within ACTIONABLE.
        let r = report(vec![a.clone(), v.clone()], None);
        assert_eq!(r.exit_code(), 2);
        assert_eq!(
            r.stdout_lines()[0],
            "BLOCKED: upgrade to 1.36.2 refused \u{2014} 2 actionable blocker(s)"
        );
        assert!(r.stdout_lines()[1].starts_with("[ACTIONABLE] target 1.36.2 skips"));
        assert_eq!(values(&r)[0].1, 1.0);
        // Held wins on a mix; WAITING, PINNED, ACTIONABLE order.
        let r = report(vec![a.clone(), p.clone(), w.clone()], None);
        assert_eq!(r.verdict, Verdict::Held);
        assert_eq!(r.exit_code(), 4);
        let l = r.stdout_lines();
        assert_eq!(
            l[0],
            "HELD: upgrade to 1.36.2 held \u{2014} waiting=1 pinned=1 actionable=1"
        );
        assert!(
            l[1].starts_with("[WAITING]")
                && l[2].starts_with("[PINNED]")
                && l[3].starts_with("[ACTIONABLE]")
        );
        let g = values(&r);
        assert_eq!(
            g[..3],
            [
                ("k8s_upgrade_blocked".into(), 0.0),
                ("k8s_upgrade_held".into(), 1.0),
                ("k8s_upgrade_gate_error".into(), 0.0)
            ]
        );
        assert_eq!(
            g[3..6],
            [
                ("k8s_upgrade_gate_blockers{actionable}".into(), 1.0),
                ("k8s_upgrade_gate_blockers{waiting}".into(), 1.0),
                ("k8s_upgrade_gate_blockers{pinned}".into(), 1.0)
            ]
        );
        assert_eq!(
            g[6],
            ("k8s_upgrade_gate_last_run_timestamp_seconds".into(), 1.0)
        );
        // Error wins over everything; the lines found so far, then the gate error line.
        let r = report(
            vec![w],
            Some("GET /api/v1/nodes: HTTP 403: nodes is forbidden"),
        );
        assert_eq!(r.exit_code(), 3);
        assert_eq!(r.stdout_lines()[1], "[ACTIONABLE] gate error: GET /api/v1/nodes: HTTP 403: nodes is forbidden \u{2014} refusing (fail-safe)");
        assert_eq!(
            values(&r)[..3],
            [
                ("k8s_upgrade_blocked".into(), 1.0),
                ("k8s_upgrade_held".into(), 0.0),
                ("k8s_upgrade_gate_error".into(), 1.0)
            ]
        );
        assert_eq!(r.to_json()["verdict"], "error");
        assert!(
            Class::Waiting.is_held() && Class::Pinned.is_held() && !Class::Actionable.is_held()
        );
        assert_eq!(Class::Actionable.tag(), "[ACTIONABLE]");
    }
}
