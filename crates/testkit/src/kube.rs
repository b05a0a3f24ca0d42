//! `FakeKube`: a Kubernetes API server stand-in on loopback HTTPS with a throwaway CA (rcgen).
//!
//! It answers GETs with objects shaped like a real kube-apiserver's (v1.3x): `/version`,
//! discovery (`/api`, `/apis`, `APIResourceList`s), any list or object under
//! `/api/v1/...` and `/apis/<g>/<v>/...` (cluster-wide or namespaced), `limit`/`continue`
//! pagination with opaque continue tokens, label/field selectors (equality), metadata-only
//! lists when `Accept` asks for `PartialObjectMetadataList`, and `/metrics` text. Objects are
//! stored per `<group>/<version>/<resource>`; builders below produce Nodes, apps workloads,
//! Jobs and Helm release Secrets (gzip + base64, as Helm's Secret driver stores them).
//!
//! Faults: [`Fault`] entries (status 401/403/404/410/500 with a real `Status` body, delays,
//! garbage, hang) matched by path prefix, optionally a limited number of times; an expiring
//! `continue` (410) on demand; a bearer-token check (401 on mismatch) or required mTLS.
//! Every request is recorded (method, path, headers).

use crate::httpd::{HttpServer, Reply, Request};
use base64::Engine;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a [`Fault`] does.
#[derive(Debug, Clone)]
pub enum FaultKind {
    /// Answer with this status and a Kubernetes `Status` body carrying `message`.
    Status(u16, String),
    /// Wait, then answer normally.
    Delay(Duration),
    /// `200` with a body that is not JSON.
    Garbage,
    /// Never answer.
    Hang,
}

/// A fault for requests whose path starts with `path_prefix`.
#[derive(Debug, Clone)]
pub struct Fault {
    pub path_prefix: String,
    pub kind: FaultKind,
    /// `None` = always; `Some(n)` = the next n matching requests.
    pub times: Option<u32>,
}

/// Discovery entry: one resource of a group/version.
#[derive(Debug, Clone)]
pub struct ApiResource {
    pub name: String,
    pub kind: String,
    pub namespaced: bool,
}

/// The cluster a [`FakeKube`] serves. Mutable while running through [`FakeKube::with`].
#[derive(Debug, Clone)]
pub struct FakeCluster {
    /// `gitVersion` of `/version`, e.g. `v1.35.6`.
    pub git_version: String,
    /// Served group versions: `("", "v1")` for core, `("apps", "v1")`, …
    pub discovery: Vec<(String, String, Vec<ApiResource>)>,
    /// Objects per `"<group>/<version>/<resource>"` (core group = empty: `"/v1/nodes"`).
    pub objects: BTreeMap<String, Vec<Value>>,
    /// `/metrics` exposition text.
    pub metrics: String,
    pub faults: Vec<Fault>,
    /// Answer the next n continued list requests with `410 Gone` (expired continue).
    pub expire_continue: u32,
    /// Page size used when a list sends no `limit` (real servers: unlimited = `None`).
    pub default_limit: Option<usize>,
    /// The apiserver instances the EndpointSlices of `default/kubernetes` list; `None` = this
    /// server alone (a single control-plane node).
    pub apiserver_endpoints: Option<Vec<ApiserverEndpoint>>,
    /// This server's port (set by [`FakeKube::start`]).
    pub self_port: u16,
    /// `group/version`s served by an aggregated apiserver that cannot answer
    /// `PartialObjectMetadataList` (a metadata-only `Accept` without fallback gets 406).
    pub aggregated: Vec<String>,
}

/// One endpoint of the `kubernetes` Service's EndpointSlice.
#[derive(Debug, Clone)]
pub struct ApiserverEndpoint {
    pub address: String,
    pub port: u16,
    /// `conditions.ready`; `None` = absent (which discovery/v1 defines as ready).
    pub ready: Option<bool>,
}

impl Default for FakeCluster {
    fn default() -> Self {
        FakeCluster {
            git_version: "v1.35.6".into(),
            discovery: default_discovery(),
            objects: BTreeMap::new(),
            metrics: default_metrics(&[]),
            faults: Vec::new(),
            expire_continue: 0,
            default_limit: None,
            apiserver_endpoints: None,
            self_port: 0,
            aggregated: Vec::new(),
        }
    }
}

fn res(name: &str, kind: &str, namespaced: bool) -> ApiResource {
    ApiResource {
        name: name.into(),
        kind: kind.into(),
        namespaced,
    }
}

/// The group versions a v1.35 kubeadm cluster serves (the resources that matter here).
pub fn default_discovery() -> Vec<(String, String, Vec<ApiResource>)> {
    let gv = |g: &str, v: &str, r: Vec<ApiResource>| (g.to_string(), v.to_string(), r);
    vec![
        gv(
            "",
            "v1",
            vec![
                res("configmaps", "ConfigMap", true),
                res("events", "Event", true),
                res("namespaces", "Namespace", false),
                res("nodes", "Node", false),
                res("pods", "Pod", true),
                res("secrets", "Secret", true),
                res("serviceaccounts", "ServiceAccount", true),
                res("services", "Service", true),
            ],
        ),
        gv(
            "apiregistration.k8s.io",
            "v1",
            vec![res("apiservices", "APIService", false)],
        ),
        gv(
            "apps",
            "v1",
            vec![
                res("controllerrevisions", "ControllerRevision", true),
                res("daemonsets", "DaemonSet", true),
                res("deployments", "Deployment", true),
                res("replicasets", "ReplicaSet", true),
                res("statefulsets", "StatefulSet", true),
            ],
        ),
        gv("events.k8s.io", "v1", vec![res("events", "Event", true)]),
        gv(
            "authentication.k8s.io",
            "v1",
            vec![res("tokenreviews", "TokenReview", false)],
        ),
        gv(
            "authorization.k8s.io",
            "v1",
            vec![
                res(
                    "localsubjectaccessreviews",
                    "LocalSubjectAccessReview",
                    true,
                ),
                res("selfsubjectaccessreviews", "SelfSubjectAccessReview", false),
                res("subjectaccessreviews", "SubjectAccessReview", false),
            ],
        ),
        gv(
            "autoscaling",
            "v2",
            vec![res(
                "horizontalpodautoscalers",
                "HorizontalPodAutoscaler",
                true,
            )],
        ),
        gv(
            "autoscaling",
            "v1",
            vec![res(
                "horizontalpodautoscalers",
                "HorizontalPodAutoscaler",
                true,
            )],
        ),
        gv(
            "batch",
            "v1",
            vec![res("cronjobs", "CronJob", true), res("jobs", "Job", true)],
        ),
        gv(
            "certificates.k8s.io",
            "v1",
            vec![res(
                "certificatesigningrequests",
                "CertificateSigningRequest",
                false,
            )],
        ),
        gv(
            "networking.k8s.io",
            "v1",
            vec![
                res("ingressclasses", "IngressClass", false),
                res("ingresses", "Ingress", true),
                res("networkpolicies", "NetworkPolicy", true),
            ],
        ),
        gv(
            "policy",
            "v1",
            vec![res("poddisruptionbudgets", "PodDisruptionBudget", true)],
        ),
        gv(
            "rbac.authorization.k8s.io",
            "v1",
            vec![
                res("clusterrolebindings", "ClusterRoleBinding", false),
                res("clusterroles", "ClusterRole", false),
                res("rolebindings", "RoleBinding", true),
                res("roles", "Role", true),
            ],
        ),
        gv(
            "storage.k8s.io",
            "v1",
            vec![
                res("csidrivers", "CSIDriver", false),
                res("csinodes", "CSINode", false),
                res("csistoragecapacities", "CSIStorageCapacity", true),
                res("storageclasses", "StorageClass", false),
                res("volumeattachments", "VolumeAttachment", false),
            ],
        ),
        gv(
            "admissionregistration.k8s.io",
            "v1",
            vec![
                res(
                    "mutatingwebhookconfigurations",
                    "MutatingWebhookConfiguration",
                    false,
                ),
                res(
                    "validatingwebhookconfigurations",
                    "ValidatingWebhookConfiguration",
                    false,
                ),
            ],
        ),
        gv(
            "apiextensions.k8s.io",
            "v1",
            vec![res(
                "customresourcedefinitions",
                "CustomResourceDefinition",
                false,
            )],
        ),
        gv(
            "scheduling.k8s.io",
            "v1",
            vec![res("priorityclasses", "PriorityClass", false)],
        ),
        gv(
            "coordination.k8s.io",
            "v1",
            vec![res("leases", "Lease", true)],
        ),
        gv(
            "node.k8s.io",
            "v1",
            vec![res("runtimeclasses", "RuntimeClass", false)],
        ),
        gv(
            "discovery.k8s.io",
            "v1",
            vec![res("endpointslices", "EndpointSlice", true)],
        ),
        gv(
            "flowcontrol.apiserver.k8s.io",
            "v1",
            vec![
                res("flowschemas", "FlowSchema", false),
                res(
                    "prioritylevelconfigurations",
                    "PriorityLevelConfiguration",
                    false,
                ),
            ],
        ),
    ]
}

/// A `/metrics` text like kube-apiserver's, with `apiserver_requested_deprecated_apis` series
/// `(group, version, resource, removed_release)` and some ordinary series around them.
pub fn default_metrics(deprecated: &[(&str, &str, &str, &str)]) -> String {
    let mut s = String::new();
    s.push_str("# HELP apiserver_request_total [STABLE] Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.\n# TYPE apiserver_request_total counter\n");
    s.push_str("apiserver_request_total{code=\"200\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"nodes\",scope=\"cluster\",subresource=\"\",verb=\"LIST\",version=\"v1\"} 5123\n");
    s.push_str("# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs that have been requested, broken out by API group, version, resource, subresource, and removed_release.\n# TYPE apiserver_requested_deprecated_apis gauge\n");
    for (g, v, r, rel) in deprecated {
        s.push_str(&format!(
            "apiserver_requested_deprecated_apis{{group=\"{g}\",removed_release=\"{rel}\",resource=\"{r}\",subresource=\"\",version=\"{v}\"}} 1\n"
        ));
    }
    s.push_str("# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 6.1234688e+08\n");
    s
}

impl FakeCluster {
    /// Add objects of `<group>/<version>/<resource>`.
    pub fn add(&mut self, gvr: &str, objs: impl IntoIterator<Item = Value>) -> &mut Self {
        self.objects
            .entry(gvr.to_string())
            .or_default()
            .extend(objs);
        self
    }
    pub fn add_node(&mut self, n: Value) -> &mut Self {
        self.add("/v1/nodes", [n])
    }
    pub fn add_workload(&mut self, w: Value) -> &mut Self {
        let res = match w["kind"].as_str() {
            Some("DaemonSet") => "apps/v1/daemonsets",
            Some("StatefulSet") => "apps/v1/statefulsets",
            _ => "apps/v1/deployments",
        };
        self.add(res, [w])
    }
}

// ---------------------------------------------------------------------------------------------
// Object builders (shapes as `kubectl get -o json` shows them on v1.3x)

fn uid(seed: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let h2 = h.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (h >> 32) as u32,
        (h >> 16) as u16,
        (h & 0xfff) as u16,
        (h2 & 0xfff) as u16,
        h2 >> 16
    )
}

/// A Node with `status.nodeInfo` like a kubeadm worker on Ubuntu 24.04.
pub fn node(name: &str, kubelet: &str, runtime: &str) -> Value {
    let master = name.contains("master") || name.ends_with("node1");
    let mut labels = json!({
        "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"
    });
    if master {
        labels["node-role.kubernetes.io/control-plane"] = json!("");
    }
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name, "uid": uid(name), "resourceVersion": "48120311",
            "creationTimestamp": "2024-03-02T10:11:12Z", "labels": labels,
            "annotations": {
                "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/containerd/containerd.sock",
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true"
            }
        },
        "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]},
        "status": {
            "addresses": [{"address": "192.168.1.21", "type": "InternalIP"}, {"address": name, "type": "Hostname"}],
            "allocatable": {"cpu": "8", "ephemeral-storage": "94580335255", "memory": "32652864Ki", "pods": "110"},
            "capacity": {"cpu": "8", "ephemeral-storage": "102626232Ki", "memory": "32755264Ki", "pods": "110"},
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "message": "kubelet has sufficient memory available", "lastHeartbeatTime": "2026-07-02T22:58:01Z", "lastTransitionTime": "2026-06-21T03:12:44Z"},
                {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "message": "kubelet has no disk pressure", "lastHeartbeatTime": "2026-07-02T22:58:01Z", "lastTransitionTime": "2026-06-21T03:12:44Z"},
                {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "message": "kubelet has sufficient PID available", "lastHeartbeatTime": "2026-07-02T22:58:01Z", "lastTransitionTime": "2026-06-21T03:12:44Z"},
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": "2026-07-02T22:58:01Z", "lastTransitionTime": "2026-06-21T03:13:05Z"}
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64", "bootID": uid(&format!("boot{name}")),
                "containerRuntimeVersion": runtime, "kernelVersion": "6.8.0-62-generic",
                "kubeProxyVersion": kubelet, "kubeletVersion": kubelet,
                "machineID": uid(&format!("m{name}")).replace('-', ""), "operatingSystem": "linux",
                "osImage": "Ubuntu 24.04.2 LTS", "systemUUID": uid(&format!("s{name}"))
            }
        }
    })
}

/// A Deployment/DaemonSet/StatefulSet with one container and a fully rolled-out status.
pub fn workload(
    kind: &str,
    ns: &str,
    name: &str,
    container: &str,
    image: &str,
    labels: &[(&str, &str)],
) -> Value {
    let mut l = serde_json::Map::new();
    l.insert("app.kubernetes.io/name".into(), json!(name));
    for (k, v) in labels {
        l.insert((*k).into(), json!(v));
    }
    let template = json!({
        "metadata": {"creationTimestamp": null, "labels": {"app.kubernetes.io/name": name}},
        "spec": {
            "containers": [{
                "name": container, "image": image, "imagePullPolicy": "IfNotPresent",
                "resources": {}, "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"
            }],
            "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
            "securityContext": {}, "serviceAccountName": name, "terminationGracePeriodSeconds": 30
        }
    });
    let meta = json!({
        "name": name, "namespace": ns, "uid": uid(&format!("{kind}{ns}{name}")), "resourceVersion": "47999120",
        "generation": 4, "creationTimestamp": "2025-11-02T08:00:00Z", "labels": l,
        "annotations": {"meta.helm.sh/release-name": name, "meta.helm.sh/release-namespace": ns}
    });
    let selector = json!({"matchLabels": {"app.kubernetes.io/name": name}});
    match kind {
        "DaemonSet" => json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta,
            "spec": {"revisionHistoryLimit": 10, "selector": selector, "template": template,
                     "updateStrategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}, "type": "RollingUpdate"}},
            "status": {"currentNumberScheduled": 7, "desiredNumberScheduled": 7, "numberAvailable": 7,
                       "numberMisscheduled": 0, "numberReady": 7, "observedGeneration": 4, "updatedNumberScheduled": 7}
        }),
        "StatefulSet" => json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta,
            "spec": {"replicas": 1, "selector": selector, "serviceName": name, "template": template,
                     "podManagementPolicy": "OrderedReady", "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}},
            "status": {"availableReplicas": 1, "collisionCount": 0, "currentReplicas": 1, "currentRevision": format!("{name}-5d8f7c9b6"),
                       "observedGeneration": 4, "readyReplicas": 1, "replicas": 1, "updateRevision": format!("{name}-5d8f7c9b6"), "updatedReplicas": 1}
        }),
        _ => json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "annotations": {"deployment.kubernetes.io/revision": "4", "meta.helm.sh/release-name": name, "meta.helm.sh/release-namespace": ns},
                "name": name, "namespace": ns, "uid": uid(&format!("{kind}{ns}{name}")), "resourceVersion": "47999120",
                "generation": 4, "creationTimestamp": "2025-11-02T08:00:00Z", "labels": meta["labels"].clone()
            },
            "spec": {"progressDeadlineSeconds": 600, "replicas": 1, "revisionHistoryLimit": 10, "selector": selector,
                     "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"},
                     "template": template},
            "status": {
                "availableReplicas": 1, "observedGeneration": 4, "readyReplicas": 1, "replicas": 1, "updatedReplicas": 1,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.", "lastTransitionTime": "2026-06-23T09:00:00Z", "lastUpdateTime": "2026-06-23T09:00:00Z"},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": format!("ReplicaSet \"{name}-7c9f8d6b5\" has successfully progressed."), "lastTransitionTime": "2025-11-02T08:00:00Z", "lastUpdateTime": "2026-06-23T09:00:30Z"}
                ]
            }
        }),
    }
}

/// A batch/v1 Job; `state` is `complete`, `failed`, `running` or `pending`.
pub fn job(ns: &str, name: &str, state: &str, start: &str, end: Option<&str>) -> Value {
    let mut status = json!({"startTime": start});
    match state {
        "complete" => {
            let e = end.unwrap_or(start);
            status["completionTime"] = json!(e);
            status["succeeded"] = json!(1);
            status["ready"] = json!(0);
            status["terminating"] = json!(0);
            status["conditions"] = json!([
                {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": e, "lastTransitionTime": e},
                {"type": "Complete", "status": "True", "lastProbeTime": e, "lastTransitionTime": e}
            ]);
        }
        "failed" => {
            let e = end.unwrap_or(start);
            status["failed"] = json!(1);
            status["ready"] = json!(0);
            status["terminating"] = json!(0);
            status["conditions"] = json!([
                {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": e, "lastTransitionTime": e},
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": e, "lastTransitionTime": e}
            ]);
        }
        "running" => {
            status["active"] = json!(1);
            status["ready"] = json!(1);
            status["terminating"] = json!(0);
        }
        _ => {
            status = json!({});
        }
    }
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": ns, "uid": uid(&format!("job{ns}{name}")), "resourceVersion": "48000001",
                     "generation": 1, "creationTimestamp": start,
                     "labels": {"batch.kubernetes.io/job-name": name, "job-name": name}},
        "spec": {"backoffLimit": 0, "completionMode": "NonIndexed", "completions": 1, "manualSelector": false,
                 "parallelism": 1, "podReplacementPolicy": "TerminatingOrFailed", "suspend": false,
                 "template": {"metadata": {"labels": {"job-name": name}},
                              "spec": {"containers": [{"name": "step", "image": "ghcr.io/homelab/k8s-upgrade:1.4.0"}], "restartPolicy": "Never"}}},
        "status": status
    })
}

/// An object with only metadata (the items a metadata-only list returns), optionally carrying
/// a `kubectl.kubernetes.io/last-applied-configuration` with `apiVersion`/`kind`.
pub fn applied_object(
    api_version: &str,
    kind: &str,
    ns: Option<&str>,
    name: &str,
    last_applied_api: Option<&str>,
) -> Value {
    let mut meta = json!({"name": name, "uid": uid(&format!("{kind}{name}")), "resourceVersion": "4711", "generation": 1,
                          "creationTimestamp": "2023-01-10T12:00:00Z"});
    if let Some(ns) = ns {
        meta["namespace"] = json!(ns);
    }
    if let Some(la) = last_applied_api {
        let applied = json!({"apiVersion": la, "kind": kind, "metadata": {"annotations": {}, "name": name, "namespace": ns}, "spec": {}});
        meta["annotations"] =
            json!({"kubectl.kubernetes.io/last-applied-configuration": format!("{}\n", applied)});
    }
    json!({"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": {}})
}

/// Add a `metadata.managedFields` entry as server-side apply writes it (k8s.io/apimachinery
/// pkg/apis/meta/v1/types.go ManagedFieldsEntry, v0.34: manager, operation, apiVersion, time,
/// fieldsType, fieldsV1). Metadata-only lists carry these too (PartialObjectMetadata).
pub fn add_managed_field(obj: &mut Value, manager: &str, api_version: &str) {
    let entry = json!({"manager": manager, "operation": "Apply", "apiVersion": api_version,
                       "time": "2026-06-20T10:00:00Z", "fieldsType": "FieldsV1",
                       "fieldsV1": {"f:spec": {".": {}}}});
    match obj["metadata"]["managedFields"].as_array_mut() {
        Some(a) => a.push(entry),
        None => obj["metadata"]["managedFields"] = json!([entry]),
    }
}

/// The Helm ConfigMap storage driver's object for a release (helm/helm v3.21.4 = 813176c
/// pkg/storage/driver/cfgmaps.go `newConfigMapsObject`: name `sh.helm.release.v1.<n>.v<rev>`,
/// labels name/owner=helm/status/version, `data.release` = the encoded release as a string —
/// one base64 layer fewer than a Secret, whose `data` is base64 again).
pub fn helm_configmap_from_secret(secret: &Value) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let inner = secret["data"]["release"]
        .as_str()
        .and_then(|d| b64.decode(d).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mut meta = secret["metadata"].clone();
    meta["uid"] = json!(format!("cm-{}", meta["uid"].as_str().unwrap_or("")));
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
           "data": {"release": inner}})
}

/// A Helm v3 release Secret (`sh.helm.release.v1.<name>.v<rev>`): the release JSON, gzipped
/// (when `gzip`), base64 (Helm), then base64 again (the Secret's `data`).
pub fn helm_release_secret(
    ns: &str,
    name: &str,
    revision: u32,
    chart: (&str, &str),
    manifest: &str,
    hooks: &[(&str, &str)],
    gzip: bool,
) -> Value {
    let hooks: Vec<Value> = hooks
        .iter()
        .map(|(path, m)| json!({
            "name": format!("{name}-hook"), "kind": "Job", "path": path, "manifest": m,
            "events": ["pre-upgrade"], "last_run": {"started_at": "", "completed_at": "", "phase": ""},
            "weight": 0, "delete_policies": ["before-hook-creation"]
        }))
        .collect();
    let release = json!({
        "name": name,
        "info": {"first_deployed": "2025-11-02T08:00:00.123456789Z", "last_deployed": "2026-06-23T09:00:00.123456789Z",
                 "deleted": "", "description": "Upgrade complete", "status": "deployed", "notes": ""},
        "chart": {"metadata": {"name": chart.0, "version": chart.1, "description": "A Helm chart", "apiVersion": "v2",
                               "appVersion": chart.1, "type": "application"},
                  "lock": null, "templates": [], "values": {}, "schema": null, "files": []},
        "config": {},
        "manifest": manifest,
        "hooks": hooks,
        "version": revision,
        "namespace": ns,
        "labels": {"name": name, "owner": "helm", "status": "deployed", "version": revision.to_string()}
    });
    let raw = serde_json::to_vec(&release).expect("release json");
    let payload = if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&raw).expect("gzip");
        enc.finish().expect("gzip")
    } else {
        raw
    };
    helm_secret_with_payload(ns, name, revision, &payload)
}

/// A Helm release Secret whose decoded release payload is `payload` (for undecodable cases).
pub fn helm_secret_with_payload(ns: &str, name: &str, revision: u32, payload: &[u8]) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let helm = b64.encode(payload);
    let data = b64.encode(helm.as_bytes());
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": format!("sh.helm.release.v1.{name}.v{revision}"), "namespace": ns,
            "uid": uid(&format!("helm{ns}{name}{revision}")), "resourceVersion": "47999001",
            "creationTimestamp": "2026-06-23T09:00:00Z",
            "labels": {"modifiedAt": "1750669200", "name": name, "owner": "helm", "status": "deployed", "version": revision.to_string()}
        },
        "type": "helm.sh/release.v1",
        "data": {"release": data}
    })
}

// ---------------------------------------------------------------------------------------------
// Scenario files (the `fake-kube` binary, demos and benchmarks)

/// Build a cluster from a scenario document:
///
/// ```json
/// {"git_version": "v1.34.9",
///  "nodes": [{"name": "k8s-node1", "kubelet": "v1.34.9", "runtime": "containerd://2.1.5"}],
///  "workloads": [{"kind": "Deployment", "namespace": "kyverno", "name": "kyverno-admission-controller",
///                 "container": "kyverno", "image": "reg.kyverno.io/kyverno/kyverno:v1.16.2",
///                 "labels": {"app.kubernetes.io/version": "v1.16.2"}, "status": {"readyReplicas": 0}}],
///  "applied": [{"resource": "networking.k8s.io/v1/ingresses", "kind": "Ingress", "namespace": "web",
///               "name": "shop", "last_applied": "extensions/v1beta1", "count": 1}],
///  "helm_releases": [{"namespace": "web", "name": "shop", "revision": 3, "chart": "shop", "chart_version": "1.2.0",
///                     "manifest": "apiVersion: …", "manifest_repeat": 1, "hooks": [], "gzip": true}],
///  "deprecated_metrics": [["flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas", "1.32"]],
///  "metrics_padding_bytes": 0, "default_limit": null, "expire_continue": 0,
///  "faults": [{"path_prefix": "/api/v1/secrets", "status": 403, "message": "secrets is forbidden", "times": null},
///             {"path_prefix": "/version", "delay_ms": 1500}, {"path_prefix": "/apis", "garbage": true}]}
/// ```
///
/// `count` > 1 repeats an applied object with `-<i>` name suffixes; `manifest_repeat` repeats
/// the manifest (benchmarks); `metrics_padding_bytes` adds ordinary series to `/metrics`.
pub fn cluster_from_scenario(doc: &Value) -> Result<FakeCluster, String> {
    let mut c = FakeCluster::default();
    let s = |v: &Value, k: &str| -> Result<String, String> {
        v[k].as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("scenario: {k} missing in {v}"))
    };
    if let Some(g) = doc["git_version"].as_str() {
        c.git_version = g.to_string();
    }
    for n in doc["nodes"].as_array().into_iter().flatten() {
        c.add_node(node(&s(n, "name")?, &s(n, "kubelet")?, &s(n, "runtime")?));
    }
    for w in doc["workloads"].as_array().into_iter().flatten() {
        let labels: Vec<(String, String)> = w["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let lref: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let name = s(w, "name")?;
        let container = w["container"].as_str().map_or(name.clone(), str::to_string);
        let mut obj = workload(
            w["kind"].as_str().unwrap_or("Deployment"),
            &s(w, "namespace")?,
            &name,
            &container,
            &s(w, "image")?,
            &lref,
        );
        if let Some(st) = w["status"].as_object() {
            for (k, v) in st {
                obj["status"][k] = v.clone();
            }
        }
        if let Some(g) = w["generation"].as_i64() {
            obj["metadata"]["generation"] = json!(g);
        }
        c.add_workload(obj);
    }
    for a in doc["applied"].as_array().into_iter().flatten() {
        let res = s(a, "resource")?;
        let kind = s(a, "kind")?;
        let api = {
            let parts: Vec<&str> = res.trim_start_matches('/').split('/').collect();
            match parts.as_slice() {
                ["", v, _] | [v, _] => v.to_string(),
                [g, v, _] => format!("{g}/{v}"),
                _ => {
                    return Err(format!(
                        "scenario: resource {res:?} is not <group>/<version>/<resource>"
                    ))
                }
            }
        };
        let key = if res.matches('/').count() == 1 {
            format!("/{res}")
        } else {
            res.clone()
        };
        let count = a["count"].as_u64().unwrap_or(1);
        let name = s(a, "name")?;
        let objs: Vec<Value> = (0..count)
            .map(|i| {
                let n = if count == 1 {
                    name.clone()
                } else {
                    format!("{name}-{i}")
                };
                let mut o = applied_object(
                    &api,
                    &kind,
                    a["namespace"].as_str(),
                    &n,
                    a["last_applied"].as_str(),
                );
                // "managed": [["manager", "apiVersion"], …]: server-side-apply entries.
                for m in a["managed"].as_array().into_iter().flatten() {
                    add_managed_field(
                        &mut o,
                        m[0].as_str().unwrap_or("kubectl"),
                        m[1].as_str().unwrap_or(""),
                    );
                }
                o
            })
            .collect();
        c.add(&key, objs);
    }
    for h in doc["helm_releases"].as_array().into_iter().flatten() {
        let manifest = h["manifest"]
            .as_str()
            .unwrap_or("")
            .repeat(h["manifest_repeat"].as_u64().unwrap_or(1) as usize);
        let hooks: Vec<(String, String)> = h["hooks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| {
                (
                    x["path"]
                        .as_str()
                        .unwrap_or("templates/hook.yaml")
                        .to_string(),
                    x["manifest"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let href: Vec<(&str, &str)> = hooks
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let secret = if let Some(raw) = h["raw_payload"].as_str() {
            helm_secret_with_payload(&s(h, "namespace")?, &s(h, "name")?, 1, raw.as_bytes())
        } else {
            helm_release_secret(
                &s(h, "namespace")?,
                &s(h, "name")?,
                h["revision"].as_u64().unwrap_or(1) as u32,
                (&s(h, "chart")?, &s(h, "chart_version")?),
                &manifest,
                &href,
                h["gzip"].as_bool().unwrap_or(true),
            )
        };
        if h["driver"].as_str() == Some("configmap") {
            c.add("/v1/configmaps", [helm_configmap_from_secret(&secret)]);
        } else {
            c.add("/v1/secrets", [secret]);
        }
    }
    let dep: Vec<(String, String, String, String)> = doc["deprecated_metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| {
            let g = |i: usize| x[i].as_str().unwrap_or("").to_string();
            (g(0), g(1), g(2), g(3))
        })
        .collect();
    let dref: Vec<(&str, &str, &str, &str)> = dep
        .iter()
        .map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), d.as_str()))
        .collect();
    c.metrics = default_metrics(&dref);
    let pad = doc["metrics_padding_bytes"].as_u64().unwrap_or(0) as usize;
    if pad > 0 {
        let mut extra = String::with_capacity(pad + 256);
        extra.push_str("# HELP apiserver_request_duration_seconds_bucket [STABLE] Response latency distribution.\n# TYPE apiserver_request_duration_seconds histogram\n");
        let mut i = 0u64;
        while extra.len() < pad {
            extra.push_str(&format!(
                "apiserver_request_duration_seconds_bucket{{component=\"apiserver\",dry_run=\"\",group=\"apps\",resource=\"r{}\",scope=\"cluster\",subresource=\"\",verb=\"LIST\",version=\"v1\",le=\"{}\"}} {}\n",
                i % 977, i % 40, i * 7
            ));
            i += 1;
        }
        c.metrics.push_str(&extra);
    }
    if let Some(l) = doc["default_limit"].as_u64() {
        c.default_limit = Some(l as usize);
    }
    for f in doc["faults"].as_array().into_iter().flatten() {
        let kind = if let Some(code) = f["status"].as_u64() {
            FaultKind::Status(code as u16, f["message"].as_str().unwrap_or("").to_string())
        } else if let Some(ms) = f["delay_ms"].as_u64() {
            FaultKind::Delay(Duration::from_millis(ms))
        } else if f["garbage"].as_bool() == Some(true) {
            FaultKind::Garbage
        } else if f["hang"].as_bool() == Some(true) {
            FaultKind::Hang
        } else {
            return Err(format!(
                "scenario: fault {f} needs status, delay_ms, garbage or hang"
            ));
        };
        c.faults.push(Fault {
            path_prefix: s(f, "path_prefix")?,
            kind,
            times: f["times"].as_u64().map(|t| t as u32),
        });
    }
    c.expire_continue = doc["expire_continue"].as_u64().unwrap_or(0) as u32;
    scenario_jobs_and_node_health(&mut c, doc)?;
    Ok(c)
}

/// Additive scenario keys (nightly-report's demo): `"jobs": [{"namespace", "name", "state"
/// (complete|failed|running|pending), "start", "end"?}]` (RFC 3339 times) and, per entry of
/// `"nodes"`, `"unschedulable": true` (cordoned) and `"ready": false` (NotReady).
fn scenario_jobs_and_node_health(c: &mut FakeCluster, doc: &Value) -> Result<(), String> {
    for j in doc["jobs"].as_array().into_iter().flatten() {
        let f = |k: &str| {
            j[k].as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("scenario: jobs[].{k} missing in {j}"))
        };
        let obj = job(
            &f("namespace")?,
            &f("name")?,
            &f("state")?,
            &f("start")?,
            j["end"].as_str(),
        );
        c.add("batch/v1/jobs", [obj]);
    }
    let specs: Vec<&Value> = doc["nodes"].as_array().into_iter().flatten().collect();
    if let Some(nodes) = c.objects.get_mut("/v1/nodes") {
        for (n, spec) in nodes.iter_mut().zip(specs) {
            if spec["unschedulable"] == json!(true) {
                n["spec"]["unschedulable"] = json!(true);
            }
            if spec["ready"] == json!(false) {
                for cond in n["status"]["conditions"]
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                {
                    if cond["type"] == "Ready" {
                        cond["status"] = json!("Unknown");
                        cond["reason"] = json!("NodeStatusUnknown");
                    }
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Server

/// Throwaway PKI: a CA, the server certificate (127.0.0.1, localhost) and a client certificate.
pub struct TestPki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
    ca_der: Vec<u8>,
    server_cert_der: Vec<u8>,
    server_key_der: Vec<u8>,
}

impl TestPki {
    pub fn generate() -> TestPki {
        Self::generate_with_sans(&["127.0.0.1", "localhost", "::1"])
    }

    /// As [`TestPki::generate`] with a server certificate for exactly `sans` (a cluster whose
    /// certificate does not name the address clients dial: kubeconfig `tls-server-name`).
    pub fn generate_with_sans(sans: &[&str]) -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kubernetes");
        let ca = ca_params.self_signed(&ca_key).expect("ca cert");
        let srv_key = KeyPair::generate().expect("server key");
        let mut sp = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("server params");
        sp.distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        let srv = sp.signed_by(&srv_key, &ca, &ca_key).expect("server cert");
        let cli_key = KeyPair::generate().expect("client key");
        let mut cp = CertificateParams::new(Vec::<String>::new()).expect("client params");
        cp.distinguished_name
            .push(DnType::CommonName, "kubernetes-admin");
        cp.distinguished_name
            .push(DnType::OrganizationName, "kubeadm:cluster-admins");
        let cli = cp.signed_by(&cli_key, &ca, &ca_key).expect("client cert");
        TestPki {
            ca_pem: ca.pem(),
            server_cert_pem: srv.pem(),
            server_key_pem: srv_key.serialize_pem(),
            client_cert_pem: cli.pem(),
            client_key_pem: cli_key.serialize_pem(),
            ca_der: ca.der().to_vec(),
            server_cert_der: srv.der().to_vec(),
            server_key_der: srv_key.serialize_der(),
        }
    }

    /// A server configuration that completes a handshake only when the client sends `sni` as
    /// server name (like a TLS-routing load balancer in front of several apiservers).
    pub fn server_config_requiring_sni(&self, sni: &str) -> Arc<rustls::ServerConfig> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                self.server_key_der.clone(),
            )))
            .expect("server key");
        let certified = rustls::sign::CertifiedKey::new(
            vec![CertificateDer::from(self.server_cert_der.clone())],
            key,
        );
        let mut resolver = rustls::server::ResolvesServerCertUsingSni::new();
        resolver.add(sni, certified).expect("sni name matches cert");
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("tls versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        Arc::new(cfg)
    }

    pub fn server_config(&self, require_client_cert: bool) -> Arc<rustls::ServerConfig> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("tls versions");
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from(self.ca_der.clone()))
                .expect("ca root");
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .expect("client verifier");
            builder.with_client_cert_verifier(v)
        } else {
            builder.with_no_client_auth()
        };
        let cfg = builder
            .with_single_cert(
                vec![CertificateDer::from(self.server_cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone())),
            )
            .expect("server cert");
        Arc::new(cfg)
    }
}

/// How clients must authenticate.
#[derive(Debug, Clone)]
pub enum Auth {
    /// `Authorization: Bearer <token>` required (401 otherwise).
    Token(String),
    /// A client certificate signed by the test CA is required at the TLS layer.
    ClientCert,
}

/// A running fake API server (stopped on drop).
pub struct FakeKube {
    server: HttpServer,
    pub pki: Arc<TestPki>,
    pub auth: Auth,
    state: Arc<Mutex<FakeCluster>>,
    /// More apiserver instances of the same cluster (HA), each with its own `/metrics`.
    extra: Mutex<Vec<HttpServer>>,
}

/// The bearer token [`FakeKube::start`] expects.
pub const TEST_TOKEN: &str =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ.c2VydmljZWFjY291bnQ.fake-kube-sig-3f9a";

impl FakeKube {
    /// Start with bearer-token auth ([`TEST_TOKEN`]).
    pub fn start(cluster: FakeCluster) -> FakeKube {
        Self::start_with(cluster, Auth::Token(TEST_TOKEN.to_string()))
    }

    pub fn start_with(cluster: FakeCluster, auth: Auth) -> FakeKube {
        Self::start_with_pki(cluster, auth, TestPki::generate())
    }

    /// As [`FakeKube::start_with`] serving `pki`'s server certificate (e.g. one made by
    /// [`TestPki::generate_with_sans`] that does not name 127.0.0.1).
    pub fn start_with_pki(cluster: FakeCluster, auth: Auth, pki: TestPki) -> FakeKube {
        let pki = Arc::new(pki);
        let cfg = pki.server_config(matches!(auth, Auth::ClientCert));
        let state = Arc::new(Mutex::new(cluster));
        let st = Arc::clone(&state);
        let token = match &auth {
            Auth::Token(t) => Some(t.clone()),
            Auth::ClientCert => None,
        };
        let server = HttpServer::start_tls(cfg, move |req| handle(&st, token.as_deref(), req));
        state.lock().expect("fake kube state").self_port = server.port();
        FakeKube {
            server,
            pki,
            auth,
            state,
            extra: Mutex::new(Vec::new()),
        }
    }

    /// Start one more apiserver instance of this cluster on 127.0.0.1 serving `metrics` at
    /// `/metrics` (everything else as the first instance), and list it in the EndpointSlice
    /// with `ready`. KEP-1693 / apiserver `pkg/endpoints/metrics/metrics.go` (kubernetes
    /// v1.35): every instance keeps its own `apiserver_requested_deprecated_apis` gauge.
    pub fn add_apiserver(&self, metrics: String, ready: Option<bool>) -> u16 {
        let cfg = self
            .pki
            .server_config(matches!(self.auth, Auth::ClientCert));
        let st = Arc::clone(&self.state);
        let token = match &self.auth {
            Auth::Token(t) => Some(t.clone()),
            Auth::ClientCert => None,
        };
        let server = HttpServer::start_tls(cfg, move |req| {
            if req.path() == "/metrics" {
                // Same authentication as every other path.
                let mut probe = req.clone();
                probe.target = "/version".into();
                let r = handle(&st, token.as_deref(), &probe);
                if r.status != 200 {
                    return r;
                }
                return Reply::text(200, metrics.clone())
                    .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
            }
            handle(&st, token.as_deref(), req)
        });
        let port = server.port();
        self.add_endpoint("127.0.0.1", port, ready);
        self.extra.lock().expect("extra servers").push(server);
        port
    }

    /// List an endpoint in the EndpointSlice without starting anything there (an instance
    /// that is down, or one marked not ready).
    pub fn add_endpoint(&self, address: &str, port: u16, ready: Option<bool>) {
        let mut st = self.state.lock().expect("fake kube state");
        let me = st.self_port;
        let list = st.apiserver_endpoints.get_or_insert_with(|| {
            vec![ApiserverEndpoint {
                address: "127.0.0.1".into(),
                port: me,
                ready: Some(true),
            }]
        });
        list.push(ApiserverEndpoint {
            address: address.into(),
            port,
            ready,
        });
    }

    /// Requests each extra instance received, in [`FakeKube::add_apiserver`] order.
    pub fn extra_requests(&self) -> Vec<Vec<Request>> {
        self.extra
            .lock()
            .expect("extra servers")
            .iter()
            .map(|s| s.requests())
            .collect()
    }

    /// `https://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        self.server.url()
    }
    pub fn port(&self) -> u16 {
        self.server.port()
    }
    pub fn ca_pem(&self) -> &str {
        &self.pki.ca_pem
    }
    pub fn requests(&self) -> Vec<Request> {
        self.server.requests()
    }
    pub fn request_count(&self) -> usize {
        self.server.request_count()
    }
    /// Change the served cluster (faults, objects, …) while running.
    pub fn with<R>(&self, f: impl FnOnce(&mut FakeCluster) -> R) -> R {
        f(&mut self.state.lock().expect("fake kube state"))
    }

    /// Write `token` and `ca.crt` into `dir` (an in-cluster service-account mount).
    pub fn write_sa_dir(&self, dir: &Path) -> (PathBuf, PathBuf) {
        std::fs::create_dir_all(dir).expect("sa dir");
        let t = dir.join("token");
        let c = dir.join("ca.crt");
        let tok = match &self.auth {
            Auth::Token(t) => t.clone(),
            Auth::ClientCert => String::new(),
        };
        std::fs::write(&t, tok).expect("write token");
        std::fs::write(&c, &self.pki.ca_pem).expect("write ca");
        (t, c)
    }

    /// Write a kubeconfig like kubeadm's `admin.conf`: CA data, and a token or a client cert.
    pub fn write_kubeconfig(&self, path: &Path) -> PathBuf {
        let b64 = base64::engine::general_purpose::STANDARD;
        let user = match &self.auth {
            Auth::Token(t) => format!("    token: {t}\n"),
            Auth::ClientCert => format!(
                "    client-certificate-data: {}\n    client-key-data: {}\n",
                b64.encode(&self.pki.client_cert_pem),
                b64.encode(&self.pki.client_key_pem)
            ),
        };
        let text = format!(
            "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {url}\n  name: kubernetes\ncontexts:\n- context:\n    cluster: kubernetes\n    user: kubernetes-admin\n  name: kubernetes-admin@kubernetes\ncurrent-context: kubernetes-admin@kubernetes\nkind: Config\npreferences: {{}}\nusers:\n- name: kubernetes-admin\n  user:\n{user}",
            ca = b64.encode(&self.pki.ca_pem),
            url = self.url(),
        );
        std::fs::write(path, text).expect("write kubeconfig");
        path.to_path_buf()
    }
}

/// The EndpointSlice the apiserver keeps for the `kubernetes` Service (kubernetes
/// pkg/controlplane/reconcilers/endpointsadapter.go mirrors the `kubernetes` Endpoints into a
/// slice of that name, label `kubernetes.io/service-name=kubernetes`, port `https`, one
/// endpoint per apiserver; located by code search, not re-read at a tag). Shape per k8s.io/api
/// discovery/v1/types.go (v0.36.3 = 3fde3c4), where a nil `ready` means ready.
fn kubernetes_slices(st: &FakeCluster, req: &Request) -> Reply {
    let eps = st.apiserver_endpoints.clone().unwrap_or_else(|| {
        vec![ApiserverEndpoint {
            address: "127.0.0.1".into(),
            port: st.self_port,
            ready: Some(true),
        }]
    });
    let selector = req.query_param("labelSelector").map(pct_decode);
    let wanted = selector
        .as_deref()
        .is_none_or(|s| s == "kubernetes.io/service-name=kubernetes");
    // One slice per port (the reconciler's shape when instances share a port; here each
    // instance has its own loopback port).
    let items: Vec<Value> = if wanted {
        eps.iter()
            .enumerate()
            .map(|(i, e)| {
                let mut cond = json!({});
                if let Some(r) = e.ready {
                    cond["ready"] = json!(r);
                }
                json!({
                    "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
                    "metadata": {"name": if i == 0 { "kubernetes".to_string() } else { format!("kubernetes-{i}") },
                                 "namespace": "default", "resourceVersion": "48120001",
                                 "labels": {"kubernetes.io/service-name": "kubernetes"}},
                    "addressType": "IPv4",
                    "endpoints": [{"addresses": [e.address], "conditions": cond}],
                    "ports": [{"name": "https", "port": e.port, "protocol": "TCP"}]
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    Reply::json(
        200,
        &json!({"kind": "EndpointSliceList", "apiVersion": "discovery.k8s.io/v1",
                "metadata": {"resourceVersion": "48120777"}, "items": items}),
    )
}

fn status_body_with_continue(
    code: u16,
    reason: &str,
    cont: &str,
    message: &str,
    details: Value,
) -> Reply {
    Reply::json(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {"continue": cont}, "status": "Failure",
                "message": message, "reason": reason, "details": details, "code": code}),
    )
}

fn status_body(code: u16, reason: &str, message: &str, details: Value) -> Reply {
    Reply::json(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "details": details, "code": code}),
    )
}

fn reason_of(code: u16) -> &'static str {
    match code {
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        _ => "InternalError",
    }
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn handle(state: &Mutex<FakeCluster>, token: Option<&str>, req: &Request) -> Reply {
    let path = req.path().to_string();
    if let Some(t) = token {
        let want = format!("Bearer {t}");
        if req.header("authorization") != Some(want.as_str()) {
            return status_body(401, "Unauthorized", "Unauthorized", json!({}));
        }
    }
    if req.method != "GET" {
        return status_body(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            json!({}),
        );
    }
    let mut st = state.lock().expect("fake kube state");
    let mut delay = Duration::ZERO;
    let mut fault_reply = None;
    for f in st.faults.iter_mut() {
        if !path.starts_with(&f.path_prefix) || f.times == Some(0) {
            continue;
        }
        if let Some(n) = f.times.as_mut() {
            *n -= 1;
        }
        match &f.kind {
            FaultKind::Delay(d) => delay += *d,
            FaultKind::Status(code, msg) => {
                fault_reply = Some(status_body(*code, reason_of(*code), msg, json!({})));
                break;
            }
            FaultKind::Garbage => {
                fault_reply = Some(
                    Reply::new(200)
                        .header("Content-Type", "application/json")
                        .body(&b"<html><body>502 upstream \x00\xff garbage"[..]),
                );
                break;
            }
            FaultKind::Hang => {
                fault_reply = Some(Reply::hang());
                break;
            }
        }
    }
    if let Some(r) = fault_reply {
        return r.delay(delay);
    }
    let reply = route(&mut st, req, &path);
    reply.delay(delay)
}

fn route(st: &mut FakeCluster, req: &Request, path: &str) -> Reply {
    if path == "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices" {
        return kubernetes_slices(st, req);
    }
    match path {
        "/version" => {
            let v = st.git_version.trim_start_matches('v');
            let mut parts = v.split(['.', '-', '+']);
            let major = parts.next().unwrap_or("").to_string();
            let minor = parts.next().unwrap_or("").to_string();
            return Reply::json(
                200,
                &json!({
                    "major": major, "minor": minor, "emulationMajor": major, "emulationMinor": minor,
                    "minCompatibilityMajor": major, "minCompatibilityMinor": "34",
                    "gitVersion": st.git_version, "gitCommit": "9894294ef13a5b32803e3ca2c0d620a088cc84d1",
                    "gitTreeState": "clean", "buildDate": "2026-06-17T17:50:51Z", "goVersion": "go1.24.4",
                    "compiler": "gc", "platform": "linux/amd64"
                }),
            );
        }
        "/metrics" => {
            return Reply::text(200, st.metrics.clone())
                .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        }
        "/api" => {
            return Reply::json(
                200,
                &json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "192.168.1.21:6443"}]}),
            )
        }
        "/apis" => {
            let mut groups: Vec<(String, Vec<String>)> = Vec::new();
            for (g, v, _) in &st.discovery {
                if g.is_empty() {
                    continue;
                }
                match groups.iter_mut().find(|(n, _)| n == g) {
                    Some((_, vs)) => vs.push(v.clone()),
                    None => groups.push((g.clone(), vec![v.clone()])),
                }
            }
            let list: Vec<Value> = groups.iter().map(|(g, vs)| json!({
                "name": g,
                "versions": vs.iter().map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v})).collect::<Vec<_>>(),
                "preferredVersion": {"groupVersion": format!("{g}/{}", vs[0]), "version": vs[0]}
            })).collect();
            return Reply::json(
                200,
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": list}),
            );
        }
        _ => {}
    }
    let segs: Vec<&str> = path
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return not_found_path(path),
    };
    let Some((_, _, resources)) = st
        .discovery
        .iter()
        .find(|(g, v, _)| g == group && v == version)
    else {
        return not_found_path(path);
    };
    if rest.is_empty() {
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        let rs: Vec<Value> = resources.iter().map(|r| json!({
            "name": r.name, "singularName": r.kind.to_lowercase(), "namespaced": r.namespaced, "kind": r.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            "storageVersionHash": "Wq2Kjb8Mq0A="
        })).collect();
        return Reply::json(
            200,
            &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": rs}),
        );
    }
    let (ns, resource, name) = match rest {
        ["namespaces", ns, r] => (Some(*ns), *r, None),
        ["namespaces", ns, r, n] => (Some(*ns), *r, Some(*n)),
        [r] => (None, *r, None),
        [r, n] => (None, *r, Some(*n)),
        _ => return not_found_path(path),
    };
    let Some(rdef) = resources.iter().find(|r| r.name == resource) else {
        return not_found_path(path);
    };
    let kind = rdef.kind.clone();
    let key = format!("{group}/{version}/{resource}");
    let empty = Vec::new();
    let all = st.objects.get(&key).unwrap_or(&empty);
    let in_ns = |o: &Value| ns.is_none_or(|n| o["metadata"]["namespace"].as_str() == Some(n));
    if let Some(name) = name {
        return match all
            .iter()
            .find(|o| in_ns(o) && o["metadata"]["name"].as_str() == Some(name))
        {
            Some(o) => Reply::json(200, o),
            None => {
                let gr = if group.is_empty() {
                    resource.to_string()
                } else {
                    format!("{resource}.{group}")
                };
                status_body(
                    404,
                    "NotFound",
                    &format!("{gr} \"{name}\" not found"),
                    json!({"name": name, "group": group, "kind": resource}),
                )
            }
        };
    }
    // A list.
    let labels: Vec<(String, String)> = req
        .query_param("labelSelector")
        .map(pct_decode)
        .map(|s| {
            s.split(',')
                .filter_map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    let fields: Vec<(String, String)> = req
        .query_param("fieldSelector")
        .map(pct_decode)
        .map(|s| {
            s.split(',')
                .filter_map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    // Field selectors: only the labels the kind registers. kubernetes pkg/apis/core/v1/conversion.go
    // and pkg/apis/batch/v1/conversion.go (AddFieldLabelConversionFunc per kind; everything else
    // gets apimachinery's DefaultMetaV1FieldSelectorConversion: metadata.name/namespace); an
    // unknown label is `400 BadRequest: field label not supported: <label>`.
    let selectable: &[&str] = match (group, resource) {
        ("", "secrets") => &["metadata.name", "metadata.namespace", "type"],
        ("", "nodes") => &["metadata.name", "spec.unschedulable"],
        ("", "pods") => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "status.phase",
        ],
        ("", "events") => &[
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.name",
            "reason",
            "type",
        ],
        ("batch", "jobs") => &["metadata.name", "metadata.namespace", "status.successful"],
        _ => &["metadata.name", "metadata.namespace"],
    };
    if let Some((bad, _)) = fields
        .iter()
        .find(|(k, _)| !selectable.contains(&k.as_str()))
    {
        return status_body(
            400,
            "BadRequest",
            &format!("field label not supported: {bad}"),
            json!({}),
        );
    }
    let matches = |o: &Value| {
        in_ns(o)
            && labels
                .iter()
                .all(|(k, v)| o["metadata"]["labels"][k].as_str() == Some(v.as_str()))
            && fields.iter().all(|(k, v)| {
                let mut cur = o;
                for part in k.split('.') {
                    cur = &cur[part];
                }
                cur.as_str() == Some(v.as_str())
            })
    };
    let limit = req
        .query_param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .or(st.default_limit);
    let start = match req.query_param("continue") {
        Some(c) => {
            if st.expire_continue > 0 {
                st.expire_continue -= 1;
                // apiserver pkg/storage/etcd3/errors.go (interpretListError): the 410 Status
                // carries a fresh continue token in metadata.continue (inconsistent remainder).
                return status_body_with_continue(410, "Expired", &encode_continue(0), "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.", json!({}));
            }
            match decode_continue(&pct_decode(c)) {
                Some(s) => s,
                None => {
                    return status_body(
                        400,
                        "BadRequest",
                        "continue key is not valid: illegal base64 data at input byte 0",
                        json!({}),
                    )
                }
            }
        }
        None => 0,
    };
    let all = st.objects.get(&key).unwrap_or(&empty);
    let selected: Vec<&Value> = all.iter().filter(|o| matches(o)).collect();
    let end = limit.map_or(selected.len(), |l| (start + l).min(selected.len()));
    let page = &selected[start.min(selected.len())..end];
    let remaining = selected.len() - end;
    let mut meta = json!({"resourceVersion": "48120777"});
    if remaining > 0 {
        meta["continue"] = json!(encode_continue(end));
        meta["remainingItemCount"] = json!(remaining);
    }
    let gv_key = format!("{group}/{version}");
    let Some(metadata_only) =
        negotiate_list(req.header("accept"), !st.aggregated.contains(&gv_key))
    else {
        return status_body(
            406,
            "NotAcceptable",
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
            json!({}),
        );
    };
    let list_api = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let body = if metadata_only {
        let items: Vec<Value> = page.iter().map(|o| json!({
            "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"].clone()
        })).collect();
        json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items})
    } else {
        json!({"kind": format!("{kind}List"), "apiVersion": list_api, "metadata": meta, "items": page})
    };
    Reply::json(200, &body)
}

/// Content negotiation of a list (apiserver pkg/endpoints/handlers/negotiation/negotiate.go and
/// pkg/endpoints/handlers/response.go transformObject: the `as`/`g`/`v` parameters must match
/// exactly, in Accept order; a server without metadata support skips that range; nothing
/// acceptable is 406). `Some(true)` = PartialObjectMetadataList, `Some(false)` = full objects.
fn negotiate_list(accept: Option<&str>, metadata_supported: bool) -> Option<bool> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Some(false);
    };
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let mt = parts.next().unwrap_or("").to_ascii_lowercase();
        if !matches!(mt.as_str(), "application/json" | "application/*" | "*/*") {
            continue;
        }
        let params: Vec<(String, String)> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .filter(|(k, _)| k != "q")
            .collect();
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        match get("as") {
            None if params.is_empty() => return Some(false),
            Some("PartialObjectMetadataList")
                if get("g") == Some("meta.k8s.io")
                    && get("v") == Some("v1")
                    && params.len() == 3
                    && metadata_supported =>
            {
                return Some(true)
            }
            _ => continue,
        }
    }
    None
}

fn not_found_path(_path: &str) -> Reply {
    status_body(
        404,
        "NotFound",
        "the server could not find the requested resource",
        json!({}),
    )
}

fn encode_continue(offset: usize) -> String {
    let raw = json!({"v": "meta.k8s.io/v1", "rv": 48120777, "start": format!("{offset:010}")})
        .to_string();
    base64::engine::general_purpose::URL_SAFE.encode(raw)
}

fn decode_continue(c: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE.decode(c).ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    v["start"].as_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        assert_eq!(decode_continue(&encode_continue(1500)), Some(1500));
        assert_eq!(decode_continue("garbage"), None);
        assert_eq!(
            pct_decode("owner%3Dhelm%2Cstatus%3Ddeployed"),
            "owner=helm,status=deployed"
        );
    }
}
