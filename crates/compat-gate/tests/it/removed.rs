//! §3.4 / §12.3.3, 5, 11: removed APIs through metrics, last-applied annotations and Helm
//! releases, pagination with a 410 restart, a 403 on one source, disabled sources.

use super::common::*;
use serde_json::{json, Value};
use testkit::kube::{Fault, FaultKind};

const FS_V1BETA3: &str = "---\n# Source: prio/templates/flowschema.yaml\napiVersion: flowcontrol.apiserver.k8s.io/v1beta3\nkind: FlowSchema\nmetadata:\n  name: prio\n";
const FS_V1: &str = "---\n# Source: prio/templates/flowschema.yaml\napiVersion: \"flowcontrol.apiserver.k8s.io/v1\"\nkind: FlowSchema\nmetadata:\n  name: prio\n";

/// The fixed 1.34.9 cluster moved back to 1.31.9: upgrading to 1.32.4 crosses the
/// flowcontrol v1beta3 removal (the only table entry in that window).
fn base_131() -> Value {
    let mut doc = scenario("cluster-1.34.9-fixed.json");
    doc["git_version"] = "v1.31.9".into();
    for n in doc["nodes"].as_array_mut().unwrap() {
        n["kubelet"] = "v1.31.9".into();
    }
    doc
}

fn helm(ns: &str, name: &str, manifest: &str, gzip: bool) -> Value {
    json!({"namespace": ns, "name": name, "revision": 2, "chart": name, "chart_version": "0.3.0",
           "manifest": manifest, "gzip": gzip})
}

#[test]
fn helm_annotation_and_metrics_findings() {
    let mut doc = base_131();
    doc["helm_releases"].as_array_mut().unwrap().extend([
        helm("monitoring", "prio", FS_V1BETA3, true),
        helm(
            "web",
            "shop",
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\n",
            false,
        ),
    ]);
    doc["helm_releases"].as_array_mut().unwrap().push(json!({
        "namespace": "monitoring", "name": "broken", "raw_payload": "this is not a release"}));
    doc["helm_releases"].as_array_mut().unwrap().push(json!({
        "namespace": "legacy", "name": "old-ingress", "revision": 1, "chart": "old-ingress", "chart_version": "0.1.0",
        "manifest": "apiVersion: apps/v1\nkind: Deployment\n",
        "hooks": [{"path": "templates/ing.yaml", "manifest": "apiVersion: extensions/v1beta1\nkind: Ingress\n"}]}));
    doc["applied"] = json!([
        {"resource": "flowcontrol.apiserver.k8s.io/v1/flowschemas", "kind": "FlowSchema", "name": "fs-old",
         "last_applied": "flowcontrol.apiserver.k8s.io/v1beta3"},
        {"resource": "flowcontrol.apiserver.k8s.io/v1/flowschemas", "kind": "FlowSchema", "name": "fs-new",
         "last_applied": "flowcontrol.apiserver.k8s.io/v1"},
        {"resource": "flowcontrol.apiserver.k8s.io/v1/flowschemas", "kind": "FlowSchema", "name": "fs-none"}
    ]);
    doc["deprecated_metrics"] = json!([
        [
            "flowcontrol.apiserver.k8s.io",
            "v1beta3",
            "prioritylevelconfigurations",
            "1.32"
        ],
        ["batch", "v1beta1", "cronjobs", "1.25"]
    ]);
    let env = Env::new(cluster(&doc));
    let o = env.run(&["1.32.4"], &[]);
    assert_eq!(o.code, 2, "{o:?}");
    assert_eq!(
        o.lines(),
        vec![
            "BLOCKED: upgrade to 1.32.4 refused \u{2014} 4 actionable blocker(s)",
            "[ACTIONABLE] removed API flowcontrol.apiserver.k8s.io/v1beta3 FlowSchema (removed in 1.32) still used by 1 object(s) via helm release (e.g. monitoring/prio (chart prio-0.3.0)); migrate to flowcontrol.apiserver.k8s.io/v1",
            "[ACTIONABLE] removed API flowcontrol.apiserver.k8s.io/v1beta3 FlowSchema (removed in 1.32) still used by 1 object(s) via last-applied annotation (e.g. fs-old); migrate to flowcontrol.apiserver.k8s.io/v1",
            "[ACTIONABLE] removed API flowcontrol.apiserver.k8s.io/v1beta3 PriorityLevelConfiguration (removed in 1.32) still used by 1 object(s) via apiserver requests (e.g. prioritylevelconfigurations); migrate to flowcontrol.apiserver.k8s.io/v1",
            "[ACTIONABLE] helm release monitoring/broken: cannot decode (release JSON: expected ident at line 1 column 2)",
        ]
    );
    assert!(o.stderr.contains("INFO: notice: helm release legacy/old-ingress (chart old-ingress-0.1.0) uses extensions/v1beta1 Ingress, removed in 1.22"), "{}", o.stderr);
    // Metadata-only lists, only GETs, Secrets listed with Helm's selectors.
    let reqs = env.fk.requests();
    assert!(reqs.iter().all(|r| r.method == "GET"));
    let fs: Vec<_> = reqs
        .iter()
        .filter(|r| r.path() == "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas")
        .collect();
    assert_eq!(fs.len(), 1);
    assert!(fs[0]
        .header("accept")
        .unwrap()
        .starts_with("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"));
    assert!(fs[0].target.contains("limit=500"));
    let sec: Vec<_> = reqs
        .iter()
        .filter(|r| r.path() == "/api/v1/secrets")
        .collect();
    assert_eq!(sec.len(), 1);
    assert!(sec[0]
        .target
        .contains("labelSelector=owner%3Dhelm%2Cstatus%3Ddeployed"));
    assert!(sec[0]
        .target
        .contains("fieldSelector=type%3Dhelm.sh%2Frelease.v1"));
    assert!(sec[0].target.contains("limit=20"));
    // Never through the removed version.
    assert!(!reqs.iter().any(|r| r.target.contains("v1beta")));
}

#[test]
fn current_versions_pass() {
    let mut doc = base_131();
    doc["helm_releases"]
        .as_array_mut()
        .unwrap()
        .push(helm("monitoring", "prio", FS_V1, true));
    doc["applied"] = json!([{"resource": "flowcontrol.apiserver.k8s.io/v1/flowschemas", "kind": "FlowSchema",
                             "name": "fs-new", "last_applied": "flowcontrol.apiserver.k8s.io/v1"}]);
    let env = Env::new(cluster(&doc));
    let o = env.run(&["1.32.4"], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, "OK: cluster is safe to upgrade to 1.32.4\n");
}

#[test]
fn pagination_three_pages_and_410_restart() {
    let mut doc = base_131();
    doc["applied"] = json!([
        {"resource": "flowcontrol.apiserver.k8s.io/v1/flowschemas", "kind": "FlowSchema", "name": "fs-cur",
         "last_applied": "flowcontrol.apiserver.k8s.io/v1", "count": 1100},
        {"resource": "flowcontrol.apiserver.k8s.io/v1/flowschemas", "kind": "FlowSchema", "name": "fs-old",
         "last_applied": "flowcontrol.apiserver.k8s.io/v1beta3", "count": 7}
    ]);
    let mut c = cluster(&doc);
    c.expire_continue = 1;
    let env = Env::new(c);
    let o = env.run(&["1.32.4", "--json"], &[]);
    assert_eq!(o.code, 2, "{o:?}");
    let j = o.json();
    let b = &j["blockers"][0];
    assert_eq!(b["line"], "[ACTIONABLE] removed API flowcontrol.apiserver.k8s.io/v1beta3 FlowSchema (removed in 1.32) still used by 7 object(s) via last-applied annotation (e.g. fs-old-0, fs-old-1, fs-old-2, fs-old-3, fs-old-4, \u{2026}); migrate to flowcontrol.apiserver.k8s.io/v1");
    let n = env
        .fk
        .requests()
        .iter()
        .filter(|r| r.path() == "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas")
        .count();
    // client-go tools/pager: after the 410, one unpaginated list.
    assert_eq!(n, 3, "page 1, 410 on page 2, then one full list");
    let rm = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "removed_apis")
        .unwrap()
        .clone();
    assert_eq!(
        rm["scanned"]["objects"], 1107,
        "counted once after the restart"
    );
}

#[test]
fn forbidden_source_is_error_disabled_source_is_not_read() {
    let mut doc = base_131();
    doc["helm_releases"]
        .as_array_mut()
        .unwrap()
        .push(helm("monitoring", "prio", FS_V1, true));
    let env = Env::new(cluster(&doc));
    env.fk.with(|c| c.faults.push(Fault {
        path_prefix: "/api/v1/secrets".into(),
        kind: FaultKind::Status(403, "secrets is forbidden: User \"system:serviceaccount:k8s-upgrade:compat-gate\" cannot list resource \"secrets\" in API group \"\" at the cluster scope".into()),
        times: None,
    }));
    let o = env.run(&["1.32.4"], &[]);
    assert_eq!(o.code, 3, "{o:?}");
    assert!(!o.stdout.contains("OK"));
    let last_err = o.stderr.lines().rfind(|l| l.starts_with("ERROR")).unwrap();
    assert!(
        last_err.starts_with("ERROR: GET /api/v1/secrets: HTTP 403: secrets is forbidden"),
        "{last_err}"
    );
    assert!(
        o.stdout.ends_with("\u{2014} refusing (fail-safe)\n"),
        "{}",
        o.stdout
    );
    // Same cluster, helm disabled: passes and never asks for Secrets.
    let before = env.fk.requests().len();
    let o = env.run(
        &["1.32.4", "--json", "--api-sources", "metrics,annotations"],
        &[],
    );
    assert_eq!(o.code, 0, "{o:?}");
    let after = &env.fk.requests()[before..];
    assert!(!after
        .iter()
        .any(|r| r.path().starts_with("/api/v1/secrets")));
    let j = o.json();
    let rm = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "removed_apis")
        .unwrap()
        .clone();
    assert_eq!(rm["reason"], "disabled: helm");
    // All disabled: skipped (disabled).
    let o = env.run(&["1.32.4", "--json"], &[("COMPAT_API_SOURCES", "helm")]);
    assert_eq!(o.code, 3, "helm alone is still forbidden");
}

#[test]
fn stale_table_cannot_vouch() {
    let doc = base_131();
    let env = Env::new(cluster(&doc));
    let table = env.dir.path().join("removed.json");
    std::fs::write(&table, r#"{"source":"https://kubernetes.io/docs/reference/using-api/deprecation-guide/","checked":"2024-01-01","covers_through":"1.31",
        "removals":[{"group":"flowcontrol.apiserver.k8s.io","version":"v1beta2","kind":"FlowSchema","resource":"flowschemas","removed_in":"1.29","replacement":"flowcontrol.apiserver.k8s.io/v1"}]}"#).unwrap();
    let o = env.run(
        &["1.32.4", "--json"],
        &[("COMPAT_REMOVED_APIS", table.to_str().unwrap())],
    );
    assert_eq!(o.code, 2, "{o:?}");
    let j = o.json();
    assert_eq!(j["blockers"][0]["line"], "[ACTIONABLE] removed-API table covers k8s \u{2264} 1.31; cannot vouch for 1.32 \u{2014} update it");
    assert_eq!(j["blockers"][0]["check"], "data");
    assert_eq!(j["removed_api_table"]["origin"], "file");
    assert_eq!(j["removed_api_table"]["covers_through"], "1.31");
    // A broken replacement table: exit 3 before any API call.
    std::fs::write(&table, "{\"source\":1}").unwrap();
    let before = env.fk.request_count();
    let o = env.run(
        &["1.32.4"],
        &[("COMPAT_REMOVED_APIS", table.to_str().unwrap())],
    );
    assert_eq!(o.code, 3);
    assert!(
        o.stderr
            .contains(&format!("ERROR: removed-apis {}", table.display())),
        "{}",
        o.stderr
    );
    assert_eq!(env.fk.request_count(), before);
}

#[test]
fn next_minor_removals_are_notices_not_blockers() {
    // §9.3: findings for minor(T)+1 are an early warning; they never block.
    let mut doc = base_131();
    doc["deprecated_metrics"] = json!([["example.k8s.io", "v1beta1", "widgets", "1.33"]]);
    doc["helm_releases"].as_array_mut().unwrap().push(helm(
        "tools",
        "widget",
        "apiVersion: example.k8s.io/v1beta1\nkind: Widget\n",
        true,
    ));
    let env = Env::new(cluster(&doc));
    let table = env.dir.path().join("removed.json");
    std::fs::write(&table, r#"{"source":"https://kubernetes.io/docs/reference/using-api/deprecation-guide/","checked":"2026-06-28","covers_through":"1.33",
        "removals":[{"group":"flowcontrol.apiserver.k8s.io","version":"v1beta3","kind":"FlowSchema","resource":"flowschemas","removed_in":"1.32","replacement":"flowcontrol.apiserver.k8s.io/v1"},
                    {"group":"example.k8s.io","version":"v1beta1","kind":"Widget","resource":"widgets","removed_in":"1.33","replacement":"example.k8s.io/v1"}]}"#).unwrap();
    let o = env.run(
        &[
            "1.32.4",
            "--json",
            "--removed-apis",
            table.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.code, 0, "{o:?}");
    let j = o.json();
    let notices: Vec<&str> = j["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(notices, [
        "removed API example.k8s.io/v1beta1 Widget (removed in 1.33) used by 1 object(s) via apiserver requests (e.g. widgets); migrate before upgrading to 1.33",
        "removed API example.k8s.io/v1beta1 Widget (removed in 1.33) used by 1 object(s) via helm release (e.g. tools/widget (chart widget-0.3.0)); migrate before upgrading to 1.33",
    ]);
    assert!(o
        .stderr
        .contains("INFO: notice: removed API example.k8s.io/v1beta1 Widget"));
}

#[test]
fn server_side_applied_objects_are_found_through_managed_fields() {
    let mut doc = base_131();
    // Flux / Argo CD SSA / kubectl --server-side: no last-applied annotation at all.
    doc["applied"] = json!([
        {"resource": "flowcontrol.apiserver.k8s.io/v1/flowschemas", "kind": "FlowSchema", "name": "fs-ssa",
         "managed": [["kube-apiserver", "flowcontrol.apiserver.k8s.io/v1"],
                     ["kustomize-controller", "flowcontrol.apiserver.k8s.io/v1beta3"]]},
        {"resource": "flowcontrol.apiserver.k8s.io/v1/flowschemas", "kind": "FlowSchema", "name": "fs-cur",
         "managed": [["helm", "flowcontrol.apiserver.k8s.io/v1"]]}
    ]);
    let env = Env::new(cluster(&doc));
    let o = env.run(&["1.32.4"], &[]);
    assert_eq!(o.code, 2, "{o:?}");
    assert_eq!(
        o.lines()[1],
        "[ACTIONABLE] removed API flowcontrol.apiserver.k8s.io/v1beta3 FlowSchema (removed in 1.32) still used by 1 object(s) via managed fields (e.g. fs-ssa (manager kustomize-controller)); migrate to flowcontrol.apiserver.k8s.io/v1"
    );
    assert_eq!(o.lines().len(), 2, "{o:?}");
}

#[test]
fn helm_configmap_driver_releases_are_scanned() {
    let mut doc = base_131();
    let mut rel = helm("monitoring", "prio", FS_V1BETA3, true);
    rel["driver"] = json!("configmap");
    doc["helm_releases"].as_array_mut().unwrap().push(rel);
    let env = Env::new(cluster(&doc));
    let o = env.run(&["1.32.4"], &[]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stdout
            .contains("via helm release (e.g. monitoring/prio (chart prio-0.3.0))"),
        "{}",
        o.stdout
    );
    let cm: Vec<_> = env
        .fk
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/api/v1/configmaps")
        .collect();
    assert_eq!(cm.len(), 1);
    assert_eq!(
        cm[0].query_param("labelSelector"),
        Some("owner%3Dhelm%2Cstatus%3Ddeployed")
    );
}

/// A 1.25 cluster: flowcontrol serves v1beta2 and v1beta1 only (v1beta3 arrives in 1.26).
fn flowcontrol_125(served: &[&str]) -> testkit::kube::FakeCluster {
    let mut doc = scenario("cluster-1.34.9-fixed.json");
    doc["git_version"] = "v1.25.16".into();
    for n in doc["nodes"].as_array_mut().unwrap() {
        n["kubelet"] = "v1.25.16".into();
    }
    let mut c = cluster(&doc);
    c.discovery
        .retain(|(g, _, _)| g != "flowcontrol.apiserver.k8s.io");
    for v in served {
        c.discovery.push((
            "flowcontrol.apiserver.k8s.io".into(),
            v.to_string(),
            vec![
                testkit::kube::ApiResource {
                    name: "flowschemas".into(),
                    kind: "FlowSchema".into(),
                    namespaced: false,
                },
                testkit::kube::ApiResource {
                    name: "prioritylevelconfigurations".into(),
                    kind: "PriorityLevelConfiguration".into(),
                    namespaced: false,
                },
            ],
        ));
    }
    c
}

#[test]
fn annotations_listed_through_a_served_version_when_the_replacement_is_not_served_yet() {
    let mut c = flowcontrol_125(&["v1beta2", "v1beta1"]);
    c.add(
        "flowcontrol.apiserver.k8s.io/v1beta2/flowschemas",
        [testkit::kube::applied_object(
            "flowcontrol.apiserver.k8s.io/v1beta2",
            "FlowSchema",
            None,
            "fs-old",
            Some("flowcontrol.apiserver.k8s.io/v1beta1"),
        )],
    );
    let env = Env::new(c);
    let o = env.run(&["1.26.15"], &[]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stdout.contains("removed API flowcontrol.apiserver.k8s.io/v1beta1 FlowSchema (removed in 1.26) still used by 1 object(s) via last-applied annotation (e.g. fs-old)"), "{}", o.stdout);
    let reqs = env.fk.requests();
    assert!(reqs
        .iter()
        .any(|r| r.path() == "/apis/flowcontrol.apiserver.k8s.io/v1beta2/flowschemas"));
    assert!(!reqs.iter().any(|r| r
        .path()
        .starts_with("/apis/flowcontrol.apiserver.k8s.io/v1beta1/")));
    // Served only through the removed version: the source cannot see everything.
    let env = Env::new(flowcontrol_125(&["v1beta1"]));
    let o = env.run(&["1.26.15"], &[]);
    assert_eq!(o.code, 3, "{o:?}");
    assert!(o.stderr.contains("ERROR: annotations source incomplete: flowcontrol.apiserver.k8s.io/flowschemas is served only through removed version(s) v1beta1"), "{}", o.stderr);
}
