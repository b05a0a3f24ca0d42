//! Issue 14 items 1 and 6: deprecated-without-removal series, and HA control planes (every
//! apiserver's own deprecated-API gauge, found through the EndpointSlices of
//! default/kubernetes).

use super::common::*;
use serde_json::{json, Value};
use testkit::kube::default_metrics;

/// The fixed 1.34.9 cluster moved back to 1.31.9 (window 1.32: flowcontrol v1beta3).
fn base_131() -> Value {
    let mut doc = scenario("cluster-1.34.9-fixed.json");
    doc["git_version"] = "v1.31.9".into();
    for n in doc["nodes"].as_array_mut().unwrap() {
        n["kubelet"] = "v1.31.9".into();
    }
    doc
}

#[test]
fn deprecated_series_without_removal_release_is_reported_not_an_error() {
    let mut doc = scenario("cluster-1.34.9-fixed.json");
    // apiextensions-apiserver customresource_handler.go: a CRD version with `deprecated: true`
    // gets removed_release=""; so does core v1 Endpoints (deprecated since 1.33, no removal).
    doc["deprecated_metrics"] = json!([
        ["", "v1", "endpoints", ""],
        ["widgets.example.com", "v1alpha1", "widgets", ""]
    ]);
    let env = Env::new(cluster(&doc));
    let o = env.run(&["1.35.6"], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, "OK: cluster is safe to upgrade to 1.35.6\n");
    assert!(o.stderr.contains("INFO: deprecated: deprecated API v1 endpoints (no removal release scheduled) still requested via apiserver requests (e.g. endpoints)"), "{}", o.stderr);
    assert!(
        o.stderr
            .contains("INFO: deprecated: deprecated API widgets.example.com/v1alpha1 widgets"),
        "{}",
        o.stderr
    );
    let j = env.run(&["1.35.6", "--json"], &[]).json();
    assert_eq!(j["verdict"], "safe");
    let subjects: Vec<&str> = j["deprecated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        ["v1 endpoints", "widgets.example.com/v1alpha1 widgets"]
    );
}

#[test]
fn deprecated_series_the_table_removes_in_the_window_still_blocks() {
    let mut doc = base_131();
    doc["deprecated_metrics"] =
        json!([["flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas", ""]]);
    let env = Env::new(cluster(&doc));
    let o = env.run(&["1.32.4"], &[]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stdout.contains("[ACTIONABLE] removed API flowcontrol.apiserver.k8s.io/v1beta3 FlowSchema (removed in 1.32) still used by 1 object(s) via apiserver requests (e.g. flowschemas)"), "{}", o.stdout);
}

#[test]
fn every_apiserver_of_an_ha_control_plane_is_read() {
    let env = Env::new(cluster(&base_131()));
    // Only the second instance served the old client since its start.
    let p2 = env.fk.add_apiserver(
        default_metrics(&[(
            "flowcontrol.apiserver.k8s.io",
            "v1beta3",
            "flowschemas",
            "1.32",
        )]),
        Some(true),
    );
    let p3 = env.fk.add_apiserver(default_metrics(&[]), None);
    let o = env.run(&["1.32.4", "--json"], &[]);
    assert_eq!(o.code, 2, "{o:?}");
    let j = o.json();
    assert!(j["blockers"][0]["line"].as_str().unwrap().contains(
        "v1beta3 FlowSchema (removed in 1.32) still used by 1 object(s) via apiserver requests"
    ));
    let rows: Vec<(String, String, u64)> = j["apiservers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["endpoint"].as_str().unwrap().to_string(),
                a["status"].as_str().unwrap().to_string(),
                a["deprecated_series"].as_u64().unwrap(),
            )
        })
        .collect();
    let me = env.fk.port();
    assert_eq!(
        rows,
        vec![
            (format!("127.0.0.1:{me}"), "read".to_string(), 0),
            (format!("127.0.0.1:{p2}"), "read".to_string(), 1),
            (format!("127.0.0.1:{p3}"), "read".to_string(), 0),
        ]
    );
    // GET only, everywhere; each instance was asked for /metrics once.
    for reqs in env.fk.extra_requests() {
        assert!(reqs.iter().all(|r| r.method == "GET"));
        assert_eq!(reqs.iter().filter(|r| r.path() == "/metrics").count(), 1);
    }
    let slices: Vec<_> = env
        .fk
        .requests()
        .into_iter()
        .filter(|r| r.path().ends_with("/endpointslices"))
        .collect();
    assert_eq!(slices.len(), 1);
    assert_eq!(
        slices[0].query_param("labelSelector"),
        Some("kubernetes.io%2Fservice-name%3Dkubernetes")
    );
}

#[test]
fn not_ready_endpoint_skipped_with_a_note_unreachable_ready_one_refuses() {
    let env = Env::new(cluster(&base_131()));
    let down = testkit::free_port();
    env.fk.add_endpoint("127.0.0.1", down, Some(false));
    let o = env.run(&["1.32.4", "--json"], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let j = o.json();
    assert!(j["notices"].as_array().unwrap().iter().any(|n| n
        .as_str()
        .unwrap()
        .contains(&format!("apiserver endpoint 127.0.0.1:{down} is not ready"))));
    assert_eq!(j["apiservers"][1]["status"], "not-ready");
    // The same endpoint listed as ready but unreachable: the source is incomplete → exit 3.
    env.fk.with(|c| {
        c.apiserver_endpoints.as_mut().unwrap()[1].ready = Some(true);
    });
    let o = env.run(&["1.32.4"], &[("COMPAT_DEADLINE_SECONDS", "20")]);
    assert_eq!(o.code, 3, "{o:?}");
    let last = o
        .stderr
        .lines()
        .rfind(|l| l.starts_with("ERROR: "))
        .unwrap();
    assert!(
        last.starts_with(&format!(
            "ERROR: apiserver endpoint 127.0.0.1:{down}: GET /metrics: "
        )),
        "{last}"
    );
    assert!(last.contains("metrics source incomplete"), "{last}");
}

#[test]
fn no_ready_endpoint_at_all_refuses() {
    let env = Env::new(cluster(&base_131()));
    env.fk.with(|c| {
        c.apiserver_endpoints = Some(vec![testkit::kube::ApiserverEndpoint {
            address: "127.0.0.1".into(),
            port: c.self_port,
            ready: Some(false),
        }])
    });
    let o = env.run(&["1.32.4"], &[]);
    assert_eq!(o.code, 3, "{o:?}");
    assert!(
        o.stderr
            .contains("no ready apiserver endpoint in the EndpointSlices of default/kubernetes"),
        "{}",
        o.stderr
    );
}

/// Issue 14 item 5 end to end: a kubeconfig whose user is an exec plugin (as EKS/GKE/OIDC
/// helpers write them) runs the gate; a failing plugin is exit 3 naming it, output unseen.
#[test]
fn exec_plugin_kubeconfig_runs_the_gate() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::scenario("cluster-1.34.9-fixed.json");
    let cred = json!({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                      "status": {"token": testkit::kube::TEST_TOKEN}});
    let plugin = env.dir.path().join("get-token");
    std::fs::write(
        &plugin,
        format!("#!/bin/sh\n[ \"$1\" = homelab ] || exit 7\ncat <<'J'\n{cred}\nJ\n"),
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let kc = std::fs::read_to_string(&env.kubeconfig).unwrap();
    let (head, _) = kc.split_once("  user:\n").unwrap();
    let exec = format!(
        "{head}  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      args: [homelab]\n      interactiveMode: Never\n",
        plugin.display()
    );
    std::fs::write(&env.kubeconfig, &exec).unwrap();
    let o = env.run(&["1.35.6"], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, "OK: cluster is safe to upgrade to 1.35.6\n");
    // The plugin fails: exit 3, one line naming it.
    std::fs::write(
        &env.kubeconfig,
        exec.replace("args: [homelab]", "args: [other]"),
    )
    .unwrap();
    let o = env.run(&["1.35.6"], &[]);
    assert_eq!(o.code, 3, "{o:?}");
    let last = o
        .stderr
        .lines()
        .rfind(|l| l.starts_with("ERROR: "))
        .unwrap();
    assert!(
        last.contains("exec command") && last.contains("failed with exit code 7"),
        "{last}"
    );
}
