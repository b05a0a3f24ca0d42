//! `evaluate`: the checks of §3 against a [`ClusterRead`], GET only, never panicking, never
//! pushing. Every exit-3 condition becomes `Verdict::Error` with one reason; all checks still
//! run within the deadline (§4.4) so the report shows the full scope.

use crate::aver::{self, Minor, Ver};
use crate::matrix::{Addon, Matrix, VersionFrom, WorkloadKind};
use crate::report::*;
use crate::scan;
use crate::tables::{gv, ContainerdFloors, Removal, RemovedApiTable};
use homelab_core::kube::{ClusterRead, KubeError, ListParams, Page};
use homelab_core::version::KubeVersion;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

/// Which removed-API sources run (§3.4, `COMPAT_API_SOURCES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sources {
    pub metrics: bool,
    pub annotations: bool,
    pub helm: bool,
}

impl Sources {
    pub fn all() -> Sources {
        Sources {
            metrics: true,
            annotations: true,
            helm: true,
        }
    }
    /// A comma-separated non-empty subset of `metrics,annotations,helm`.
    pub fn parse(s: &str) -> Result<Sources, String> {
        let mut out = Sources {
            metrics: false,
            annotations: false,
            helm: false,
        };
        let mut any = false;
        for w in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match w {
                "metrics" => out.metrics = true,
                "annotations" => out.annotations = true,
                "helm" => out.helm = true,
                _ => {
                    return Err(format!(
                        "unknown source {w:?} (allowed: metrics, annotations, helm)"
                    ))
                }
            }
            any = true;
        }
        if !any {
            return Err("empty; name at least one of metrics, annotations, helm".into());
        }
        Ok(out)
    }
}

impl fmt::Display for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::new();
        if self.metrics {
            v.push("metrics");
        }
        if self.annotations {
            v.push("annotations");
        }
        if self.helm {
            v.push("helm");
        }
        f.write_str(&v.join(","))
    }
}

/// What the gate is asked (§13.1).
#[derive(Debug, Clone)]
pub struct GateOptions {
    pub target: KubeVersion,
    pub matrix: Matrix,
    pub removed_apis: RemovedApiTable,
    pub sources: Sources,
    /// 0–3.
    pub kubelet_max_skew: u32,
    /// Whole run.
    pub deadline: Duration,
}

impl GateOptions {
    /// Compiled-in removed-API table, all sources, skew 3, deadline 120 s.
    pub fn defaults(target: KubeVersion, matrix: Matrix) -> GateOptions {
        GateOptions {
            target,
            matrix,
            removed_apis: RemovedApiTable::compiled_in(),
            sources: Sources::all(),
            kubelet_max_skew: 3,
            deadline: Duration::from_secs(120),
        }
    }
}

/// Parse a target version (§2.2.1); the error reads `target: "<input>" is not a valid version (…)`.
pub fn parse_target(s: &str) -> Result<KubeVersion, String> {
    KubeVersion::parse_target(s).map_err(|e| format!("target: {e}"))
}

const SRC_METRICS: &str = "apiserver requests";
const SRC_ANNOT: &str = "last-applied annotation";
const SRC_HELM: &str = "helm release";
const SRC_MANAGED: &str = "managed fields";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

struct Finding {
    removed_in: Minor,
    replacement: String,
    count: u64,
    examples: Vec<String>,
}

struct Run<'a> {
    o: &'a GateOptions,
    k: &'a dyn ClusterRead,
    deadline_at: Instant,
    blockers: Vec<Blocker>,
    notices: Vec<String>,
    warnings: Vec<String>,
    checks: Vec<CheckResult>,
    error: Option<String>,
    deadline_hit: bool,
    deprecated: BTreeMap<String, std::collections::BTreeSet<String>>,
    apiservers: Vec<ApiserverRead>,
}

impl Run<'_> {
    fn fail(&mut self, reason: String) {
        if self.error.is_none() {
            self.error = Some(reason);
        } else {
            self.warnings.push(format!("WARN: also: {reason}"));
        }
    }
    /// False (and the error set) once the deadline has passed.
    fn in_time(&mut self, check: &str) -> bool {
        if self.deadline_hit {
            return false;
        }
        if Instant::now() >= self.deadline_at {
            self.deadline_hit = true;
            let secs = self.o.deadline.as_secs();
            self.fail(format!("deadline {secs}s exceeded during {check}"));
            return false;
        }
        true
    }
    fn kube_err(&mut self, check: &str, e: KubeError) {
        if matches!(e, KubeError::Deadline { .. }) || Instant::now() >= self.deadline_at {
            if !self.deadline_hit {
                self.deadline_hit = true;
                let secs = self.o.deadline.as_secs();
                self.fail(format!("deadline {secs}s exceeded during {check}"));
            }
        } else {
            self.fail(e.to_string());
        }
    }
    fn push_check(
        &mut self,
        name: &'static str,
        t0: Instant,
        before_blockers: usize,
        had_error: bool,
        reason: Option<String>,
        scanned: Scanned,
    ) {
        let n = self.blockers.len() - before_blockers;
        let errored = self.error.is_some() && !had_error;
        let status = if errored {
            Status::Error
        } else if n > 0 {
            Status::Fail
        } else {
            Status::Pass
        };
        self.checks.push(CheckResult {
            name,
            status,
            reason,
            duration_ms: t0.elapsed().as_millis() as u64,
            scanned,
            blockers: n,
        });
    }
    fn skip(&mut self, name: &'static str, reason: &str) {
        self.checks.push(CheckResult {
            name,
            status: Status::Skipped,
            reason: Some(reason.to_string()),
            duration_ms: 0,
            scanned: Scanned::default(),
            blockers: 0,
        });
    }
}

/// Run the gate (§3–§4). GET only through `k`; never panics; never pushes.
pub fn evaluate(o: &GateOptions, k: &dyn ClusterRead) -> Report {
    let start = Instant::now();
    let mut r = Run {
        o,
        k,
        deadline_at: start + o.deadline,
        blockers: Vec::new(),
        notices: Vec::new(),
        warnings: Vec::new(),
        checks: Vec::new(),
        error: None,
        deadline_hit: false,
        deprecated: BTreeMap::new(),
        apiservers: Vec::new(),
    };
    let t = o.target;
    let tm = Minor::of(&t);

    // 3.1 + 3.2: cluster reading and version rules.
    let t0 = Instant::now();
    let b0 = r.blockers.len();
    let mut cluster = ClusterInfo::default();
    let mut nodes_ok = false;
    if r.in_time("version") {
        match k.server_version() {
            Ok(v) => match v["gitVersion"].as_str() {
                Some(g) => match KubeVersion::parse_server(g) {
                    Ok(a) => cluster.apiserver = Some(a),
                    Err(e) => r.fail(format!("GET /version: gitVersion {e}")),
                },
                None => r.fail("GET /version: gitVersion missing".into()),
            },
            Err(e) => r.kube_err("version", e),
        }
    }
    if r.in_time("version") {
        match k.list_nodes() {
            Ok(items) => match read_nodes(&items) {
                Ok(n) if n.is_empty() => r.fail("GET /api/v1/nodes: no nodes".into()),
                Ok(n) => {
                    cluster.nodes = n;
                    nodes_ok = true;
                }
                Err(e) => r.fail(format!("GET /api/v1/nodes: {e}")),
            },
            Err(e) => r.kube_err("version", e),
        }
    }
    let mut kind = None;
    if let Some(a) = cluster.apiserver {
        if a.major != t.major {
            r.fail(format!(
                "target {t} is a different major than the running apiserver {a}"
            ));
        } else if t < a {
            r.fail(format!(
                "target {t} is older than the running apiserver {a}"
            ));
        } else {
            if t.minor >= a.minor + 2 {
                r.blockers.push(
                    Blocker::actionable(
                        CheckKind::Version,
                        "apiserver",
                        &format!(
                            "target {t} skips minor {}.{} (apiserver runs {a}); upgrade one minor at a time",
                            a.major,
                            a.minor + 1
                        ),
                    )
                    .current(a.to_string())
                    .required(format!("{}.{}", a.major, a.minor + 1))
                    .remediation("upgrade one minor at a time"),
                );
            }
            if nodes_ok {
                let patch =
                    a.minor == t.minor && cluster.nodes.iter().all(|n| Minor::of(&n.kubelet) == tm);
                kind = Some(if patch {
                    UpgradeKind::Patch
                } else {
                    UpgradeKind::Minor
                });
            }
        }
    }
    for n in &cluster.nodes {
        let km = Minor::of(&n.kubelet);
        if km > tm {
            r.blockers.push(
                Blocker::actionable(
                    CheckKind::Version,
                    format!("node {}", n.name),
                    &format!(
                        "node {} kubelet {} is newer than target {t}",
                        n.name, n.kubelet
                    ),
                )
                .current(n.kubelet.to_string()),
            );
        } else if km.0 == tm.0 && tm.1 - km.1 > o.kubelet_max_skew {
            let d = tm.1 - km.1;
            r.blockers.push(
                Blocker::actionable(
                    CheckKind::Version,
                    format!("node {}", n.name),
                    &format!(
                        "node {} kubelet {} would be {d} minors behind {t} (max {}); upgrade node {} first",
                        n.name, n.kubelet, o.kubelet_max_skew, n.name
                    ),
                )
                .current(n.kubelet.to_string())
                .remediation(format!("upgrade node {} first", n.name)),
            );
        } else if km.0 != tm.0 {
            r.blockers.push(
                Blocker::actionable(
                    CheckKind::Version,
                    format!("node {}", n.name),
                    &format!(
                        "node {} kubelet {} is another major than target {t}",
                        n.name, n.kubelet
                    ),
                )
                .current(n.kubelet.to_string()),
            );
        }
    }
    r.push_check(
        "version",
        t0,
        b0,
        false,
        None,
        Scanned {
            objects: cluster.nodes.len() as u64,
            ..Scanned::default()
        },
    );
    let a = cluster.apiserver;

    if kind == Some(UpgradeKind::Patch) {
        r.skip("addons", "patch");
        r.skip("containerd", "patch");
        r.skip("removed_apis", "patch");
    } else {
        check_addons(&mut r, a);
        if nodes_ok {
            check_containerd(&mut r, &cluster.nodes);
        } else {
            r.skip("containerd", "nodes not read");
        }
        match a {
            Some(a) if a.major == t.major && a <= t => check_removed(&mut r, Minor::of(&a)),
            _ => r.skip("removed_apis", "apiserver version unknown"),
        }
    }

    sort_blockers(&mut r.blockers);
    let verdict = verdict_of(&r.blockers, r.error.is_some());
    Report {
        verdict,
        kind,
        target: t,
        cluster,
        blockers: r.blockers,
        notices: r.notices,
        warnings: r.warnings,
        checks: r.checks,
        error: r.error,
        deprecated: r
            .deprecated
            .into_iter()
            .map(|(k, ex)| DeprecatedApi::new(&k, ex.into_iter().collect()))
            .collect(),
        apiservers: r.apiservers,
        data: DataInfo {
            matrix_path: o.matrix.path.display().to_string(),
            matrix_sha256: o.matrix.sha256.clone(),
            table_origin: o.removed_apis.origin_word().to_string(),
            table_checked: o.removed_apis.checked.clone(),
            table_covers_through: o.removed_apis.covers_through.to_string(),
        },
        generated_at: now_rfc3339(),
    }
}

fn read_nodes(items: &[Value]) -> Result<Vec<NodeInfo>, String> {
    let mut out = Vec::new();
    for (i, n) in items.iter().enumerate() {
        let name = n["metadata"]["name"]
            .as_str()
            .ok_or_else(|| format!("item {i}: metadata.name missing"))?;
        let kv = n["status"]["nodeInfo"]["kubeletVersion"]
            .as_str()
            .ok_or_else(|| format!("node {name}: status.nodeInfo.kubeletVersion missing"))?;
        let kubelet = KubeVersion::parse_server(kv)
            .map_err(|e| format!("node {name}: kubeletVersion {e}"))?;
        let runtime = n["status"]["nodeInfo"]["containerRuntimeVersion"]
            .as_str()
            .unwrap_or("")
            .to_string();
        out.push(NodeInfo {
            name: name.to_string(),
            kubelet,
            runtime,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// 3.3 Addons

/// The running version of a workload object, or why it cannot be read (§3.3.2).
pub fn workload_version(addon: &Addon, obj: &Value) -> Result<Ver, String> {
    match &addon.version_from {
        VersionFrom::Label(key) => {
            let v = obj["metadata"]["labels"][key.as_str()]
                .as_str()
                .or_else(|| obj["spec"]["template"]["metadata"]["labels"][key.as_str()].as_str())
                .ok_or_else(|| format!("label {key} not set"))?;
            aver::running_version(v).map_err(|_| format!("label {key}={v:?} is not a version"))
        }
        VersionFrom::Image => {
            let cs = obj["spec"]["template"]["spec"]["containers"]
                .as_array()
                .ok_or("no containers in the pod template")?;
            let c = match &addon.container {
                Some(name) => cs
                    .iter()
                    .find(|c| c["name"].as_str() == Some(name))
                    .ok_or_else(|| format!("container {name} not found"))?,
                None if cs.len() == 1 => &cs[0],
                None => {
                    return Err(format!(
                        "{} containers and none named in the matrix",
                        cs.len()
                    ))
                }
            };
            let image = c["image"].as_str().ok_or("container has no image")?;
            aver::version_from_image(image)
        }
    }
}

/// Rollout in doubt (§3.3.3): `Some(why)`.
pub fn rollout_incomplete(kind: WorkloadKind, obj: &Value) -> Option<String> {
    let n = |v: &Value| v.as_i64().unwrap_or(0);
    let gen = n(&obj["metadata"]["generation"]);
    let observed = n(&obj["status"]["observedGeneration"]);
    if observed < gen {
        return Some(format!("observedGeneration {observed} < generation {gen}"));
    }
    let s = &obj["status"];
    let (desired, updated, ready) = match kind {
        WorkloadKind::DaemonSet => (
            n(&s["desiredNumberScheduled"]),
            n(&s["updatedNumberScheduled"]),
            n(&s["numberReady"]),
        ),
        _ => (
            obj["spec"]["replicas"].as_i64().unwrap_or(1),
            n(&s["updatedReplicas"]),
            n(&s["readyReplicas"]),
        ),
    };
    if updated < desired || ready < desired {
        return Some(format!(
            "updated {updated}, ready {ready} of {desired} desired"
        ));
    }
    None
}

/// §3.3.4–§4.1 for a running version `rv`: `None` = passes.
pub fn classify_addon(
    addon: &Addon,
    rv: &Ver,
    target: Minor,
    apiserver: Option<Minor>,
) -> Option<Blocker> {
    let x = &addon.name;
    let Some(m) = addon.rows.iter().rfind(|row| row.version <= *rv) else {
        let lowest = addon
            .rows
            .first()
            .map_or_else(|| "none".to_string(), |r| r.version.to_string());
        return Some(
            Blocker::actionable(
                CheckKind::Addon,
                x.clone(),
                &format!("addon {x} {rv} is older than every matrix row (lowest {lowest})"),
            )
            .current(rv.to_string())
            .required(format!(">= {lowest}"))
            .remediation(format!("upgrade {x} to >= {lowest} or add a row for {rv}")),
        );
    };
    if target <= m.max_k8s {
        return None;
    }
    let s: Vec<&crate::matrix::Row> = addon
        .rows
        .iter()
        .filter(|row| row.version > m.version && row.max_k8s >= target)
        .collect();
    let max = m.max_k8s;
    if addon.pinned {
        let mut text = format!(
            "{x} {rv} supports k8s \u{2264} {max}; pinned: {}",
            addon.pin_reason.as_deref().unwrap_or("")
        );
        if let Some(v) = s.first() {
            text.push_str(&format!("; {target} support from {}", v.version));
        }
        return Some(
            Blocker::new(Class::Pinned, CheckKind::Addon, x.clone(), &text)
                .current(rv.to_string())
                .required(s.first().map_or(format!("k8s {target} support"), |v| {
                    format!(">= {}", v.version)
                }))
                .remediation(format!("unpin {x} when its bump is possible")),
        );
    }
    if let Some(v) = s.first() {
        let mut text = format!(
            "{x} {rv} supports k8s \u{2264} {max}; upgrade {x} to >= {}",
            v.version
        );
        if let (Some(min), Some(a)) = (v.min_k8s, apiserver) {
            if min > a {
                text.push_str(&format!(
                    " ({} needs k8s >= {min}; order the upgrades by hand)",
                    v.version
                ));
            }
        }
        return Some(
            Blocker::actionable(CheckKind::Addon, x.clone(), &text)
                .current(rv.to_string())
                .required(format!(">= {}", v.version))
                .remediation(format!("upgrade {x} to >= {}", v.version)),
        );
    }
    let highest = addon.rows.last().map(|r| r.version.clone())?;
    if rv.major_minor() > highest.major_minor() {
        return Some(
            Blocker::actionable(
                CheckKind::Addon,
                x.clone(),
                &format!(
                    "{x} {rv} is newer than the matrix (highest row {highest}); add a row for it"
                ),
            )
            .current(rv.to_string())
            .remediation(format!("add a matrix row for {x} {rv}")),
        );
    }
    Some(
        Blocker::new(
            Class::Waiting,
            CheckKind::Addon,
            x.clone(),
            &format!(
                "{x} {rv} supports k8s \u{2264} {max}; no released {x} version supports k8s {target} yet"
            ),
        )
        .current(rv.to_string())
        .required(format!("k8s {target} support")),
    )
}

fn check_addons(r: &mut Run<'_>, a: Option<KubeVersion>) {
    let t0 = Instant::now();
    let b0 = r.blockers.len();
    let had = r.error.is_some();
    let tm = Minor::of(&r.o.target);
    let mut scanned = Scanned::default();
    for addon in &r.o.matrix.addons {
        if !r.in_time("addons") {
            break;
        }
        let x = &addon.name;
        let obj = match r.k.get_json(&addon.workload.api_path()) {
            Ok(v) => v,
            Err(e) if e.is_not_found() => {
                if !addon.optional {
                    r.blockers.push(
                        Blocker::actionable(
                            CheckKind::Addon,
                            x.clone(),
                            &format!("addon {x}: workload {} not found", addon.workload),
                        )
                        .remediation(format!(
                            "fix the workload of {x} in the matrix or mark it optional"
                        )),
                    );
                }
                continue;
            }
            Err(e) => {
                r.kube_err("addons", e);
                continue;
            }
        };
        scanned.objects += 1;
        let rv = match workload_version(addon, &obj) {
            Ok(v) => v,
            Err(why) => {
                r.blockers.push(
                    Blocker::actionable(
                        CheckKind::Addon,
                        x.clone(),
                        &format!(
                            "addon {x}: cannot read running version ({why}); a human must check"
                        ),
                    )
                    .remediation(format!("check the running version of {x} by hand")),
                );
                continue;
            }
        };
        if let Some(_why) = rollout_incomplete(addon.workload.kind, &obj) {
            r.blockers.push(
                Blocker::actionable(
                    CheckKind::Addon,
                    x.clone(),
                    &format!("addon {x}: rollout of {rv} incomplete"),
                )
                .current(rv.to_string())
                .remediation(format!("finish the rollout of {x}")),
            );
            continue;
        }
        if let Some(b) = classify_addon(addon, &rv, tm, a.map(|a| Minor::of(&a))) {
            r.blockers.push(b);
        }
    }
    r.push_check("addons", t0, b0, had, None, scanned);
}

// ---------------------------------------------------------------------------------------------
// 3.5 Containerd

fn check_containerd(r: &mut Run<'_>, nodes: &[NodeInfo]) {
    let t0 = Instant::now();
    let b0 = r.blockers.len();
    let had = r.error.is_some();
    let tm = Minor::of(&r.o.target);
    let compiled = ContainerdFloors::compiled_in();
    let floors =
        r.o.matrix
            .containerd_min
            .get(&tm)
            .or_else(|| compiled.floors.get(&tm))
            .cloned();
    let mut reason = None;
    match floors {
        None => {
            r.blockers.push(
                Blocker::actionable(
                    CheckKind::Containerd,
                    format!("k8s {tm}"),
                    &format!("no containerd floor known for k8s {tm}; add _containerd_min"),
                )
                .remediation(format!("add _containerd_min[\"{tm}\"] to the matrix")),
            );
            for n in nodes {
                if aver::containerd_version(&n.runtime).is_none() {
                    r.blockers.push(unreadable_runtime(n));
                }
            }
        }
        Some(floors) => {
            let src = if r.o.matrix.containerd_min.contains_key(&tm) {
                "matrix _containerd_min"
            } else {
                "compiled-in"
            };
            reason = Some(format!("floors from {src}"));
            for n in nodes {
                match aver::containerd_version(&n.runtime) {
                    None => r.blockers.push(unreadable_runtime(n)),
                    Some(v) => {
                        if let Err(floor) = aver::containerd_supported(&v, &floors) {
                            r.blockers.push(
                                Blocker::actionable(
                                    CheckKind::Containerd,
                                    format!("node {}", n.name),
                                    &format!(
                                        "node {} runs containerd {v}; k8s {tm} needs containerd \u{2265} {floor}; bump containerd on {}",
                                        n.name, n.name
                                    ),
                                )
                                .current(v.to_string())
                                .required(format!(">= {floor}"))
                                .remediation(format!("bump containerd on {}", n.name)),
                            );
                        }
                    }
                }
            }
        }
    }
    r.push_check(
        "containerd",
        t0,
        b0,
        had,
        reason,
        Scanned {
            objects: nodes.len() as u64,
            ..Scanned::default()
        },
    );
}

fn unreadable_runtime(n: &NodeInfo) -> Blocker {
    Blocker::actionable(
        CheckKind::Containerd,
        format!("node {}", n.name),
        &format!(
            "node {}: unsupported or unreadable runtime {:?}",
            n.name, n.runtime
        ),
    )
    .current(n.runtime.clone())
    .remediation(format!("check the container runtime on {}", n.name))
}

// ---------------------------------------------------------------------------------------------
// 3.4 Removed APIs

#[derive(Default)]
struct Findings {
    /// (subject "gv Kind", source) → finding.
    map: BTreeMap<(String, &'static str), Finding>,
}

impl Findings {
    fn add(&mut self, gvk: String, source: &'static str, rm: Minor, repl: &str, example: String) {
        let f = self.map.entry((gvk, source)).or_insert_with(|| Finding {
            removed_in: rm,
            replacement: repl.to_string(),
            count: 0,
            examples: Vec::new(),
        });
        f.count += 1;
        f.keep_example(example);
    }
    fn merge(&mut self, other: Findings) {
        for ((g, s), f) in other.map {
            let e = self.map.entry((g, s)).or_insert_with(|| Finding {
                removed_in: f.removed_in,
                replacement: f.replacement.clone(),
                count: 0,
                examples: Vec::new(),
            });
            e.count += f.count;
            for x in f.examples {
                e.keep_example(x);
            }
        }
    }
}

impl Finding {
    /// Keep the 5 smallest example subjects, sorted (stable output whatever the list order).
    fn keep_example(&mut self, x: String) {
        if self.examples.contains(&x) {
            return;
        }
        let at = self.examples.partition_point(|e| *e < x);
        if at < 5 {
            self.examples.insert(at, x);
            self.examples.truncate(5);
        }
    }
}

fn examples(f: &Finding) -> String {
    let mut s = f.examples.join(", ");
    if f.count as usize > f.examples.len() {
        s.push_str(", \u{2026}");
    }
    s
}

/// The §3.4.6 line text (after the tag).
pub fn removed_api_text(
    gvk: &str,
    removed_in: Minor,
    count: u64,
    source: &str,
    examples: &str,
    replacement: &str,
) -> String {
    let repl = if replacement.is_empty() {
        "no replacement"
    } else {
        replacement
    };
    format!(
        "removed API {gvk} (removed in {removed_in}) still used by {count} object(s) via {source} (e.g. {examples}); migrate to {repl}"
    )
}

fn window_class(rm: Minor, a: Minor, t: Minor) -> Option<bool> {
    // Some(true) = in W (blocker); Some(false) = next minor (notice); None = neither.
    if a < rm && rm <= t {
        Some(true)
    } else if rm == Minor(t.0, t.1 + 1) {
        Some(false)
    } else {
        None
    }
}

fn check_removed(r: &mut Run<'_>, a: Minor) {
    let t0 = Instant::now();
    let b0 = r.blockers.len();
    let had = r.error.is_some();
    let tm = Minor::of(&r.o.target);
    let table = &r.o.removed_apis;
    let mut scanned = Scanned::default();
    let mut blockers = Findings::default();
    let mut early = Findings::default();
    let relevant: Vec<&Removal> = table
        .removals
        .iter()
        .filter(|x| window_class(x.removed_in, a, tm).is_some())
        .collect();
    // §3.4.1: W empty → annotations and helm make no request (next-minor notices ride along
    // only when W is scanned anyway).
    let in_window = relevant
        .iter()
        .any(|x| window_class(x.removed_in, a, tm) == Some(true));
    let src = r.o.sources;
    let mut disabled = Vec::new();

    if table.covers_through < tm {
        r.blockers.push(
            Blocker::actionable(
                CheckKind::Data,
                "removed-API table",
                &format!(
                    "removed-API table covers k8s \u{2264} {}; cannot vouch for {tm} \u{2014} update it",
                    table.covers_through
                ),
            )
            .current(table.covers_through.to_string())
            .required(tm.to_string())
            .remediation("update the removed-API table (COMPAT_REMOVED_APIS or a new release)"),
        );
    }

    // metrics
    if !src.metrics {
        disabled.push("metrics");
    } else if r.in_time("removed_apis") {
        if let Some(m) = read_all_metrics(r, a, tm) {
            scanned.metric_series += m.series;
            m.into_findings(&mut blockers, &mut early, &mut r.deprecated);
        }
    }

    // annotations
    if !src.annotations {
        disabled.push("annotations");
    } else if in_window && r.in_time("removed_apis") {
        scan_annotations(r, &relevant, a, tm, &mut blockers, &mut early, &mut scanned);
    }

    // helm
    if !src.helm {
        disabled.push("helm");
    } else if in_window && r.in_time("removed_apis") {
        scan_helm(r, a, tm, &mut blockers, &mut early, &mut scanned);
    }

    for ((gvk, source), f) in &blockers.map {
        r.blockers.push(
            Blocker::actionable(
                CheckKind::RemovedApi,
                gvk.clone(),
                &removed_api_text(
                    gvk,
                    f.removed_in,
                    f.count,
                    source,
                    &examples(f),
                    &f.replacement,
                ),
            )
            .current(gvk.clone())
            .required(if f.replacement.is_empty() {
                "no replacement".to_string()
            } else {
                f.replacement.clone()
            })
            .remediation(if f.replacement.is_empty() {
                format!("stop using {gvk}")
            } else {
                format!("migrate to {}", f.replacement)
            }),
        );
    }
    for ((gvk, source), f) in &early.map {
        r.notices.push(format!(
            "removed API {gvk} (removed in {}) used by {} object(s) via {source} (e.g. {}); migrate before upgrading to {}",
            f.removed_in,
            f.count,
            examples(f),
            f.removed_in
        ));
    }
    let reason = if disabled.len() == 3 {
        Some("disabled".to_string())
    } else if !disabled.is_empty() {
        Some(format!("disabled: {}", disabled.join(",")))
    } else if !in_window {
        Some(format!("no table removals after {a} up to {tm}"))
    } else {
        None
    };
    if disabled.len() == 3 && table.covers_through >= tm {
        r.skip("removed_apis", "disabled");
    } else {
        r.push_check("removed_apis", t0, b0, had, reason, scanned);
    }
}

// ---------------------------------------------------------------------------------------------
// 3.4.2 metrics from every apiserver instance

/// What the deprecated-API gauge of one or more apiservers said. Series are sets, so the same
/// series seen on three apiservers counts once.
#[derive(Default)]
struct MetricsScan {
    series: u64,
    deprecated_series: u64,
    /// (key "gv What", in window?) → (removed_in, replacement, examples).
    removed: BTreeMap<(String, bool), (Minor, String, std::collections::BTreeSet<String>)>,
    /// "gv resource" → examples: deprecated with no removal release (CRD `deprecated: true`,
    /// GA deprecations such as core v1 Endpoints since 1.33).
    deprecated: BTreeMap<String, std::collections::BTreeSet<String>>,
}

impl MetricsScan {
    fn merge(&mut self, o: MetricsScan) {
        self.series += o.series;
        self.deprecated_series += o.deprecated_series;
        for (k, (rm, repl, ex)) in o.removed {
            self.removed
                .entry(k)
                .or_insert_with(|| (rm, repl, Default::default()))
                .2
                .extend(ex);
        }
        for (k, ex) in o.deprecated {
            self.deprecated.entry(k).or_default().extend(ex);
        }
    }

    fn into_findings(
        self,
        blockers: &mut Findings,
        early: &mut Findings,
        deprecated: &mut BTreeMap<String, std::collections::BTreeSet<String>>,
    ) {
        for ((key, in_w), (rm, repl, ex)) in self.removed {
            let f = if in_w { &mut *blockers } else { &mut *early };
            for x in ex {
                f.add(key.clone(), SRC_METRICS, rm, &repl, x);
            }
        }
        for (k, ex) in self.deprecated {
            deprecated.entry(k).or_default().extend(ex);
        }
    }
}

/// Why one apiserver's `/metrics` could not be used.
enum MetricsFail {
    Kube(KubeError),
    Parse(String),
}

/// Stream one apiserver's `/metrics` and classify its `apiserver_requested_deprecated_apis`
/// series against the window (minor(A), minor(T)].
fn scan_metrics(
    k: &dyn ClusterRead,
    table: &RemovedApiTable,
    a: Minor,
    tm: Minor,
) -> Result<MetricsScan, MetricsFail> {
    let mut bad: Option<String> = None;
    let mut m = MetricsScan::default();
    let res = k.get_lines("/metrics", &mut |line| {
        if line.starts_with('#') || line.is_empty() {
            return;
        }
        m.series += 1;
        let s = match scan::deprecated_series(line) {
            None => return,
            Some(Err(e)) => {
                bad.get_or_insert(e);
                return;
            }
            Some(Ok(s)) => s,
        };
        m.deprecated_series += 1;
        let known = table
            .removals
            .iter()
            .find(|x| x.group == s.group && x.version == s.version && x.resource == s.resource);
        let ex = if s.subresource.is_empty() {
            s.resource.clone()
        } else {
            format!("{}/{}", s.resource, s.subresource)
        };
        // apiextensions-apiserver pkg/apiserver/customresource_handler.go and apiserver
        // pkg/endpoints/deprecation/deprecation.go (kubernetes v1.35): "" = deprecated, no
        // removal scheduled. Only the removed-API table can still say it goes away.
        let rm = if s.removed_release.is_empty() {
            match known {
                Some(x) => x.removed_in,
                None => {
                    m.deprecated
                        .entry(format!("{} {}", gv(&s.group, &s.version), s.resource))
                        .or_default()
                        .insert(ex);
                    return;
                }
            }
        } else {
            match Minor::parse(&s.removed_release) {
                Some(rm) => rm,
                None => {
                    bad.get_or_insert(format!("removed_release {:?}", s.removed_release));
                    return;
                }
            }
        };
        let Some(in_w) = window_class(rm, a, tm) else {
            return;
        };
        let what = known.map_or(s.resource.clone(), |x| x.kind.clone());
        let repl = known.map_or("", |x| x.replacement.as_str());
        m.removed
            .entry((format!("{} {what}", gv(&s.group, &s.version)), in_w))
            .or_insert_with(|| (rm, repl.to_string(), Default::default()))
            .2
            .insert(ex);
    });
    match (res, bad) {
        (Err(e), _) => Err(MetricsFail::Kube(e)),
        (Ok(_), Some(b)) => Err(MetricsFail::Parse(format!(
            "unparseable apiserver_requested_deprecated_apis series: {b}"
        ))),
        (Ok(_), None) => Ok(m),
    }
}

/// The apiserver instances behind `default/kubernetes`: (`https://addr:port`, ready).
/// `discovery/v1` EndpointConditions (k8s.io/api discovery/v1/types.go, v0.36.3): a nil
/// `ready` means ready.
pub fn apiserver_endpoints(slices: &[Value]) -> Result<Vec<(String, bool)>, String> {
    let mut out = Vec::new();
    for sl in slices {
        let name = sl["metadata"]["name"].as_str().unwrap_or("?");
        let ports = sl["ports"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let port = ports
            .iter()
            .find(|p| p["name"].as_str() == Some("https"))
            .or_else(|| ports.first())
            .and_then(|p| p["port"].as_u64())
            .ok_or_else(|| format!("EndpointSlice default/{name} has no port"))?;
        let v6 = sl["addressType"].as_str() == Some("IPv6");
        for ep in sl["endpoints"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let ready = ep["conditions"]["ready"].as_bool() != Some(false);
            for addr in ep["addresses"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                let Some(addr) = addr.as_str() else { continue };
                if addr.parse::<std::net::IpAddr>().is_err() {
                    return Err(format!(
                        "EndpointSlice default/{name}: address {:?} is not an IP",
                        crate::report::escape_text(addr)
                    ));
                }
                let url = if v6 || addr.contains(':') {
                    format!("https://[{addr}]:{port}")
                } else {
                    format!("https://{addr}:{port}")
                };
                if !out.iter().any(|(u, _)| u == &url) {
                    out.push((url, ready));
                }
            }
        }
    }
    Ok(out)
}

/// §3.4.2 with HA control planes: every apiserver keeps its own gauge (KEP-1693), so every
/// ready instance listed in the EndpointSlices of `default/kubernetes` is read, in parallel.
/// `None` when the run already failed (the reason is recorded).
fn read_all_metrics(r: &mut Run<'_>, a: Minor, tm: Minor) -> Option<MetricsScan> {
    let table = &r.o.removed_apis;
    // A reader that cannot address instances (kubectl proxy): the one apiserver it reaches.
    if !r.k.addresses_instances() {
        r.notices.push(
            "metrics read through the configured server only (it cannot address apiserver instances); other instances' deprecated-API gauges are unseen".to_string(),
        );
        return match scan_metrics(r.k, table, a, tm) {
            Ok(m) => {
                r.apiservers.push(read_row("configured server", &m));
                Some(m)
            }
            Err(MetricsFail::Kube(e)) => {
                r.kube_err("removed_apis", e);
                None
            }
            Err(MetricsFail::Parse(p)) => {
                r.fail(format!("GET /metrics: {p}"));
                None
            }
        };
    }
    let mut slices = Vec::new();
    let res = r.k.list(
        SLICES_PATH,
        &ListParams {
            limit: Some(500),
            label_selector: Some("kubernetes.io/service-name=kubernetes".into()),
            ..ListParams::default()
        },
        &mut |p: Page| {
            if p.restarted {
                slices.clear();
            }
            slices.extend(p.items);
            Ok(())
        },
    );
    if let Err(e) = res {
        r.kube_err("removed_apis", e);
        return None;
    }
    let eps = match apiserver_endpoints(&slices) {
        Ok(e) => e,
        Err(e) => {
            r.fail(format!("GET {SLICES_PATH}: {e}"));
            return None;
        }
    };
    for (url, _) in eps.iter().filter(|(_, ready)| !ready) {
        r.notices.push(format!(
            "apiserver endpoint {} is not ready in the EndpointSlice: its deprecated-API gauge was skipped",
            url.trim_start_matches("https://")
        ));
        r.apiservers.push(ApiserverRead {
            endpoint: url.trim_start_matches("https://").to_string(),
            status: "not-ready",
            series: 0,
            deprecated_series: 0,
        });
    }
    let ready: Vec<&String> = eps.iter().filter(|(_, ok)| *ok).map(|(u, _)| u).collect();
    if ready.is_empty() {
        r.fail(format!(
            "GET {SLICES_PATH}: no ready apiserver endpoint in the EndpointSlices of default/kubernetes; cannot read any deprecated-API gauge"
        ));
        return None;
    }
    let mut clients = Vec::new();
    for u in &ready {
        match r.k.endpoint(u) {
            Some(Ok(c)) => clients.push((u.trim_start_matches("https://").to_string(), c)),
            Some(Err(e)) => {
                r.fail(format!("apiserver endpoint {u}: {e}"));
                return None;
            }
            None => return None,
        }
    }
    let results: Vec<(String, Result<MetricsScan, MetricsFail>)> = std::thread::scope(|sc| {
        let handles: Vec<_> = clients
            .into_iter()
            .map(|(ep, c)| sc.spawn(move || (ep, scan_metrics(c.as_ref(), table, a, tm))))
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    if results.len() != ready.len() {
        r.fail("a metrics reader thread panicked".into());
        return None;
    }
    let mut all = MetricsScan::default();
    let mut failed = false;
    for (ep, res) in results {
        match res {
            Ok(m) => {
                r.apiservers.push(read_row(&ep, &m));
                all.merge(m);
            }
            Err(f) => {
                failed = true;
                r.apiservers.push(ApiserverRead {
                    endpoint: ep.clone(),
                    status: "error",
                    series: 0,
                    deprecated_series: 0,
                });
                match f {
                    MetricsFail::Kube(KubeError::Deadline { .. }) => r.kube_err(
                        "removed_apis",
                        KubeError::Deadline {
                            path: "/metrics".into(),
                        },
                    ),
                    MetricsFail::Kube(e) => r.fail(format!(
                        "apiserver endpoint {ep}: {e} (metrics source incomplete)"
                    )),
                    MetricsFail::Parse(p) => {
                        r.fail(format!("apiserver endpoint {ep}: GET /metrics: {p}"))
                    }
                }
            }
        }
    }
    // JSON rows in EndpointSlice order.
    r.apiservers.sort_by_key(|row| {
        eps.iter()
            .position(|(u, _)| u.trim_start_matches("https://") == row.endpoint)
    });
    (!failed).then_some(all)
}

fn read_row(endpoint: &str, m: &MetricsScan) -> ApiserverRead {
    ApiserverRead {
        endpoint: endpoint.to_string(),
        status: "read",
        series: m.series,
        deprecated_series: m.deprecated_series,
    }
}

const SLICES_PATH: &str = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";

/// (group, version, resource).
type Gvr = (String, String, String);

#[allow(clippy::too_many_arguments)]
fn scan_annotations(
    r: &mut Run<'_>,
    relevant: &[&Removal],
    a: Minor,
    tm: Minor,
    blockers: &mut Findings,
    early: &mut Findings,
    scanned: &mut Scanned,
) {
    // Resources to list: (group, resource) → the in-window entries about them.
    let mut wanted: BTreeMap<(String, String), Vec<&Removal>> = BTreeMap::new();
    for x in relevant {
        if x.replacement.is_empty() {
            continue;
        }
        wanted
            .entry((x.group.clone(), x.resource.clone()))
            .or_default()
            .push(x);
    }
    if wanted.is_empty() {
        return;
    }
    // Discovery: which group versions are served, then their resources.
    let groups = match r.k.get_json("/apis") {
        Ok(v) => v,
        Err(e) => return r.kube_err("removed_apis", e),
    };
    let Some(glist) = groups["groups"].as_array() else {
        return r.fail("GET /apis: not an APIGroupList (no groups)".into());
    };
    // Served versions of a group, preferred version first (core: v1).
    let served_versions = |g: &str| -> Vec<String> {
        if g.is_empty() {
            return vec!["v1".to_string()];
        }
        let Some(grp) = glist.iter().find(|grp| grp["name"].as_str() == Some(g)) else {
            return Vec::new();
        };
        let mut vs: Vec<String> = grp["versions"]
            .as_array()
            .map(|vs| {
                vs.iter()
                    .filter_map(|x| x["version"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(p) = grp["preferredVersion"]["version"].as_str() {
            if let Some(i) = vs.iter().position(|v| v == p) {
                let pv = vs.remove(i);
                vs.insert(0, pv);
            }
        }
        vs
    };
    let mut resources: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    // 8b: list through a version the cluster serves — the replacement when served, else any
    // other served version of the group — never through a removed one (that request would
    // itself show in `metrics`). When only a removed version serves the resource, objects may
    // exist that this source cannot see: the source is incomplete (refuse on doubt).
    let mut chosen: Vec<(Gvr, Vec<&Removal>)> = Vec::new();
    for ((g, res), entries) in &wanted {
        let removed: Vec<&str> = entries.iter().map(|x| x.version.as_str()).collect();
        let served = served_versions(g);
        let mut order: Vec<String> = entries
            .iter()
            .filter_map(|x| x.replacement.rsplit_once('/').map(|(_, v)| v.to_string()))
            .chain(
                entries
                    .iter()
                    .filter(|x| !x.replacement.contains('/'))
                    .map(|x| x.replacement.clone()),
            )
            .filter(|v| served.contains(v))
            .collect();
        order.extend(served.iter().cloned());
        order.retain(|v| !removed.contains(&v.as_str()));
        order.dedup();
        let mut pick = None;
        for v in order {
            #[allow(clippy::map_entry)] // the value needs `r` (a request) in between
            if !resources.contains_key(&(g.clone(), v.clone())) {
                if !r.in_time("removed_apis") {
                    return;
                }
                let path = if g.is_empty() {
                    format!("/api/{v}")
                } else {
                    format!("/apis/{g}/{v}")
                };
                match r.k.get_json(&path) {
                    Ok(doc) => {
                        let names = doc["resources"]
                            .as_array()
                            .map(|rs| {
                                rs.iter()
                                    .filter(|x| {
                                        // create-only kinds (TokenReview, …) cannot be listed.
                                        x["verbs"].as_array().is_none_or(|vs| {
                                            vs.iter().any(|v| v.as_str() == Some("list"))
                                        })
                                    })
                                    .filter_map(|x| x["name"].as_str())
                                    .filter(|n| !n.contains('/'))
                                    .map(str::to_string)
                                    .collect()
                            })
                            .unwrap_or_default();
                        resources.insert((g.clone(), v.clone()), names);
                    }
                    Err(e) if e.is_not_found() => {
                        resources.insert((g.clone(), v.clone()), Vec::new());
                    }
                    Err(e) => return r.kube_err("removed_apis", e),
                }
            }
            if resources[&(g.clone(), v.clone())].contains(res) {
                pick = Some(v);
                break;
            }
        }
        // Does a removed version (still) serve it? Discovery only: no list through it.
        let mut via_removed = false;
        if pick.is_none() {
            for v in removed.iter().filter(|v| served.iter().any(|s| s == *v)) {
                let path = if g.is_empty() {
                    format!("/api/{v}")
                } else {
                    format!("/apis/{g}/{v}")
                };
                match r.k.get_json(&path) {
                    Ok(doc) => {
                        via_removed |= doc["resources"].as_array().is_some_and(|rs| {
                            rs.iter().any(|x| x["name"].as_str() == Some(res.as_str()))
                        })
                    }
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return r.kube_err("removed_apis", e),
                }
            }
        }
        match pick {
            Some(v) => chosen.push(((g.clone(), v, res.clone()), entries.clone())),
            None if via_removed => {
                return r.fail(format!(
                    "annotations source incomplete: {} is served only through removed version(s) {}; list it by hand or disable the source (COMPAT_API_SOURCES)",
                    gv(g, res),
                    removed.join(",")
                ));
            }
            // No served version has it: nothing of that kind can be stored.
            None => {}
        }
    }
    for ((g, v, res), entries) in &chosen {
        if !r.in_time("removed_apis") {
            return;
        }
        let path = if g.is_empty() {
            format!("/api/{v}/{res}")
        } else {
            format!("/apis/{g}/{v}/{res}")
        };
        let mut local = Findings::default();
        let mut local_early = Findings::default();
        let mut warns: Vec<String> = Vec::new();
        let mut count = 0u64;
        let res = r.k.list(
            &path,
            &ListParams {
                limit: Some(500),
                metadata_only: true,
                ..ListParams::default()
            },
            &mut |p: Page| {
                if p.restarted {
                    local = Findings::default();
                    local_early = Findings::default();
                    warns.clear();
                    count = 0;
                }
                for it in &p.items {
                    count += 1;
                    let name = it["metadata"]["name"].as_str().unwrap_or("?");
                    let subj = match it["metadata"]["namespace"].as_str() {
                        Some(ns) => format!("{ns}/{name}"),
                        None => name.to_string(),
                    };
                    // Item 7: server-side apply (Flux, Argo CD SSA, kubectl --server-side)
                    // leaves no last-applied annotation, but each manager's entry in
                    // metadata.managedFields records the apiVersion it used
                    // (k8s.io/apimachinery pkg/apis/meta/v1/types.go ManagedFieldsEntry).
                    for m in it["metadata"]["managedFields"]
                        .as_array()
                        .into_iter()
                        .flatten()
                    {
                        let Some(api) = m["apiVersion"].as_str() else {
                            continue;
                        };
                        for x in entries.iter().filter(|x| x.group_version() == api) {
                            let key = format!("{api} {}", x.kind);
                            let who = escape_text(m["manager"].as_str().unwrap_or("?"));
                            let ex = format!("{subj} (manager {who})");
                            match window_class(x.removed_in, a, tm) {
                                Some(true) => {
                                    local.add(key, SRC_MANAGED, x.removed_in, &x.replacement, ex)
                                }
                                Some(false) => local_early.add(
                                    key,
                                    SRC_MANAGED,
                                    x.removed_in,
                                    &x.replacement,
                                    ex,
                                ),
                                None => {}
                            }
                        }
                    }
                    let Some(la) = it["metadata"]["annotations"][LAST_APPLIED].as_str() else {
                        continue;
                    };
                    match scan::last_applied(la) {
                        Err(why) => warns.push(format!(
                            "WARN: {path} {subj}: unparseable {LAST_APPLIED}: {why}"
                        )),
                        Ok((api, kind)) => {
                            for x in entries {
                                if x.group_version() == api && x.kind == kind {
                                    let key = format!("{api} {kind}");
                                    match window_class(x.removed_in, a, tm) {
                                        Some(true) => local.add(
                                            key,
                                            SRC_ANNOT,
                                            x.removed_in,
                                            &x.replacement,
                                            subj.clone(),
                                        ),
                                        Some(false) => local_early.add(
                                            key,
                                            SRC_ANNOT,
                                            x.removed_in,
                                            &x.replacement,
                                            subj.clone(),
                                        ),
                                        None => {}
                                    }
                                }
                            }
                        }
                    }
                }
                Ok(())
            },
        );
        scanned.objects += count;
        r.warnings.extend(warns);
        match res {
            Ok(_) => {
                blockers.merge(local);
                early.merge(local_early);
            }
            Err(e) => return r.kube_err("removed_apis", e),
        }
    }
}

fn scan_helm(
    r: &mut Run<'_>,
    a: Minor,
    tm: Minor,
    blockers: &mut Findings,
    early: &mut Findings,
    scanned: &mut Scanned,
) {
    // Helm's two Kubernetes storage drivers (helm/helm v3.21.4 pkg/storage/driver/secrets.go,
    // cfgmaps.go): both label owner=helm,status=…; only Secrets have a type to select on.
    scan_helm_driver(r, a, tm, blockers, early, scanned, HelmDriver::Secrets);
    if r.in_time("removed_apis") {
        scan_helm_driver(r, a, tm, blockers, early, scanned, HelmDriver::ConfigMaps);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum HelmDriver {
    Secrets,
    ConfigMaps,
}

#[allow(clippy::too_many_arguments)]
fn scan_helm_driver(
    r: &mut Run<'_>,
    a: Minor,
    tm: Minor,
    blockers: &mut Findings,
    early: &mut Findings,
    scanned: &mut Scanned,
    driver: HelmDriver,
) {
    let table = &r.o.removed_apis;
    let mut local = Findings::default();
    let mut local_early = Findings::default();
    let mut undecodable: Vec<Blocker> = Vec::new();
    let mut stuck: Vec<String> = Vec::new();
    let mut count = 0u64;
    let (path, field_selector, what) = match driver {
        HelmDriver::Secrets => (
            "/api/v1/secrets",
            Some("type=helm.sh/release.v1".to_string()),
            "Secret",
        ),
        HelmDriver::ConfigMaps => ("/api/v1/configmaps", None, "ConfigMap"),
    };
    let res = r.k.list(
        path,
        &ListParams {
            limit: Some(20),
            label_selector: Some("owner=helm,status=deployed".into()),
            field_selector,
            metadata_only: false,
        },
        &mut |p: Page| {
            if p.restarted {
                local = Findings::default();
                local_early = Findings::default();
                undecodable.clear();
                stuck.clear();
                count = 0;
            }
            for s in p.items {
                count += 1;
                let ns = s["metadata"]["namespace"].as_str().unwrap_or("").to_string();
                let name = s["metadata"]["labels"]["name"]
                    .as_str()
                    .or_else(|| s["metadata"]["name"].as_str())
                    .unwrap_or("?")
                    .to_string();
                let decoded = match driver {
                    HelmDriver::Secrets => scan::decode_release(&s),
                    HelmDriver::ConfigMaps => scan::decode_release_configmap(&s),
                };
                let rel = match decoded {
                    Ok(rel) => rel,
                    Err(why) => {
                        undecodable.push(
                            Blocker::actionable(
                                CheckKind::RemovedApi,
                                format!("helm release {ns}/{name}"),
                                &format!("helm release {ns}/{name}: cannot decode ({why})"),
                            )
                            .remediation(format!("inspect the release {what} by hand")),
                        );
                        continue;
                    }
                };
                drop(s);
                let subj = rel.subject();
                for (api, kind) in &rel.documents {
                    for x in &table.removals {
                        if x.group_version() != *api || x.kind != *kind {
                            continue;
                        }
                        let key = format!("{api} {kind}");
                        match window_class(x.removed_in, a, tm) {
                            Some(true) => {
                                local.add(key, SRC_HELM, x.removed_in, &x.replacement, subj.clone())
                            }
                            Some(false) => local_early.add(
                                key,
                                SRC_HELM,
                                x.removed_in,
                                &x.replacement,
                                subj.clone(),
                            ),
                            None if x.removed_in <= a => {
                                let n = format!(
                                    "helm release {subj} uses {key}, removed in {} (at or before the running {a}); its next helm upgrade fails until the chart is fixed",
                                    x.removed_in
                                );
                                if !stuck.contains(&n) {
                                    stuck.push(n);
                                }
                            }
                            None => {}
                        }
                    }
                }
            }
            Ok(())
        },
    );
    scanned.helm_releases += count;
    match res {
        Ok(_) => {
            blockers.merge(local);
            early.merge(local_early);
            r.blockers.extend(undecodable);
            r.notices.extend(stuck);
        }
        Err(e) => r.kube_err("removed_apis", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::parse_matrix;
    use std::path::Path;

    fn addon(json: &str) -> Addon {
        let m = parse_matrix(Path::new("m.json"), &format!("{{\"x\":{json}}}")).unwrap();
        m.addons[0].clone()
    }
    fn v(s: &str) -> Ver {
        Ver::parse(s).unwrap()
    }

    #[test]
    fn row_matching_and_classification_order() {
        let eso =
            addon(r#"{"workload":"es/deployment/es","versions":{"0.12":"1.31","2.6":"1.35"}}"#);
        let t135 = Minor(1, 35);
        let a134 = Some(Minor(1, 34));
        // ESO 0.12 → upgrade to >= 2.6 (b).
        let b = classify_addon(&eso, &v("0.12.1"), t135, a134).unwrap();
        assert_eq!(
            b.line,
            "[ACTIONABLE] x 0.12.1 supports k8s \u{2264} 1.31; upgrade x to >= 2.6"
        );
        // Between rows → floor row; 2.6.0 passes for 1.35.
        assert!(classify_addon(&eso, &v("2.6.0"), t135, a134).is_none());
        assert!(classify_addon(&eso, &v("3.0"), t135, a134).is_none());
        // 1.36: newer than matrix (c) vs waiting (d).
        let t136 = Minor(1, 36);
        let b = classify_addon(&eso, &v("3.1.0"), t136, Some(t135)).unwrap();
        assert_eq!(
            b.line,
            "[ACTIONABLE] x 3.1.0 is newer than the matrix (highest row 2.6); add a row for it"
        );
        let b = classify_addon(&eso, &v("2.6.0"), t136, Some(t135)).unwrap();
        assert_eq!(b.class, Class::Waiting);
        assert_eq!(b.line, "[WAITING] x 2.6.0 supports k8s \u{2264} 1.35; no released x version supports k8s 1.36 yet");
        // Below every row.
        let b = classify_addon(&eso, &v("0.11"), t135, a134).unwrap();
        assert_eq!(
            b.line,
            "[ACTIONABLE] addon x 0.11 is older than every matrix row (lowest 0.12)"
        );
        // Pinned wins (a), with S.
        let gpu = addon(
            r#"{"workload":"g/deployment/g","pinned":true,"pin_reason":"26.3 needs newer NVIDIA driver image + Ubuntu","versions":{"25.3":"1.35","26.3":"1.36"}}"#,
        );
        let b = classify_addon(&gpu, &v("25.3"), t136, Some(t135)).unwrap();
        assert_eq!(b.line, "[PINNED] x 25.3 supports k8s \u{2264} 1.35; pinned: 26.3 needs newer NVIDIA driver image + Ubuntu; 1.36 support from 26.3");
        // min_k8s suffix.
        let c = addon(
            r#"{"workload":"c/daemonset/c","versions":[{"version":"3.30","max_k8s":"1.35"},{"version":"3.31","max_k8s":"1.36","min_k8s":"1.36"}]}"#,
        );
        let b = classify_addon(&c, &v("3.30.2"), t136, Some(t135)).unwrap();
        assert_eq!(b.line, "[ACTIONABLE] x 3.30.2 supports k8s \u{2264} 1.35; upgrade x to >= 3.31 (3.31 needs k8s >= 1.36; order the upgrades by hand)");
    }

    #[test]
    fn rollout_rules() {
        use serde_json::json;
        let ok = json!({"metadata": {"generation": 4}, "spec": {"replicas": 2},
                        "status": {"observedGeneration": 4, "updatedReplicas": 2, "readyReplicas": 2}});
        assert!(rollout_incomplete(WorkloadKind::Deployment, &ok).is_none());
        let stale = json!({"metadata": {"generation": 5}, "spec": {"replicas": 2},
                        "status": {"observedGeneration": 4, "updatedReplicas": 2, "readyReplicas": 2}});
        assert!(rollout_incomplete(WorkloadKind::Deployment, &stale).is_some());
        let partial = json!({"metadata": {"generation": 4}, "spec": {"replicas": 2},
                        "status": {"observedGeneration": 4, "updatedReplicas": 1, "readyReplicas": 2}});
        assert!(rollout_incomplete(WorkloadKind::StatefulSet, &partial).is_some());
        let ds = json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1,
                        "desiredNumberScheduled": 7, "updatedNumberScheduled": 7}});
        assert!(
            rollout_incomplete(WorkloadKind::DaemonSet, &ds).is_some(),
            "numberReady absent = 0"
        );
    }

    #[test]
    fn sources_parse() {
        assert_eq!(
            Sources::parse("metrics,annotations,helm").unwrap(),
            Sources::all()
        );
        assert_eq!(Sources::parse("helm").unwrap().to_string(), "helm");
        assert!(Sources::parse("").is_err());
        assert!(Sources::parse(" , ").is_err());
        assert!(Sources::parse("metrics,audit").is_err());
    }

    #[test]
    fn removed_line_text() {
        assert_eq!(
            removed_api_text("networking.k8s.io/v1beta1 Ingress", Minor(1, 22), 2, "helm release", "a, b", "networking.k8s.io/v1"),
            "removed API networking.k8s.io/v1beta1 Ingress (removed in 1.22) still used by 2 object(s) via helm release (e.g. a, b); migrate to networking.k8s.io/v1"
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// `COMPAT_API_SOURCES`: any text never panics; accepted iff every non-blank word is a
        /// known source and there is one; the result has exactly the words named.
        #[test]
        fn sources_parse_accepts_exactly_known_words(
            words in proptest::collection::vec(prop_oneof![
                Just("metrics".to_string()), Just("annotations".to_string()), Just("helm".to_string()),
                Just(String::new()), "[ \\t]{0,2}", "\\PC{0,8}", Just("Helm".to_string()),
            ], 0..5),
            pad in "[ \\t]{0,2}",
        ) {
            let text = words.iter().map(|w| format!("{pad}{w}{pad}")).collect::<Vec<_>>().join(",");
            let named: Vec<&str> = text.split(',').map(str::trim).filter(|w| !w.is_empty()).collect();
            let known = ["metrics", "annotations", "helm"];
            match Sources::parse(&text) {
                Ok(s) => {
                    prop_assert!(!named.is_empty() && named.iter().all(|w| known.contains(w)));
                    prop_assert_eq!(s.metrics, named.contains(&"metrics"));
                    prop_assert_eq!(s.annotations, named.contains(&"annotations"));
                    prop_assert_eq!(s.helm, named.contains(&"helm"));
                    // Display round-trips.
                    prop_assert_eq!(Sources::parse(&s.to_string()).unwrap(), s);
                }
                Err(e) => {
                    prop_assert!(named.is_empty() || !named.iter().all(|w| known.contains(w)), "{}", e);
                    if let Some(bad) = named.iter().find(|w| !known.contains(w)) {
                        prop_assert!(e.contains(&format!("{bad:?}")), "{}", e);
                    }
                }
            }
        }

        /// Every non-empty subset round-trips through Display.
        #[test]
        fn sources_display_round_trips(m in any::<bool>(), a in any::<bool>(), h in any::<bool>()) {
            let s = Sources { metrics: m, annotations: a, helm: h };
            let r = Sources::parse(&s.to_string());
            if m || a || h {
                prop_assert_eq!(r.unwrap(), s);
            } else {
                prop_assert!(r.is_err());
            }
        }

        /// The target: any text never panics, a refusal reads `target: "<input>" …`; a valid
        /// version round-trips and ordering is numeric.
        #[test]
        fn parse_target_round_trip_and_refusals(
            junk in "\\PC{0,24}|v?[0-9.]{0,12}",
            a in (0u32..100, 0u32..100, 0u32..100),
            b in (0u32..100, 0u32..100, 0u32..100),
            v in any::<bool>(),
        ) {
            if let Err(e) = parse_target(&junk) {
                prop_assert!(e.starts_with(&format!("target: {junk:?}")), "{}", e);
            }
            let p = |t: (u32, u32, u32)| parse_target(&format!("{}{}.{}.{}", if v { "v" } else { "" }, t.0, t.1, t.2)).unwrap();
            let (ka, kb) = (p(a), p(b));
            prop_assert_eq!(ka, KubeVersion::new(a.0, a.1, a.2));
            prop_assert_eq!(parse_target(&ka.to_string()).unwrap(), ka);
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
        }
    }
}
