//! The PrometheusRules of deploy/components/monitoring: promtool checks them and runs the unit
//! tests of tests/promtool/ (one firing and one silent test per alert); every expression uses
//! series the binaries really export (or kube-state-metrics'); every alert has a runbook.

use crate::root;
use crate::ws::deploy::{render, to_json};
use crate::ws::tools::promtool;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use yaml_rust2::YamlLoader;

const RUNBOOK_BASE: &str =
    "https://github.com/viktorbarzin/homelab-ops/blob/main/deploy/README.md#";

/// The binaries' PrometheusRules as rendered: (binary, object).
fn rules() -> Vec<(String, Value)> {
    render(&["components/monitoring"])
        .into_iter()
        .filter(|o| o["kind"] == "PrometheusRule")
        .map(|o| {
            (
                o["metadata"]["labels"]["app.kubernetes.io/name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                o,
            )
        })
        .collect()
}

/// alert name → rule.
fn alerts() -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    for (_, o) in rules() {
        for g in o["spec"]["groups"].as_array().unwrap() {
            for r in g["rules"].as_array().unwrap() {
                let a = r["alert"]
                    .as_str()
                    .expect("alerting rules only")
                    .to_string();
                assert!(
                    m.insert(a.clone(), r.clone()).is_none(),
                    "alert {a} defined twice"
                );
            }
        }
    }
    m
}

fn test_files() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(root().join("tests/promtool"))
        .expect("tests/promtool")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    v
}

/// `promtool check rules` and `promtool test rules` on the rendered rules.
#[test]
fn promtool_checks_and_unit_tests_pass() {
    let promtool = promtool();
    let dir = tempfile::tempdir().unwrap();
    let groups: Vec<Value> = rules()
        .into_iter()
        .flat_map(|(_, o)| o["spec"]["groups"].as_array().unwrap().clone())
        .collect();
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_json::to_string(&serde_json::json!({ "groups": groups })).unwrap(),
    )
    .unwrap();
    let out = std::process::Command::new(&promtool)
        .args(["check", "rules", "rules.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut args = vec!["test".to_string(), "rules".to_string()];
    for f in test_files() {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::copy(&f, dir.path().join(&name)).unwrap();
        args.push(name);
    }
    assert!(
        args.len() >= 8,
        "one test file per binary in tests/promtool/"
    );
    let out = std::process::Command::new(&promtool)
        .args(&args)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool test rules:\n{text}");
    assert_eq!(text.matches("SUCCESS").count(), args.len() - 2, "{text}");
}

/// Every alert has a test that fires it and one that keeps it silent; no test names an alert
/// that does not exist.
#[test]
fn every_alert_fires_and_stays_silent_in_a_unit_test() {
    let alerts = alerts();
    let mut fired = BTreeSet::new();
    let mut silent = BTreeSet::new();
    for f in test_files() {
        let doc =
            to_json(&YamlLoader::load_from_str(&std::fs::read_to_string(&f).unwrap()).unwrap()[0]);
        assert_eq!(doc["rule_files"][0], "rules.yaml", "{}", f.display());
        for t in doc["tests"].as_array().unwrap() {
            for a in t["alert_rule_test"].as_array().unwrap() {
                let name = a["alertname"].as_str().unwrap().to_string();
                assert!(
                    alerts.contains_key(&name),
                    "{}: unknown alert {name}",
                    f.display()
                );
                if a["exp_alerts"].as_array().is_some_and(|v| !v.is_empty()) {
                    fired.insert(name);
                } else {
                    silent.insert(name);
                }
            }
        }
    }
    for a in alerts.keys() {
        assert!(fired.contains(a), "no promtool test fires {a}");
        assert!(silent.contains(a), "no promtool test keeps {a} silent");
    }
}

/// GitHub's anchor of a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Rules for all six binaries, each with a severity, a summary and a runbook_url to a heading
/// of deploy/README.md; the `release` label kube-prometheus-stack's ruleSelector matches.
#[test]
fn every_binary_has_alerts_with_runbooks() {
    let readme = std::fs::read_to_string(root().join("deploy/README.md")).unwrap();
    let anchors: BTreeSet<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("#"))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();
    let rules = rules();
    let covered: BTreeSet<&str> = rules.iter().map(|(b, _)| b.as_str()).collect();
    for b in crate::binaries() {
        assert!(covered.contains(b.as_str()), "no PrometheusRule for {b}");
    }
    for (b, o) in &rules {
        assert_eq!(
            o["metadata"]["labels"]["release"], "kube-prometheus-stack",
            "{b}"
        );
        for g in o["spec"]["groups"].as_array().unwrap() {
            for r in g["rules"].as_array().unwrap() {
                let a = r["alert"].as_str().unwrap();
                assert!(
                    ["warning", "critical"]
                        .contains(&r["labels"]["severity"].as_str().unwrap_or("")),
                    "{a}: severity"
                );
                assert!(r["annotations"]["summary"].is_string(), "{a}: summary");
                let url = r["annotations"]["runbook_url"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{a}: runbook_url"));
                let frag = url
                    .strip_prefix(RUNBOOK_BASE)
                    .unwrap_or_else(|| panic!("{a}: {url} is not under {RUNBOOK_BASE}"));
                assert!(
                    anchors.contains(frag),
                    "{a}: deploy/README.md has no heading for #{frag}"
                );
            }
        }
    }
}

/// Metric names of an expression: identifiers outside label matchers and strings, minus
/// PromQL's functions, keywords and durations.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut clean = String::new();
    let (mut brace, mut quote) = (0, false);
    for c in expr.chars() {
        match c {
            '"' => quote = !quote,
            '{' if !quote => brace += 1,
            '}' if !quote => brace -= 1,
            _ if quote || brace > 0 => {}
            _ => clean.push(c),
        }
    }
    // Drop the label lists of on(...)/by(...)/without(...)/ignoring(...) and range selectors.
    let mut out = String::new();
    let mut rest = clean.as_str();
    while let Some(i) = rest.find(['(', '[']) {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let kw = head
            .trim_end()
            .rsplit(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or("");
        if tail.starts_with('[')
            || [
                "on",
                "by",
                "without",
                "ignoring",
                "group_left",
                "group_right",
            ]
            .contains(&kw)
        {
            let close = if tail.starts_with('[') { ']' } else { ')' };
            rest = &tail[tail.find(close).unwrap() + 1..];
        } else {
            out.push(' ');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    const NOT_METRICS: [&str; 12] = [
        "time",
        "rate",
        "increase",
        "max_over_time",
        "max",
        "min",
        "sum",
        "and",
        "or",
        "unless",
        "on",
        "absent",
    ];
    out.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.contains('_') && t.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
        .filter(|t| !NOT_METRICS.contains(t))
        .map(str::to_string)
        .collect()
}

/// Every series an alert reads is one a binary of this workspace exports (its full name is in
/// the binary's source, where the exposition tests pin it) or a kube-state-metrics series.
#[test]
fn alert_expressions_use_real_series() {
    let mut source = String::new();
    fn slurp(dir: &std::path::Path, out: &mut String) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                slurp(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push_str(&std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    for b in crate::binaries() {
        slurp(&root().join("crates").join(&b).join("src"), &mut source);
    }
    // kube-state-metrics v2 (kubernetes/kube-state-metrics docs/metrics/workload/*.md).
    const KSM: [&str; 5] = [
        "kube_deployment_status_replicas_available",
        "kube_job_status_failed",
        "kube_job_status_start_time",
        "kube_cronjob_status_last_successful_time",
        "kube_cronjob_created",
    ];
    let mut n = 0;
    for (a, r) in alerts() {
        let names = metric_names(r["expr"].as_str().unwrap());
        assert!(!names.is_empty(), "{a}: no series found in {}", r["expr"]);
        for m in names {
            n += 1;
            if m.starts_with("kube_") {
                assert!(
                    KSM.contains(&m.as_str()),
                    "{a}: {m} is not a known kube-state-metrics series"
                );
            } else {
                assert!(
                    source.contains(&m),
                    "{a}: {m} is exported by no binary of the workspace"
                );
            }
        }
    }
    assert!(n >= 16);
}

#[test]
fn metric_names_parses_label_lists_away() {
    let got = metric_names(
        r#"(time() - a_b{x="y_z"} > 26 * 3600) or on(namespace) (rate(c_total[30m]) == 0 and on(namespace, job_name) d_e < 1)"#,
    );
    let want: BTreeSet<String> = ["a_b", "c_total", "d_e"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(got, want);
}
