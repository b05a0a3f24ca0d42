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
    /// A beta the apiserver does not serve unless enabled (KEP-3136): a finding means someone
    /// turned it on.
    pub off_by_default: bool,
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
                        "off_by_default",
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
                off_by_default: match r.get("off_by_default") {
                    None => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err(format!("{what}: off_by_default is not a boolean")),
                },
            };
            if removal.version.is_empty() || removal.kind.is_empty() || removal.resource.is_empty()
            {
                return Err(format!(
                    "{what}: version, kind and resource must be non-empty"
                ));
            }
            // A removal after covers_through is a scheduled one (k8s.io/api's lifecycle files
            // name them years ahead); covers_through only says how far the table was checked.
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
        // Generated (issue 14): the source names the vendored k8s.io/api tag; scheduled
        // removals may lie beyond covers_through.
        assert!(t.source.starts_with("k8s.io/api v0."), "{}", t.source);
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
        let base = r#"{"source":"u","checked":"2026-06-28","covers_through":"1.32","removals":[{"group":"batch","version":"v1beta1","kind":"CronJob","resource":"cronjobs","removed_in":"1.25","replacement":"batch/v1","off_by_default":false}]}"#;
        assert!(RemovedApiTable::parse(base, Origin::CompiledIn).is_ok());
        for (from, to, want) in [
            ("false", "\"yes\"", "off_by_default is not a boolean"),
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

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Map};

    fn date() -> impl Strategy<Value = String> {
        "[0-9]{4}-[0-9]{2}-[0-9]{2}"
    }

    fn table() -> impl Strategy<Value = RemovedApiTable> {
        (
            "\\PC{0,30}",
            date(),
            (1u32..3, 0u32..60),
            proptest::collection::btree_map(
                (
                    "[a-z.]{0,12}",
                    "v[0-9]{1,2}(alpha|beta)?[0-9]?",
                    "[A-Z][A-Za-z]{0,12}",
                ),
                ("\\PC{1,12}", 0u32..60, "([a-z.]{0,10}/)?v[0-9]|"),
                0..8,
            ),
        )
            .prop_map(|(source, checked, (maj, min), rm)| RemovedApiTable {
                origin: Origin::File(PathBuf::from("/etc/x.json")),
                source,
                checked,
                covers_through: Minor(maj, min),
                removals: rm
                    .into_iter()
                    .map(
                        |((group, version, kind), (resource, m, replacement))| Removal {
                            group,
                            version,
                            kind,
                            resource,
                            removed_in: Minor(maj, m.min(min)),
                            replacement,
                            off_by_default: m % 2 == 1,
                        },
                    )
                    .collect(),
            })
    }

    fn render_table(t: &RemovedApiTable) -> Value {
        json!({
            "_comment": "generated",
            "source": t.source,
            "checked": t.checked,
            "covers_through": t.covers_through.to_string(),
            "removals": t.removals.iter().map(|r| json!({
                "group": r.group, "version": r.version, "kind": r.kind, "resource": r.resource,
                "removed_in": format!("v{}", r.removed_in), "replacement": r.replacement,
                "off_by_default": r.off_by_default, "_why": null,
            })).collect::<Vec<_>>(),
        })
    }

    fn floors() -> impl Strategy<Value = ContainerdFloors> {
        (
            "\\PC{0,30}",
            date(),
            proptest::collection::btree_map(
                (0u32..3, 0u32..60),
                proptest::collection::vec((0u32..4, 0u32..10, 0u32..40), 1..4),
                0..5,
            ),
        )
            .prop_map(|(source, checked, f)| ContainerdFloors {
                source,
                checked,
                floors: f
                    .into_iter()
                    .map(|((a, b), l)| {
                        let mut l: Vec<Ver> = l
                            .into_iter()
                            .map(|(x, y, z)| Ver::parse_triple(&format!("{x}.{y}.{z}")).unwrap())
                            .collect();
                        l.sort();
                        (Minor(a, b), l)
                    })
                    .collect(),
            })
    }

    fn render_floors(f: &ContainerdFloors) -> Value {
        let mut m = Map::new();
        for (k, l) in &f.floors {
            m.insert(
                k.to_string(),
                Value::Array(l.iter().rev().map(|v| json!(v.to_string())).collect()),
            );
        }
        json!({"source": f.source, "checked": f.checked, "floors": m})
    }

    fn junk() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!(null)),
            Just(json!(3)),
            Just(json!(true)),
            Just(json!([])),
            Just(json!({}))
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Arbitrary text or JSON: neither table parser panics.
        #[test]
        fn arbitrary_input_never_panics(
            s in "\\PC{0,80}|\\{[\\[\\]{}\",:0-9a-z_./ ]{0,80}",
            v in crate::strictjson::props::any_json(),
        ) {
            let _ = RemovedApiTable::parse(&s, Origin::CompiledIn);
            let _ = ContainerdFloors::parse(&s);
            for doc in [v.clone(), json!({"source": "s", "checked": "2026-01-01", "covers_through": "1.35", "removals": v.clone()}),
                        json!({"source": "s", "checked": "2026-01-01", "floors": v.clone()}),
                        json!({"source": "s", "checked": "2026-01-01", "covers_through": "1.35", "removals": [v.clone()]})] {
                let _ = RemovedApiTable::parse(&doc.to_string(), Origin::CompiledIn);
                let _ = ContainerdFloors::parse(&doc.to_string());
            }
        }

    }

    proptest! {
        // Structured generators are the slow part: fewer cases.
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// A generated valid removed-API table parses back to the same structure.
        #[test]
        fn removed_api_table_round_trips(t in table(), pretty in any::<bool>()) {
            let doc = render_table(&t);
            let text = if pretty { serde_json::to_string_pretty(&doc) } else { serde_json::to_string(&doc) }.unwrap();
            prop_assert_eq!(RemovedApiTable::parse(&text, t.origin.clone()).unwrap(), t);
        }

        /// A wrong type at the top or in a removal is refused, naming the field (and the row).
        #[test]
        fn removed_api_table_wrong_types_refused(
            t in table().prop_filter("one removal", |t| !t.removals.is_empty()),
            top in any::<bool>(),
            field in 0usize..6,
            row in any::<prop::sample::Index>(),
            bad in junk(),
        ) {
            let mut doc = render_table(&t);
            let e = if top {
                let key = ["source", "checked", "covers_through", "removals", "source", "checked"][field];
                let bad = if key == "removals" && bad.is_array() { json!({}) } else { bad };
                doc[key] = bad;
                let e = RemovedApiTable::parse(&doc.to_string(), Origin::CompiledIn).unwrap_err();
                prop_assert!(e.starts_with(&format!("table: {key} missing")) || e.starts_with(&format!("{key}: missing")), "{}", e);
                e
            } else {
                let i = row.index(t.removals.len());
                let key = ["group", "version", "kind", "resource", "removed_in", "replacement"][field];
                doc["removals"][i][key] = bad;
                let e = RemovedApiTable::parse(&doc.to_string(), Origin::CompiledIn).unwrap_err();
                prop_assert_eq!(&e, &format!("removals[{i}]: {key} missing or not a string"));
                e
            };
            prop_assert!(!e.is_empty());
        }

        /// A duplicated (group, version, kind) row is refused, naming the later row.
        #[test]
        fn removed_api_table_duplicate_rows_refused(t in table().prop_filter("one removal", |t| !t.removals.is_empty()), row in any::<prop::sample::Index>()) {
            let mut doc = render_table(&t);
            let i = row.index(t.removals.len());
            let copy = doc["removals"][i].clone();
            doc["removals"].as_array_mut().unwrap().push(copy);
            let e = RemovedApiTable::parse(&doc.to_string(), Origin::CompiledIn).unwrap_err();
            let n = t.removals.len();
            prop_assert!(e.starts_with(&format!("removals[{n}]: ")) && e.ends_with("listed twice"), "{}", e);
        }

        /// Generated containerd floors parse back (sorted) to the same structure.
        #[test]
        fn containerd_floors_round_trip(f in floors()) {
            let text = render_floors(&f).to_string();
            prop_assert_eq!(ContainerdFloors::parse(&text).unwrap(), f);
        }

        /// A non-triple floor or non-minor key is refused, naming the key.
        #[test]
        fn containerd_floors_bad_entries_refused(
            f in floors().prop_filter("one minor", |f| !f.floors.is_empty()),
            bad in prop_oneof![Just(json!("2.0")), Just(json!("2.0.0.1")), Just(json!(2)), Just(json!(null)), Just(json!("x.y.z"))],
        ) {
            let mut doc = render_floors(&f);
            let k = f.floors.keys().next().unwrap().to_string();
            doc["floors"][&k].as_array_mut().unwrap().push(bad);
            let e = ContainerdFloors::parse(&doc.to_string()).unwrap_err();
            prop_assert!(e.starts_with(&format!("floors: {k}: ")) && e.ends_with(" is not x.y.z"), "{}", e);
        }
    }
}
