//! `edges-digest policy` (issue 17): a NetworkPolicy — or a Calico StagedNetworkPolicy — that
//! allows exactly what a namespace was observed doing. Pure: trail data in, YAML text out. The
//! only time in the output is the window, and only in comments; everything else is sorted.
//!
//! Upstream shapes: Kubernetes `networking.k8s.io/v1` NetworkPolicy
//! (kubernetes/api `networking/v1/types.go`); Calico `projectcalico.org/v3` StagedNetworkPolicy
//! (projectcalico/api v3.30.0 `pkg/apis/projectcalico/v3/stagednetworkpolicy.go`,
//! `policy_common.go` — Rule, EntityRule, ServiceMatch; `pkg/lib/numorstring/protocol.go`).

use crate::config::{is_dns_label, DnsPeer, PolicyFormat, ToolConfig};
use crate::decide::zulu;
use crate::render::{clean, yaml};
use crate::trail::{External, NsTrail, StagedHit};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};

/// The runbook's caveat: observe a week before enforcing.
pub const MIN_OBSERVATION: Duration = Duration::days(7);
/// The Goldmane destination names listed per port in the header.
const NAMES_PER_PORT: usize = 8;

/// The window as the header shows it.
#[derive(Debug, Clone)]
pub struct Window {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    /// `--since` as given (`7d`) or the start time.
    pub since_text: String,
}

/// Protocols a NetworkPolicyPort can carry (kubernetes/api `core/v1/types.go` Protocol:
/// TCP, UDP, SCTP).
fn k8s_proto(p: &str) -> Option<&'static str> {
    match p.to_ascii_lowercase().as_str() {
        "tcp" => Some("TCP"),
        "udp" => Some("UDP"),
        "sctp" => Some("SCTP"),
        _ => None,
    }
}

/// Calico protocol names (projectcalico/api `pkg/lib/numorstring/protocol.go`
/// allProtocolNames: TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite). Ports only with TCP, UDP, SCTP
/// (`policy_common.go`: "ports only valid with TCP/UDP/SCTP" rule validation in libcalico-go).
fn calico_proto(p: &str) -> Option<(&'static str, bool)> {
    match p.to_ascii_lowercase().as_str() {
        "tcp" => Some(("TCP", true)),
        "udp" => Some(("UDP", true)),
        "sctp" => Some(("SCTP", true)),
        "icmp" => Some(("ICMP", false)),
        "icmpv6" => Some(("ICMPv6", false)),
        "udplite" => Some(("UDPLite", false)),
        _ => None,
    }
}

fn dest_name(e: &External) -> String {
    format!("{} {}", clean(&e.dst_type, 20), clean(&e.dst_name, 80))
}

/// External egress grouped by (protocol, port) → (destination names, flows), sorted.
type PortMap = BTreeMap<(String, i32), (Vec<String>, i64)>;

struct Parts {
    ns_rules: Vec<(String, i64)>,
    skipped_names: usize,
    ports: PortMap,
    /// ICMP-like (no port, Calico-expressible) per protocol.
    portless: PortMap,
    /// Not expressible at all in the chosen format.
    unexpressible: Vec<String>,
}

fn split(t: &NsTrail, ns: &str, format: PolicyFormat) -> Parts {
    let mut ns_rules = Vec::new();
    let mut skipped_names = 0;
    for (d, f) in &t.egress_ns {
        if d == ns {
            continue;
        }
        if is_dns_label(d) {
            ns_rules.push((d.clone(), *f));
        } else {
            skipped_names += 1;
        }
    }
    let mut ports = PortMap::new();
    let mut portless = PortMap::new();
    let mut unexpressible = Vec::new();
    for e in &t.external {
        let (proto, with_port) = match format {
            PolicyFormat::K8s => match k8s_proto(&e.proto) {
                Some(p) => (Some(p), true),
                None => (None, false),
            },
            PolicyFormat::CalicoStaged => match calico_proto(&e.proto) {
                Some((p, w)) => (Some(p), w),
                None => (None, false),
            },
        };
        let key_ok = match proto {
            Some(_) if with_port => (1..=65535).contains(&e.dst_port),
            Some(_) => true,
            None => false,
        };
        if !key_ok {
            unexpressible.push(format!(
                "{} {} to {} ({} flows)",
                clean(&e.proto, 16),
                e.dst_port,
                dest_name(e),
                e.flows
            ));
            continue;
        }
        let proto = proto.unwrap_or_default().to_string();
        let map = if with_port { &mut ports } else { &mut portless };
        let port = if with_port { e.dst_port } else { 0 };
        let ent = map.entry((proto, port)).or_default();
        ent.0.push(dest_name(e));
        ent.1 += e.flows;
    }
    unexpressible.sort();
    Parts {
        ns_rules,
        skipped_names,
        ports,
        portless,
        unexpressible,
    }
}

fn age_text(d: Duration) -> String {
    let h = d.whole_hours().max(0);
    format!("{}d {}h", h / 24, h % 24)
}

fn names_text(names: &[String]) -> String {
    let mut v: Vec<&String> = names.iter().collect();
    v.sort();
    v.dedup();
    let mut s: Vec<String> = v
        .iter()
        .take(NAMES_PER_PORT)
        .map(|x| x.to_string())
        .collect();
    if v.len() > NAMES_PER_PORT {
        s.push(format!("+{} more", v.len() - NAMES_PER_PORT));
    }
    s.join(", ")
}

fn dns_text(p: &DnsPeer, format: PolicyFormat) -> String {
    match (p, format) {
        (DnsPeer::KubeDns, PolicyFormat::K8s) => {
            "UDP+TCP 53 to kube-system pods k8s-app=kube-dns".into()
        }
        (DnsPeer::KubeDns, PolicyFormat::CalicoStaged) => {
            "UDP+TCP to service kube-system/kube-dns".into()
        }
        (DnsPeer::Cidr(c), _) => format!("UDP+TCP 53 to {c} (--dns-peer)"),
        (
            DnsPeer::Pods {
                namespace,
                key,
                value,
            },
            _,
        ) => format!("UDP+TCP 53 to {namespace} pods {key}={value} (--dns-peer)"),
    }
}

/// The header comment, shared by both formats.
fn header(
    ns: &str,
    w: &Window,
    t: &NsTrail,
    cfg: &ToolConfig,
    parts: &Parts,
    ingress_rules: Option<&[(String, i64)]>,
) -> Vec<String> {
    let kind = match cfg.policy_format {
        PolicyFormat::K8s => "networking.k8s.io/v1 NetworkPolicy",
        PolicyFormat::CalicoStaged => "projectcalico.org/v3 StagedNetworkPolicy",
    };
    let mut h = vec![
        format!("observed-egress for namespace {ns}: {kind} derived by `edges-digest policy` from the goldmane_edges trail"),
        format!(
            "window: {} .. {} (--since {}); observed = allowed by the source side, never denied by the destination side",
            zulu(w.start),
            zulu(w.end),
            clean(&w.since_text, 40)
        ),
    ];
    match t.data_start {
        Some(s) => h.push(format!(
            "data for {ns} starts {} (oldest first_seen)",
            zulu(s)
        )),
        None => h.push(format!("no data for {ns} before the window")),
    }
    if let Some(s) = t.data_start {
        if w.end - s < MIN_OBSERVATION {
            h.push(format!(
                "WARNING: the data is younger than 7 days ({}): rarely used paths may be missing; observe longer before enforcing",
                age_text(w.end - s)
            ));
        }
    }
    if t.denies > 0 {
        h.push(format!(
            "WARNING: {ns} has {} deny edge side(s) in the window (either side); denied traffic is not allowed here; see `edges-digest graph --namespace {ns}`",
            t.denies
        ));
    }
    if cfg.policy_format == PolicyFormat::CalicoStaged {
        h.push("applying needs the Calico API server (kubectl) or calicoctl; staged: Goldmane/Whisker show its verdicts before it is enforced".into());
    }
    h.push("the trail records namespaces, not ports: in-cluster rules allow all ports".into());
    h.push("egress rules (lifetime flow counts from the source side):".into());
    let mut n = 1;
    h.push(format!(
        "  {n}. DNS: {}",
        dns_text(&cfg.dns_peer, cfg.policy_format)
    ));
    if !cfg.no_self {
        n += 1;
        h.push(format!(
            "  {n}. {ns} itself (the trail drops same-namespace edges; --no-self omits this)"
        ));
    }
    for (d, f) in &parts.ns_rules {
        n += 1;
        h.push(format!("  {n}. namespace {d}: {f} flows"));
    }
    let external = parts.ports.iter().chain(parts.portless.iter());
    for ((proto, port), (names, flows)) in external {
        n += 1;
        let p = if *port > 0 {
            format!("{proto} {port}")
        } else {
            proto.clone()
        };
        h.push(format!(
            "  {n}. external {p}: {flows} flows to {}",
            names_text(names)
        ));
    }
    if !parts.ports.is_empty() || !parts.portless.is_empty() {
        h.push("external rules match 0.0.0.0/0 with the observed ports: Goldmane reports destination names, not IPs".into());
        if cfg.exclude_cidrs.is_empty() {
            h.push("WARNING: no --exclude-cidr: the external rule also matches in-cluster pods and services; pass the pod and service CIDRs".into());
        } else {
            h.push(format!("except: {}", cfg.exclude_cidrs.join(", ")));
        }
    }
    if !parts.unexpressible.is_empty() {
        let what = match cfg.policy_format {
            PolicyFormat::K8s => {
                "not expressible in a NetworkPolicy (port-less or not TCP/UDP/SCTP), not allowed"
            }
            PolicyFormat::CalicoStaged => "not expressible (unknown protocol or port), not allowed",
        };
        h.push(format!("{what}:"));
        for u in &parts.unexpressible {
            h.push(format!("  - {u}"));
        }
    }
    if parts.skipped_names > 0 {
        h.push(format!(
            "skipped {} destination name(s) that are not DNS labels (not namespaces)",
            parts.skipped_names
        ));
    }
    if let Some(rules) = ingress_rules {
        h.push(
            "observed-ingress rules (destination-reported allows, lifetime flow counts):".into(),
        );
        for (s, f) in rules {
            h.push(format!("  - from namespace {s}: {f} flows"));
        }
    }
    h
}

fn ns_match_k8s(ns: &str) -> Value {
    json!({"matchLabels": {"kubernetes.io/metadata.name": ns}})
}

fn ns_sel_calico(ns: &str) -> String {
    // `ns` is a DNS label: no quote can end the selector literal.
    format!("kubernetes.io/metadata.name == '{ns}'")
}

fn ingress_list(t: &NsTrail, ns: &str) -> Vec<(String, i64)> {
    t.ingress_ns
        .iter()
        .filter(|(s, _)| s != ns && is_dns_label(s))
        .cloned()
        .collect()
}

fn k8s_docs(
    ns: &str,
    cfg: &ToolConfig,
    parts: &Parts,
    ingress: Option<&[(String, i64)]>,
) -> Vec<Value> {
    let dns_ports = json!([{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]);
    let dns_to = match &cfg.dns_peer {
        DnsPeer::KubeDns => json!([{
            "namespaceSelector": ns_match_k8s("kube-system"),
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }]),
        DnsPeer::Cidr(c) => json!([{"ipBlock": {"cidr": c}}]),
        DnsPeer::Pods {
            namespace,
            key,
            value,
        } => {
            let mut sel = Map::new();
            sel.insert(key.clone(), json!(value));
            json!([{
                "namespaceSelector": ns_match_k8s(namespace),
                "podSelector": {"matchLabels": sel},
            }])
        }
    };
    let mut egress = vec![json!({"ports": dns_ports, "to": dns_to})];
    if !cfg.no_self {
        egress.push(json!({"to": [{"podSelector": {}}]}));
    }
    for (d, _) in &parts.ns_rules {
        egress.push(json!({"to": [{"namespaceSelector": ns_match_k8s(d)}]}));
    }
    if !parts.ports.is_empty() {
        let mut block = Map::new();
        block.insert("cidr".into(), json!("0.0.0.0/0"));
        // An except must lie inside the cidr (networking/validation: ValidateIPBlock): only
        // IPv4 ranges go into the 0.0.0.0/0 block.
        let v4: Vec<&String> = cfg
            .exclude_cidrs
            .iter()
            .filter(|c| !c.contains(':'))
            .collect();
        if !v4.is_empty() {
            block.insert("except".into(), json!(v4));
        }
        let ports: Vec<Value> = parts
            .ports
            .keys()
            .map(|(p, port)| json!({"port": port, "protocol": p}))
            .collect();
        egress.push(json!({"ports": ports, "to": [{"ipBlock": block}]}));
    }
    let mut docs = vec![json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "observed-egress", "namespace": ns},
        "spec": {"egress": egress, "podSelector": {}, "policyTypes": ["Egress"]},
    })];
    if let Some(rules) = ingress {
        let mut ing = Vec::new();
        if !cfg.no_self {
            ing.push(json!({"from": [{"podSelector": {}}]}));
        }
        for (s, _) in rules {
            ing.push(json!({"from": [{"namespaceSelector": ns_match_k8s(s)}]}));
        }
        docs.push(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "observed-ingress", "namespace": ns},
            "spec": {"ingress": ing, "podSelector": {}, "policyTypes": ["Ingress"]},
        }));
    }
    docs
}

fn calico_docs(
    ns: &str,
    cfg: &ToolConfig,
    parts: &Parts,
    ingress: Option<&[(String, i64)]>,
) -> Vec<Value> {
    let mut egress = Vec::new();
    for proto in ["UDP", "TCP"] {
        let dest = match &cfg.dns_peer {
            // ServiceMatch: no ports on egress rules with services (policy_common.go).
            DnsPeer::KubeDns => {
                json!({"services": {"name": "kube-dns", "namespace": "kube-system"}})
            }
            DnsPeer::Cidr(c) => json!({"nets": [c], "ports": [53]}),
            DnsPeer::Pods {
                namespace,
                key,
                value,
            } => json!({
                "namespaceSelector": ns_sel_calico(namespace),
                "ports": [53],
                // label key/value validated: no quote can end the literal.
                "selector": format!("{key} == '{value}'"),
            }),
        };
        egress.push(json!({"action": "Allow", "destination": dest, "protocol": proto}));
    }
    if !cfg.no_self {
        // A namespaced policy's selector without namespaceSelector matches its own namespace.
        egress.push(json!({"action": "Allow", "destination": {"selector": "all()"}}));
    }
    for (d, _) in &parts.ns_rules {
        egress.push(
            json!({"action": "Allow", "destination": {"namespaceSelector": ns_sel_calico(d)}}),
        );
    }
    let ext_dest = |ports: Option<Vec<i32>>| {
        let mut d = Map::new();
        // IPv4 only, like the k8s rule: a notNets entry must share the nets' IP version.
        d.insert("nets".into(), json!(["0.0.0.0/0"]));
        let v4: Vec<&String> = cfg
            .exclude_cidrs
            .iter()
            .filter(|c| !c.contains(':'))
            .collect();
        if !v4.is_empty() {
            d.insert("notNets".into(), json!(v4));
        }
        if let Some(p) = ports {
            d.insert("ports".into(), json!(p));
        }
        Value::Object(d)
    };
    // One rule per protocol (Calico-native), ports sorted.
    let mut by_proto: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (p, port) in parts.ports.keys() {
        by_proto.entry(p.as_str()).or_default().push(*port);
    }
    for (p, ports) in by_proto {
        egress
            .push(json!({"action": "Allow", "destination": ext_dest(Some(ports)), "protocol": p}));
    }
    for (p, _) in parts.portless.keys() {
        egress.push(json!({"action": "Allow", "destination": ext_dest(None), "protocol": p}));
    }
    let mut docs = vec![json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "StagedNetworkPolicy",
        "metadata": {"name": "observed-egress", "namespace": ns},
        "spec": {"egress": egress, "selector": "all()", "stagedAction": "Set", "types": ["Egress"]},
    })];
    if let Some(rules) = ingress {
        let mut ing = Vec::new();
        if !cfg.no_self {
            ing.push(json!({"action": "Allow", "source": {"selector": "all()"}}));
        }
        for (s, _) in rules {
            ing.push(json!({"action": "Allow", "source": {"namespaceSelector": ns_sel_calico(s)}}));
        }
        docs.push(json!({
            "apiVersion": "projectcalico.org/v3",
            "kind": "StagedNetworkPolicy",
            "metadata": {"name": "observed-ingress", "namespace": ns},
            "spec": {"ingress": ing, "selector": "all()", "stagedAction": "Set", "types": ["Ingress"]},
        }));
    }
    docs
}

/// The policy document(s) for `ns` (a validated DNS label). Same data → same bytes.
pub fn render_policy(ns: &str, w: &Window, t: &NsTrail, cfg: &ToolConfig) -> String {
    let parts = split(t, ns, cfg.policy_format);
    let ingress = cfg.ingress.then(|| ingress_list(t, ns));
    let mut out = String::new();
    for line in header(ns, w, t, cfg, &parts, ingress.as_deref()) {
        out.push_str("# ");
        out.push_str(&clean(&line, 400));
        out.push('\n');
    }
    let docs = match cfg.policy_format {
        PolicyFormat::K8s => k8s_docs(ns, cfg, &parts, ingress.as_deref()),
        PolicyFormat::CalicoStaged => calico_docs(ns, cfg, &parts, ingress.as_deref()),
    };
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        yaml(d, 0, &mut out);
    }
    out
}

/// `--check` output: one line per edge side the staged policy would deny.
pub fn render_check(ns: &str, w: &Window, hits: &[StagedHit]) -> String {
    let mut out = format!(
        "# staged policy check for {ns}: window {} .. {}: {} edge side(s) would be denied\n",
        zulu(w.start),
        zulu(w.end),
        hits.len()
    );
    for h in hits {
        out.push_str(&format!(
            "would deny {} -> {} (reported by {}, today {}, staged deny last {}, {} flows)\n",
            clean(&h.src_ns, 80),
            clean(&h.dst, 120),
            clean(&h.reporter, 8),
            clean(&h.action, 16),
            zulu(h.last),
            h.flows
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn win() -> Window {
        Window {
            start: datetime!(2026-11-16 12:00 UTC),
            end: datetime!(2026-11-23 12:00 UTC),
            since_text: "7d".into(),
        }
    }

    fn trail() -> NsTrail {
        NsTrail {
            data_start: Some(datetime!(2026-11-01 00:00 UTC)),
            rows_in_window: 5,
            egress_ns: vec![
                ("dbaas".into(), 12),
                ("Bad Name\n- x".into(), 1),
                ("monitoring".into(), 3),
            ],
            external: vec![
                External {
                    dst_type: "network".into(),
                    dst_name: "pub".into(),
                    proto: "tcp".into(),
                    dst_port: 443,
                    flows: 40,
                },
                External {
                    dst_type: "networkset".into(),
                    dst_name: "immich/cdn\n#evil".into(),
                    proto: "tcp".into(),
                    dst_port: 443,
                    flows: 2,
                },
                External {
                    dst_type: "network".into(),
                    dst_name: "pub".into(),
                    proto: "udp".into(),
                    dst_port: 3478,
                    flows: 1,
                },
                External {
                    dst_type: "network".into(),
                    dst_name: "pvt".into(),
                    proto: "icmp".into(),
                    dst_port: 0,
                    flows: 7,
                },
            ],
            ingress_ns: vec![("monitoring".into(), 9)],
            denies: 0,
        }
    }

    #[test]
    fn k8s_rule_order_and_header() {
        let cfg = ToolConfig::default();
        let y = render_policy("immich", &win(), &trail(), &cfg);
        assert_eq!(
            y,
            render_policy("immich", &win(), &trail(), &cfg),
            "deterministic"
        );
        let body: Vec<&str> = y.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(body[0], "apiVersion: networking.k8s.io/v1");
        let text = body.join("\n");
        let dns = text.find("k8s-app: kube-dns").unwrap();
        let self_rule = text.find("- to:\n    - podSelector: {}").unwrap();
        let dbaas = text.find("kubernetes.io/metadata.name: dbaas").unwrap();
        let mon = text
            .find("kubernetes.io/metadata.name: monitoring")
            .unwrap();
        let ext = text.find("cidr: \"0.0.0.0/0\"").unwrap();
        assert!(
            dns < self_rule && self_rule < dbaas && dbaas < mon && mon < ext,
            "{y}"
        );
        assert!(!text.contains("Bad"), "{y}");
        assert!(y.contains("# WARNING: no --exclude-cidr"), "{y}");
        assert!(y.contains("#   - icmp 0 to network pvt (7 flows)"), "{y}");
        assert!(y.contains("networkset immich/cdn?#evil"), "{y}");
        assert!(
            y.lines().all(|l| l.starts_with('#') || !l.contains("evil")),
            "{y}"
        );
        assert!(!y.contains("WARNING: the data is younger"));
    }

    #[test]
    fn young_data_and_denies_warn() {
        let mut t = trail();
        t.data_start = Some(datetime!(2026-11-21 00:00 UTC));
        t.denies = 2;
        let y = render_policy("immich", &win(), &t, &ToolConfig::default());
        assert!(
            y.contains("# WARNING: the data is younger than 7 days (2d 12h)"),
            "{y}"
        );
        assert!(
            y.contains("# WARNING: immich has 2 deny edge side(s)"),
            "{y}"
        );
    }

    #[test]
    fn calico_rules_per_protocol_icmp_and_services_dns() {
        let cfg = ToolConfig {
            policy_format: PolicyFormat::CalicoStaged,
            exclude_cidrs: vec!["10.42.0.0/16".into()],
            ..ToolConfig::default()
        };
        let y = render_policy("immich", &win(), &trail(), &cfg);
        assert!(y.contains("kind: StagedNetworkPolicy"));
        assert!(y.contains("protocol: ICMP"), "{y}");
        assert!(
            y.contains("services:\n        name: kube-dns\n        namespace: kube-system"),
            "{y}"
        );
        assert!(y.contains("notNets:\n      - \"10.42.0.0/16\""), "{y}");
    }
}
