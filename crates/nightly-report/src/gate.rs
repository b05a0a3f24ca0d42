//! The live compat-gate re-check (spec §3.6, §4.4, §5.4) behind a small trait, so the report
//! can be tested without a cluster; [`InProcess`] runs the `compat_gate` library in-process.

use homelab_core::kube::{ClusterRead, KubeClient};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The gate's verdict as the report uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateVerdict {
    Safe,
    Blocked,
    Held,
    Error,
}

impl GateVerdict {
    pub fn word(self) -> &'static str {
        match self {
            GateVerdict::Safe => "safe",
            GateVerdict::Blocked => "blocked",
            GateVerdict::Held => "held",
            GateVerdict::Error => "error",
        }
    }
}

/// What one gate run produced: its tagged human lines (`[ACTIONABLE] …`) and, on error, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateResult {
    pub verdict: GateVerdict,
    pub lines: Vec<String>,
    pub error: Option<String>,
}

impl GateResult {
    pub fn error(reason: impl Into<String>) -> Self {
        GateResult {
            verdict: GateVerdict::Error,
            lines: Vec::new(),
            error: Some(reason.into()),
        }
    }
}

/// Runs the gate for a target (normalised triple, e.g. `1.36.2`) within `deadline`.
/// Implementations never panic and never mutate anything.
pub trait Gate: Send + Sync {
    fn check(&self, target: &str, deadline: Duration) -> GateResult;
}

/// The reason groups of §5.4, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reasons {
    pub actionable: Vec<String>,
    pub waiting: Vec<String>,
    pub pinned: Vec<String>,
    pub other: Vec<String>,
}

impl Reasons {
    /// Group lines by their leading tag, tag stripped; untagged lines go to `other`.
    pub fn group(lines: &[String]) -> Reasons {
        let mut r = Reasons::default();
        for l in lines {
            let l = l.trim();
            if l.is_empty() {
                continue;
            }
            let strip = |tag: &str| l.strip_prefix(tag).map(|s| s.trim_start().to_string());
            if let Some(s) = strip("[ACTIONABLE]") {
                r.actionable.push(s);
            } else if let Some(s) = strip("[WAITING]") {
                r.waiting.push(s);
            } else if let Some(s) = strip("[PINNED]") {
                r.pinned.push(s);
            } else {
                r.other.push(l.to_string());
            }
        }
        r
    }

    /// `(title, lines)` in display order, empty groups omitted.
    pub fn sections(&self) -> Vec<(&'static str, &[String])> {
        [
            ("*Action needed*", self.actionable.as_slice()),
            ("*Waiting on upstream*", self.waiting.as_slice()),
            ("*Pinned (held by us)*", self.pinned.as_slice()),
            ("*Other*", self.other.as_slice()),
        ]
        .into_iter()
        .filter(|(_, l)| !l.is_empty())
        .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.actionable.is_empty()
            && self.waiting.is_empty()
            && self.pinned.is_empty()
            && self.other.is_empty()
    }
}

/// No gate can run (no Kubernetes credentials, library unavailable): every check is an error
/// naming why, so the report says `Live re-check failed: …` and lists `gate` as missing.
pub struct NoGate(pub String);

impl Gate for NoGate {
    fn check(&self, _target: &str, _deadline: Duration) -> GateResult {
        GateResult::error(self.0.clone())
    }
}

/// The in-process compat gate (`compat_gate::evaluate`, spec §3.6) over the same GET-only
/// client that read the nodes and Jobs. The matrix is loaded per check, so a broken or missing
/// matrix is a gate error (`Live re-check failed: …`), never a failed report.
pub struct InProcess<C: ClusterRead + Send + Sync> {
    pub client: Arc<C>,
    pub matrix: PathBuf,
}

impl<C: ClusterRead + Send + Sync> Gate for InProcess<C> {
    fn check(&self, target: &str, deadline: Duration) -> GateResult {
        let target = match compat_gate::parse_target(target) {
            Ok(t) => t,
            Err(e) => return GateResult::error(e),
        };
        let matrix = match compat_gate::load_matrix(&self.matrix) {
            Ok(m) => m,
            Err(e) => return GateResult::error(e.to_string()),
        };
        let mut opts = compat_gate::GateOptions::defaults(target, matrix);
        opts.deadline = deadline;
        from_report(&compat_gate::evaluate(&opts, &*self.client))
    }
}

/// The report's view of a `compat_gate::Report`: tagged lines in the gate's order.
pub fn from_report(r: &compat_gate::Report) -> GateResult {
    let verdict = match r.verdict {
        compat_gate::Verdict::Safe => GateVerdict::Safe,
        compat_gate::Verdict::Blocked => GateVerdict::Blocked,
        compat_gate::Verdict::Held => GateVerdict::Held,
        compat_gate::Verdict::Error => GateVerdict::Error,
    };
    GateResult {
        verdict,
        lines: r.blockers.iter().map(|b| b.line.clone()).collect(),
        error: match verdict {
            GateVerdict::Error => Some(
                r.error
                    .clone()
                    .unwrap_or_else(|| "gate error without a reason".into()),
            ),
            _ => None,
        },
    }
}

/// The in-process compat gate over the shared client.
pub fn in_process(client: Arc<KubeClient>, matrix: PathBuf) -> Arc<dyn Gate> {
    Arc::new(InProcess { client, matrix })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_in_order_with_untagged_fallback() {
        let lines: Vec<String> = [
            "[WAITING] kyverno 1.18.1 supports k8s ≤ 1.35; no released kyverno version supports k8s 1.36 yet",
            "[PINNED] gpu-operator 25.3 supports k8s ≤ 1.35; pinned: x",
            "[ACTIONABLE] calico 3.30.7 supports k8s ≤ 1.35; upgrade calico to >= 3.31",
            "ESO 0.12 supports k8s <= 1.31",
            "",
        ]
        .map(String::from)
        .to_vec();
        let r = Reasons::group(&lines);
        let titles: Vec<&str> = r.sections().iter().map(|(t, _)| *t).collect();
        assert_eq!(
            titles,
            [
                "*Action needed*",
                "*Waiting on upstream*",
                "*Pinned (held by us)*",
                "*Other*"
            ]
        );
        assert_eq!(
            r.actionable,
            ["calico 3.30.7 supports k8s ≤ 1.35; upgrade calico to >= 3.31"]
        );
        assert_eq!(r.other, ["ESO 0.12 supports k8s <= 1.31"]);
        let only = Reasons::group(&["[WAITING] a".to_string()]);
        assert_eq!(only.sections().len(), 1);
    }
}
