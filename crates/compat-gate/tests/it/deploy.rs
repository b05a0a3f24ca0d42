//! §11.4 / §11.6: the ClusterRole in deploy/compat-gate/ grants exactly the reads the gate
//! makes — `list` on every resource the removed-API table can send the `annotations` source to
//! (generated from the compiled-in data), plus nodes and Secrets; `get` on the workloads and the
//! non-resource URLs; nothing that writes.

use compat_gate::RemovedApiTable;
use std::collections::BTreeSet;
use std::path::Path;
use yaml_rust2::{Yaml, YamlLoader};

fn docs(file: &str) -> Vec<Yaml> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/compat-gate")
        .join(file);
    YamlLoader::load_from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn strs(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn rbac_matches_removed_api_table() {
    let d = docs("rbac.yaml");
    let role = d
        .iter()
        .find(|x| x["kind"].as_str() == Some("ClusterRole"))
        .expect("ClusterRole");
    let mut list: BTreeSet<(String, String)> = BTreeSet::new();
    let mut get: BTreeSet<(String, String)> = BTreeSet::new();
    let mut urls: BTreeSet<String> = BTreeSet::new();
    for rule in role["rules"].as_vec().unwrap() {
        let verbs = strs(&rule["verbs"]);
        for v in &verbs {
            assert!(["get", "list"].contains(&v.as_str()), "write verb {v}");
        }
        for u in strs(&rule["nonResourceURLs"]) {
            urls.insert(u);
        }
        for g in strs(&rule["apiGroups"]) {
            for r in strs(&rule["resources"]) {
                if verbs.iter().any(|v| v == "list") {
                    list.insert((g.clone(), r.clone()));
                }
                if verbs.iter().any(|v| v == "get") {
                    get.insert((g.clone(), r.clone()));
                }
            }
        }
    }
    let mut want: BTreeSet<(String, String)> = RemovedApiTable::compiled_in()
        .listed_resources()
        .into_iter()
        .collect();
    want.insert((String::new(), "nodes".into()));
    want.insert((String::new(), "secrets".into()));
    // The Helm ConfigMap storage driver (issue 14 item 8).
    want.insert((String::new(), "configmaps".into()));
    assert_eq!(
        list, want,
        "ClusterRole list rules vs data/removed-apis.json"
    );
    for r in ["deployments", "daemonsets", "statefulsets"] {
        assert!(
            get.contains(&("apps".to_string(), r.to_string())),
            "get {r}"
        );
    }
    let want_urls: BTreeSet<String> =
        ["/version", "/metrics", "/api", "/api/*", "/apis", "/apis/*"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    assert_eq!(urls, want_urls);
    // Bound to the gate's, the chain's and nightly-report's service accounts.
    let binding = d
        .iter()
        .find(|x| x["kind"].as_str() == Some("ClusterRoleBinding"))
        .unwrap();
    let subjects: Vec<&str> = binding["subjects"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(subjects, ["compat-gate", "k8s-upgrade", "nightly-report"]);
}

#[test]
fn job_manifest_per_spec() {
    let d = docs("job.yaml");
    let job = &d[0];
    assert_eq!(job["kind"].as_str(), Some("Job"));
    assert_eq!(job["metadata"]["namespace"].as_str(), Some("k8s-upgrade"));
    assert_eq!(job["spec"]["backoffLimit"].as_i64(), Some(0));
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"].as_str(), Some("compat-gate"));
    let c = &pod["containers"][0];
    assert_eq!(c["resources"]["requests"]["cpu"].as_str(), Some("10m"));
    assert_eq!(c["resources"]["requests"]["memory"].as_str(), Some("32Mi"));
    assert_eq!(c["resources"]["limits"]["memory"].as_str(), Some("64Mi"));
    let env: Vec<(&str, &str)> = c["env"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                e["value"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let matrix = env.iter().find(|(n, _)| *n == "COMPAT_MATRIX").unwrap().1;
    let mount = c["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert!(matrix.starts_with(mount), "matrix mounted at COMPAT_MATRIX");
    // Every env var is one the binary accepts (its --help names them).
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_compat-gate"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for (n, _) in env {
        assert!(help.contains(&format!("[env: {n}")), "{n} not accepted");
    }
}
