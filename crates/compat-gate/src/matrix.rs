//! The addon compatibility matrix (`addon-compat.json`, §2.3): strict parsing, every violation
//! an error naming the file and the addon, before any API call.

use crate::aver::{Minor, Ver};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// `matrix <path>: <addon>: <reason>` (or `matrix <path>: <reason>` for file-level errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixError {
    pub path: PathBuf,
    pub addon: Option<String>,
    pub reason: String,
}

impl fmt::Display for MatrixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.addon {
            Some(a) => write!(f, "matrix {}: {a}: {}", self.path.display(), self.reason),
            None => write!(f, "matrix {}: {}", self.path.display(), self.reason),
        }
    }
}

impl std::error::Error for MatrixError {}

/// Workload kinds an addon can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    Deployment,
    DaemonSet,
    StatefulSet,
}

impl WorkloadKind {
    /// `deployment` as written in the matrix.
    pub fn word(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::DaemonSet => "daemonset",
            WorkloadKind::StatefulSet => "statefulset",
        }
    }
    /// The `apps/v1` resource name.
    pub fn resource(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployments",
            WorkloadKind::DaemonSet => "daemonsets",
            WorkloadKind::StatefulSet => "statefulsets",
        }
    }
}

/// `<namespace>/<kind>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadRef {
    pub namespace: String,
    pub kind: WorkloadKind,
    pub name: String,
}

impl fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.kind.word(), self.name)
    }
}

impl WorkloadRef {
    /// `GET` path of the object.
    pub fn api_path(&self) -> String {
        format!(
            "/apis/apps/v1/namespaces/{}/{}/{}",
            self.namespace,
            self.kind.resource(),
            self.name
        )
    }
}

/// Where the running version is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionFrom {
    Image,
    Label(String),
}

/// One matrix row: addon version → highest (and optionally lowest) supported k8s minor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub version: Ver,
    pub max_k8s: Minor,
    pub min_k8s: Option<Minor>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addon {
    pub name: String,
    pub workload: WorkloadRef,
    pub container: Option<String>,
    pub version_from: VersionFrom,
    /// Sorted by version ascending.
    pub rows: Vec<Row>,
    pub pinned: bool,
    pub pin_reason: Option<String>,
    pub optional: bool,
}

/// A validated matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    pub path: PathBuf,
    /// Hex SHA-256 of the file bytes.
    pub sha256: String,
    /// Sorted by name.
    pub addons: Vec<Addon>,
    /// `_containerd_min`: k8s minor → floors.
    pub containerd_min: BTreeMap<Minor, Vec<Ver>>,
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Read and validate the matrix file.
pub fn load_matrix(path: &Path) -> Result<Matrix, MatrixError> {
    let err = |reason: String| MatrixError {
        path: path.to_path_buf(),
        addon: None,
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| err("not UTF-8".into()))?;
    parse_matrix(path, &text)
}

fn addon_name_ok(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
}

fn dns_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
}

/// Validate matrix text (`path` only names the input in errors).
pub fn parse_matrix(path: &Path, text: &str) -> Result<Matrix, MatrixError> {
    let top_err = |reason: String| MatrixError {
        path: path.to_path_buf(),
        addon: None,
        reason,
    };
    let doc = crate::strictjson::parse(text).map_err(|e| top_err(format!("invalid JSON: {e}")))?;
    let Value::Object(top) = doc else {
        return Err(top_err("not a JSON object".into()));
    };
    let mut addons = Vec::new();
    let mut containerd_min = BTreeMap::new();
    for (key, val) in &top {
        if key == "_containerd_min" {
            containerd_min = parse_containerd_min(val).map_err(|r| MatrixError {
                path: path.to_path_buf(),
                addon: Some("_containerd_min".into()),
                reason: r,
            })?;
            continue;
        }
        if key.starts_with('_') {
            continue;
        }
        let aerr = |reason: String| MatrixError {
            path: path.to_path_buf(),
            addon: Some(key.clone()),
            reason,
        };
        if !addon_name_ok(key) {
            return Err(aerr(
                "addon name must match ^[a-z0-9][a-z0-9._-]{0,62}$".into(),
            ));
        }
        addons.push(parse_addon(key, val).map_err(aerr)?);
    }
    addons.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Matrix {
        path: path.to_path_buf(),
        sha256: sha256_hex(text.as_bytes()),
        addons,
        containerd_min,
    })
}

fn parse_containerd_min(v: &Value) -> Result<BTreeMap<Minor, Vec<Ver>>, String> {
    let Value::Object(m) = v else {
        return Err("must be an object {\"1.M\": [\"x.y.z\", …]}".into());
    };
    let mut out = BTreeMap::new();
    for (k, list) in m {
        if k.starts_with('_') {
            continue;
        }
        let minor = Minor::parse(k).ok_or_else(|| format!("key {k:?} is not a k8s minor"))?;
        let Value::Array(items) = list else {
            return Err(format!("{k}: must be an array of versions"));
        };
        if items.is_empty() {
            return Err(format!("{k}: empty"));
        }
        let mut floors: Vec<Ver> = Vec::new();
        for it in items {
            let s = it
                .as_str()
                .ok_or_else(|| format!("{k}: not a string: {it}"))?;
            let f =
                Ver::parse_triple(s).ok_or_else(|| format!("{k}: {s:?} is not a version x.y.z"))?;
            if floors.iter().any(|o| o.major_minor() == f.major_minor()) {
                return Err(format!("{k}: two floors for branch {s}"));
            }
            floors.push(f);
        }
        floors.sort();
        out.insert(minor, floors);
    }
    Ok(out)
}

fn parse_workload(s: &str) -> Result<WorkloadRef, String> {
    let parts: Vec<&str> = s.split('/').collect();
    let [ns, kind, name] = parts.as_slice() else {
        return Err(format!(
            "workload {s:?}: expected <namespace>/<deployment|daemonset|statefulset>/<name>"
        ));
    };
    let kind = match *kind {
        "deployment" => WorkloadKind::Deployment,
        "daemonset" => WorkloadKind::DaemonSet,
        "statefulset" => WorkloadKind::StatefulSet,
        k => {
            return Err(format!(
                "workload {s:?}: kind {k:?} is not deployment, daemonset or statefulset"
            ))
        }
    };
    if !dns_ok(ns) || !dns_ok(name) {
        return Err(format!("workload {s:?}: invalid namespace or name"));
    }
    Ok(WorkloadRef {
        namespace: ns.to_string(),
        kind,
        name: name.to_string(),
    })
}

fn row_version(s: &str) -> Result<Ver, String> {
    Ver::parse(s)
        .ok_or_else(|| format!("versions: {s:?} is not a version (^v?\\d+(\\.\\d+){{1,2}}$)"))
}

fn k8s_minor(s: &Value, what: &str, row: &str) -> Result<Minor, String> {
    let t = s
        .as_str()
        .ok_or_else(|| format!("versions: {row}: {what} must be a string like \"1.35\""))?;
    Minor::parse(t).ok_or_else(|| {
        format!("versions: {row}: {what} {t:?} is not a k8s minor (^v?\\d+\\.\\d+$)")
    })
}

fn parse_addon(name: &str, v: &Value) -> Result<Addon, String> {
    let Value::Object(m) = v else {
        return Err("entry must be an object".into());
    };
    const KNOWN: [&str; 7] = [
        "workload",
        "container",
        "version_from",
        "versions",
        "pinned",
        "pin_reason",
        "optional",
    ];
    for k in m.keys() {
        if !k.starts_with('_') && !KNOWN.contains(&k.as_str()) {
            return Err(format!("unknown key {k:?} (allowed: {})", KNOWN.join(", ")));
        }
    }
    let workload = match m.get("workload") {
        Some(Value::String(s)) => parse_workload(s)?,
        Some(_) => return Err("workload: must be a string".into()),
        None => return Err("workload: missing".into()),
    };
    let container = match m.get("container") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(_) => return Err("container: must be a non-empty string".into()),
    };
    let version_from = match m.get("version_from") {
        None | Some(Value::Null) => VersionFrom::Image,
        Some(Value::String(s)) if s == "image" => VersionFrom::Image,
        Some(Value::String(s)) => match s.strip_prefix("label:") {
            Some(l) if !l.is_empty() => VersionFrom::Label(l.to_string()),
            _ => {
                return Err(format!(
                    "version_from: {s:?} is not \"image\" or \"label:<key>\""
                ))
            }
        },
        Some(_) => return Err("version_from: must be a string".into()),
    };
    let mut rows: Vec<Row> = Vec::new();
    match m.get("versions") {
        None => return Err("versions: missing".into()),
        Some(Value::Object(o)) => {
            for (k, max) in o {
                if k.starts_with('_') {
                    continue;
                }
                rows.push(Row {
                    version: row_version(k)?,
                    max_k8s: k8s_minor(max, "max_k8s", k)?,
                    min_k8s: None,
                });
            }
        }
        Some(Value::Array(a)) => {
            for (i, it) in a.iter().enumerate() {
                let Value::Object(r) = it else {
                    return Err(format!("versions[{i}]: must be an object"));
                };
                for k in r.keys() {
                    if !k.starts_with('_')
                        && !["version", "max_k8s", "min_k8s"].contains(&k.as_str())
                    {
                        return Err(format!("versions[{i}]: unknown key {k:?}"));
                    }
                }
                let ver = r
                    .get("version")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("versions[{i}]: version missing"))?;
                let max = r
                    .get("max_k8s")
                    .ok_or_else(|| format!("versions[{i}]: max_k8s missing"))?;
                let min = match r.get("min_k8s") {
                    None | Some(Value::Null) => None,
                    Some(x) => Some(k8s_minor(x, "min_k8s", ver)?),
                };
                let row = Row {
                    version: row_version(ver)?,
                    max_k8s: k8s_minor(max, "max_k8s", ver)?,
                    min_k8s: min,
                };
                if let Some(mn) = row.min_k8s {
                    if mn > row.max_k8s {
                        return Err(format!(
                            "versions: {ver}: min_k8s {mn} above max_k8s {}",
                            row.max_k8s
                        ));
                    }
                }
                rows.push(row);
            }
        }
        Some(_) => return Err("versions: must be an object or an array".into()),
    }
    if rows.is_empty() {
        return Err("versions: empty".into());
    }
    rows.sort_by(|a, b| a.version.cmp(&b.version));
    for w in rows.windows(2) {
        if w[0].version == w[1].version {
            return Err(format!(
                "versions: two rows with equal version {}",
                w[1].version
            ));
        }
    }
    let pinned = match m.get("pinned") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("pinned: must be true or false".into()),
    };
    let pin_reason = match m.get("pin_reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::String(_)) => None,
        Some(_) => return Err("pin_reason: must be a string".into()),
    };
    if pinned && pin_reason.is_none() {
        return Err("pinned: true needs a non-empty pin_reason".into());
    }
    let optional = match m.get("optional") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("optional: must be true or false".into()),
    };
    Ok(Addon {
        name: name.to_string(),
        workload,
        container,
        version_from,
        rows,
        pinned,
        pin_reason: if pinned { pin_reason } else { None },
        optional,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"_comment":"addon version -> highest supported k8s minor",
"gpu-operator":{"workload":"gpu-operator/deployment/gpu-operator","pinned":true,"pin_reason":"26.3 needs newer NVIDIA driver image + Ubuntu","versions":{"25.3":"1.35","26.3":"1.36"}},
"kyverno":{"workload":"kyverno/deployment/kyverno-admission-controller","container":"kyverno","version_from":"label:app.kubernetes.io/version",
  "versions":[{"version":"1.18","max_k8s":"1.35"},{"version":"v1.16","max_k8s":"1.34","min_k8s":"1.30"}]},
"_containerd_min":{"1.36":["2.0.0"]}}"#;

    fn p(s: &str) -> Result<Matrix, MatrixError> {
        parse_matrix(Path::new("/etc/homelab/addon-compat.json"), s)
    }

    #[test]
    fn example_parses() {
        let m = p(EXAMPLE).unwrap();
        assert_eq!(m.addons.len(), 2);
        assert_eq!(m.addons[0].name, "gpu-operator");
        assert!(m.addons[0].pinned);
        let k = &m.addons[1];
        assert_eq!(k.rows[0].version.to_string(), "1.16", "sorted, v stripped");
        assert_eq!(k.rows[0].min_k8s, Some(Minor(1, 30)));
        assert_eq!(
            k.version_from,
            VersionFrom::Label("app.kubernetes.io/version".into())
        );
        assert_eq!(
            k.workload.to_string(),
            "kyverno/deployment/kyverno-admission-controller"
        );
        assert_eq!(m.containerd_min[&Minor(1, 36)][0].to_string(), "2.0.0");
        assert_eq!(m.sha256.len(), 64);
    }

    #[test]
    fn every_error() {
        let a = |body: &str| format!("{{\"kyverno\":{{{body}}}}}");
        let w = r#""workload":"kyverno/deployment/kyverno""#;
        let cases: Vec<(String, &str)> = vec![
            (
                "{".into(),
                "matrix /etc/homelab/addon-compat.json: invalid JSON",
            ),
            ("[]".into(), "not a JSON object"),
            (r#"{"a":{},"a":{}}"#.into(), "duplicate key \"a\""),
            (
                a(&format!(
                    r#"{w},"versions":{{"1.16":"1.34","1.16":"1.35"}}"#
                )),
                "duplicate key \"1.16\"",
            ),
            (
                a(&format!(r#"{w},"versions":{{}}"#)),
                "kyverno: versions: empty",
            ),
            (
                a(&format!(r#"{w},"versions":[]"#)),
                "kyverno: versions: empty",
            ),
            (
                a(r#""versions":{"1.16":"1.34"}"#),
                "kyverno: workload: missing",
            ),
            (a(w), "kyverno: versions: missing"),
            (
                a(&format!(r#"{w},"versions":{{"1.16":"1.34"}},"pined":true"#)),
                "kyverno: unknown key \"pined\"",
            ),
            (
                a(&format!(
                    r#"{w},"versions":{{"1.16":"1.34"}},"pinned":true"#
                )),
                "kyverno: pinned: true needs a non-empty pin_reason",
            ),
            (
                a(&format!(
                    r#"{w},"versions":{{"1.16":"1.34"}},"pinned":true,"pin_reason":" ""#
                )),
                "pin_reason",
            ),
            (
                a(&format!(r#"{w},"versions":{{"1.16.x":"1.34"}}"#)),
                "kyverno: versions: \"1.16.x\" is not a version",
            ),
            (
                a(&format!(r#"{w},"versions":{{"1":"1.34"}}"#)),
                "is not a version",
            ),
            (
                a(&format!(r#"{w},"versions":{{"1.16":"1.34.1"}}"#)),
                "is not a k8s minor",
            ),
            (
                a(&format!(
                    r#"{w},"versions":{{"1.16":"1.34","v1.16.0":"1.35"}}"#
                )),
                "two rows with equal version",
            ),
            (
                a(&format!(
                    r#"{w},"versions":[{{"version":"1.16","max_k8s":"1.34","min":"1.2"}}]"#
                )),
                "unknown key \"min\"",
            ),
            (
                a(&format!(r#"{w},"versions":[{{"version":"1.16"}}]"#)),
                "max_k8s missing",
            ),
            (
                a(r#""workload":"kyverno/job/x","versions":{"1.16":"1.34"}"#),
                "kind \"job\"",
            ),
            (
                a(r#""workload":"kyverno/x","versions":{"1.16":"1.34"}"#),
                "expected <namespace>",
            ),
            (
                a(&format!(
                    r#"{w},"versions":{{"1.16":"1.34"}},"version_from":"tag""#
                )),
                "version_from",
            ),
            (
                a(&format!(
                    r#"{w},"versions":{{"1.16":"1.34"}},"optional":"yes""#
                )),
                "optional: must be true or false",
            ),
            (r#"{"Kyverno":{}}"#.into(), "Kyverno: addon name"),
            (
                r#"{"_containerd_min":{"1.36":["2.0"]}}"#.into(),
                "_containerd_min: 1.36: \"2.0\" is not a version",
            ),
        ];
        for (text, want) in cases {
            let e = p(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}\n  => {e}\n  want {want}");
            assert!(
                e.starts_with("matrix /etc/homelab/addon-compat.json: "),
                "{e}"
            );
        }
    }

    #[test]
    fn missing_file() {
        let e = load_matrix(Path::new("/nonexistent/m.json")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("matrix /nonexistent/m.json: cannot read"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Map};

    const PATH: &str = "/etc/homelab/addon-compat.json";

    fn ver(p: &[u32]) -> Ver {
        Ver::parse(&p.iter().map(u32::to_string).collect::<Vec<_>>().join(".")).unwrap()
    }

    fn minor() -> impl Strategy<Value = Minor> {
        (0u32..3, 0u32..60).prop_map(|(a, b)| Minor(a, b))
    }

    fn workload() -> impl Strategy<Value = WorkloadRef> {
        let dns = "[a-z0-9][a-z0-9.-]{0,20}";
        (
            dns,
            prop_oneof![
                Just(WorkloadKind::Deployment),
                Just(WorkloadKind::DaemonSet),
                Just(WorkloadKind::StatefulSet)
            ],
            dns,
        )
            .prop_map(|(namespace, kind, name)| WorkloadRef {
                namespace,
                kind,
                name,
            })
    }

    /// Rows with distinct numeric versions, 2 or 3 components each, sorted ascending.
    fn rows() -> impl Strategy<Value = Vec<Row>> {
        proptest::collection::btree_map(
            (0u32..30, 0u32..30, proptest::option::of(0u32..30)),
            (minor(), proptest::option::of(0u32..60)),
            1..6,
        )
        .prop_map(|m| {
            let mut seen = std::collections::BTreeSet::new();
            let mut out = Vec::new();
            for ((a, b, c), (max, min)) in m {
                // 1.2 and 1.2.0 are the same version: keep one.
                if !seen.insert((a, b, c.unwrap_or(0))) {
                    continue;
                }
                let parts: Vec<u32> = [Some(a), Some(b), c].into_iter().flatten().collect();
                out.push(Row {
                    version: ver(&parts),
                    max_k8s: max,
                    min_k8s: min.map(|m| Minor(max.0, m.min(max.1))),
                });
            }
            out
        })
    }

    fn addon() -> impl Strategy<Value = Addon> {
        (
            workload(),
            proptest::option::of("\\PC{1,12}"),
            proptest::option::of("[a-z0-9./-]{1,24}"),
            rows(),
            proptest::option::of("[a-zA-Z0-9][a-zA-Z0-9 .+-]{0,30}[a-zA-Z0-9]|[a-z]"),
            any::<bool>(),
        )
            .prop_map(|(workload, container, label, rows, pin, optional)| Addon {
                name: String::new(),
                workload,
                container,
                version_from: label.map_or(VersionFrom::Image, VersionFrom::Label),
                rows,
                pinned: pin.is_some(),
                pin_reason: pin,
                optional,
            })
    }

    /// A valid matrix (path and sha filled in by the caller).
    fn matrix() -> impl Strategy<Value = Matrix> {
        (
            proptest::collection::btree_map("[a-z0-9][a-z0-9._-]{0,20}", addon(), 0..5),
            proptest::collection::btree_map(
                minor(),
                proptest::collection::btree_map((0u32..4, 0u32..10), 0u32..40, 1..4),
                0..4,
            ),
        )
            .prop_map(|(addons, cmin)| Matrix {
                path: PathBuf::from(PATH),
                sha256: String::new(),
                addons: addons
                    .into_iter()
                    .map(|(name, mut a)| {
                        a.name = name;
                        a
                    })
                    .collect(),
                containerd_min: cmin
                    .into_iter()
                    .map(|(k, fl)| {
                        (
                            k,
                            fl.into_iter().map(|((a, b), c)| ver(&[a, b, c])).collect(),
                        )
                    })
                    .collect(),
            })
    }

    /// Render the way an operator might write it: object or array rows, optional `v`,
    /// explicit nulls/defaults, `_comment` keys, floors in reverse order.
    fn render(m: &Matrix, style: u8) -> Value {
        let object_rows = style & 1 != 0;
        let vpref = if style & 2 != 0 { "v" } else { "" };
        let noisy = style & 4 != 0;
        let mut top = Map::new();
        if noisy {
            top.insert(
                "_comment".into(),
                json!("addon version -> highest supported k8s minor"),
            );
        }
        for a in &m.addons {
            let mut o = Map::new();
            o.insert("workload".into(), json!(a.workload.to_string()));
            match &a.container {
                Some(c) => {
                    o.insert("container".into(), json!(c));
                }
                None if noisy => {
                    o.insert("container".into(), Value::Null);
                }
                None => {}
            }
            match &a.version_from {
                VersionFrom::Label(l) => {
                    o.insert("version_from".into(), json!(format!("label:{l}")));
                }
                VersionFrom::Image if noisy => {
                    o.insert("version_from".into(), json!("image"));
                }
                VersionFrom::Image => {}
            }
            let usable_object = object_rows && a.rows.iter().all(|r| r.min_k8s.is_none());
            let versions = if usable_object {
                let mut vm = Map::new();
                for r in a.rows.iter().rev() {
                    vm.insert(
                        format!("{vpref}{}", r.version),
                        json!(r.max_k8s.to_string()),
                    );
                }
                if noisy {
                    vm.insert("_note".into(), json!(1));
                }
                Value::Object(vm)
            } else {
                Value::Array(
                    a.rows
                        .iter()
                        .rev()
                        .map(|r| {
                            let mut ro = Map::new();
                            ro.insert("version".into(), json!(format!("{vpref}{}", r.version)));
                            ro.insert("max_k8s".into(), json!(format!("{vpref}{}", r.max_k8s)));
                            match r.min_k8s {
                                Some(mn) => {
                                    ro.insert("min_k8s".into(), json!(mn.to_string()));
                                }
                                None if noisy => {
                                    ro.insert("min_k8s".into(), Value::Null);
                                }
                                None => {}
                            }
                            Value::Object(ro)
                        })
                        .collect(),
                )
            };
            o.insert("versions".into(), versions);
            if a.pinned || noisy {
                o.insert("pinned".into(), json!(a.pinned));
            }
            if let Some(r) = &a.pin_reason {
                // Surrounding blanks are trimmed by the parser.
                o.insert(
                    "pin_reason".into(),
                    json!(if noisy { format!("  {r}\t") } else { r.clone() }),
                );
            }
            if a.optional || noisy {
                o.insert("optional".into(), json!(a.optional));
            }
            if noisy {
                o.insert("_owner".into(), json!("me"));
            }
            top.insert(a.name.clone(), Value::Object(o));
        }
        if !m.containerd_min.is_empty() || noisy {
            let mut c = Map::new();
            for (k, fl) in &m.containerd_min {
                c.insert(
                    format!("{vpref}{k}"),
                    Value::Array(
                        fl.iter()
                            .rev()
                            .map(|f| json!(format!("{vpref}{f}")))
                            .collect(),
                    ),
                );
            }
            top.insert("_containerd_min".into(), Value::Object(c));
        }
        Value::Object(top)
    }

    fn p(text: &str) -> Result<Matrix, MatrixError> {
        parse_matrix(Path::new(PATH), text)
    }

    fn same(got: &Matrix, want: &Matrix) -> Result<(), TestCaseError> {
        prop_assert_eq!(got, want);
        // Ver equality is numeric: also check the exact text of every version.
        for (g, w) in got.addons.iter().zip(&want.addons) {
            let gs: Vec<String> = g.rows.iter().map(|r| r.version.to_string()).collect();
            let ws: Vec<String> = w.rows.iter().map(|r| r.version.to_string()).collect();
            prop_assert_eq!(gs, ws);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Arbitrary text: no panic; every refusal is `matrix <path>: …`.
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,80}|\\{[\\[\\]{}\",:0-9a-z_./ ]{0,80}") {
            if let Err(e) = p(&s) {
                prop_assert!(e.to_string().starts_with(&format!("matrix {PATH}: ")), "{}", e);
            }
        }

        /// Arbitrary JSON of any shape, at the top or as an addon entry: no panic, errors
        /// name the file (and the addon when one is at fault).
        #[test]
        fn arbitrary_json_never_panics(v in crate::strictjson::props::any_json(), name in "[a-z][a-z0-9-]{0,8}") {
            for (i, doc) in [v.clone(), json!({ name.clone(): v.clone() }), json!({"_containerd_min": v.clone()})].into_iter().enumerate() {
                if let Err(e) = p(&doc.to_string()) {
                    let msg = e.to_string();
                    prop_assert!(msg.starts_with(&format!("matrix {PATH}: ")), "{}", msg);
                    if i == 1 && v.is_object() {
                        prop_assert_eq!(e.addon.as_deref(), Some(name.as_str()), "{}", msg);
                    }
                }
            }
        }

    }

    proptest! {
        // Structured generators are the slow part: fewer cases.
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// A generated valid matrix, serialized in any of the accepted styles, parses back to
        /// the same structure.
        #[test]
        fn valid_matrix_round_trips(m in matrix(), style in 0u8..8, pretty in any::<bool>()) {
            let doc = render(&m, style);
            let text = if pretty { serde_json::to_string_pretty(&doc) } else { serde_json::to_string(&doc) }.unwrap();
            let got = p(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            let want = Matrix { sha256: sha256_hex(text.as_bytes()), ..m };
            same(&got, &want)?;
        }

        /// A valid matrix with one field of one addon turned to the wrong JSON type is refused,
        /// naming the file and that addon.
        #[test]
        fn wrong_types_refused(
            m in matrix().prop_filter("needs an addon", |m| !m.addons.is_empty()),
            pick in any::<prop::sample::Index>(),
            field in 0usize..7,
            junk in prop_oneof![Just(json!(7)), Just(json!([])), Just(json!({})), Just(json!(true)), Just(json!(-1.5))],
        ) {
            let mut doc = render(&m, 0);
            let a = &m.addons[pick.index(m.addons.len())];
            let entry = doc.get_mut(&a.name).unwrap().as_object_mut().unwrap();
            let (key, bad) = match field {
                0 => ("workload", junk.clone()),
                1 => ("container", if junk.is_string() { json!("") } else { junk.clone() }),
                2 => ("version_from", junk.clone()),
                3 => ("versions", if junk.is_object() || junk.is_array() { json!("1.2") } else { junk.clone() }),
                4 => ("pinned", if junk.is_boolean() { json!("true") } else { junk.clone() }),
                5 => ("optional", if junk.is_boolean() { json!(1) } else { junk.clone() }),
                _ => ("pin_reason", if junk.is_boolean() { json!(0) } else { junk.clone() }),
            };
            entry.insert(key.into(), bad);
            let e = p(&doc.to_string()).unwrap_err();
            let msg = e.to_string();
            prop_assert_eq!(e.addon.as_deref(), Some(a.name.as_str()), "{}", msg);
            prop_assert!(msg.starts_with(&format!("matrix {PATH}: {}: {key}", a.name)), "{}", msg);
        }

        /// A key written twice anywhere in a valid matrix is refused as invalid JSON naming the
        /// file and the key (serde_json alone would keep the last value silently).
        #[test]
        fn duplicate_keys_refused(
            m in matrix().prop_filter("needs an addon", |m| !m.addons.is_empty()),
            pick in any::<prop::sample::Index>(),
            level in 0usize..3,
        ) {
            let a = &m.addons[pick.index(m.addons.len())];
            let text = render(&m, 0).to_string();
            let (needle, key) = match level {
                0 => (format!("{}:{{", serde_json::to_string(&a.name).unwrap()), a.name.clone()),
                1 => (format!("{}:{{\"workload\":", serde_json::to_string(&a.name).unwrap()), "workload".to_string()),
                _ => ("\"_containerd_min\":{".to_string(), "_containerd_min".to_string()),
            };
            let Some(at) = text.find(&needle) else { return Ok(()) };
            // Insert a copy of the key right after the opening brace of the enclosing object.
            let dup = match level {
                0 => format!("{}:{{}},", serde_json::to_string(&key).unwrap()),
                1 => "\"workload\":\"x/deployment/y\",".to_string(),
                _ => "\"_containerd_min\":{},".to_string(),
            };
            let open = if level == 1 { at + needle.len() - "\"workload\":".len() } else { 1 };
            let mut t = text.clone();
            t.insert_str(open, &dup);
            let e = p(&t).unwrap_err().to_string();
            prop_assert!(e.starts_with(&format!("matrix {PATH}: invalid JSON: duplicate key {key:?}")), "{}\n{}", e, t);
        }
    }
}
