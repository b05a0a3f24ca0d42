//! The outcome decision (spec §4) and the plain data it decides on. No I/O, no clock: `now`
//! is an argument.

use crate::gauges::{self, Gauges};
use crate::version::{parse_server, parse_target, Dashed, Ver};

/// A node as the report needs it (§3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    /// `status.nodeInfo.kubeletVersion`, raw.
    pub kubelet: String,
    /// `Ready` condition is `True`.
    pub ready: bool,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
}

/// One `status.conditions[]` entry of a Job.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobCondition {
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub last_transition: Option<i64>,
}

/// A Job as the report needs it (§3.3); times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Job {
    pub name: String,
    pub created: Option<i64>,
    pub start: Option<i64>,
    pub completion: Option<i64>,
    pub active: i64,
    pub conditions: Vec<JobCondition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Complete,
    Failed(String),
    Suspended,
    Running,
    Pending,
}

impl JobState {
    pub fn word(&self) -> &'static str {
        match self {
            JobState::Complete => "complete",
            JobState::Failed(_) => "failed",
            JobState::Suspended => "suspended",
            JobState::Running => "running",
            JobState::Pending => "pending",
        }
    }
}

fn cond<'a>(j: &'a Job, t: &str) -> Option<&'a JobCondition> {
    j.conditions
        .iter()
        .find(|c| c.type_ == t && c.status == "True")
}

/// The terminal-failure condition: `Failed`, or on 1.31+ `FailureTarget`, which the Job
/// controller sets first and keeps while it terminates the pods (kubernetes
/// pkg/controller/job/job_controller.go, kubernetes#123775; issue 14 item 10).
fn failed_cond(j: &Job) -> Option<&JobCondition> {
    cond(j, "Failed").or_else(|| cond(j, "FailureTarget"))
}

/// Likewise `Complete`, preceded on 1.31+ by `SuccessCriteriaMet`.
fn complete_cond(j: &Job) -> Option<&JobCondition> {
    cond(j, "Complete").or_else(|| cond(j, "SuccessCriteriaMet"))
}

/// §3.3: Failed (or FailureTarget) > Complete (or SuccessCriteriaMet) > Suspended > Running
/// (active > 0) > Pending.
pub fn job_state(j: &Job) -> JobState {
    if let Some(c) = failed_cond(j) {
        let reason = if c.reason.is_empty() {
            "unknown".to_string()
        } else {
            c.reason.clone()
        };
        JobState::Failed(reason)
    } else if complete_cond(j).is_some() {
        JobState::Complete
    } else if cond(j, "Suspended").is_some() {
        JobState::Suspended
    } else if j.active > 0 {
        JobState::Running
    } else {
        JobState::Pending
    }
}

impl Job {
    /// `startTime`, else `creationTimestamp`.
    pub fn started(&self) -> Option<i64> {
        self.start.or(self.created)
    }
    /// `completionTime`, else the `Failed`/`FailureTarget` (or, before `completionTime` is
    /// written, `SuccessCriteriaMet`) condition's `lastTransitionTime`.
    pub fn end(&self) -> Option<i64> {
        self.completion
            .or_else(|| failed_cond(self).and_then(|c| c.last_transition))
            .or_else(|| complete_cond(self).and_then(|c| c.last_transition))
    }
}

/// `^(k8s-upgrade-)?nightly-report`
pub fn is_own_job(name: &str) -> bool {
    name.strip_prefix("k8s-upgrade-")
        .unwrap_or(name)
        .starts_with("nightly-report")
}

/// `^k8s-upgrade-(preflight|master|worker|postflight)-`
pub fn is_chain_job(name: &str) -> bool {
    ["preflight-", "master-", "worker-", "postflight-"]
        .iter()
        .any(|p| {
            name.strip_prefix("k8s-upgrade-")
                .is_some_and(|r| r.starts_with(p))
        })
}

/// The outcome rows D1–D9 (§4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeId {
    InProgress,
    Unknown,
    DetectorStale,
    Upgraded,
    Held,
    Blocked,
    Failed,
    NotUpgraded,
    NoUpgrade,
}

impl OutcomeId {
    pub fn id(self) -> &'static str {
        match self {
            OutcomeId::InProgress => "in_progress",
            OutcomeId::Unknown => "unknown",
            OutcomeId::DetectorStale => "detector_stale",
            OutcomeId::Upgraded => "upgraded",
            OutcomeId::Held => "held",
            OutcomeId::Blocked => "blocked",
            OutcomeId::Failed => "failed",
            OutcomeId::NotUpgraded => "not_upgraded",
            OutcomeId::NoUpgrade => "no_upgrade",
        }
    }
}

/// What the sources gave (an `Err` = that source failed; the string is its reason).
#[derive(Debug, Clone)]
pub struct Inputs {
    pub gauges: Result<Gauges, String>,
    pub nodes: Result<Vec<Node>, String>,
    pub jobs: Result<Vec<Job>, String>,
}

/// Thresholds from the config.
#[derive(Debug, Clone, Copy)]
pub struct DecideCfg {
    pub stale_hours: u32,
    pub lookback_hours: u32,
    pub gate_enabled: bool,
}

/// Detector freshness (§4.2).
#[derive(Debug, Clone, PartialEq)]
pub struct Detector {
    /// Epoch seconds of the last run, when known.
    pub last_run: Option<f64>,
    /// The time came from the group's `push_time_seconds`.
    pub from_push_time: bool,
    pub age_s: Option<i64>,
    pub stale: bool,
    /// The timestamp was more than 300 s in the future.
    pub clock_skew: bool,
}

/// In-progress details (§5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub started_age_s: Option<i64>,
    pub snapshot: bool,
    pub too_long: bool,
}

/// The decision and everything the message shows about it.
#[derive(Debug, Clone)]
pub struct Decision {
    pub outcome: OutcomeId,
    /// Parsed `target` label of the chosen `k8s_upgrade_available` series.
    pub target: Option<Ver>,
    pub avail: bool,
    pub detector: Detector,
    /// Run the compat gate (D5/D6 with the gate enabled).
    pub gate: bool,
    /// D7: (job, reason).
    pub failed_job: Option<(String, String)>,
    /// Nodes at target / nodes (when nodes were read).
    pub at_target: Option<(usize, usize)>,
    pub progress: Option<Progress>,
    /// Jobs in the lookback window, own Jobs removed, by start ascending.
    pub listed: Vec<(Job, JobState)>,
}

/// Listed Jobs (§3.3.1), sorted by start time ascending.
pub fn listed_jobs(jobs: &[Job], now: i64, lookback_hours: u32) -> Vec<(Job, JobState)> {
    let since = now - i64::from(lookback_hours) * 3600;
    let mut v: Vec<(Job, JobState)> = jobs
        .iter()
        .filter(|j| !is_own_job(&j.name))
        .filter(|j| j.started().is_some_and(|s| s >= since))
        .map(|j| (j.clone(), job_state(j)))
        .collect();
    v.sort_by(|a, b| {
        a.0.started()
            .cmp(&b.0.started())
            .then_with(|| a.0.name.cmp(&b.0.name))
    });
    v
}

/// Detector age (§4.2).
pub fn detector(g: &Gauges, now: i64, stale_hours: u32) -> Detector {
    let (ts, from_push) = match g.value(gauges::LAST_RUN) {
        Some(v) => (Some(v), false),
        None => match g.get(gauges::AVAILABLE).and_then(|a| a.push_time) {
            Some(p) => (Some(p), true),
            None => (None, false),
        },
    };
    let Some(ts) = ts else {
        return Detector {
            last_run: None,
            from_push_time: false,
            age_s: None,
            stale: true,
            clock_skew: false,
        };
    };
    let now_f = now as f64;
    let skew = ts > now_f + 300.0;
    let age = if ts >= now_f {
        0
    } else {
        (now_f - ts).floor() as i64
    };
    Detector {
        last_run: Some(ts),
        from_push_time: from_push,
        age_s: Some(age),
        stale: age > i64::from(stale_hours) * 3600,
        clock_skew: skew,
    }
}

/// `decide(inputs, now, cfg)`: first matching row of §4.3 wins.
pub fn decide(inp: &Inputs, now: i64, cfg: &DecideCfg) -> Decision {
    let empty = Gauges::default();
    let g = inp.gauges.as_ref().unwrap_or(&empty);
    let listed = match &inp.jobs {
        Ok(j) => listed_jobs(j, now, cfg.lookback_hours),
        Err(_) => Vec::new(),
    };
    let det = detector(g, now, cfg.stale_hours);

    let avail_g = g.get(gauges::AVAILABLE);
    let target = avail_g
        .and_then(|a| a.label("target"))
        .and_then(parse_target);
    let avail = match (avail_g, target) {
        (Some(a), Some(t)) if a.value == 1.0 => match a.label("running").and_then(parse_server) {
            Some(r) => r < t,
            None => true,
        },
        _ => false,
    };
    let at_target = match (&inp.nodes, target) {
        (Ok(ns), Some(t)) => Some((
            ns.iter()
                .filter(|n| parse_server(&n.kubelet) == Some(t))
                .count(),
            ns.len(),
        )),
        (Ok(ns), None) => Some((0, ns.len())),
        _ => None,
    };
    // D10: nodes unreadable → never "upgraded".
    let all_at_target = matches!(at_target, Some((k, n)) if n > 0 && k == n);
    let active_chain = listed
        .iter()
        .any(|(j, s)| is_chain_job(&j.name) && *s == JobState::Running);
    let failed_job = target.filter(|_| avail).and_then(|t| {
        let suffix = format!("-{}", t.dashed());
        listed.iter().rev().find_map(|(j, s)| match s {
            JobState::Failed(r) if is_chain_job(&j.name) && j.name.ends_with(&suffix) => {
                Some((j.name.clone(), r.clone()))
            }
            _ => None,
        })
    });

    let outcome = if g.flag(gauges::IN_FLIGHT) || active_chain {
        OutcomeId::InProgress
    } else if inp.gauges.is_err() {
        OutcomeId::Unknown
    } else if det.stale {
        OutcomeId::DetectorStale
    } else if avail && all_at_target {
        OutcomeId::Upgraded
    } else if avail && g.flag(gauges::HELD) {
        OutcomeId::Held
    } else if avail && g.flag(gauges::BLOCKED) {
        OutcomeId::Blocked
    } else if avail && failed_job.is_some() {
        OutcomeId::Failed
    } else if avail {
        OutcomeId::NotUpgraded
    } else {
        OutcomeId::NoUpgrade
    };

    let progress = (outcome == OutcomeId::InProgress).then(|| {
        let started = g.value(gauges::STARTED).filter(|s| *s > 0.0);
        let age = started.map(|s| ((now as f64) - s).max(0.0).floor() as i64);
        Progress {
            started_age_s: age,
            snapshot: g.flag(gauges::SNAPSHOT),
            too_long: age.is_some_and(|a| a > 5400),
        }
    });
    Decision {
        outcome,
        target,
        avail,
        detector: det,
        gate: cfg.gate_enabled && matches!(outcome, OutcomeId::Held | OutcomeId::Blocked),
        failed_job: if outcome == OutcomeId::Failed {
            failed_job
        } else {
            None
        },
        at_target,
        progress,
        listed,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::gauges::Gauge;
    use std::collections::BTreeMap;

    pub const NOW: i64 = 1_782_713_220; // 2026-06-29T06:07:00Z
    pub const LAST_RUN: f64 = 1_782_687_600.0; // 2026-06-28T23:00:00Z

    pub fn gauge(v: f64, labels: &[(&str, &str)]) -> Gauge {
        Gauge {
            value: v,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            job: "k8s-upgrade".into(),
            push_time: Some(LAST_RUN),
        }
    }

    /// Gauges of a night: available target/running, fresh detector, the given flags.
    pub fn night(target: &str, running: &str, flags: &[(&str, f64)]) -> Gauges {
        let mut g = Gauges::default();
        g.map.insert(
            gauges::AVAILABLE.into(),
            gauge(
                1.0,
                &[("target", target), ("running", running), ("kind", "minor")],
            ),
        );
        g.map.insert(gauges::LAST_RUN.into(), gauge(LAST_RUN, &[]));
        for (n, v) in flags {
            g.map.insert(n.to_string(), gauge(*v, &[]));
        }
        g
    }

    pub fn nodes(versions: &[&str]) -> Vec<Node> {
        versions
            .iter()
            .enumerate()
            .map(|(i, v)| Node {
                name: format!("k8s-node{i}"),
                kubelet: v.to_string(),
                ready: true,
                unschedulable: false,
            })
            .collect()
    }

    pub fn job(name: &str, start: i64, state: &str) -> Job {
        let mut j = Job {
            name: name.into(),
            created: Some(start),
            start: Some(start),
            ..Job::default()
        };
        match state {
            "complete" => {
                j.completion = Some(start + 14);
                j.conditions.push(JobCondition {
                    type_: "Complete".into(),
                    status: "True".into(),
                    ..Default::default()
                });
            }
            "failed" => j.conditions.push(JobCondition {
                type_: "Failed".into(),
                status: "True".into(),
                reason: "BackoffLimitExceeded".into(),
                last_transition: Some(start + 62),
            }),
            "running" => j.active = 1,
            _ => {}
        }
        j
    }

    pub const CFG: DecideCfg = DecideCfg {
        stale_hours: 26,
        lookback_hours: 24,
        gate_enabled: true,
    };

    fn run(
        g: Result<Gauges, String>,
        n: Result<Vec<Node>, String>,
        j: Result<Vec<Job>, String>,
    ) -> Decision {
        decide(
            &Inputs {
                gauges: g,
                nodes: n,
                jobs: j,
            },
            NOW,
            &CFG,
        )
    }

    fn out(g: Gauges, n: &[&str], j: Vec<Job>) -> OutcomeId {
        run(Ok(g), Ok(nodes(n)), Ok(j)).outcome
    }

    const OLD: [&str; 3] = ["v1.35.6", "v1.35.6", "v1.35.6"];

    #[test]
    fn d1_in_flight_or_active_chain_job() {
        let d = run(
            Ok(night(
                "1.36.2",
                "1.35.6",
                &[(gauges::IN_FLIGHT, 1.0), (gauges::HELD, 1.0)],
            )),
            Ok(nodes(&OLD)),
            Ok(vec![]),
        );
        assert_eq!(d.outcome, OutcomeId::InProgress);
        assert!(!d.gate);
        let j = vec![job("k8s-upgrade-master-1-36-2", NOW - 600, "running")];
        assert_eq!(
            out(night("1.36.2", "1.35.6", &[]), &OLD, j.clone()),
            OutcomeId::InProgress
        );
        // D1 also wins over an unreadable Pushgateway.
        assert_eq!(
            run(Err("down".into()), Ok(nodes(&OLD)), Ok(j)).outcome,
            OutcomeId::InProgress
        );
        // A running non-chain Job is not a chain run.
        let j = vec![job("k8s-version-check-29185380", NOW - 60, "running")];
        assert_eq!(
            out(night("1.36.2", "1.35.6", &[]), &OLD, j),
            OutcomeId::NotUpgraded
        );
    }

    #[test]
    fn d1_wedged_run_over_90_minutes() {
        let d = run(
            Ok(night(
                "1.36.2",
                "1.35.6",
                &[
                    (gauges::IN_FLIGHT, 1.0),
                    (gauges::STARTED, (NOW - 5401) as f64),
                    (gauges::SNAPSHOT, 1.0),
                ],
            )),
            Ok(nodes(&OLD)),
            Ok(vec![]),
        );
        assert_eq!(
            d.progress,
            Some(Progress {
                started_age_s: Some(5401),
                snapshot: true,
                too_long: true
            })
        );
        let d = run(
            Ok(night(
                "1.36.2",
                "1.35.6",
                &[
                    (gauges::IN_FLIGHT, 1.0),
                    (gauges::STARTED, (NOW - 5400) as f64),
                ],
            )),
            Ok(vec![]),
            Ok(vec![]),
        );
        assert!(!d.progress.unwrap().too_long);
    }

    #[test]
    fn d2_pushgateway_unreadable() {
        let d = run(
            Err("connection refused".into()),
            Ok(nodes(&OLD)),
            Ok(vec![]),
        );
        assert_eq!(d.outcome, OutcomeId::Unknown);
        assert!(!d.gate);
        assert_eq!(
            run(Err("x".into()), Err("y".into()), Err("z".into())).outcome,
            OutcomeId::Unknown
        );
    }

    #[test]
    fn d3_detector_stale() {
        let mut g = night("1.36.2", "1.35.6", &[(gauges::BLOCKED, 1.0)]);
        g.map.get_mut(gauges::LAST_RUN).unwrap().value = (NOW - 26 * 3600 - 1) as f64;
        assert_eq!(out(g, &OLD, vec![]), OutcomeId::DetectorStale);
        // Never reported at all: no last-run gauge and no available group.
        assert_eq!(
            out(Gauges::default(), &OLD, vec![]),
            OutcomeId::DetectorStale
        );
    }

    #[test]
    fn age_boundary_exactly_26h_is_fresh() {
        let mut g = night("1.36.2", "1.35.6", &[]);
        g.map.get_mut(gauges::LAST_RUN).unwrap().value = (NOW - 26 * 3600) as f64;
        let d = detector(&g, NOW, 26);
        assert_eq!((d.age_s, d.stale), (Some(93_600), false));
        g.map.get_mut(gauges::LAST_RUN).unwrap().value = (NOW - 26 * 3600 - 1) as f64;
        assert!(detector(&g, NOW, 26).stale);
        // Future by more than 300 s: age 0 with a clock-skew warning, fresh.
        g.map.get_mut(gauges::LAST_RUN).unwrap().value = (NOW + 301) as f64;
        let d = detector(&g, NOW, 26);
        assert_eq!((d.age_s, d.stale, d.clock_skew), (Some(0), false, true));
        g.map.get_mut(gauges::LAST_RUN).unwrap().value = (NOW + 300) as f64;
        assert!(!detector(&g, NOW, 26).clock_skew);
    }

    #[test]
    fn push_time_stands_in_for_a_missing_last_run_gauge() {
        let mut g = night("1.36.2", "1.35.6", &[]);
        g.map.remove(gauges::LAST_RUN);
        let d = detector(&g, NOW, 26);
        assert!(d.from_push_time);
        assert_eq!(d.age_s, Some(NOW - LAST_RUN as i64));
        // An old push time does not matter when the last-run gauge is fresh.
        let mut g = night("1.36.2", "1.35.6", &[]);
        g.map.get_mut(gauges::AVAILABLE).unwrap().push_time = Some(1.0);
        assert!(!detector(&g, NOW, 26).stale);
    }

    #[test]
    fn d4_upgraded_and_d11_v_prefix_both_ways() {
        assert_eq!(
            out(night("1.35.6", "1.34.9", &[]), &OLD, vec![]),
            OutcomeId::Upgraded
        );
        assert_eq!(
            out(
                night("v1.35.6", "v1.34.9", &[]),
                &["1.35.6", "1.35.6"],
                vec![]
            ),
            OutcomeId::Upgraded
        );
        // Upgraded even when last night's gauges still say blocked/held.
        assert_eq!(
            out(
                night("1.35.6", "1.34.9", &[(gauges::HELD, 1.0)]),
                &OLD,
                vec![]
            ),
            OutcomeId::Upgraded
        );
    }

    #[test]
    fn d10_nodes_unreadable_never_upgraded() {
        let d = run(
            Ok(night("1.35.6", "1.34.9", &[])),
            Err("HTTP 403".into()),
            Ok(vec![]),
        );
        assert_eq!(d.outcome, OutcomeId::NotUpgraded);
        assert_eq!(d.at_target, None);
        // Zero nodes is no proof either.
        assert_eq!(
            out(night("1.35.6", "1.34.9", &[]), &[], vec![]),
            OutcomeId::NotUpgraded
        );
    }

    #[test]
    fn d5_held_wins_over_blocked_and_runs_the_gate() {
        let d = run(
            Ok(night(
                "1.36.2",
                "1.35.6",
                &[(gauges::HELD, 1.0), (gauges::BLOCKED, 1.0)],
            )),
            Ok(nodes(&OLD)),
            Ok(vec![]),
        );
        assert_eq!(d.outcome, OutcomeId::Held);
        assert!(d.gate);
        let off = DecideCfg {
            gate_enabled: false,
            ..CFG
        };
        let d = decide(
            &Inputs {
                gauges: Ok(night("1.36.2", "1.35.6", &[(gauges::HELD, 1.0)])),
                nodes: Ok(nodes(&OLD)),
                jobs: Ok(vec![]),
            },
            NOW,
            &off,
        );
        assert_eq!(d.outcome, OutcomeId::Held);
        assert!(!d.gate);
    }

    #[test]
    fn d6_blocked() {
        let d = run(
            Ok(night(
                "1.35.6",
                "1.34.9",
                &[(gauges::BLOCKED, 1.0), (gauges::HELD, 0.0)],
            )),
            Ok(nodes(&["1.34.9"])),
            Ok(vec![]),
        );
        assert_eq!(d.outcome, OutcomeId::Blocked);
        assert!(d.gate);
    }

    #[test]
    fn d7_failed_chain_job_for_the_target() {
        let j = vec![
            job("k8s-upgrade-preflight-1-36-2", NOW - 3 * 3600, "complete"),
            job("k8s-upgrade-master-1-36-2", NOW - 2 * 3600, "failed"),
        ];
        let d = run(Ok(night("1.36.2", "1.35.6", &[])), Ok(nodes(&OLD)), Ok(j));
        assert_eq!(d.outcome, OutcomeId::Failed);
        assert_eq!(
            d.failed_job,
            Some((
                "k8s-upgrade-master-1-36-2".into(),
                "BackoffLimitExceeded".into()
            ))
        );
        assert!(!d.gate);
        // A failed Job for another target does not count.
        let j = vec![job("k8s-upgrade-master-1-35-6", NOW - 2 * 3600, "failed")];
        assert_eq!(
            out(night("1.36.2", "1.35.6", &[]), &OLD, j),
            OutcomeId::NotUpgraded
        );
    }

    #[test]
    fn d8_not_upgraded_counts_nodes_at_target() {
        let d = run(
            Ok(night("1.36.2", "1.35.6", &[])),
            Ok(nodes(&["v1.36.2", "v1.35.6", "1.35.6"])),
            Ok(vec![]),
        );
        assert_eq!(d.outcome, OutcomeId::NotUpgraded);
        assert_eq!(d.at_target, Some((1, 3)));
        assert!(!d.gate);
    }

    #[test]
    fn d9_no_upgrade_in_all_three_forms() {
        let mut zero = night("1.36.2", "1.35.6", &[(gauges::BLOCKED, 1.0)]);
        zero.map.get_mut(gauges::AVAILABLE).unwrap().value = 0.0;
        assert_eq!(out(zero, &OLD, vec![]), OutcomeId::NoUpgrade);
        let mut absent = night("1.36.2", "1.35.6", &[]);
        absent.map.remove(gauges::AVAILABLE);
        assert_eq!(out(absent, &OLD, vec![]), OutcomeId::NoUpgrade);
        assert_eq!(
            out(night("1.35.6", "v1.35.6", &[]), &OLD, vec![]),
            OutcomeId::NoUpgrade
        );
        assert_eq!(
            out(night("1.35.6", "1.36.0", &[]), &OLD, vec![]),
            OutcomeId::NoUpgrade
        );
    }

    #[test]
    fn unparseable_target_is_never_avail_and_unparseable_running_never_equal() {
        let d = run(
            Ok(night("latest", "1.35.6", &[(gauges::BLOCKED, 1.0)])),
            Ok(nodes(&OLD)),
            Ok(vec![]),
        );
        assert!(!d.avail);
        assert_eq!(d.outcome, OutcomeId::NoUpgrade);
        let d = run(
            Ok(night("1.36.2", "garbage", &[])),
            Ok(nodes(&["garbage"])),
            Ok(vec![]),
        );
        assert!(d.avail);
        assert_eq!(d.outcome, OutcomeId::NotUpgraded);
        assert_eq!(d.at_target, Some((0, 1)));
    }

    #[test]
    fn job_state_per_condition_mix() {
        let c = |t: &str, s: &str| JobCondition {
            type_: t.into(),
            status: s.into(),
            reason: "R".into(),
            last_transition: Some(5),
        };
        let mk = |conds: Vec<JobCondition>, active| Job {
            name: "j".into(),
            active,
            conditions: conds,
            ..Job::default()
        };
        assert_eq!(
            job_state(&mk(vec![c("Failed", "True"), c("Complete", "True")], 0)),
            JobState::Failed("R".into())
        );
        assert_eq!(
            job_state(&mk(vec![c("Complete", "True"), c("Suspended", "True")], 1)),
            JobState::Complete
        );
        assert_eq!(
            job_state(&mk(vec![c("Suspended", "True")], 1)),
            JobState::Suspended
        );
        // 1.31+: the interim conditions already decide, while pods still terminate.
        let ft = mk(vec![c("FailureTarget", "True")], 1);
        assert_eq!(job_state(&ft), JobState::Failed("R".into()));
        assert_eq!(ft.end(), Some(5));
        let sc = mk(vec![c("SuccessCriteriaMet", "True")], 1);
        assert_eq!(job_state(&sc), JobState::Complete);
        assert_eq!(sc.end(), Some(5));
        assert_eq!(
            job_state(&mk(vec![c("FailureTarget", "False")], 1)),
            JobState::Running
        );
        assert_eq!(
            job_state(&mk(vec![c("Failed", "False")], 0)),
            JobState::Pending
        );
        let f = mk(vec![c("Failed", "True")], 0);
        assert_eq!(f.end(), Some(5));
    }

    #[test]
    fn listing_drops_own_and_old_jobs_and_sorts() {
        let jobs = vec![
            job("k8s-upgrade-preflight-1-36-2", NOW - 100, "complete"),
            job("k8s-version-check-1", NOW - 200, "complete"),
            job("nightly-report-test", NOW - 50, "running"),
            job("k8s-upgrade-nightly-report-29185", NOW - 50, "running"),
            job("k8s-upgrade-master-1-36-1", NOW - 25 * 3600, "failed"),
        ];
        let l: Vec<String> = listed_jobs(&jobs, NOW, 24)
            .into_iter()
            .map(|(j, _)| j.name)
            .collect();
        assert_eq!(
            l,
            vec!["k8s-version-check-1", "k8s-upgrade-preflight-1-36-2"]
        );
        assert!(is_chain_job("k8s-upgrade-worker-k8s-node1-1-36-2"));
        assert!(!is_chain_job("k8s-upgrade-nightly-report-1"));
    }
}
