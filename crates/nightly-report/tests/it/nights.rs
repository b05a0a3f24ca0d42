//! Spec §11.3.5: nights end to end — real Pushgateway, the API fixture, Slack stand-in.
//! These run the library's `run_with` with the real sources and a scripted gate, so the gate
//! seam (which target is asked, when) is checked on its own; the in-process `compat_gate` run
//! through the binary is in `gate.rs`.

use super::common::*;
use clap::Parser;
use nightly_report::cli::Cli;
use nightly_report::config::Config;
use nightly_report::gate::{Gate, GateResult, GateVerdict};
use nightly_report::{real_sources, run_with, Log};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A gate that answers a fixed result and records the targets it was asked about.
struct Scripted {
    result: GateResult,
    asked: Mutex<Vec<String>>,
}

impl Gate for Scripted {
    fn check(&self, target: &str, _deadline: Duration) -> GateResult {
        self.asked.lock().unwrap().push(target.to_string());
        self.result.clone()
    }
}

fn run_lib(w: &World, gate: GateResult) -> (i32, Vec<String>) {
    let args = vec![
        "nightly-report".to_string(),
        format!("--pushgateway-url={}", w.pg.url()),
        format!("--kubeconfig={}", w.kubeconfig.display()),
        format!("--slack-webhook-url={}", w.slack.webhook_url()),
        format!("--now={NOW}"),
    ];
    let cfg = Config::from_cli(&Cli::try_parse_from(args).unwrap(), &|_| None).unwrap();
    let mut src = real_sources(&cfg, Instant::now());
    let g = Arc::new(Scripted {
        result: gate,
        asked: Mutex::new(Vec::new()),
    });
    src.gate = g.clone();
    let code = run_with(&cfg, &src, NOW_S, &Log::discard());
    let asked = g.asked.lock().unwrap().clone();
    (code, asked)
}

fn held_1_36_2() -> GateResult {
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

#[test]
fn night_2026_06_28_reproduces_the_5_7_example() {
    let w = World::new(cluster(homelab_nodes("v1.35.6"), night_jobs()));
    seed_detector(&w.pg, "1.36.2", "1.35.6", "minor", 1.0, T23);
    seed_chain(
        &w.pg,
        Chain {
            held: 1.0,
            ..Chain::default()
        },
    );
    let (code, asked) = run_lib(&w, held_1_36_2());
    assert_eq!(code, 0);
    assert_eq!(
        asked,
        ["1.36.2"],
        "gate consulted once for the parsed target"
    );
    let t = w.posted();
    assert!(
        t.contains("upgrade calico to &gt;= 3.31"),
        "travels as an entity: {t}"
    );
    assert_eq!(decode(&t), EXAMPLE_57);
}

#[test]
fn night_2026_06_20_blocked_with_two_action_lines() {
    let w = World::new(cluster(
        homelab_nodes("v1.34.9"),
        vec![
            kjob(
                "k8s-version-check-29185380",
                "complete",
                T23,
                Some(T23 + 14),
            ),
            kjob(
                "k8s-upgrade-preflight-1-35-6",
                "complete",
                T23 + 60,
                Some(T23 + 95),
            ),
        ],
    ));
    seed_detector(&w.pg, "1.35.6", "1.34.9", "minor", 1.0, T23);
    seed_chain(
        &w.pg,
        Chain {
            blocked: 1.0,
            ..Chain::default()
        },
    );
    let gate = GateResult {
        verdict: GateVerdict::Blocked,
        lines: vec![
            "[ACTIONABLE] external-secrets 0.12.1 supports k8s ≤ 1.31; upgrade external-secrets to >= 0.16".into(),
            "[ACTIONABLE] kyverno 1.16.0 supports k8s ≤ 1.34; upgrade kyverno to >= 1.18".into(),
        ],
        error: None,
    };
    let (code, asked) = run_lib(&w, gate);
    assert_eq!(code, 0);
    assert_eq!(asked, ["1.35.6"]);
    let t = decode(&w.posted());
    assert_eq!(
        t,
        "*K8s upgrade nightly report — 2026-06-29*
🔴 BLOCKED — 1.35.6 refused by the compat gate
Running: 1.34.9 (7 nodes)
Detector: last run 2026-06-28 23:00Z (7h 7m ago)
Target: 1.35.6 (minor)
*Action needed*
• external-secrets 0.12.1 supports k8s ≤ 1.31; upgrade external-secrets to >= 0.16
• kyverno 1.16.0 supports k8s ≤ 1.34; upgrade kyverno to >= 1.18
*Recent jobs* (k8s-upgrade, last 24h)
• `k8s-version-check-29185380` ✅ Complete · 23:00Z · 0m14s
• `k8s-upgrade-preflight-1-35-6` ✅ Complete · 23:01Z · 0m35s"
    );
}

#[test]
fn upgraded_night_with_v_prefixed_kubelets() {
    let w = World::new(cluster(homelab_nodes("v1.35.6"), vec![]));
    seed_detector(&w.pg, "1.35.6", "1.34.9", "minor", 1.0, T23);
    seed_chain(
        &w.pg,
        Chain {
            blocked: 1.0,
            ..Chain::default()
        },
    );
    let (code, asked) = run_lib(&w, held_1_36_2());
    assert_eq!(code, 0);
    assert!(
        asked.is_empty(),
        "gate only when avail AND (blocked OR held) and not upgraded"
    );
    let t = w.posted();
    assert_eq!(headline(&t), "🟢 UPGRADED — 1.34.9 → 1.35.6");
    assert!(t.contains("\nRunning: 1.35.6 (7 nodes)\n"), "{t}");
}

#[test]
fn gate_consulted_only_when_available_and_refused() {
    // Original test 11: blocked=1 but no upgrade available → no gate.
    let w = World::new(cluster(homelab_nodes("v1.35.6"), vec![]));
    seed_detector(&w.pg, "1.35.6", "1.35.6", "patch", 0.0, T23);
    seed_chain(
        &w.pg,
        Chain {
            blocked: 1.0,
            held: 1.0,
            ..Chain::default()
        },
    );
    let (_, asked) = run_lib(&w, held_1_36_2());
    assert!(asked.is_empty());
    // Available, neither blocked nor held → no gate.
    seed_detector(&w.pg, "1.36.2", "1.35.6", "minor", 1.0, T23);
    seed_chain(&w.pg, Chain::default());
    let (_, asked) = run_lib(&w, held_1_36_2());
    assert!(asked.is_empty());
    // Available and held → gate.
    seed_chain(
        &w.pg,
        Chain {
            held: 1.0,
            ..Chain::default()
        },
    );
    let (_, asked) = run_lib(&w, held_1_36_2());
    assert_eq!(asked, ["1.36.2"]);
}

#[test]
fn addon_upgraded_during_the_day_live_recheck_says_proceed() {
    let w = World::new(cluster(homelab_nodes("v1.34.9"), vec![]));
    seed_detector(&w.pg, "1.35.6", "1.34.9", "minor", 1.0, T23);
    seed_chain(
        &w.pg,
        Chain {
            blocked: 1.0,
            ..Chain::default()
        },
    );
    let (code, _) = run_lib(
        &w,
        GateResult {
            verdict: GateVerdict::Safe,
            lines: vec![],
            error: None,
        },
    );
    assert_eq!(code, 0);
    let t = w.posted();
    assert_eq!(
        headline(&t),
        "🔴 BLOCKED — 1.35.6 refused by the compat gate",
        "headline = last night"
    );
    assert!(t.contains("\nTarget: 1.35.6 (minor)\nNo blockers found now.\nLive re-check: safe — the next nightly run should proceed\n"), "{t}");
}

#[test]
fn gate_error_keeps_the_headline_and_names_gate_missing() {
    let w = World::new(cluster(homelab_nodes("v1.35.6"), vec![]));
    seed_detector(&w.pg, "1.36.2", "1.35.6", "minor", 1.0, T23);
    seed_chain(
        &w.pg,
        Chain {
            held: 1.0,
            ..Chain::default()
        },
    );
    let (code, _) = run_lib(
        &w,
        GateResult::error(
            "matrix /etc/homelab/addon-compat.json: cannot read: No such file or directory",
        ),
    );
    assert_eq!(code, 0);
    let t = w.posted();
    assert_eq!(headline(&t), "⏸️ HELD — 1.36.2 not yet upgradable");
    assert!(t.contains("\nLive re-check failed: matrix /etc/homelab/addon-compat.json: cannot read: No such file or directory\n"), "{t}");
    assert!(t.ends_with("\n⚠️ Missing: gate (matrix /etc/homelab/addon-compat.json: cannot read: No such file or directory)"), "{t}");
}
