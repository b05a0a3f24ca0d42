//! `edges-digest policy` (issue 17): the derived NetworkPolicy / StagedNetworkPolicy, validated
//! by kubernetes-validate --strict and a field check against Calico's v3 API types; exit codes;
//! `--check`; bad input.

use super::support::*;
use serde_json::Value;
use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};

const KV_INSTALL: &str = "pip install kubernetes-validate (scripts/setup.sh installs it)";

/// Every document of `yaml` through `kubernetes-validate --strict` (PyPI), which checks against
/// the Kubernetes OpenAPI schemas and rejects unknown fields.
fn kubernetes_validate(yaml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("policy.yaml");
    std::fs::write(&f, yaml).unwrap();
    let o = Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.31.0"])
        .arg(&f)
        .output()
        .unwrap_or_else(|e| panic!("kubernetes-validate not runnable ({e}): {KV_INSTALL}"));
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success(),
        "kubernetes-validate --strict failed:\n{out}\n{yaml}"
    );
    let docs = yaml
        .lines()
        .filter(|l| l.starts_with("apiVersion: "))
        .count();
    assert_eq!(
        out.matches(" passed for resource networkpolicy/").count(),
        docs,
        "{out}"
    );
}

/// YAML → JSON documents with PyYAML (kubernetes-validate's own dependency).
fn yaml_docs(yaml: &str) -> Vec<Value> {
    let mut c = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(sys.stdin))))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 missing ({e}): {KV_INSTALL}"));
    c.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "PyYAML: {} — {KV_INSTALL}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Allowed fields of a `projectcalico.org/v3` StagedNetworkPolicy, read from projectcalico/api
/// v3.30.0: `pkg/apis/projectcalico/v3/stagednetworkpolicy.go` (StagedNetworkPolicySpec:
/// stagedAction Set|Delete|Learn|Ignore, tier, order, ingress, egress, selector, types,
/// serviceAccountSelector, performanceHints), `policy_common.go` (Rule, EntityRule,
/// ServiceMatch, ServiceAccountMatch, ICMPFields, HTTPMatch, RuleMetadata; Action
/// Allow|Deny|Log|Pass; PolicyType Ingress|Egress) and `pkg/lib/numorstring/protocol.go`
/// (protocol names). Only the field tree and enums are modelled, not Go code.
fn calico_check(path: &str, v: &Value, shape: &str) -> Result<(), String> {
    let obj = |v: &Value, keys: &[&str]| -> Result<serde_json::Map<String, Value>, String> {
        let m = v.as_object().ok_or(format!("{path}: not an object"))?;
        for k in m.keys() {
            if !keys.contains(&k.as_str()) {
                return Err(format!("{path}.{k}: unknown field"));
            }
        }
        Ok(m.clone())
    };
    let sub = |k: &str| format!("{path}.{k}");
    match shape {
        "doc" => {
            let m = obj(v, &["apiVersion", "kind", "metadata", "spec"])?;
            if m["apiVersion"] != "projectcalico.org/v3" || m["kind"] != "StagedNetworkPolicy" {
                return Err(format!(
                    "{path}: not a projectcalico.org/v3 StagedNetworkPolicy"
                ));
            }
            let md = obj(
                &m["metadata"],
                &["name", "namespace", "labels", "annotations"],
            )?;
            for k in ["name", "namespace"] {
                let s = md
                    .get(k)
                    .and_then(Value::as_str)
                    .ok_or(format!("{path}.metadata.{k} missing"))?;
                if s.is_empty()
                    || !s.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                    })
                {
                    return Err(format!("{path}.metadata.{k}: {s:?} is not a DNS name"));
                }
            }
            calico_check(&sub("spec"), &m["spec"], "spec")
        }
        "spec" => {
            let m = obj(
                v,
                &[
                    "stagedAction",
                    "tier",
                    "order",
                    "ingress",
                    "egress",
                    "selector",
                    "types",
                    "serviceAccountSelector",
                    "performanceHints",
                ],
            )?;
            if let Some(a) = m.get("stagedAction") {
                if !["Set", "Delete", "Learn", "Ignore"].contains(&a.as_str().unwrap_or("")) {
                    return Err(format!("{path}.stagedAction: {a}"));
                }
            }
            for t in m
                .get("types")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !["Ingress", "Egress"].contains(&t.as_str().unwrap_or("")) {
                    return Err(format!("{path}.types: {t}"));
                }
            }
            if !m.get("selector").is_none_or(Value::is_string) {
                return Err(format!("{path}.selector: not a string"));
            }
            for dir in ["ingress", "egress"] {
                for (i, r) in m
                    .get(dir)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    calico_check(&format!("{path}.{dir}[{i}]"), r, dir)?;
                }
            }
            Ok(())
        }
        "ingress" | "egress" => {
            let m = obj(
                v,
                &[
                    "action",
                    "ipVersion",
                    "protocol",
                    "icmp",
                    "notProtocol",
                    "notICMP",
                    "source",
                    "destination",
                    "http",
                    "metadata",
                ],
            )?;
            let action = m
                .get("action")
                .and_then(Value::as_str)
                .ok_or(format!("{path}.action missing"))?;
            if !["Allow", "Deny", "Log", "Pass"].contains(&action) {
                return Err(format!("{path}.action: {action}"));
            }
            let proto = m.get("protocol").and_then(Value::as_str);
            if let Some(p) = proto {
                if !["TCP", "UDP", "ICMP", "ICMPv6", "SCTP", "UDPLite"].contains(&p) {
                    return Err(format!("{path}.protocol: {p}"));
                }
            }
            for side in ["source", "destination"] {
                if let Some(e) = m.get(side) {
                    calico_check(&sub(side), e, "entity")?;
                    let e = e.as_object().unwrap();
                    // policy_common.go, EntityRule.Ports: ports need protocol TCP or UDP (SCTP
                    // too in numorstring); Services: not with selector, namespaceSelector, nets,
                    // notNets, serviceAccounts; ports with services only on ingress rules.
                    if e.contains_key("ports") && !matches!(proto, Some("TCP" | "UDP" | "SCTP")) {
                        return Err(format!("{path}.{side}.ports without protocol TCP/UDP/SCTP"));
                    }
                    if e.contains_key("services") {
                        for k in [
                            "selector",
                            "namespaceSelector",
                            "nets",
                            "notNets",
                            "serviceAccounts",
                            "notSelector",
                        ] {
                            if e.contains_key(k) {
                                return Err(format!("{path}.{side}: services with {k}"));
                            }
                        }
                        if shape == "egress"
                            && (e.contains_key("ports") || e.contains_key("notPorts"))
                        {
                            return Err(format!(
                                "{path}.{side}: ports with services on an egress rule"
                            ));
                        }
                    }
                }
            }
            Ok(())
        }
        "entity" => {
            let m = obj(
                v,
                &[
                    "nets",
                    "selector",
                    "namespaceSelector",
                    "services",
                    "ports",
                    "notNets",
                    "notSelector",
                    "notPorts",
                    "serviceAccounts",
                ],
            )?;
            for k in ["nets", "notNets"] {
                for n in m.get(k).and_then(Value::as_array).into_iter().flatten() {
                    let s = n.as_str().ok_or(format!("{path}.{k}: not a string"))?;
                    let (a, l) = s
                        .split_once('/')
                        .ok_or(format!("{path}.{k}: {s} is not a CIDR"))?;
                    if a.parse::<std::net::IpAddr>().is_err() || l.parse::<u8>().is_err() {
                        return Err(format!("{path}.{k}: {s} is not a CIDR"));
                    }
                }
            }
            for k in ["ports", "notPorts"] {
                for p in m.get(k).and_then(Value::as_array).into_iter().flatten() {
                    if !p.as_u64().is_some_and(|n| (1..=65535).contains(&n)) {
                        return Err(format!("{path}.{k}: {p} is not a port"));
                    }
                }
            }
            if let Some(s) = m.get("services") {
                let sm = obj(s, &["name", "namespace"])?;
                if !sm.values().all(Value::is_string) {
                    return Err(format!("{path}.services: not strings"));
                }
            }
            for k in ["selector", "namespaceSelector", "notSelector"] {
                if !m.get(k).is_none_or(Value::is_string) {
                    return Err(format!("{path}.{k}: not a string"));
                }
            }
            Ok(())
        }
        _ => unreachable!(),
    }
}

fn body(yaml: &str) -> String {
    yaml.lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn k8s_policy_for_a_namespace_validates_strictly_and_has_the_rules_in_order() {
    let env = Env::new();
    seed_demo(&env);
    let (code, out, err) = tool(
        &env,
        &[
            "policy",
            "--namespace",
            "immich",
            "--exclude-cidr",
            "10.42.0.0/16",
            "--exclude-cidr",
            "10.43.0.0/16",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
    kubernetes_validate(&out);
    let docs = yaml_docs(&out);
    assert_eq!(docs.len(), 1);
    let d = &docs[0];
    assert_eq!(d["kind"], "NetworkPolicy");
    assert_eq!(d["metadata"]["name"], "observed-egress");
    assert_eq!(d["metadata"]["namespace"], "immich");
    assert_eq!(d["spec"]["policyTypes"], serde_json::json!(["Egress"]));
    let eg = d["spec"]["egress"].as_array().unwrap();
    // DNS, self, dbaas, monitoring, external.
    assert_eq!(eg.len(), 5, "{out}");
    assert_eq!(
        eg[0]["to"][0]["podSelector"]["matchLabels"]["k8s-app"],
        "kube-dns"
    );
    assert_eq!(
        eg[0]["ports"],
        serde_json::json!([{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}])
    );
    assert_eq!(eg[1]["to"], serde_json::json!([{"podSelector": {}}]));
    assert_eq!(
        eg[2]["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "dbaas"
    );
    assert_eq!(
        eg[3]["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "monitoring"
    );
    assert_eq!(
        eg[4]["to"][0]["ipBlock"],
        serde_json::json!({"cidr": "0.0.0.0/0", "except": ["10.42.0.0/16", "10.43.0.0/16"]})
    );
    assert_eq!(
        eg[4]["ports"],
        serde_json::json!([{"port": 443, "protocol": "TCP"}, {"port": 3478, "protocol": "UDP"}])
    );
    assert!(!out.contains("old-ns"), "outside the window: {out}");
    // Header: window, data start, flow counts, ICMP not expressible, destination names.
    assert!(out.contains("# window: "), "{out}");
    assert!(out.contains("(oldest first_seen)"), "{out}");
    assert!(out.contains("namespace dbaas: 7 flows"), "{out}");
    assert!(
        out.contains("external TCP 443: 45 flows to network pub, networkset immich/cdn"),
        "{out}"
    );
    assert!(
        out.contains("#   - icmp 0 to network pvt (1 flows)"),
        "{out}"
    );
    assert!(out.contains("except: 10.42.0.0/16, 10.43.0.0/16"), "{out}");
    assert!(!out.contains("WARNING: no --exclude-cidr"), "{out}");
    assert!(!out.contains("younger than 7 days"), "{out}");
}

#[test]
fn ingress_flags_dns_peer_and_no_self_all_validate() {
    let env = Env::new();
    seed_demo(&env);
    for args in [
        vec!["policy", "--namespace", "immich", "--ingress"],
        vec![
            "policy",
            "--namespace",
            "immich",
            "--ingress",
            "--no-self",
            "--dns-peer",
            "169.254.20.10/32",
        ],
        vec![
            "policy",
            "--namespace",
            "monitoring",
            "--ingress",
            "--dns-peer",
            "kube-system/k8s-app=node-local-dns",
        ],
        vec!["policy", "--namespace", "dbaas", "--ingress"],
        vec![
            "policy",
            "--namespace",
            "recruiter-responder",
            "--since",
            "3d",
        ],
    ] {
        let (code, out, err) = tool(&env, &args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        kubernetes_validate(&out);
        let docs = yaml_docs(&out);
        let ingress = args.contains(&"--ingress");
        assert_eq!(docs.len(), if ingress { 2 } else { 1 }, "{out}");
        if ingress {
            assert_eq!(docs[1]["metadata"]["name"], "observed-ingress");
            assert_eq!(
                docs[1]["spec"]["policyTypes"],
                serde_json::json!(["Ingress"])
            );
        }
        if args.contains(&"--no-self") {
            assert!(
                !out.contains("podSelector: {}\n  policyTypes")
                    || !body(&out).contains("- to:\n    - podSelector: {}"),
                "{out}"
            );
        }
    }
    // immich's ingress: from monitoring (dst-reported allow), not from anyone else.
    let (_, out, _) = tool(&env, &["policy", "--namespace", "immich", "--ingress"]);
    let docs = yaml_docs(&out);
    assert_eq!(
        docs[1]["spec"]["ingress"][1]["from"][0]["namespaceSelector"]["matchLabels"]
            ["kubernetes.io/metadata.name"],
        "monitoring"
    );
    assert_eq!(docs[1]["spec"]["ingress"].as_array().unwrap().len(), 2);
    // NodeLocal DNS peer as an ipBlock.
    let (_, out, _) = tool(
        &env,
        &[
            "policy",
            "--namespace",
            "immich",
            "--dns-peer",
            "169.254.20.10/32",
        ],
    );
    assert_eq!(
        yaml_docs(&out)[0]["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"],
        "169.254.20.10/32"
    );
    // recruiter-responder: allowed by its side, denied by dbaas' side → not observed; the
    // header warns about the deny.
    let (_, out, _) = tool(&env, &["policy", "--namespace", "recruiter-responder"]);
    assert!(!body(&out).contains("dbaas"), "{out}");
    assert!(
        out.contains("# WARNING: recruiter-responder has 1 deny edge side(s)"),
        "{out}"
    );
    assert!(
        out.contains("# WARNING: the data is younger than 7 days"),
        "{out}"
    );
}

#[test]
fn calico_staged_policy_passes_the_v3_field_check() {
    let env = Env::new();
    seed_demo(&env);
    for args in [
        vec![
            "policy",
            "--namespace",
            "immich",
            "--format",
            "calico-staged",
            "--ingress",
            "--exclude-cidr",
            "10.42.0.0/16",
        ],
        vec![
            "policy",
            "--namespace",
            "immich",
            "--format",
            "calico-staged",
            "--dns-peer",
            "169.254.20.10/32",
        ],
        vec![
            "policy",
            "--namespace",
            "monitoring",
            "--format",
            "calico-staged",
            "--dns-peer",
            "kube-system/k8s-app=node-local-dns",
            "--no-self",
        ],
    ] {
        let (code, out, err) = tool(&env, &args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(
            out.contains("# applying needs the Calico API server (kubectl) or calicoctl"),
            "{out}"
        );
        let docs = yaml_docs(&out);
        for (i, d) in docs.iter().enumerate() {
            calico_check(&format!("doc[{i}]"), d, "doc").unwrap_or_else(|e| panic!("{e}\n{out}"));
        }
    }
    let (_, out, _) = tool(
        &env,
        &[
            "policy",
            "--namespace",
            "immich",
            "--format",
            "calico-staged",
        ],
    );
    let d = &yaml_docs(&out)[0];
    let eg = d["spec"]["egress"].as_array().unwrap();
    assert_eq!(
        eg[0]["destination"]["services"],
        serde_json::json!({"name": "kube-dns", "namespace": "kube-system"})
    );
    let protos: Vec<&str> = eg.iter().filter_map(|r| r["protocol"].as_str()).collect();
    assert_eq!(protos, ["UDP", "TCP", "TCP", "UDP", "ICMP"], "{out}");
    assert_eq!(d["spec"]["stagedAction"], "Set");
    // The checker itself rejects what Calico rejects.
    let bad = serde_json::json!({"action": "Allow", "destination": {"services": {"name": "x"}, "ports": [53]}, "protocol": "UDP"});
    assert!(calico_check("r", &bad, "egress").is_err());
    let bad =
        serde_json::json!({"action": "Allow", "destination": {"ports": [53]}, "protocol": "ICMP"});
    assert!(calico_check("r", &bad, "egress").is_err());
    let bad =
        serde_json::json!({"action": "Allow", "destination": {"nets": ["0.0.0.0/0"]}, "bogus": 1});
    assert!(calico_check("r", &bad, "egress").is_err());
}

#[test]
fn output_is_deterministic_except_comments() {
    let env = Env::new();
    seed_demo(&env);
    let a = tool(
        &env,
        &[
            "policy",
            "--namespace",
            "immich",
            "--format",
            "calico-staged",
            "--ingress",
        ],
    )
    .1;
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = tool(
        &env,
        &[
            "policy",
            "--namespace",
            "immich",
            "--format",
            "calico-staged",
            "--ingress",
        ],
    )
    .1;
    assert_eq!(body(&a), body(&b));
    assert_ne!(a, b, "the window end (a comment) moves with the DB's now");
}

#[test]
fn check_lists_staged_denies_exit_7_and_0_when_none() {
    let env = Env::new();
    seed_demo(&env);
    let (code, out, err) = tool(&env, &["policy", "--check", "--namespace", "immich"]);
    assert_eq!(code, Some(7), "{out}{err}");
    assert!(
        out.contains(
            "would deny immich -> monitoring (reported by src, today allow, staged deny last "
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "would deny immich -> monitoring (reported by dst, today allow, staged deny last "
        ),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("would deny ")).count(),
        2,
        "{out}"
    );
    assert!(
        err.contains(" ERROR staged check immich: 2 observed edge side(s) would be denied"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, out, err) = tool(&env, &["policy", "--check", "--namespace", "argocd"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(": 0 edge side(s) would be denied"), "{out}");
    // A staged deny before the window does not count.
    let (code, _, _) = tool(
        &env,
        &[
            "policy",
            "--check",
            "--namespace",
            "immich",
            "--since",
            "8m",
        ],
    );
    assert_eq!(code, Some(0));
}

#[test]
fn bad_input_exit_2_before_any_connection() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    let url = format!("postgres://u:pw@127.0.0.1:{port}/x");
    for (args, var) in [
        (vec!["policy", "--namespace", "Immich"], "DIGEST_NAMESPACE"),
        (
            vec!["policy", "--namespace", "a\nERROR forged"],
            "DIGEST_NAMESPACE",
        ),
        (
            vec!["policy", "--namespace", &"a".repeat(64)],
            "DIGEST_NAMESPACE",
        ),
        (vec!["policy"], "DIGEST_NAMESPACE"),
        (
            vec!["policy", "--namespace", "immich", "--since", "garbage"],
            "DIGEST_SINCE",
        ),
        (
            vec!["policy", "--namespace", "immich", "--since=-7d"],
            "DIGEST_SINCE",
        ),
        (
            vec!["policy", "--namespace", "immich", "--since", "0s"],
            "DIGEST_SINCE",
        ),
        (
            vec!["policy", "--namespace", "immich", "--format", "yaml"],
            "DIGEST_FORMAT",
        ),
        (
            vec![
                "policy",
                "--namespace",
                "immich",
                "--exclude-cidr",
                "10.0.0.0/33",
            ],
            "DIGEST_EXCLUDE_CIDR",
        ),
        (
            vec!["policy", "--namespace", "immich", "--dns-peer", "x/y=\"z"],
            "DIGEST_DNS_PEER",
        ),
        (vec!["graph", "--format", "png"], "DIGEST_FORMAT"),
        (vec!["graph", "--namespace", "a'b"], "DIGEST_NAMESPACE"),
    ] {
        let o = bin(&[("DATABASE_URL".into(), url.clone())], &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains(&format!(" ERROR config {var}: ")),
            "{args:?}: {err}"
        );
        assert!(!err.contains("\nERROR forged"));
        assert!(o.stdout.is_empty());
    }
    assert!(l.accept().is_err(), "no DB connection attempted");
    // Env twins work the same way.
    let o = bin(
        &[
            ("DATABASE_URL".into(), url.clone()),
            ("DIGEST_NAMESPACE".into(), "UPPER".into()),
        ],
        &["policy"],
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn unknown_namespace_or_empty_window_is_6_and_missing_tables_3() {
    let env = Env::new();
    seed_demo(&env);
    let (code, out, err) = tool(&env, &["policy", "--namespace", "nosuch"]);
    assert_eq!(code, Some(6), "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains(" ERROR no observed data for namespace nosuch since "),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    let (code, out, err) = tool(&env, &["policy", "--namespace", "immich", "--since", "1s"]);
    assert_eq!(code, Some(6), "{err}");
    assert!(out.is_empty());
    let (code, _, err) = tool(&env, &["graph", "--since", "1s"]);
    assert_eq!(code, Some(6), "{err}");
    // --since in the future.
    let (code, _, err) = tool(
        &env,
        &["policy", "--namespace", "immich", "--since", "2999-01-01"],
    );
    assert_eq!(code, Some(2), "{err}");
    for ddl in [OLD_EDGE_DDL, LEGACY_EDGE_DDL] {
        let old = Env::with_ddl(Some(ddl));
        for args in [vec!["policy", "--namespace", "immich"], vec!["graph"]] {
            let (code, out, err) = tool(&old, &args);
            assert_eq!(code, Some(3), "{err}");
            assert!(out.is_empty());
            assert!(
                err.contains("run goldmane-edge-aggregator's migration"),
                "{err}"
            );
            assert_eq!(err.lines().count(), 1);
        }
    }
    // Unreachable database.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let o = bin(
        &[(
            "DATABASE_URL".into(),
            format!("postgres://u:pw@127.0.0.1:{port}/x"),
        )],
        &["policy", "--namespace", "immich"],
    );
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("pw@"), "{err}");
}

#[test]
fn injected_names_never_break_the_yaml() {
    let env = Env::new();
    seed_demo(&env);
    env.edge_side(
        "immich",
        "x\n  - ipBlock: {cidr: 0.0.0.0/0}",
        "allow",
        "src",
        "1 hour",
        1,
    );
    env.egress(
        "immich",
        "networkset",
        "immich/a\n- to: [{}]\n#",
        "tcp",
        8443,
        "allow",
        "1 hour",
        1,
    );
    let (code, out, err) = tool(&env, &["policy", "--namespace", "immich"]);
    assert_eq!(code, Some(0), "{err}");
    kubernetes_validate(&out);
    let d = &yaml_docs(&out)[0];
    assert_eq!(d["spec"]["egress"].as_array().unwrap().len(), 5, "{out}");
    assert!(
        out.contains("# skipped 1 destination name(s) that are not DNS labels"),
        "{out}"
    );
    assert!(
        out.lines()
            .all(|l| l.starts_with('#') || !l.contains("to: [{}]")),
        "{out}"
    );
}

#[test]
fn closed_stdout_is_one_line_and_exit_8_not_a_panic() {
    let env = Env::new();
    seed_demo(&env);
    for args in [
        vec!["policy", "--namespace", "immich"],
        vec!["graph", "--format", "svg"],
        vec!["policy", "--check", "--namespace", "immich"],
    ] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_edges-digest"))
            .env_clear()
            .env("DATABASE_URL", env.pg.url(DB))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(c.stdout.take());
        let o = c.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(8), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(" ERROR stdout: write failed (closed pipe"),
            "{err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("internal error"),
            "{err}"
        );
    }
}
