//! Compiled-in data: the removed-API table (§2.4) and the containerd floors (§3.5.2), both
//! validated like the matrix. A broken compiled-in table fails a unit test, never a run.

use crate::aver::{Minor, Ver};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `data/removed-apis.json`.
pub const REMOVED_APIS_JSON: &str = include_str!("../data/removed-apis.json");
/// `data/containerd-floors.json`.
pub const CONTAINERD_FLOORS_JSON: &str = include_str!("../data/containerd-floors.json");

/// One API version removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// `""` = core.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub resource: String,
    pub removed_in: Minor,
    /// `group/version` to migrate to; `""` = none.
    pub replacement: String,
}

impl Removal {
    /// `extensions/v1beta1` (core: `v1`).
    pub fn group_version(&self) -> String {
        gv(&self.group, &self.version)
    }
}

/// `group/version`, or `version` for the core group.
pub fn gv(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Where a table came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    CompiledIn,
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedApiTable {
    pub origin: Origin,
    pub source: String,
    pub checked: String,
    pub covers_through: Minor,
    pub removals: Vec<Removal>,
}

fn s<'a>(m: &'a serde_json::Map<String, Value>, k: &str, what: &str) -> Result<&'a str, String> {
    m.get(k)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{what}: {k} missing or not a string"))
}

fn date_ok(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

impl RemovedApiTable {
    /// The table compiled into the binary.
    pub fn compiled_in() -> RemovedApiTable {
        // Validated by the unit test `compiled_in_tables_validate`.
        Self::parse(REMOVED_APIS_JSON, Origin::CompiledIn)
            .unwrap_or_else(|e| panic!("compiled-in removed-API table is broken: {e}"))
    }

    /// A replacement file (`COMPAT_REMOVED_APIS`); errors read `removed-apis <path>: <reason>`.
    pub fn load(path: &Path) -> Result<RemovedApiTable, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("removed-apis {}: cannot read: {e}", path.display()))?;
        Self::parse(&text, Origin::File(path.to_path_buf()))
            .map_err(|e| format!("removed-apis {}: {e}", path.display()))
    }

    pub fn parse(text: &str, origin: Origin) -> Result<RemovedApiTable, String> {
        let doc = crate::strictjson::parse(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let Value::Object(m) = doc else {
            return Err("not a JSON object".into());
        };
        for k in m.keys() {
            if !k.starts_with('_')
                && !["source", "checked", "covers_through", "removals"].contains(&k.as_str())
            {
                return Err(format!("unknown key {k:?}"));
            }
        }
        let source = s(&m, "source", "table")?.to_string();
        let checked = s(&m, "checked", "table")?.to_string();
        if !date_ok(&checked) {
            return Err(format!("checked {checked:?} is not YYYY-MM-DD"));
        }
        let ct = s(&m, "covers_through", "table")?;
        let covers_through =
            Minor::parse(ct).ok_or_else(|| format!("covers_through {ct:?} is not a k8s minor"))?;
        let Some(Value::Array(items)) = m.get("removals") else {
            return Err("removals: missing or not an array".into());
        };
        let mut removals = Vec::new();
        for (i, it) in items.iter().enumerate() {
            let Value::Object(r) = it else {
                return Err(format!("removals[{i}]: not an object"));
            };
            let what = format!("removals[{i}]");
            for k in r.keys() {
                if !k.starts_with('_')
                    && ![
                        "group",
                        "version",
                        "kind",
                        "resource",
                        "removed_in",
                        "replacement",
                    ]
                    .contains(&k.as_str())
                {
                    return Err(format!("{what}: unknown key {k:?}"));
                }
            }
            let ri = s(r, "removed_in", &what)?;
            let removal = Removal {
                group: s(r, "group", &what)?.to_string(),
                version: s(r, "version", &what)?.to_string(),
                kind: s(r, "kind", &what)?.to_string(),
                resource: s(r, "resource", &what)?.to_string(),
                removed_in: Minor::parse(ri)
                    .ok_or_else(|| format!("{what}: removed_in {ri:?} is not a k8s minor"))?,
                replacement: s(r, "replacement", &what)?.to_string(),
            };
            if removal.version.is_empty() || removal.kind.is_empty() || removal.resource.is_empty()
            {
                return Err(format!(
                    "{what}: version, kind and resource must be non-empty"
                ));
            }
            if removal.removed_in > covers_through {
                return Err(format!(
                    "{what}: removed_in {} is beyond covers_through {covers_through}",
                    removal.removed_in
                ));
            }
            if removals.iter().any(|o: &Removal| {
                o.group == removal.group && o.version == removal.version && o.kind == removal.kind
            }) {
                return Err(format!(
                    "{what}: {} {} listed twice",
                    removal.group_version(),
                    removal.kind
                ));
            }
            removals.push(removal);
        }
        Ok(RemovedApiTable {
            origin,
            source,
            checked,
            covers_through,
            removals,
        })
    }

    /// `compiled-in` or `file`.
    pub fn origin_word(&self) -> &'static str {
        match self.origin {
            Origin::CompiledIn => "compiled-in",
            Origin::File(_) => "file",
        }
    }

    /// Every resource named by a removal or its replacement (for the RBAC test, §11.4).
    pub fn listed_resources(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for r in &self.removals {
            if r.replacement.is_empty() {
                continue;
            }
            let group = r
                .replacement
                .rsplit_once('/')
                .map_or(String::new(), |(g, _)| g.to_string());
            let e = (group, r.resource.clone());
            if !out.contains(&e) {
                out.push(e);
            }
        }
        out.sort();
        out
    }
}

/// Containerd floors per k8s minor (§3.5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerdFloors {
    pub source: String,
    pub checked: String,
    pub floors: BTreeMap<Minor, Vec<Ver>>,
}

impl ContainerdFloors {
    pub fn compiled_in() -> ContainerdFloors {
        Self::parse(CONTAINERD_FLOORS_JSON)
            .unwrap_or_else(|e| panic!("compiled-in containerd floors are broken: {e}"))
    }

    pub fn parse(text: &str) -> Result<ContainerdFloors, String> {
        let doc = crate::strictjson::parse(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let Value::Object(m) = doc else {
            return Err("not a JSON object".into());
        };
        let source = s(&m, "source", "floors")?.to_string();
        let checked = s(&m, "checked", "floors")?.to_string();
        if !date_ok(&checked) {
            return Err(format!("checked {checked:?} is not YYYY-MM-DD"));
        }
        let Some(Value::Object(f)) = m.get("floors") else {
            return Err("floors: missing or not an object".into());
        };
        let mut floors = BTreeMap::new();
        for (k, v) in f {
            let minor = Minor::parse(k).ok_or_else(|| format!("floors: {k:?} is not a minor"))?;
            let Value::Array(a) = v else {
                return Err(format!("floors: {k}: not an array"));
            };
            let mut list = Vec::new();
            for x in a {
                let t = x.as_str().unwrap_or("");
                list.push(
                    Ver::parse_triple(t).ok_or_else(|| format!("floors: {k}: {x} is not x.y.z"))?,
                );
            }
            if list.is_empty() {
                return Err(format!("floors: {k}: empty"));
            }
            list.sort();
            floors.insert(minor, list);
        }
        Ok(ContainerdFloors {
            source,
            checked,
            floors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_in_tables_validate() {
        let t = RemovedApiTable::compiled_in();
        let newest = t.removals.iter().map(|r| r.removed_in).max().unwrap();
        assert!(t.covers_through >= newest);
        assert!(t.source.starts_with("https://kubernetes.io/"));
        // Spot checks of §2.4.2.
        let has = |g: &str, v: &str, k: &str, rel: Minor| {
            t.removals
                .iter()
                .any(|r| r.group == g && r.version == v && r.kind == k && r.removed_in == rel)
        };
        assert!(has("extensions", "v1beta1", "Deployment", Minor(1, 16)));
        assert!(has("apps", "v1beta2", "DaemonSet", Minor(1, 16)));
        assert!(has("networking.k8s.io", "v1beta1", "Ingress", Minor(1, 22)));
        assert!(has(
            "rbac.authorization.k8s.io",
            "v1beta1",
            "ClusterRoleBinding",
            Minor(1, 22)
        ));
        assert!(has("batch", "v1beta1", "CronJob", Minor(1, 25)));
        assert!(has("policy", "v1beta1", "PodSecurityPolicy", Minor(1, 25)));
        assert!(has(
            "autoscaling",
            "v2beta2",
            "HorizontalPodAutoscaler",
            Minor(1, 26)
        ));
        assert!(has(
            "storage.k8s.io",
            "v1beta1",
            "CSIStorageCapacity",
            Minor(1, 27)
        ));
        assert!(has(
            "flowcontrol.apiserver.k8s.io",
            "v1beta2",
            "FlowSchema",
            Minor(1, 29)
        ));
        assert!(has(
            "flowcontrol.apiserver.k8s.io",
            "v1beta3",
            "PriorityLevelConfiguration",
            Minor(1, 32)
        ));
        let f = ContainerdFloors::compiled_in();
        assert!(f.floors.contains_key(&Minor(1, 35)));
    }

    #[test]
    fn bad_tables() {
        let base = r#"{"source":"u","checked":"2026-06-28","covers_through":"1.32","removals":[{"group":"batch","version":"v1beta1","kind":"CronJob","resource":"cronjobs","removed_in":"1.25","replacement":"batch/v1"}]}"#;
        assert!(RemovedApiTable::parse(base, Origin::CompiledIn).is_ok());
        for (from, to, want) in [
            ("\"1.32\"", "\"1.24\"", "beyond covers_through"),
            ("2026-06-28", "28.6.2026", "YYYY-MM-DD"),
            ("\"1.25\"", "\"1.25.0\"", "removed_in"),
            ("\"replacement\"", "\"replacment\"", "unknown key"),
        ] {
            let e = RemovedApiTable::parse(&base.replacen(from, to, 1), Origin::CompiledIn)
                .unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }
}
