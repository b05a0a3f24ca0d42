//! Choosing one sample per gauge from the Pushgateway's groups (spec §3.1, §3.1.2); pure.

use homelab_core::pushgateway::Group;
use std::collections::BTreeMap;

/// The gauges the report reads (§3.1.1), in the order `--json` lists them.
pub const NAMES: [&str; 7] = [
    AVAILABLE, LAST_RUN, IN_FLIGHT, STARTED, SNAPSHOT, BLOCKED, HELD,
];
pub const AVAILABLE: &str = "k8s_upgrade_available";
pub const LAST_RUN: &str = "k8s_version_check_last_run_timestamp";
pub const IN_FLIGHT: &str = "k8s_upgrade_in_flight";
pub const STARTED: &str = "k8s_upgrade_started_timestamp";
pub const SNAPSHOT: &str = "k8s_upgrade_snapshot_taken";
pub const BLOCKED: &str = "k8s_upgrade_blocked";
pub const HELD: &str = "k8s_upgrade_held";

/// One chosen sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauge {
    pub value: f64,
    /// The series' own labels (e.g. `target`, `running`, `kind`).
    pub labels: BTreeMap<String, String>,
    /// `job` label of the group it came from.
    pub job: String,
    pub push_time: Option<f64>,
}

impl Gauge {
    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels.get(k).map(String::as_str)
    }
}

/// The gauges read, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gauges {
    pub map: BTreeMap<String, Gauge>,
}

impl Gauges {
    pub fn get(&self, name: &str) -> Option<&Gauge> {
        self.map.get(name)
    }
    pub fn value(&self, name: &str) -> Option<f64> {
        self.get(name).map(|g| g.value)
    }
    /// `flag(g)`: present with value 1.
    pub fn flag(&self, name: &str) -> bool {
        self.value(name) == Some(1.0)
    }
}

/// Pick one sample per gauge name. Non-numeric, NaN and ±Inf samples are ignored; a name in
/// several groups takes the group with the newest `push_time_seconds` (one warning each);
/// several series in one group prefer value 1, then the highest `target`.
pub fn select(groups: &[Group], job_filter: Option<&str>) -> (Gauges, Vec<String>) {
    let mut out = Gauges::default();
    let mut warnings = Vec::new();
    let groups: Vec<&Group> = groups
        .iter()
        .filter(|g| job_filter.is_none_or(|j| g.labels.get("job").map(String::as_str) == Some(j)))
        .collect();
    for name in NAMES {
        // (group, best sample in it)
        let mut candidates: Vec<(&Group, Gauge)> = Vec::new();
        let mut garbage = 0usize;
        for g in &groups {
            let mut best: Option<Gauge> = None;
            for s in g.samples.iter().filter(|s| s.name == name) {
                let Some(v) = s.value.filter(|v| v.is_finite()) else {
                    garbage += 1;
                    continue;
                };
                let mut labels = s.labels.clone();
                for k in g.labels.keys() {
                    labels.remove(k);
                }
                let cand = Gauge {
                    value: v,
                    labels,
                    job: g.labels.get("job").cloned().unwrap_or_default(),
                    push_time: g.push_time_seconds.filter(|p| p.is_finite()),
                };
                best = Some(match best {
                    None => cand,
                    Some(b) => better(b, cand),
                });
            }
            if let Some(b) = best {
                candidates.push((g, b));
            }
        }
        if garbage > 0 {
            warnings.push(format!(
                "gauge {name}: ignored {garbage} sample(s) that are not finite numbers"
            ));
        }
        if candidates.is_empty() {
            continue;
        }
        let n = candidates.len();
        // Newest push time wins; a group without one loses to any that has one.
        let (_, chosen) = candidates
            .into_iter()
            .reduce(|a, b| {
                let pa = a.1.push_time.unwrap_or(f64::NEG_INFINITY);
                let pb = b.1.push_time.unwrap_or(f64::NEG_INFINITY);
                if pb > pa {
                    b
                } else {
                    a
                }
            })
            .expect("non-empty");
        if n > 1 {
            warnings.push(format!(
                "gauge {name} in {n} groups; using job={}",
                chosen.job
            ));
        }
        out.map.insert(name.to_string(), chosen);
    }
    (out, warnings)
}

fn better(a: Gauge, b: Gauge) -> Gauge {
    let one = |g: &Gauge| g.value == 1.0;
    if one(&a) != one(&b) {
        return if one(&b) { b } else { a };
    }
    let t = |g: &Gauge| g.label("target").and_then(crate::version::parse_target);
    if t(&b) > t(&a) {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use homelab_core::pushgateway::Sample;

    type Spec<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

    fn group(job: &str, push: Option<f64>, samples: &[Spec<'_>]) -> Group {
        let mut labels = BTreeMap::new();
        labels.insert("job".to_string(), job.to_string());
        Group {
            labels: labels.clone(),
            last_push_successful: Some(true),
            push_time_seconds: push,
            samples: samples
                .iter()
                .map(|(n, ls, raw)| {
                    let mut l = labels.clone();
                    for (k, v) in *ls {
                        l.insert(k.to_string(), v.to_string());
                    }
                    Sample {
                        name: n.to_string(),
                        labels: l,
                        raw: raw.to_string(),
                        value: match *raw {
                            "NaN" => Some(f64::NAN),
                            r => r.parse().ok(),
                        },
                    }
                })
                .collect(),
        }
    }

    #[test]
    fn newest_group_wins_with_one_warning() {
        let gs = vec![
            group("old", Some(100.0), &[(BLOCKED, &[], "1")]),
            group("new", Some(200.0), &[(BLOCKED, &[], "0")]),
        ];
        let (g, w) = select(&gs, None);
        assert_eq!(g.value(BLOCKED), Some(0.0));
        assert_eq!(
            w,
            vec!["gauge k8s_upgrade_blocked in 2 groups; using job=new".to_string()]
        );
        // The filter keeps only one job: no warning.
        let (g, w) = select(&gs, Some("old"));
        assert_eq!(g.value(BLOCKED), Some(1.0));
        assert!(w.is_empty());
    }

    #[test]
    fn series_in_one_group_prefer_one_then_highest_target() {
        let gs = vec![group(
            "k8s-version-check",
            Some(1.0),
            &[
                (
                    AVAILABLE,
                    &[("target", "1.36.2"), ("running", "1.35.6")],
                    "0",
                ),
                (
                    AVAILABLE,
                    &[("target", "1.35.7"), ("running", "1.35.6")],
                    "1",
                ),
                (
                    AVAILABLE,
                    &[("target", "1.35.10"), ("running", "1.35.6")],
                    "1",
                ),
                (
                    AVAILABLE,
                    &[("target", "garbage"), ("running", "1.35.6")],
                    "1",
                ),
            ],
        )];
        let (g, _) = select(&gs, None);
        let a = g.get(AVAILABLE).unwrap();
        assert_eq!(a.label("target"), Some("1.35.10"));
        assert_eq!(a.value, 1.0);
        assert!(!a.labels.contains_key("job"));
    }

    #[test]
    fn nan_and_garbage_are_ignored() {
        let gs = vec![group(
            "j",
            Some(1.0),
            &[
                (HELD, &[], "NaN"),
                (BLOCKED, &[], "yes"),
                (IN_FLIGHT, &[], "1.0e0"),
            ],
        )];
        let (g, w) = select(&gs, None);
        assert_eq!(g.get(HELD), None);
        assert_eq!(g.get(BLOCKED), None);
        assert!(g.flag(IN_FLIGHT));
        assert_eq!(w.len(), 2);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the gateway exposes: one finite gauge per known name at most, taken from
        /// the filtered job, never a panic.
        #[test]
        fn select_is_total_and_finite(
            lines in proptest::collection::vec((
                prop_oneof![Just("push_time_seconds"), Just(AVAILABLE), Just(IN_FLIGHT), Just(HELD), Just(LAST_RUN), Just("other")],
                prop_oneof![Just("a"), Just("b")],
                proptest::option::of("v?1\\.[0-9]{1,2}\\.[0-9]|\\PC{0,6}"),
                prop_oneof![Just("1"), Just("0"), Just("NaN"), Just("+Inf"), Just("x"), Just("1.78e+09"), Just("-Inf")],
            ), 0..12),
            filter in proptest::option::of(prop_oneof![Just("a"), Just("b"), Just("c")]),
        ) {
            let text: String = lines.iter().map(|(n, job, target, v)| {
                let t = target.as_ref().map(|t| format!(",target=\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\""))).unwrap_or_default();
                let t = if *n == "push_time_seconds" { String::new() } else { t };
                format!("{n}{{job=\"{job}\"{t}}} {v}\n")
            }).collect();
            let groups = crate::pushgw::parse_text(&text);
            let (g, _warnings) = select(&groups, filter);
            for (name, gauge) in &g.map {
                prop_assert!(NAMES.contains(&name.as_str()));
                prop_assert!(gauge.value.is_finite());
                prop_assert!(gauge.push_time.is_none_or(f64::is_finite));
                prop_assert!(!gauge.labels.contains_key("job"));
                if let Some(f) = filter {
                    prop_assert_eq!(gauge.job.as_str(), f);
                }
            }
        }
    }
}
