//! §12.1: the original's cases and the live regressions, end to end through the binary
//! against the fake API server (exit code + stdout).

use super::common::*;
use serde_json::json;

const ESO_LINE: &str = "[ACTIONABLE] external-secrets 0.12.1 supports k8s \u{2264} 1.31; upgrade external-secrets to >= 2.6";
const KYVERNO_LINE: &str =
    "[ACTIONABLE] kyverno 1.16.2 supports k8s \u{2264} 1.34; upgrade kyverno to >= 1.18";

#[test]
fn live_1_34_9_to_1_35_6_eso_and_kyverno_block() {
    let env = Env::scenario("cluster-1.34.9.json");
    let o = env.run(&["1.35.6"], &[]);
    assert_eq!(o.code, 2, "{o:?}");
    assert_eq!(
        o.lines(),
        vec![
            "BLOCKED: upgrade to 1.35.6 refused \u{2014} 2 actionable blocker(s)",
            ESO_LINE,
            KYVERNO_LINE
        ]
    );
    assert!(
        o.stderr
            .contains("INFO: apiserver=1.34.9 nodes=3 kubelets=1.34.9..1.34.9 kind=minor"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.starts_with("INFO: compat-gate "), "{}", o.stderr);
}

#[test]
fn live_kyverno_fixed_leaves_eso() {
    let mut doc = scenario("cluster-1.34.9.json");
    set_workload(
        &mut doc,
        "kyverno-admission-controller",
        "reg.kyverno.io/kyverno/kyverno:v1.18.1",
    );
    let env = Env::new(cluster(&doc));
    let o = env.run(&["1.35.6"], &[]);
    assert_eq!(o.code, 2, "{o:?}");
    assert_eq!(
        o.lines(),
        vec![
            "BLOCKED: upgrade to 1.35.6 refused \u{2014} 1 actionable blocker(s)",
            ESO_LINE
        ]
    );
}

#[test]
fn live_fixed_cluster_is_safe_exact_line() {
    // Case 9 (safe minor) and the 2026-06-23 regression: ESO 2.6.0 → OK.
    let env = Env::scenario("cluster-1.34.9-fixed.json");
    let o = env.run(&["1.35.6"], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, "OK: cluster is safe to upgrade to 1.35.6\n");
    // §3.4.1: no table removal in (1.34, 1.35]: only `metrics` runs; no discovery, no Secrets.
    let paths: Vec<String> = env
        .fk
        .requests()
        .iter()
        .map(|r| r.path().to_string())
        .collect();
    assert!(paths.contains(&"/metrics".to_string()));
    assert!(
        !paths
            .iter()
            .any(|p| p == "/apis" || p.starts_with("/api/v1/secrets")),
        "{paths:?}"
    );
}

#[test]
fn live_1_36_held_waiting_pinned_actionable() {
    // Cases 1, 3, 4: waiting + pinned + actionable → held wins, exit 4, all lines listed.
    let env = Env::scenario("cluster-1.35.6.json");
    let o = env.run(&["1.36.2"], &[]);
    assert_eq!(o.code, 4, "{o:?}");
    assert_eq!(
        o.lines(),
        vec![
            "HELD: upgrade to 1.36.2 held \u{2014} waiting=2 pinned=1 actionable=1",
            "[WAITING] external-secrets 2.6.0 supports k8s \u{2264} 1.35; no released external-secrets version supports k8s 1.36 yet",
            "[WAITING] kyverno 1.18.1 supports k8s \u{2264} 1.35; no released kyverno version supports k8s 1.36 yet",
            "[PINNED] gpu-operator 25.3.0 supports k8s \u{2264} 1.35; pinned: 26.3 needs newer NVIDIA driver image + Ubuntu; 1.36 support from 26.3",
            "[ACTIONABLE] calico 3.30.2 supports k8s \u{2264} 1.35; upgrade calico to >= 3.31",
        ]
    );
}

#[test]
fn only_waiting_is_held() {
    // Case 1 alone; case 7: any held → 4.
    let mut doc = scenario("cluster-1.35.6.json");
    set_workload(&mut doc, "calico-node", "quay.io/calico/node:v3.31.0");
    let env = Env::new(cluster(&doc));
    let m = std::fs::read_to_string(&env.matrix).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&m).unwrap();
    m.as_object_mut().unwrap().remove("gpu-operator");
    env.set_matrix(&m.to_string());
    let o = env.run(&["1.36.2"], &[]);
    assert_eq!(o.code, 4, "{o:?}");
    assert_eq!(
        o.lines()[0],
        "HELD: upgrade to 1.36.2 held \u{2014} waiting=2 pinned=0 actionable=0"
    );
    assert!(o.lines()[1].starts_with("[WAITING] external-secrets"));
}

#[test]
fn only_pinned_is_held() {
    // Case 3: pinned-is-held with the pin reason.
    let mut doc = scenario("cluster-1.35.6.json");
    set_workload(&mut doc, "calico-node", "quay.io/calico/node:v3.31.0");
    let env = Env::new(cluster(&doc));
    env.set_matrix(
        &json!({
            "gpu-operator": {"workload": "gpu-operator/deployment/gpu-operator", "pinned": true,
                             "pin_reason": "26.3 needs newer NVIDIA driver image + Ubuntu",
                             "versions": {"25.3": "1.35", "26.3": "1.36"}},
            "_containerd_min": {"1.36": ["2.1.5"]}
        })
        .to_string(),
    );
    let o = env.run(&["1.36.2"], &[]);
    assert_eq!(o.code, 4, "{o:?}");
    assert!(o.stdout.contains("[PINNED] gpu-operator 25.3.0 supports k8s \u{2264} 1.35; pinned: 26.3 needs newer NVIDIA driver image + Ubuntu"), "{}", o.stdout);
}

#[test]
fn exit_code_mapping() {
    // Case 7: none → 0, only actionable → 2, any held → 4 (checked on one cluster).
    let env = Env::scenario("cluster-1.35.6.json");
    let only_calico = json!({
        "calico": {"workload": "calico-system/daemonset/calico-node", "versions": {"3.30": "1.35", "3.31": "1.36"}},
        "_containerd_min": {"1.36": ["2.1.5"]}
    });
    env.set_matrix(&only_calico.to_string());
    assert_eq!(env.run(&["1.36.2"], &[]).code, 2);
    let mut held = only_calico.clone();
    held["kyverno"] = json!({"workload": "kyverno/deployment/kyverno-admission-controller", "container": "kyverno",
                             "versions": {"1.18": "1.35"}});
    env.set_matrix(&held.to_string());
    assert_eq!(env.run(&["1.36.2"], &[]).code, 4);
    let none = json!({"calico": {"workload": "calico-system/daemonset/calico-node", "versions": {"3.30": "1.36"}},
                      "_containerd_min": {"1.36": ["2.1.5"]}});
    env.set_matrix(&none.to_string());
    let o = env.run(&["1.36.2"], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, "OK: cluster is safe to upgrade to 1.36.2\n");
}

#[test]
fn patch_target_is_inert() {
    // Case 8: the addon checks would block a minor upgrade, but a patch is inert.
    let env = Env::scenario("cluster-1.34.9.json");
    let o = env.run(&["1.34.11"], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, "OK: cluster is safe to upgrade to 1.34.11\n");
    assert!(o
        .stderr
        .contains("INFO: patch upgrade 1.34.9 -> 1.34.11: addon/API/containerd checks are inert"));
    let j = env.run(&["1.34.11", "--json"], &[]).json();
    assert_eq!(j["kind"], "patch");
    let skipped: Vec<&str> = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "skipped" && c["reason"] == "patch")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, vec!["addons", "containerd", "removed_apis"]);
    // Same target, lagging kubelet: a minor upgrade (the chain's partial resume).
    let mut doc = scenario("cluster-1.35.6.json");
    doc["nodes"][2]["kubelet"] = "v1.34.9".into();
    let env = Env::new(cluster(&doc));
    let j = env.run(&["1.35.6", "--json"], &[]).json();
    assert_eq!(j["kind"], "minor");
}

#[test]
fn v_prefix_identical_output() {
    // Case 10: the 2026-06-21 v-prefix bug.
    let env = Env::scenario("cluster-1.34.9.json");
    let a = env.run(&["v1.35.6"], &[]);
    let b = env.run(&["1.35.6"], &[]);
    assert_eq!((a.code, &a.stdout), (b.code, &b.stdout));
    let ja = stable_json(env.run(&["--target", "v1.35.6", "--json"], &[]).json());
    let jb = stable_json(env.run(&["--json"], &[("TARGET_VERSION", "1.35.6")]).json());
    assert_eq!(ja, jb);
    assert_eq!(ja["target"], "1.35.6");
    assert_eq!(ja["kubeadm_target"], "v1.35.6");
}

#[test]
fn containerd_too_old_is_actionable() {
    // Case 6.
    let mut doc = scenario("cluster-1.34.9-fixed.json");
    doc["nodes"][1]["runtime"] = "containerd://2.0.6".into();
    doc["nodes"][2]["runtime"] = "docker://28.1.1".into();
    let env = Env::new(cluster(&doc));
    let o = env.run(&["1.35.6"], &[]);
    assert_eq!(o.code, 2, "{o:?}");
    assert_eq!(
        o.lines(),
        vec![
            "BLOCKED: upgrade to 1.35.6 refused \u{2014} 2 actionable blocker(s)",
            "[ACTIONABLE] node k8s-node2 runs containerd 2.0.6; k8s 1.35 needs containerd \u{2265} 2.1.5; bump containerd on k8s-node2",
            "[ACTIONABLE] node k8s-node3: unsupported or unreadable runtime \"docker://28.1.1\"",
        ]
    );
}

#[test]
fn version_rules() {
    let env = Env::scenario("cluster-1.34.9-fixed.json");
    // Skipping a minor.
    let o = env.run(&["1.36.2"], &[]);
    assert_eq!(o.code, 4, "{o:?}");
    assert!(o.stdout.contains("[ACTIONABLE] target 1.36.2 skips minor 1.35 (apiserver runs 1.34.9); upgrade one minor at a time"), "{}", o.stdout);
    // Older than the apiserver, other major: exit 3, one last ERROR line, never OK.
    for (t, want) in [
        (
            "1.34.8",
            "ERROR: target 1.34.8 is older than the running apiserver 1.34.9",
        ),
        (
            "2.0.0",
            "ERROR: target 2.0.0 is a different major than the running apiserver 1.34.9",
        ),
    ] {
        let o = env.run(&[t], &[]);
        assert_eq!(o.code, 3, "{o:?}");
        assert!(!o.stdout.contains("OK"));
        assert_eq!(
            o.stderr.lines().rfind(|l| l.starts_with("ERROR")),
            Some(want)
        );
    }
    // Kubelet too far behind / newer than the target.
    let mut doc = scenario("cluster-1.34.9-fixed.json");
    doc["nodes"][1]["kubelet"] = "v1.31.2".into();
    let env = Env::new(cluster(&doc));
    let o = env.run(&["1.35.6"], &[("COMPAT_KUBELET_MAX_SKEW", "2")]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stdout.contains("[ACTIONABLE] node k8s-node2 kubelet 1.31.2 would be 4 minors behind 1.35.6 (max 2); upgrade node k8s-node2 first"), "{}", o.stdout);
    let mut doc = scenario("cluster-1.34.9-fixed.json");
    doc["nodes"][0]["kubelet"] = "v1.36.0".into();
    let env = Env::new(cluster(&doc));
    let o = env.run(&["1.35.6"], &[]);
    assert!(
        o.stdout
            .contains("[ACTIONABLE] node k8s-node1 kubelet 1.36.0 is newer than target 1.35.6"),
        "{}",
        o.stdout
    );
}

#[test]
fn addon_fail_safe_cases() {
    let mut doc = scenario("cluster-1.34.9-fixed.json");
    set_workload(
        &mut doc,
        "gpu-operator",
        "nvcr.io/nvidia/gpu-operator@sha256:3c1b2a",
    );
    set_workload(
        &mut doc,
        "external-secrets",
        "oci.external-secrets.io/external-secrets/external-secrets:v0.9.0",
    );
    set_workload(&mut doc, "calico-node", "quay.io/calico/node:v3.30.4");
    for w in doc["workloads"].as_array_mut().unwrap() {
        if w["name"] == "calico-node" {
            w["status"] = json!({"updatedNumberScheduled": 2});
        }
    }
    let env = Env::new(cluster(&doc));
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&env.matrix).unwrap()).unwrap();
    m["cilium"] = json!({"workload": "kube-system/daemonset/cilium", "versions": {"1.17": "1.35"}});
    m["metallb"] = json!({"workload": "metallb-system/deployment/controller", "optional": true, "versions": {"0.14": "1.35"}});
    env.set_matrix(&m.to_string());
    let o = env.run(&["1.35.6"], &[]);
    assert_eq!(o.code, 2, "{o:?}");
    assert_eq!(
        o.lines()[1..],
        [
            "[ACTIONABLE] addon calico: rollout of 3.30.4 incomplete",
            "[ACTIONABLE] addon cilium: workload kube-system/daemonset/cilium not found",
            "[ACTIONABLE] addon external-secrets 0.9.0 is older than every matrix row (lowest 0.12)",
            "[ACTIONABLE] addon gpu-operator: cannot read running version (image nvcr.io/nvidia/gpu-operator@sha256:3c1b2a is pinned by digest only); a human must check",
        ]
    );
}

#[test]
fn log_catalogue_lines() {
    let env = Env::scenario("cluster-1.35.6.json");
    let o = env.run(&["1.36.2", "--dry-run"], &[]);
    let err: Vec<&str> = o.stderr.lines().collect();
    assert!(
        err[0].starts_with(concat!(
            "INFO: compat-gate ",
            env!("CARGO_PKG_VERSION"),
            " target=1.36.2 matrix="
        )),
        "{}",
        err[0]
    );
    assert!(
        err[0].ends_with(" sources=metrics,annotations,helm"),
        "{}",
        err[0]
    );
    let sha = err[0]
        .split("sha256=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert_eq!(sha.len(), 12);
    assert!(err.contains(&"INFO: apiserver=1.35.6 nodes=3 kubelets=1.35.6..1.35.6 kind=minor"));
    for c in ["version", "addons", "containerd", "removed_apis"] {
        let l = err
            .iter()
            .find(|l| l.starts_with(&format!("INFO: check {c}: ")))
            .unwrap();
        assert!(
            l.ends_with(" ms)") && l.contains(" blockers=") && l.contains(" scanned="),
            "{l}"
        );
    }
    assert!(
        err.contains(&"INFO: check addons: fail blockers=4 scanned=4 (0 ms)")
            || err
                .iter()
                .any(|l| l.starts_with("INFO: check addons: fail blockers=4 scanned=4 ("))
    );
    assert!(err.contains(&"INFO: dry-run: would push k8s_upgrade_blocked=0 k8s_upgrade_held=1"));
    assert!(!err.iter().any(|l| l.starts_with("ERROR")));
}
