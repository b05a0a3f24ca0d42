//! §8 / §12.3.2, 4, 6, 7, 8, 10: bad inputs and faults — never `OK` on doubt, exit 3 with one
//! last ERROR line naming the input; credentials modes; JSON schema; validate-matrix.

use super::common::*;
use serde_json::json;
use std::time::Duration;
use testkit::kube::{Auth, FakeKube, Fault, FaultKind};

fn last_error(o: &Out) -> String {
    o.stderr
        .lines()
        .rfind(|l| l.starts_with("ERROR"))
        .unwrap_or_else(|| panic!("no ERROR line:\n{}", o.stderr))
        .to_string()
}

fn assert_refused(o: &Out) {
    assert_eq!(o.code, 3, "{o:?}");
    assert!(!o.stdout.contains("OK"), "{}", o.stdout);
}

fn fault(env: &Env, prefix: &str, kind: FaultKind) {
    env.fk.with(|c| {
        c.faults.push(Fault {
            path_prefix: prefix.into(),
            kind,
            times: None,
        })
    });
}

#[test]
fn status_faults_exit_3_naming_method_path_status() {
    for (prefix, kind, want) in [
        ("/api/v1/nodes", FaultKind::Status(403, "nodes is forbidden: User \"system:serviceaccount:k8s-upgrade:compat-gate\" cannot list resource \"nodes\"".into()), "ERROR: GET /api/v1/nodes: HTTP 403: nodes is forbidden"),
        ("/version", FaultKind::Status(401, "Unauthorized".into()), "ERROR: GET /version: HTTP 401: Unauthorized"),
        ("/apis/apps/v1/namespaces/kyverno", FaultKind::Status(403, "deployments.apps \"kyverno-admission-controller\" is forbidden".into()), "ERROR: GET /apis/apps/v1/namespaces/kyverno/deployments/kyverno-admission-controller: HTTP 403"),
        // HA: /metrics is read per apiserver endpoint (EndpointSlices of default/kubernetes).
        ("/metrics", FaultKind::Status(500, "boom".into()), "ERROR: apiserver endpoint 127.0.0.1:"),
        ("/api/v1/nodes", FaultKind::Garbage, "ERROR: GET /api/v1/nodes: invalid JSON"),
    ] {
        let env = Env::scenario("cluster-1.34.9-fixed.json");
        fault(&env, prefix, kind);
        let o = env.run(&["1.35.6"], &[]);
        assert_refused(&o);
        assert!(last_error(&o).starts_with(want), "{prefix}: {}", o.stderr);
        assert!(o.stdout.lines().last().unwrap().starts_with("[ACTIONABLE] gate error: "), "{}", o.stdout);
        assert!(env.fk.requests().iter().all(|r| r.method == "GET"));
    }
}

#[test]
fn transient_500_is_retried() {
    let env = Env::scenario("cluster-1.34.9-fixed.json");
    env.fk.with(|c| {
        c.faults.push(Fault {
            path_prefix: "/metrics".into(),
            kind: FaultKind::Status(503, "busy".into()),
            times: Some(2),
        })
    });
    let o = env.run(&["1.35.6"], &[]);
    assert_eq!(o.code, 0, "{o:?}");
}

#[test]
fn malformed_cluster_data() {
    let mut doc = scenario("cluster-1.34.9-fixed.json");
    doc["git_version"] = "v1.34".into();
    let o = Env::new(cluster(&doc)).run(&["1.35.6"], &[]);
    assert_refused(&o);
    assert!(
        last_error(&o)
            .starts_with("ERROR: GET /version: gitVersion \"v1.34\" is not a valid version"),
        "{}",
        o.stderr
    );
    let mut doc = scenario("cluster-1.34.9-fixed.json");
    doc["nodes"] = json!([]);
    let o = Env::new(cluster(&doc)).run(&["1.35.6"], &[]);
    assert_refused(&o);
    assert_eq!(last_error(&o), "ERROR: GET /api/v1/nodes: no nodes");
    let env = Env::scenario("cluster-1.34.9-fixed.json");
    env.fk.with(|c| {
        let n = &mut c.objects.get_mut("/v1/nodes").unwrap()[1];
        n["status"]["nodeInfo"]
            .as_object_mut()
            .unwrap()
            .remove("kubeletVersion");
    });
    let o = env.run(&["1.35.6"], &[]);
    assert_refused(&o);
    assert_eq!(
        last_error(&o),
        "ERROR: GET /api/v1/nodes: node k8s-node2: status.nodeInfo.kubeletVersion missing"
    );
}

#[test]
fn unreachable_timeout_and_deadline() {
    // Unreachable: a closed port.
    let env = Env::scenario("cluster-1.34.9-fixed.json");
    let port = testkit::free_port();
    let kc = std::fs::read_to_string(&env.kubeconfig)
        .unwrap()
        .replace(&format!(":{}", env.fk.port()), &format!(":{port}"));
    std::fs::write(&env.kubeconfig, kc).unwrap();
    let o = env.run(&["1.35.6"], &[]);
    assert_refused(&o);
    assert!(
        last_error(&o).starts_with("ERROR: GET /version: "),
        "{}",
        o.stderr
    );
    // A delay beyond --timeout.
    let env = Env::scenario("cluster-1.34.9-fixed.json");
    fault(&env, "/version", FaultKind::Delay(Duration::from_secs(4)));
    let o = env.run(&["1.35.6", "--timeout", "1"], &[]);
    assert_refused(&o);
    assert!(
        last_error(&o).contains("GET /version: timed out"),
        "{}",
        o.stderr
    );
    // The whole-run deadline.
    let env = Env::scenario("cluster-1.34.9-fixed.json");
    fault(
        &env,
        "/apis/apps/",
        FaultKind::Delay(Duration::from_millis(1200)),
    );
    let o = env.run(&["1.35.6"], &[("COMPAT_DEADLINE_SECONDS", "2")]);
    assert_refused(&o);
    assert_eq!(last_error(&o), "ERROR: deadline 2s exceeded during addons");
}

#[test]
fn closed_stdout_is_not_a_pass() {
    let env = Env::scenario("cluster-1.34.9-fixed.json");
    let script = format!(
        "set -o pipefail; KUBECONFIG={} COMPAT_MATRIX={} {} 1.35.6 2>/dev/null | true; echo rc=${{PIPESTATUS[0]}}",
        env.kubeconfig.display(),
        env.matrix.display(),
        env!("CARGO_BIN_EXE_compat-gate")
    );
    let o = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "rc=3");
}

#[test]
fn bad_matrix_exits_3_before_any_api_call() {
    let env = Env::scenario("cluster-1.34.9-fixed.json");
    for (text, want) in [
        ("{", "invalid JSON"),
        (
            r#"{"kyverno":{"workload":"kyverno/deployment/k","versions":{}}}"#,
            "kyverno: versions: empty",
        ),
        (
            r#"{"kyverno":{"workload":"kyverno/deployment/k","versions":{"1.16":"1.34"},"pinned":true}}"#,
            "kyverno: pinned: true needs a non-empty pin_reason",
        ),
        (
            r#"{"kyverno":{"workload":"kyverno/deployment/k","versions":{"1.16":"1.34"},"pined":true}}"#,
            "unknown key \"pined\"",
        ),
        (
            r#"{"kyverno":{"workload":"kyverno/deployment/k","versions":{"1.16":"1.34"}},"kyverno":{}}"#,
            "duplicate key \"kyverno\"",
        ),
        (
            r#"{"kyverno":{"workload":"kyverno/deployment/k","versions":{"latest":"1.34"}}}"#,
            "\"latest\" is not a version",
        ),
    ] {
        env.set_matrix(text);
        let o = env.run(&["1.35.6"], &[]);
        assert_refused(&o);
        assert!(
            last_error(&o).starts_with(&format!("ERROR: matrix {}: ", env.matrix.display())),
            "{}",
            o.stderr
        );
        assert!(last_error(&o).contains(want), "{want}: {}", o.stderr);
        // validate-matrix says the same, exit 3, no network.
        let v = env.run(&["validate-matrix", env.matrix.to_str().unwrap()], &[]);
        assert_eq!(v.code, 3);
        assert!(v.stderr.contains(want));
    }
    std::fs::remove_file(&env.matrix).unwrap();
    let o = env.run(&["1.35.6"], &[]);
    assert_refused(&o);
    assert!(last_error(&o).contains("cannot read"));
    assert_eq!(env.fk.request_count(), 0, "no API call on a bad matrix");
    let ok = env.run(
        &[
            "validate-matrix",
            fixture("addon-compat.json").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(
        (ok.code, ok.stdout.as_str()),
        (0, "OK: matrix valid (4 addons)\n")
    );
    assert_eq!(env.fk.request_count(), 0);
}

#[test]
fn json_schema_1_and_error_document() {
    let env = Env::scenario("cluster-1.35.6.json");
    let o = env.run(&["1.36.2", "--json"], &[]);
    assert_eq!(o.code, 4);
    assert_eq!(o.stdout.lines().count(), 1, "exactly one JSON document");
    let j = o.json();
    for k in [
        "schema",
        "tool_version",
        "generated_at",
        "target",
        "kubeadm_target",
        "kind",
        "verdict",
        "exit_code",
        "cluster",
        "blockers",
        "notices",
        "checks",
        "matrix",
        "removed_api_table",
        "error",
    ] {
        assert!(j.get(k).is_some(), "missing {k}");
    }
    assert_eq!(j["schema"], 1);
    assert_eq!(j["verdict"], "held");
    assert_eq!(j["exit_code"], 4);
    assert_eq!(j["kubeadm_target"], "v1.36.2");
    assert_eq!(j["cluster"]["apiserver"], "1.35.6");
    assert_eq!(
        j["cluster"]["nodes"][0],
        json!({"name": "k8s-node1", "kubelet": "1.35.6", "runtime": "containerd://2.1.5"})
    );
    let b = &j["blockers"][3];
    assert_eq!(b["class"], "actionable");
    assert_eq!(b["check"], "addon");
    assert_eq!(b["subject"], "calico");
    assert_eq!(b["current"], "3.30.2");
    assert_eq!(b["required"], ">= 3.31");
    assert_eq!(b["remediation"], "upgrade calico to >= 3.31");
    assert_eq!(j["blockers"][0]["class"], "waiting");
    let names: Vec<&str> = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["version", "addons", "containerd", "removed_apis"]);
    for c in j["checks"].as_array().unwrap() {
        assert!(c["duration_ms"].is_u64() && c["scanned"]["objects"].is_u64());
    }
    assert_eq!(j["matrix"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(j["removed_api_table"]["origin"], "compiled-in");
    assert!(j["error"].is_null());
    assert!(time::OffsetDateTime::parse(
        j["generated_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339
    )
    .is_ok());
    // Error: still one document.
    fault(
        &env,
        "/api/v1/nodes",
        FaultKind::Status(403, "nodes is forbidden".into()),
    );
    let o = env.run(&["1.36.2", "--json"], &[]);
    assert_eq!(o.code, 3);
    let j = o.json();
    assert_eq!(j["verdict"], "error");
    assert_eq!(j["exit_code"], 3);
    assert_eq!(
        j["error"],
        "GET /api/v1/nodes: HTTP 403: nodes is forbidden"
    );
}

#[test]
fn in_cluster_client_cert_and_refused_kubeconfigs() {
    let doc = scenario("cluster-1.34.9-fixed.json");
    // In-cluster: service-account token + CA.
    let env = Env::new(cluster(&doc));
    let sa = env.dir.path().join("sa");
    let (tok, ca) = env.fk.write_sa_dir(&sa);
    let port = env.fk.port().to_string();
    let o = run_bin(
        &["1.35.6"],
        &[
            ("COMPAT_MATRIX".into(), env.matrix.display().to_string()),
            ("KUBERNETES_SERVICE_HOST".into(), "127.0.0.1".into()),
            ("KUBERNETES_SERVICE_PORT".into(), port.clone()),
            ("KUBE_TOKEN_FILE".into(), tok.display().to_string()),
            ("KUBE_CA_FILE".into(), ca.display().to_string()),
        ],
    );
    assert_no_secrets(&o, &env.fk);
    assert_eq!(o.code, 0, "{o:?}");
    // Explicit --server with token/CA files.
    let url = env.fk.url();
    let o = run_bin(
        &[
            "1.35.6",
            "--server",
            &url,
            "--token-file",
            tok.to_str().unwrap(),
            "--ca-file",
            ca.to_str().unwrap(),
            "--matrix",
            env.matrix.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.code, 0, "{o:?}");
    // A wrong token: 401, token never shown.
    std::fs::write(&tok, "wrong-token-abcdef").unwrap();
    let o = run_bin(
        &[
            "1.35.6",
            "--server",
            &url,
            "--token-file",
            tok.to_str().unwrap(),
            "--ca-file",
            ca.to_str().unwrap(),
            "--matrix",
            env.matrix.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.code, 3);
    assert!(!format!("{}{}", o.stdout, o.stderr).contains("wrong-token-abcdef"));
    assert!(last_error(&o).contains("HTTP 401"), "{}", o.stderr);
    // kubeadm admin.conf style: client certificate.
    let env = Env::with_fk(FakeKube::start_with(cluster(&doc), Auth::ClientCert));
    let o = env.run(&["1.35.6"], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    // insecure-skip-tls-verify and exec users are refused before any request.
    let kc = std::fs::read_to_string(&env.kubeconfig).unwrap();
    let before = env.fk.request_count();
    let insecure = kc.replace(
        "    certificate-authority-data:",
        "    insecure-skip-tls-verify: true\n    x-certificate-authority-data:",
    );
    std::fs::write(&env.kubeconfig, insecure).unwrap();
    let o = env.run(&["1.35.6"], &[]);
    assert_refused(&o);
    assert!(
        last_error(&o).contains("insecure-skip-tls-verify is refused"),
        "{}",
        o.stderr
    );
    let exec = kc.replace(
        "    client-certificate-data:",
        "    exec: {command: aws}\n    x-client-certificate-data:",
    );
    std::fs::write(&env.kubeconfig, exec).unwrap();
    let o = env.run(&["1.35.6"], &[]);
    assert_refused(&o);
    // Exec plugins are supported now (issue 14); one without apiVersion is refused naming it.
    assert!(
        last_error(&o).contains("exec: apiVersion must be set"),
        "{}",
        o.stderr
    );
    assert_eq!(env.fk.request_count(), before, "refused before any request");
    // No credentials at all.
    let o = run_bin(&["1.35.6", "--matrix", env.matrix.to_str().unwrap()], &[]);
    assert_refused(&o);
    assert!(
        last_error(&o).starts_with("ERROR: no Kubernetes credentials"),
        "{}",
        o.stderr
    );
}

#[test]
fn scenario_file_faults() {
    // The fake-kube binary's scenario files carry faults too (demos, manual checks).
    let mut doc = scenario("cluster-1.34.9-fixed.json");
    doc["faults"] = json!([{"path_prefix": "/api/v1/nodes", "status": 403, "message": "nodes is forbidden", "times": 1}]);
    let env = Env::new(cluster(&doc));
    let o = env.run(&["1.35.6"], &[]);
    assert_refused(&o);
    assert_eq!(
        last_error(&o),
        "ERROR: GET /api/v1/nodes: HTTP 403: nodes is forbidden"
    );
    let o = env.run(&["1.35.6"], &[]);
    assert_eq!(o.code, 0, "the fault fired once: {o:?}");
    doc["faults"] = json!([{"path_prefix": "/x"}]);
    assert!(testkit::kube::cluster_from_scenario(&doc).is_err());
}
