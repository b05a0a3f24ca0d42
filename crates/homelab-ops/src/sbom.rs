//! CycloneDX 1.5 SBOM of what the shipped binaries link, from `cargo metadata` + Cargo.lock.
//!
//! Why not cargo-cyclonedx: it is a ~200-crate install (minutes on the 2-core CI) and emits
//! one BOM per crate including dev-dependencies' noise; what an operator needs is one BOM of
//! the crates actually linked into the image. `cargo metadata --filter-platform` already has
//! the resolved graph with dependency kinds, and Cargo.lock has the registry checksums.
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Registry checksums from Cargo.lock, by (name, version).
pub fn lock_checksums(lock: &str) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let field = |k: &str| {
            block.lines().find_map(|l| {
                l.strip_prefix(k)
                    .and_then(|r| r.trim_start().strip_prefix('='))
                    .map(|v| v.trim().trim_matches('"').to_string())
            })
        };
        if let (Some(n), Some(v), Some(c)) = (field("name"), field("version"), field("checksum")) {
            out.insert((n, v), c);
        }
    }
    out
}

fn purl(p: &Value) -> String {
    format!(
        "pkg:cargo/{}@{}",
        p["name"].as_str().unwrap_or_default(),
        p["version"].as_str().unwrap_or_default()
    )
}

/// The BOM for package `root`: its normal (non-dev, non-build) dependency closure.
pub fn cyclonedx(meta: &Value, lock: &str, root: &str, epoch: i64) -> Result<Value, String> {
    let packages: BTreeMap<&str, &Value> = meta["packages"]
        .as_array()
        .ok_or("no packages in cargo metadata")?
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let nodes: BTreeMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .ok_or("no resolve graph in cargo metadata (run it without --no-deps)")?
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let root_id = packages
        .iter()
        .find(|(_, p)| p["name"] == root)
        .map(|(id, _)| *id)
        .ok_or_else(|| format!("package {root} not in cargo metadata"))?;
    let normal_deps = |id: &str| -> Vec<String> {
        let mut v: Vec<String> = nodes
            .get(id)
            .and_then(|n| n["deps"].as_array())
            .into_iter()
            .flatten()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .is_some_and(|ks| ks.iter().any(|k| k["kind"].is_null()))
            })
            .filter_map(|d| d["pkg"].as_str().map(str::to_string))
            .collect();
        v.sort();
        v
    };
    let mut seen = BTreeSet::new();
    let mut todo = vec![root_id.to_string()];
    while let Some(id) = todo.pop() {
        // A proc macro runs in the compiler and links nothing into the binary: list it, but
        // not what it uses (syn, quote).
        let proc_macro = packages.get(id.as_str()).is_some_and(|p| {
            p["targets"].as_array().into_iter().flatten().any(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "proc-macro"))
            })
        });
        if seen.insert(id.clone()) && !proc_macro {
            todo.extend(normal_deps(&id));
        }
    }
    let sums = lock_checksums(lock);
    let component = |p: &Value, kind: &str| {
        let mut c = json!({
            "type": kind,
            "bom-ref": purl(p),
            "name": p["name"],
            "version": p["version"],
            "purl": purl(p),
        });
        if let Some(l) = p["license"].as_str() {
            c["licenses"] = json!([{ "expression": l }]);
        }
        let key = (
            p["name"].as_str().unwrap_or_default().to_string(),
            p["version"].as_str().unwrap_or_default().to_string(),
        );
        if let Some(sum) = sums.get(&key) {
            c["hashes"] = json!([{ "alg": "SHA-256", "content": sum }]);
        }
        c
    };
    let mut components: Vec<Value> = seen
        .iter()
        .filter(|id| id.as_str() != root_id)
        .filter_map(|id| packages.get(id.as_str()))
        .map(|p| component(p, "library"))
        .collect();
    components.sort_by_key(|c| c["bom-ref"].as_str().unwrap_or_default().to_string());
    let mut deps: Vec<Value> = seen
        .iter()
        .filter_map(|id| {
            let p = packages.get(id.as_str())?;
            let on: BTreeSet<String> = normal_deps(id)
                .iter()
                .filter_map(|d| packages.get(d.as_str()).map(|p| purl(p)))
                .collect();
            Some(json!({ "ref": purl(p), "dependsOn": on }))
        })
        .collect();
    deps.sort_by_key(|d| d["ref"].as_str().unwrap_or_default().to_string());
    let ts = time::OffsetDateTime::from_unix_timestamp(epoch)
        .map_err(|e| format!("SOURCE_DATE_EPOCH {epoch}: {e}"))?;
    Ok(json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "timestamp": homelab_core::log::format_utc(ts),
            "tools": { "components": [{ "type": "application", "name": "homelab-ops-docs",
                                        "version": homelab_core::build_info::VERSION }] },
            "component": component(packages[root_id], "application"),
        },
        "components": components,
        "dependencies": deps,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Value {
        let pkg = |n: &str, v: &str, l: Option<&str>| json!({"id": format!("{n} {v}"), "name": n, "version": v, "license": l});
        let dep = |n: &str, v: &str, kind: Value| json!({"pkg": format!("{n} {v}"), "dep_kinds": [{"kind": kind}]});
        json!({
            "packages": [pkg("app", "0.2.0", Some("MIT")), pkg("ring", "0.17.8", Some("Apache-2.0 AND ISC")),
                         pkg("cc", "1.0.0", None), pkg("proptest", "1.5.0", None), pkg("spin", "0.9.8", Some("MIT")),
                         json!({"id": "derive 1.0.0", "name": "derive", "version": "1.0.0", "targets": [{"kind": ["proc-macro"]}]}),
                         pkg("syn", "2.0.0", None)],
            "resolve": {"nodes": [
                {"id": "app 0.2.0", "deps": [dep("ring", "0.17.8", Value::Null), dep("proptest", "1.5.0", json!("dev")), dep("derive", "1.0.0", Value::Null)]},
                {"id": "derive 1.0.0", "deps": [dep("syn", "2.0.0", Value::Null)]}, {"id": "syn 2.0.0", "deps": []},
                {"id": "ring 0.17.8", "deps": [dep("cc", "1.0.0", json!("build")), dep("spin", "0.9.8", Value::Null)]},
                {"id": "cc 1.0.0", "deps": []}, {"id": "proptest 1.5.0", "deps": []}, {"id": "spin 0.9.8", "deps": []}
            ]}
        })
    }

    #[test]
    fn closure_keeps_linked_crates_only_with_lock_checksums() {
        let lock = "[[package]]\nname = \"ring\"\nversion = \"0.17.8\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"abc123\"\n\n[[package]]\nname = \"app\"\nversion = \"0.2.0\"\n";
        let bom = cyclonedx(&meta(), lock, "app", 0).unwrap();
        let refs: Vec<&str> = bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["bom-ref"].as_str().unwrap())
            .collect();
        assert_eq!(
            refs,
            [
                "pkg:cargo/derive@1.0.0",
                "pkg:cargo/ring@0.17.8",
                "pkg:cargo/spin@0.9.8"
            ]
        );
        assert_eq!(bom["components"][1]["hashes"][0]["content"], "abc123");
        assert_eq!(
            bom["components"][1]["licenses"][0]["expression"],
            "Apache-2.0 AND ISC"
        );
        assert_eq!(bom["metadata"]["component"]["name"], "app");
        assert_eq!(bom["metadata"]["timestamp"], "1970-01-01T00:00:00+00:00");
        assert_eq!(
            bom["dependencies"][0],
            json!({"ref": "pkg:cargo/app@0.2.0", "dependsOn": ["pkg:cargo/derive@1.0.0", "pkg:cargo/ring@0.17.8"]})
        );
        assert!(cyclonedx(&meta(), lock, "nope", 0).is_err());
    }
}
