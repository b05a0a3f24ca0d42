//! Nodes and Jobs from the Kubernetes API (spec §3.2, §3.3) behind a small trait; the real
//! implementation reads through `homelab_core::kube::ClusterRead` (GET only, paginated).

use crate::decide::{Job, JobCondition, Node};
use homelab_core::kube::{ClusterRead, ListParams};
use serde_json::Value;
use std::sync::Arc;

/// Where nodes and Jobs come from. Errors are one line, naming method, path and status.
pub trait Cluster: Send + Sync {
    fn nodes(&self) -> Result<Vec<Node>, String>;
    fn jobs(&self, namespace: &str) -> Result<Vec<Job>, String>;
}

/// Any `ClusterRead` (the shared GET-only client, or a test double).
pub struct Kube<C: ClusterRead + Send + Sync>(pub Arc<C>);

/// Page size of the lists (spec §9: pages of 500).
pub const PAGE: u32 = 500;

/// List `path` page by page, keeping only what `parse` extracts: at most one page of full
/// objects is in memory at a time (2 000 Jobs stay well inside the 32 MiB budget).
fn list_compact<T>(
    c: &dyn ClusterRead,
    path: &str,
    parse: fn(&Value) -> T,
) -> Result<Vec<T>, homelab_core::kube::KubeError> {
    let mut out = Vec::new();
    let params = ListParams {
        limit: Some(PAGE),
        ..ListParams::default()
    };
    c.list(path, &params, &mut |page| {
        if page.restarted {
            out.clear();
        }
        out.extend(page.items.iter().map(parse));
        Ok(())
    })?;
    Ok(out)
}

impl<C: ClusterRead + Send + Sync> Cluster for Kube<C> {
    fn nodes(&self) -> Result<Vec<Node>, String> {
        let nodes =
            list_compact(&*self.0, "/api/v1/nodes", parse_node).map_err(|e| e.to_string())?;
        if nodes.is_empty() {
            return Err("GET /api/v1/nodes: no nodes listed".into());
        }
        Ok(nodes)
    }
    fn jobs(&self, namespace: &str) -> Result<Vec<Job>, String> {
        let path = format!("/apis/batch/v1/namespaces/{namespace}/jobs");
        list_compact(&*self.0, &path, parse_job).map_err(|e| e.to_string())
    }
}

/// The cluster could not even be configured (no credentials): every read fails with why.
pub struct Unavailable(pub String);

impl Cluster for Unavailable {
    fn nodes(&self) -> Result<Vec<Node>, String> {
        Err(self.0.clone())
    }
    fn jobs(&self, _: &str) -> Result<Vec<Job>, String> {
        Err(self.0.clone())
    }
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// RFC 3339 → Unix seconds.
pub fn ts(v: &Value) -> Option<i64> {
    let t = v.as_str()?;
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|d| d.unix_timestamp())
}

/// A `Node` object → what the report needs (missing fields stay visible as empty/unready).
pub fn parse_node(v: &Value) -> Node {
    let ready = v["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .unwrap_or(false);
    Node {
        name: s(&v["metadata"]["name"]),
        kubelet: s(&v["status"]["nodeInfo"]["kubeletVersion"]),
        ready,
        unschedulable: v["spec"]["unschedulable"].as_bool().unwrap_or(false),
    }
}

/// A `batch/v1 Job` object → what the report needs.
pub fn parse_job(v: &Value) -> Job {
    let st = &v["status"];
    Job {
        name: s(&v["metadata"]["name"]),
        created: ts(&v["metadata"]["creationTimestamp"]),
        start: ts(&st["startTime"]),
        completion: ts(&st["completionTime"]),
        active: st["active"].as_i64().unwrap_or(0),
        conditions: st["conditions"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| JobCondition {
                        type_: s(&c["type"]),
                        status: s(&c["status"]),
                        reason: s(&c["reason"]),
                        last_transition: ts(&c["lastTransitionTime"]),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{job_state, JobState};
    use serde_json::json;

    #[test]
    fn real_shaped_node() {
        let n = parse_node(&json!({
            "metadata": {"name": "k8s-master"},
            "spec": {"unschedulable": true, "taints": [{"key": "node.kubernetes.io/unschedulable"}]},
            "status": {"nodeInfo": {"kubeletVersion": "v1.35.6"},
                       "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "Unknown"}]}
        }));
        assert_eq!(
            n,
            Node {
                name: "k8s-master".into(),
                kubelet: "v1.35.6".into(),
                ready: false,
                unschedulable: true
            }
        );
    }

    #[test]
    fn real_shaped_jobs() {
        let failed = parse_job(&json!({
            "metadata": {"name": "k8s-upgrade-master-1-36-2", "creationTimestamp": "2026-06-28T23:02:00Z"},
            "status": {"startTime": "2026-06-28T23:02:01Z", "failed": 1,
                "conditions": [
                    {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "lastTransitionTime": "2026-06-28T23:05:00Z"},
                    {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "lastTransitionTime": "2026-06-28T23:05:01Z"}]}
        }));
        assert_eq!(
            job_state(&failed),
            JobState::Failed("BackoffLimitExceeded".into())
        );
        assert_eq!(
            failed.end().zip(failed.started()).map(|(e, s)| e - s),
            Some(180)
        );
        let running = parse_job(
            &json!({"metadata": {"name": "r", "creationTimestamp": "2026-06-28T23:02:00+00:00"}, "status": {"active": 1}}),
        );
        assert_eq!(job_state(&running), JobState::Running);
        assert_eq!(running.started(), ts(&json!("2026-06-28T23:02:00Z")));
        let garbage =
            parse_job(&json!({"metadata": {"name": 5}, "status": {"startTime": "yesterday"}}));
        assert_eq!((garbage.name.as_str(), garbage.start), ("", None));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::trend::props::any_json;
    use proptest::prelude::*;
    use serde_json::json;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Arbitrary JSON at any level of a Node or Job object: never panics; strings are
        /// taken only from strings.
        #[test]
        fn parse_node_and_job_never_panic(v in any_json(), w in any_json()) {
            for doc in [
                v.clone(),
                json!({"metadata": v.clone(), "status": w.clone(), "spec": v.clone()}),
                json!({"metadata": {"name": v.clone(), "creationTimestamp": w.clone()},
                       "status": {"conditions": [v.clone(), w.clone()], "nodeInfo": v.clone(), "startTime": v.clone(), "active": w.clone()}}),
            ] {
                let n = parse_node(&doc);
                prop_assert_eq!(n.name, doc["metadata"]["name"].as_str().unwrap_or_default());
                let j = parse_job(&doc);
                prop_assert_eq!(j.name, doc["metadata"]["name"].as_str().unwrap_or_default());
                prop_assert_eq!(j.active, doc["status"]["active"].as_i64().unwrap_or(0));
            }
            let _ = ts(&v);
        }

        /// Well-formed objects read back: names, kubelet, readiness, cordon; Job times in
        /// Unix seconds from RFC 3339 in any offset.
        #[test]
        fn well_formed_objects_read_back(
            name in "[a-z0-9][a-z0-9.-]{0,30}",
            kubelet in "v1\\.[0-9]{1,2}\\.[0-9]{1,2}(\\+k3s1)?",
            ready in prop_oneof![Just("True"), Just("False"), Just("Unknown")],
            cordon in proptest::option::of(any::<bool>()),
            t in 0i64..4_000_000_000,
            off in -12i64..=12,
            active in proptest::option::of(0i64..5),
            conds in proptest::collection::vec(("[A-Za-z]{1,12}", prop_oneof![Just("True"), Just("False")], "[A-Za-z]{0,20}", 0i64..100_000), 0..4),
        ) {
            let rfc = |u: i64| {
                let o = time::UtcOffset::from_whole_seconds((off * 3600) as i32).unwrap();
                time::OffsetDateTime::from_unix_timestamp(u).unwrap().to_offset(o)
                    .format(&time::format_description::well_known::Rfc3339).unwrap()
            };
            let mut node = json!({"metadata": {"name": name}, "status": {"nodeInfo": {"kubeletVersion": kubelet},
                "conditions": [{"type": "MemoryPressure", "status": "True"}, {"type": "Ready", "status": ready}]}});
            if let Some(c) = cordon { node["spec"] = json!({"unschedulable": c}); }
            prop_assert_eq!(parse_node(&node), crate::decide::Node {
                name: name.clone(), kubelet: kubelet.clone(), ready: ready == "True", unschedulable: cordon.unwrap_or(false),
            });
            let mut job = json!({"metadata": {"name": name, "creationTimestamp": rfc(t)},
                "status": {"startTime": rfc(t + 1), "completionTime": rfc(t + 2),
                    "conditions": conds.iter().map(|(ty, st, re, d)| json!({"type": ty, "status": st, "reason": re, "lastTransitionTime": rfc(t + d)})).collect::<Vec<_>>()}});
            if let Some(a) = active { job["status"]["active"] = json!(a); }
            let j = parse_job(&job);
            prop_assert_eq!((j.created, j.start, j.completion, j.active), (Some(t), Some(t + 1), Some(t + 2), active.unwrap_or(0)));
            prop_assert_eq!(j.conditions.len(), conds.len());
            for (c, (ty, st, re, d)) in j.conditions.iter().zip(&conds) {
                prop_assert_eq!((&c.type_, &c.status, &c.reason, c.last_transition), (ty, &st.to_string(), re, Some(t + d)));
            }
        }
    }
}
