use crate::{bin, root};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use yaml_rust2::{Yaml, YamlLoader};

/// Every YAML document under deploy/ (recursively), with its file.
fn documents() -> Vec<(PathBuf, Value)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("deploy"), &mut files);
    files.sort();
    let mut docs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let parsed =
            YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for d in parsed {
            let v = to_json(&d);
            if !v.is_null() {
                docs.push((f.clone(), v));
            }
        }
    }
    docs
}

/// YAML → JSON value (manifests only use maps, lists, strings, numbers, booleans).
fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| {
                    (
                        k.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| format!("{k:?}")),
                        to_json(v),
                    )
                })
                .collect(),
        ),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(r) => r
            .parse::<f64>()
            .map(Value::from)
            .unwrap_or(Value::String(r.clone())),
        Yaml::Boolean(b) => Value::Bool(*b),
        _ => Value::Null,
    }
}

/// The pod spec of a workload, if it is one.
fn pod_spec(doc: &Value) -> Option<&Value> {
    match doc["kind"].as_str()? {
        "Deployment" | "Job" | "StatefulSet" | "DaemonSet" => {
            Some(&doc["spec"]["template"]["spec"])
        }
        "CronJob" => Some(&doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]),
        _ => None,
    }
}

/// Env var names a binary accepts, read from its own clap definition (`--help`).
fn accepted_env(binary: &str) -> BTreeSet<String> {
    let out = std::process::Command::new(bin(binary))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let mut names = BTreeSet::new();
    for part in help.split("[env: ").skip(1) {
        let name: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        names.insert(name);
    }
    // Subcommands may declare more flags.
    for sub in [
        "run",
        "status",
        "digest",
        "migrate",
        "validate-matrix",
        "serve",
    ] {
        let o = std::process::Command::new(bin(binary))
            .args([sub, "--help"])
            .output()
            .unwrap();
        if o.status.success() {
            for part in String::from_utf8_lossy(&o.stdout).split("[env: ").skip(1) {
                names.insert(
                    part.chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect(),
                );
            }
        }
    }
    names
}

#[test]
fn kustomization_lists_every_manifest() {
    let k = std::fs::read_to_string(root().join("deploy/kustomization.yaml"))
        .expect("deploy/kustomization.yaml");
    let v = to_json(&YamlLoader::load_from_str(&k).unwrap()[0]);
    let listed: Vec<&str> = v["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for l in &listed {
        assert!(
            root().join("deploy").join(l).exists(),
            "kustomization lists {l}, which does not exist"
        );
    }
    for e in std::fs::read_dir(root().join("deploy")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "kustomization.yaml" || name.starts_with('.') {
            continue;
        }
        assert!(
            listed.iter().any(|l| l.trim_end_matches('/') == name),
            "{name} not in kustomization resources"
        );
    }
}

/// Non-root, read-only root filesystem, no privilege escalation, all capabilities dropped,
/// seccomp RuntimeDefault, requests and limits set, and only env vars the binary accepts.
#[test]
fn workloads_are_locked_down() {
    let docs = documents();
    let mut workloads = 0;
    for (file, doc) in &docs {
        let Some(pod) = pod_spec(doc) else { continue };
        workloads += 1;
        let what = format!("{} {}", file.display(), doc["metadata"]["name"]);
        let psc = &pod["securityContext"];
        assert_eq!(psc["runAsNonRoot"], true, "{what}: pod runAsNonRoot");
        let containers = pod["containers"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: containers"));
        assert!(!containers.is_empty());
        for c in containers {
            let sc = &c["securityContext"];
            let name = c["name"].as_str().unwrap_or("?");
            assert_eq!(
                sc["readOnlyRootFilesystem"], true,
                "{what}/{name}: readOnlyRootFilesystem"
            );
            assert_eq!(
                sc["allowPrivilegeEscalation"], false,
                "{what}/{name}: allowPrivilegeEscalation"
            );
            let drops: Vec<&str> = sc["capabilities"]["drop"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            assert!(
                drops.contains(&"ALL"),
                "{what}/{name}: capabilities.drop ALL"
            );
            let seccomp = sc["seccompProfile"]["type"]
                .as_str()
                .or(psc["seccompProfile"]["type"].as_str());
            assert_eq!(seccomp, Some("RuntimeDefault"), "{what}/{name}: seccomp");
            let r = &c["resources"];
            assert!(
                r["requests"]["cpu"].is_string() && r["requests"]["memory"].is_string(),
                "{what}/{name}: requests"
            );
            assert!(
                r["limits"]["memory"].is_string(),
                "{what}/{name}: memory limit"
            );
            // The binary the container runs: its command/args or the container name.
            let binary = crate::binaries()
                .into_iter()
                .find(|b| {
                    c["command"].to_string().contains(b.as_str())
                        || c["args"].to_string().contains(b.as_str())
                        || name == b
                })
                .unwrap_or_else(|| panic!("{what}/{name}: which binary does this container run?"));
            let accepted = accepted_env(&binary);
            for e in c["env"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                let n = e["name"].as_str().unwrap();
                assert!(
                    accepted.contains(n),
                    "{what}/{name}: env {n} is not accepted by {binary} (accepted: {accepted:?})"
                );
                assert!(
                    !(e["value"]
                        .as_str()
                        .is_some_and(|v| v.contains("hooks.slack.com"))),
                    "{what}/{name}: a webhook inline in the manifest; use a Secret"
                );
            }
        }
    }
    let k8s_binaries = [
        "goldmane-edge-aggregator",
        "edges-digest",
        "compat-gate",
        "nightly-report",
    ];
    if crate::binaries()
        .iter()
        .any(|b| k8s_binaries.contains(&b.as_str()))
    {
        assert!(workloads >= 1, "no workloads under deploy/");
    }
}

/// Memory limits and CPU requests as the specs fix them (64Mi and 10m for the aggregator and
/// the digest; compat-gate 10m/32Mi request, 64Mi limit).
#[test]
fn resource_figures_match_the_specs() {
    let docs = documents();
    let want = [
        ("goldmane-edge-aggregator", "10m", "64Mi"),
        ("edges-digest", "10m", "64Mi"),
        ("compat-gate", "10m", "64Mi"),
    ];
    for (binary, cpu, mem) in want {
        if !crate::binaries().iter().any(|b| b == binary) {
            continue;
        }
        let found = docs
            .iter()
            .filter_map(|(_, d)| pod_spec(d))
            .flat_map(|p| p["containers"].as_array().cloned().unwrap_or_default())
            .find(|c| {
                c["name"] == binary
                    || c["command"].to_string().contains(binary)
                    || c["args"].to_string().contains(binary)
            });
        let c = found.unwrap_or_else(|| panic!("no workload runs {binary}"));
        assert_eq!(
            c["resources"]["requests"]["cpu"], cpu,
            "{binary} cpu request"
        );
        assert_eq!(
            c["resources"]["limits"]["memory"], mem,
            "{binary} memory limit"
        );
    }
}

/// Secrets are referenced by name only: no Secret object carries data in deploy/.
#[test]
fn no_secret_material_in_manifests() {
    for (file, doc) in documents() {
        if doc["kind"] == "Secret" {
            assert!(
                doc["data"].is_null() && doc["stringData"].is_null(),
                "{}: Secret with data",
                file.display()
            );
        }
    }
}
