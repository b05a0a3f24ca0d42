//! `FakeGoldmane`: a model of Calico Goldmane's `Flows` gRPC service (projectcalico/calico
//! v3.30.7 / v3.31.7, whose `goldmane/` server code and `api.proto` are the same for what is
//! modelled here), generated from the **full** upstream `api.proto` and served over real mutual
//! TLS with a throwaway CA from rcgen.
//!
//! Modelled rules, each with the upstream file it comes from (paths in projectcalico/calico at
//! tag v3.30.7):
//! * the ring: 242 buckets × 15 s, aligned start times, one bucket into the future
//!   (`goldmane/pkg/goldmane/goldmane.go` `numBuckets`, `goldmane/pkg/storage/bucket_ring.go`
//!   `NewBucketRing`, `goldmane/pkg/storage/utils.go` `GetStartTime`);
//! * a flow outside the ring is dropped (`bucket_ring.go` `AddFlow` / `findBucket`);
//! * one `FlowResult` per flow key and bucket, start/end the bucket's bounds, statistics summed
//!   (`goldmane/pkg/storage/diachronic_flow.go` `AddFlow`/`AggregateWindows`,
//!   `goldmane/pkg/storage/deferred_builder.go`);
//! * ids belong to the server: assigned in order of first sight of a key, restarting from 1 after
//!   a restart (`bucket_ring.go` `AddFlow` `nextID`);
//! * live streaming: at each rollover the bucket two behind the head (the last completed one) is
//!   sent once to every stream (`bucket_ring.go` `Rollover`/`flushToStreams`/`streamingBucket`);
//!   flows that land later in an older bucket reach a stream only through backfill or `List`;
//! * backfill: `start_time_gte = 0` means live only; negative is relative to now; otherwise the
//!   buckets from the one holding `start_time_gte` up to (not including) the streaming bucket,
//!   wrapping around the ring, and nothing at all when the start is older than the oldest bucket
//!   (`goldmane.go` `Stream`/`backfill`, `bucket_ring.go` `iterBucketsTime`/`BackfillEndTime`);
//! * `Flows.List`: `start_time_gte = 0` is the oldest bucket, `start_time_lt = 0` is now,
//!   negative values are relative, `gte >= lt` is an error; per key the windows with
//!   `start >= gte && end <= lt` are totalled; a key with a window starting before `lt` but none
//!   ending by it is returned with zero times; newest first; zero-based pages, a page past the end
//!   is empty with zero totals (`goldmane.go` `normalizeTimeRange`/`validateTimeRange`,
//!   `storage/ring_index.go` `List`, `storage/diachronic_flow.go` `Within`/`GetWindows`,
//!   `storage/index.go` `calculateListMeta`);
//! * more than 100 concurrent streams crash the server (`goldmane/pkg/stream/stream_manager.go`
//!   `register` returns nil, `goldmane.go` `backfill` dereferences it): modelled as a restart;
//! * no graceful stop: a restart is an abrupt close of every connection and loses the ring
//!   (`goldmane/cmd/main.go` has no SIGTERM handling; the ring is in memory);
//! * Felix reports a connection from both sides, the source with its egress verdict and the
//!   destination with its ingress verdict (`felix/collector/flowlog/utils.go`
//!   `getActionAndReporterFromRuleID`); only Allow/Deny are emitted
//!   (`felix/collector/goldmane/client.go` `convertAction`); endpoints without a namespace carry
//!   `"-"` (`felix/collector/flowlog/utils.go` `FieldNotIncluded`, `felix/collector/utils/utils.go`
//!   `ExtractNamespaceFromNetworkSet`), a namespaced NetworkSet carries its namespace.
//!
//! Scripted faults stay available where a test needs them: end streams with OK or a status, cut
//! connections, inject raw messages (a buggy server), fail or pad `List` pages, move the clock.
//! Every `FlowStreamRequest` and `FlowListRequest` is recorded.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Generated (offline, protox + tonic-build) from the full upstream `proto/api.proto`.
pub mod proto {
    #![allow(clippy::all)]
    tonic::include_proto!("goldmane");
}

pub use proto::{
    Flow, FlowKey, FlowListRequest, FlowListResult, FlowResult, FlowStreamRequest, PolicyHit,
    PolicyTrace,
};

// ---------------------------------------------------------------------------------------------
// PKI

/// One certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
    /// Big-endian serial number bytes as written into the certificate.
    pub serial: Vec<u8>,
}

impl CertPair {
    /// Write `<stem>.crt` and `<stem>.key` (0600) into `dir`; returns (cert, key) paths.
    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let c = dir.join(format!("{stem}.crt"));
        let k = dir.join(format!("{stem}.key"));
        std::fs::write(&c, &self.cert_pem).expect("write cert");
        std::fs::write(&k, &self.key_pem).expect("write key");
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).expect("chmod key");
        (c, k)
    }
}

/// A certificate authority able to issue more certificates.
pub struct TestCa {
    pub cert_pem: String,
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
    next_serial: Mutex<u64>,
    tag: u8,
}

impl TestCa {
    /// A fresh self-signed CA named `cn`. `tag` goes into every serial it issues.
    pub fn new(cn: &str, tag: u8) -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let key = KeyPair::generate().expect("ca key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, cn);
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&[tag, 0, 1]));
        let cert = p.self_signed(&key).expect("ca cert");
        TestCa {
            cert_pem: cert.pem(),
            cert,
            key,
            next_serial: Mutex::new(2),
            tag,
        }
    }

    /// Issue a leaf for `sans` (DNS names or IP literals). `expired` makes it valid only in 2020.
    pub fn issue(&self, cn: &str, sans: &[&str], expired: bool) -> CertPair {
        use rcgen::{CertificateParams, DnType, KeyPair};
        let key = KeyPair::generate().expect("leaf key");
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut p = CertificateParams::new(sans).expect("leaf params");
        p.distinguished_name.push(DnType::CommonName, cn);
        let n = {
            let mut g = self.next_serial.lock().unwrap_or_else(|e| e.into_inner());
            *g += 1;
            *g
        };
        let serial = vec![self.tag, (n >> 8) as u8, n as u8];
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
        if expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2020, 2, 1);
        }
        let cert = p.signed_by(&key, &self.cert, &self.key).expect("leaf cert");
        CertPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial,
        }
    }
}

/// Server certificate SANs as the Tigera operator issues them for Goldmane (cluster domain
/// `cluster.local`), plus `::1` for local tests.
pub const SERVER_SANS: &[&str] = &[
    "goldmane",
    "goldmane.calico-system",
    "goldmane.calico-system.svc",
    "goldmane.calico-system.svc.cluster.local",
    "localhost",
    "127.0.0.1",
    "::1",
];

/// The throwaway PKI of one test: the Tigera-like CA with a server cert for
/// [`SERVER_SANS`] and a client cert; a second, foreign CA with the same kinds.
pub struct GoldmanePki {
    pub ca: TestCa,
    pub server: CertPair,
    pub client: CertPair,
    pub foreign_ca: TestCa,
    pub foreign_server: CertPair,
    pub foreign_client: CertPair,
}

impl GoldmanePki {
    pub fn generate() -> GoldmanePki {
        let ca = TestCa::new("tigera-operator-signer", 1);
        // The operator's SANs (tigera/operator `pkg/render/goldmane/component.go`), plus `::1`.
        let server = ca.issue("goldmane", SERVER_SANS, false);
        let client = ca.issue("whisker-backend", &[], false);
        let foreign_ca = TestCa::new("some-other-ca", 2);
        let foreign_server = foreign_ca.issue("goldmane", SERVER_SANS, false);
        let foreign_client = foreign_ca.issue("intruder", &[], false);
        GoldmanePki {
            ca,
            server,
            client,
            foreign_ca,
            foreign_server,
            foreign_client,
        }
    }
}

fn pem_certs(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("PEM certificates")
}

fn pem_key(pem: &str) -> rustls::pki_types::PrivateKeyDer<'static> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes()).expect("PEM key")
}

/// Serial number bytes of a DER certificate (`tbsCertificate.serialNumber`), leading zero
/// stripped; empty when the DER is not understood.
pub fn cert_serial(der: &[u8]) -> Vec<u8> {
    fn tlv(d: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let tag = *d.first()?;
        let l0 = *d.get(1)? as usize;
        let (len, hdr) = if l0 < 0x80 {
            (l0, 2)
        } else {
            let n = l0 & 0x7f;
            let mut len = 0usize;
            for i in 0..n {
                len = (len << 8) | *d.get(2 + i)? as usize;
            }
            (len, 2 + n)
        };
        let end = hdr.checked_add(len)?;
        (end <= d.len()).then(|| (tag, &d[hdr..end], &d[end..]))
    }
    let f = || -> Option<Vec<u8>> {
        let (_, cert, _) = tlv(der)?;
        let (_, tbs, _) = tlv(cert)?;
        let (tag, v, rest) = tlv(tbs)?;
        let serial = if tag == 0xa0 { tlv(rest)?.1 } else { v };
        let s = serial.strip_prefix(&[0]).unwrap_or(serial);
        Some(s.to_vec())
    };
    f().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Flow builders

/// Goldmane's bucket length (`goldmane/pkg/goldmane/goldmane.go`, default aggregation 15 s).
pub const BUCKET_SECS: i64 = 15;
/// Buckets in the ring (`goldmane/pkg/goldmane/goldmane.go` `numBuckets = 242`).
pub const RING_BUCKETS: i64 = 242;
/// What upstream's stream manager accepts before it crashes
/// (`goldmane/pkg/stream/stream_manager.go` `maxStreams := 100`).
pub const MAX_STREAMS: usize = 100;

/// The namespace Felix gives endpoints that have none (`felix/collector/flowlog/utils.go`
/// `FieldNotIncluded`).
pub const NO_NAMESPACE: &str = "-";

/// A realistic flow: workload to workload, labels and a policy trace (like a live Goldmane),
/// `start .. start+15`, reported by the source.
pub fn flow(id: i64, src_ns: &str, dst_ns: &str, action: i32, start: i64) -> FlowResult {
    flow_full(id, src_ns, dst_ns, action, start, start + 15, 1)
}

/// As [`flow`] with an explicit end time and reporter (1 src, 2 dst).
pub fn flow_full(
    id: i64,
    src_ns: &str,
    dst_ns: &str,
    action: i32,
    start: i64,
    end: i64,
    reporter: i32,
) -> FlowResult {
    let hit = PolicyHit {
        kind: 1,
        namespace: dst_ns.to_string(),
        name: "allow-from-ingress".into(),
        tier: "default".into(),
        action,
        policy_index: 0,
        rule_index: 2,
        trigger: None,
    };
    FlowResult {
        id,
        flow: Some(Flow {
            key: Some(FlowKey {
                source_name: format!("{src_ns}-app-*"),
                source_namespace: src_ns.to_string(),
                source_type: 1,
                dest_name: format!("{dst_ns}-api-*"),
                dest_namespace: dst_ns.to_string(),
                dest_type: 1,
                dest_port: 8080,
                dest_service_name: format!("{dst_ns}-api"),
                dest_service_namespace: dst_ns.to_string(),
                dest_service_port_name: "http".into(),
                dest_service_port: 80,
                proto: "tcp".into(),
                reporter,
                action,
                policies: Some(PolicyTrace {
                    enforced_policies: vec![hit],
                    pending_policies: vec![],
                }),
            }),
            start_time: start,
            end_time: end,
            source_labels: vec![format!("app={src_ns}"), "tier=web".into()],
            dest_labels: vec![format!("app={dst_ns}"), "tier=api".into()],
            packets_in: 12,
            packets_out: 10,
            bytes_in: 4096,
            bytes_out: 1024,
            num_connections_started: 3,
            num_connections_completed: 3,
            num_connections_live: 0,
        }),
    }
}

/// One end of a connection as Felix names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A pod: namespace and aggregated name (`<prefix>-*`).
    Workload { ns: String, name: String },
    /// A public or private network: `pub` / `pvt`, namespace `"-"`
    /// (`felix/collector/flowlog/endpoint.go` via `FieldNotIncluded`).
    Network(String),
    /// A NetworkSet: global ones carry namespace `"-"`, a namespaced one its namespace
    /// (`felix/collector/utils/utils.go` `ExtractNamespaceFromNetworkSet`).
    NetworkSet { ns: Option<String>, name: String },
    /// A host endpoint, namespace `"-"`.
    HostEndpoint(String),
}

impl Endpoint {
    pub fn pod(ns: &str) -> Endpoint {
        Endpoint::Workload {
            ns: ns.to_string(),
            name: format!("{ns}-app-*"),
        }
    }
    fn parts(&self) -> (String, i32, String) {
        match self {
            Endpoint::Workload { ns, name } => (ns.clone(), 1, name.clone()),
            Endpoint::HostEndpoint(n) => (NO_NAMESPACE.into(), 2, n.clone()),
            Endpoint::NetworkSet { ns, name } => (
                ns.clone().unwrap_or_else(|| NO_NAMESPACE.into()),
                3,
                name.clone(),
            ),
            Endpoint::Network(n) => (NO_NAMESPACE.into(), 4, n.clone()),
        }
    }
    fn is_workload(&self) -> bool {
        matches!(self, Endpoint::Workload { .. })
    }
}

/// A connection as Felix sees it, to be reported by [`Connection::reports`].
#[derive(Debug, Clone)]
pub struct Connection {
    pub src: Endpoint,
    pub dst: Endpoint,
    pub proto: String,
    pub port: i64,
    /// The source's egress verdict (1 allow, 2 deny).
    pub egress: i32,
    /// The destination's ingress verdict (1 allow, 2 deny).
    pub ingress: i32,
    /// Staged-policy verdict Felix computed for the source side (egress) and the destination
    /// side (ingress): `None` = no staged policy applies.
    pub pending_egress: Option<i32>,
    pub pending_ingress: Option<i32>,
    pub start: i64,
}

impl Connection {
    pub fn new(src: Endpoint, dst: Endpoint, egress: i32, ingress: i32, start: i64) -> Connection {
        Connection {
            src,
            dst,
            proto: "tcp".into(),
            port: 8080,
            egress,
            ingress,
            pending_egress: None,
            pending_ingress: None,
            start,
        }
    }
    pub fn proto(mut self, proto: &str, port: i64) -> Self {
        self.proto = proto.into();
        self.port = port;
        self
    }
    pub fn pending(mut self, egress: Option<i32>, ingress: Option<i32>) -> Self {
        self.pending_egress = egress;
        self.pending_ingress = ingress;
        self
    }

    /// Felix's reports: the source node reports the egress verdict (`Reporter=Src`) when the
    /// source is a local workload; the destination node reports the ingress verdict
    /// (`Reporter=Dst`) when the destination is a workload and the packet got past the source's
    /// egress policy (`felix/collector/flowlog/utils.go` `getActionAndReporterFromRuleID`:
    /// egress rules → src, ingress rules → dst; `felix/collector/collector.go`
    /// `evaluatePendingRuleTraceForLocalEp` computes pending traces only for local workloads).
    pub fn reports(&self) -> Vec<FlowResult> {
        let mut out = Vec::new();
        if self.src.is_workload() {
            out.push(self.report(1, self.egress, self.pending_egress));
        }
        if self.dst.is_workload() && (self.egress == 1 || !self.src.is_workload()) {
            out.push(self.report(2, self.ingress, self.pending_ingress));
        }
        out
    }

    fn report(&self, reporter: i32, action: i32, pending: Option<i32>) -> FlowResult {
        let (sns, stype, sname) = self.src.parts();
        let (dns, dtype, dname) = self.dst.parts();
        let hit = |action: i32, name: &str, tier: &str| PolicyHit {
            kind: 1,
            namespace: if reporter == 1 {
                sns.clone()
            } else {
                dns.clone()
            },
            name: name.into(),
            tier: tier.into(),
            action,
            policy_index: 0,
            rule_index: 0,
            trigger: None,
        };
        let pending_policies = pending
            .map(|a| vec![hit(a, "staged:observed-egress", "default")])
            .unwrap_or_default();
        FlowResult {
            id: 0,
            flow: Some(Flow {
                key: Some(FlowKey {
                    source_name: sname,
                    source_namespace: sns.clone(),
                    source_type: stype,
                    dest_name: dname,
                    dest_namespace: dns.clone(),
                    dest_type: dtype,
                    dest_port: self.port,
                    dest_service_name: NO_NAMESPACE.into(),
                    dest_service_namespace: NO_NAMESPACE.into(),
                    dest_service_port_name: NO_NAMESPACE.into(),
                    dest_service_port: 0,
                    proto: self.proto.clone(),
                    reporter,
                    action,
                    policies: Some(PolicyTrace {
                        enforced_policies: vec![hit(action, "default-policy", "default")],
                        pending_policies,
                    }),
                }),
                start_time: self.start,
                end_time: self.start + BUCKET_SECS,
                source_labels: vec![],
                dest_labels: vec![],
                packets_in: 4,
                packets_out: 4,
                bytes_in: 512,
                bytes_out: 256,
                num_connections_started: 1,
                num_connections_completed: 1,
                num_connections_live: 0,
            }),
        }
    }
}

/// Start of the bucket holding `t` (`goldmane/pkg/storage/utils.go` `GetStartTime`: buckets
/// start at multiples of the interval).
pub fn bucket_start(t: i64) -> i64 {
    t - t.rem_euclid(BUCKET_SECS)
}

// ---------------------------------------------------------------------------------------------
// Server

/// One recorded `Flows.Stream` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCall {
    pub start_time_gte: i64,
    pub aggregation_interval: i64,
    /// Serial of the client certificate presented on this connection.
    pub client_serial: Vec<u8>,
    pub filter_sent: bool,
    /// Flows the backfill sent to this stream.
    pub backfilled: usize,
}

/// One recorded `Flows.List` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCall {
    pub start_time_gte: i64,
    pub start_time_lt: i64,
    pub page: i64,
    pub page_size: i64,
}

enum Ev {
    Flow(Box<FlowResult>),
    End,
    Fail(tonic::Status),
}

/// Statistics of one key in one bucket (upstream's `Window`).
#[derive(Clone, Default)]
struct Stats {
    source_labels: Vec<String>,
    dest_labels: Vec<String>,
    packets_in: i64,
    packets_out: i64,
    bytes_in: i64,
    bytes_out: i64,
    started: i64,
    completed: i64,
    live: i64,
}

impl Stats {
    fn add(&mut self, f: &Flow) {
        if self.source_labels.is_empty() {
            self.source_labels = f.source_labels.clone();
            self.dest_labels = f.dest_labels.clone();
        }
        self.packets_in += f.packets_in;
        self.packets_out += f.packets_out;
        self.bytes_in += f.bytes_in;
        self.bytes_out += f.bytes_out;
        self.started += f.num_connections_started;
        self.completed += f.num_connections_completed;
        self.live += f.num_connections_live;
    }
    fn sum(&mut self, o: &Stats) {
        if self.source_labels.is_empty() {
            self.source_labels = o.source_labels.clone();
            self.dest_labels = o.dest_labels.clone();
        }
        self.packets_in += o.packets_in;
        self.packets_out += o.packets_out;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.started += o.started;
        self.completed += o.completed;
        self.live += o.live;
    }
}

/// List faults a test can script.
#[derive(Debug, Clone, Default)]
pub struct ListFaults {
    /// Answer this (zero-based) page with `UNAVAILABLE`, this many times.
    pub fail_page: Option<(i64, u32)>,
    /// Pad every returned flow with a label of this many bytes (pages over 4 MiB).
    pub pad_bytes: usize,
}

/// (gte, lt, ring version) → the sorted List result.
type ListCache = ((i64, i64, u64), Arc<Vec<(i64, i64, i64)>>);

#[derive(Default)]
struct State {
    /// bucket start → key id → statistics.
    buckets: BTreeMap<i64, BTreeMap<i64, Stats>>,
    /// Goldmane's key → id registry and its inverse.
    ids: HashMap<Vec<u8>, i64>,
    keys: HashMap<i64, FlowKey>,
    next_id: i64,
    /// Start of the bucket that is "now" at the last rollover (the head is one further).
    now_bucket: i64,
    clock_offset: i64,
    /// Bumped on every ring change (List cache key).
    version: u64,
    list_cache: Option<ListCache>,
    list_faults: ListFaults,
    calls: Vec<StreamCall>,
    list_calls: Vec<ListCall>,
    streams: Vec<mpsc::Sender<Ev>>,
    conns: HashMap<u64, JoinHandle<()>>,
    next_conn: u64,
    handshake_failures: u64,
    connections: u64,
    dropped_outside_ring: u64,
    crashes: u64,
    max_open_streams: usize,
}

type Shared = Arc<Mutex<State>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Clone)]
struct Svc {
    state: Shared,
    client_serial: Vec<u8>,
    crash: mpsc::UnboundedSender<()>,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn key_bytes(k: &FlowKey) -> Vec<u8> {
    use prost::Message;
    k.encode_to_vec()
}

impl State {
    fn now(&self) -> i64 {
        now_unix() + self.clock_offset
    }
    /// The head bucket: one into the future (`bucket_ring.go` `NewBucketRing`).
    fn head(&self) -> i64 {
        self.now_bucket + BUCKET_SECS
    }
    /// The oldest bucket (`bucket_ring.go` `BeginningOfHistory`).
    fn oldest(&self) -> i64 {
        self.head() - (RING_BUCKETS - 1) * BUCKET_SECS
    }
    /// The bucket sent to streams at the next rollover (`bucket_ring.go` `streamingBucket`:
    /// two behind the head); backfill stops before it (`BackfillEndTime`).
    fn streaming(&self) -> i64 {
        self.head() - 2 * BUCKET_SECS
    }
    /// `findBucket`: the bucket holding `t`, or None outside the ring.
    fn find(&self, t: i64) -> Option<i64> {
        let b = bucket_start(t);
        (b >= self.oldest() && b <= self.head()).then_some(b)
    }

    fn add(&mut self, f: &FlowResult) -> bool {
        let Some(fl) = f.flow.as_ref() else {
            return false;
        };
        let Some(k) = fl.key.as_ref() else {
            return false;
        };
        let Some(b) = self.find(fl.start_time) else {
            // `bucket_ring.go` `AddFlow`: "Unable to sort flow into a bucket".
            self.dropped_outside_ring += 1;
            return false;
        };
        let kb = key_bytes(k);
        let id = match self.ids.get(&kb) {
            Some(id) => *id,
            None => {
                self.next_id += 1;
                let id = self.next_id;
                self.ids.insert(kb, id);
                self.keys.insert(id, k.clone());
                id
            }
        };
        self.buckets
            .entry(b)
            .or_default()
            .entry(id)
            .or_default()
            .add(fl);
        self.version += 1;
        true
    }

    fn result(&self, id: i64, start: i64, end: i64, s: &Stats) -> FlowResult {
        FlowResult {
            id,
            flow: Some(Flow {
                key: self.keys.get(&id).cloned(),
                start_time: start,
                end_time: end,
                source_labels: s.source_labels.clone(),
                dest_labels: s.dest_labels.clone(),
                packets_in: s.packets_in,
                packets_out: s.packets_out,
                bytes_in: s.bytes_in,
                bytes_out: s.bytes_out,
                num_connections_started: s.started,
                num_connections_completed: s.completed,
                num_connections_live: s.live,
            }),
        }
    }

    fn bucket_results(&self, b: i64) -> Vec<FlowResult> {
        self.buckets
            .get(&b)
            .map(|m| {
                m.iter()
                    .map(|(id, s)| self.result(*id, b, b + BUCKET_SECS, s))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Advance to the wall clock: each rollover sends the streaming bucket to every stream and
    /// forgets the bucket that falls out of the ring (`bucket_ring.go` `Rollover`).
    fn rollover_to(&mut self, now: i64) -> Vec<FlowResult> {
        let mut out = Vec::new();
        while self.now_bucket < bucket_start(now) {
            out.extend(self.bucket_results(self.streaming()));
            self.now_bucket += BUCKET_SECS;
            let oldest = self.oldest();
            let before = self.buckets.len();
            self.buckets.retain(|b, _| *b >= oldest);
            if self.buckets.len() != before {
                self.version += 1;
            }
        }
        out
    }

    /// `goldmane.go` `backfill` over `iterBucketsTime(gte, BackfillEndTime())`.
    fn backfill(&self, gte: i64) -> Vec<FlowResult> {
        let Some(start) = self.find(gte) else {
            // findBucket −1 → iterBucketsTime errors → the error is ignored: nothing.
            return Vec::new();
        };
        let end = self.streaming();
        let mut order = Vec::new();
        if start <= end {
            let mut b = start;
            while b < end {
                order.push(b);
                b += BUCKET_SECS;
            }
        } else {
            // Start after the streaming bucket: iterate to the head, wrap to the oldest.
            let mut b = start;
            while b <= self.head() {
                order.push(b);
                b += BUCKET_SECS;
            }
            let mut b = self.oldest();
            while b < end {
                order.push(b);
                b += BUCKET_SECS;
            }
        }
        order
            .into_iter()
            .flat_map(|b| self.bucket_results(b))
            .collect()
    }

    /// `goldmane.go` `normalizeTimeRange` for List.
    fn normalize(&self, gte: i64, lt: i64) -> (i64, i64) {
        let now = self.now();
        let gte = match gte {
            g if g < 0 => now + g,
            0 => self.oldest(),
            g => g,
        };
        let lt = match lt {
            l if l < 0 => now + l,
            0 => now,
            l => l,
        };
        (gte, lt)
    }

    /// `storage/ring_index.go` `List` (time order, no filter) before paging, as (start, end, id)
    /// per key: the keys of the buckets with `gte <= start <= lt` (`FlowSet`) that have a window
    /// starting in `[gte, lt)` (`Within`), with the span of their windows `start >= gte && end
    /// <= lt` (`GetWindows`; none → zero times). Cached until the ring changes.
    fn list_all(&mut self, gte: i64, lt: i64) -> Arc<Vec<(i64, i64, i64)>> {
        let ck = (gte, lt, self.version);
        if let Some((k, v)) = &self.list_cache {
            if *k == ck {
                return v.clone();
            }
        }
        let mut per: HashMap<i64, (bool, i64, i64)> = HashMap::new();
        for (b, m) in self.buckets.range(gte..=lt) {
            for id in m.keys() {
                let e = per.entry(*id).or_insert((false, 0, 0));
                if *b < lt {
                    e.0 = true;
                }
                if b + BUCKET_SECS <= lt {
                    if e.1 == 0 || *b < e.1 {
                        e.1 = *b;
                    }
                    if e.2 == 0 || b + BUCKET_SECS > e.2 {
                        e.2 = b + BUCKET_SECS;
                    }
                }
            }
        }
        let mut flows: Vec<(i64, i64, i64)> = per
            .into_iter()
            .filter(|(_, v)| v.0)
            .map(|(id, (_, st, en))| (st, en, id))
            .collect();
        // Newest first (`sort.Slice` by StartTime desc); ties by id for a stable model.
        flows.sort_by(|a, b| b.0.cmp(&a.0).then(a.2.cmp(&b.2)));
        let v = Arc::new(flows);
        self.list_cache = Some((ck, v.clone()));
        v
    }

    /// One List result: the key's statistics totalled over its windows in `[start, end)`.
    fn list_result(&self, (start, end, id): (i64, i64, i64)) -> FlowResult {
        let mut s = Stats::default();
        let mut b = start;
        while b < end {
            if let Some(w) = self.buckets.get(&b).and_then(|m| m.get(&id)) {
                s.sum(w);
            }
            b += BUCKET_SECS;
        }
        self.result(id, start, end, &s)
    }

    fn restart(&mut self) {
        self.buckets.clear();
        self.ids.clear();
        self.keys.clear();
        self.next_id = 0;
        self.list_cache = None;
        self.version += 1;
    }
}

#[tonic::async_trait]
impl proto::flows_server::Flows for Svc {
    async fn list(
        &self,
        req: tonic::Request<proto::FlowListRequest>,
    ) -> Result<tonic::Response<proto::FlowListResult>, tonic::Status> {
        let r = req.into_inner();
        let mut st = lock(&self.state);
        st.list_calls.push(ListCall {
            start_time_gte: r.start_time_gte,
            start_time_lt: r.start_time_lt,
            page: r.page,
            page_size: r.page_size,
        });
        if let Some((p, n)) = st.list_faults.fail_page {
            if p == r.page && n > 0 {
                st.list_faults.fail_page = (n > 1).then_some((p, n - 1));
                return Err(tonic::Status::unavailable("scripted List failure"));
            }
        }
        let (gte, lt) = st.normalize(r.start_time_gte, r.start_time_lt);
        if gte >= lt {
            // `goldmane.go` `validateTimeRange`: a plain Go error → gRPC Unknown.
            return Err(tonic::Status::unknown(format!(
                "startTimeGt ({gte}) must be less than startTimeLt ({lt})"
            )));
        }
        let all = st.list_all(gte, lt);
        let pad = st.list_faults.pad_bytes;
        let total = all.len() as i64;
        let (slice, meta) = if r.page_size > 0 {
            let from = r.page.saturating_mul(r.page_size);
            if from < 0 || from >= total {
                (
                    &all[0..0],
                    proto::ListMetadata {
                        total_pages: 0,
                        total_results: 0,
                    },
                )
            } else {
                let to = (from + r.page_size).min(total);
                (
                    &all[from as usize..to as usize],
                    proto::ListMetadata {
                        total_pages: (total + r.page_size - 1) / r.page_size,
                        total_results: total,
                    },
                )
            }
        } else {
            (
                &all[..],
                proto::ListMetadata {
                    total_pages: i64::from(total > 0),
                    total_results: total,
                },
            )
        };
        let mut flows: Vec<FlowResult> = slice.iter().map(|e| st.list_result(*e)).collect();
        drop(st);
        if pad > 0 {
            for f in &mut flows {
                if let Some(fl) = f.flow.as_mut() {
                    fl.source_labels.push(format!("pad={}", "x".repeat(pad)));
                }
            }
        }
        Ok(tonic::Response::new(proto::FlowListResult {
            meta: Some(meta),
            flows,
        }))
    }

    type StreamStream = tokio_stream::wrappers::ReceiverStream<Result<FlowResult, tonic::Status>>;

    async fn stream(
        &self,
        req: tonic::Request<FlowStreamRequest>,
    ) -> Result<tonic::Response<Self::StreamStream>, tonic::Status> {
        let r = req.into_inner();
        let (live_tx, mut live_rx) = mpsc::channel::<Ev>(1024);
        let backfill: Vec<FlowResult> = {
            let mut st = lock(&self.state);
            st.streams.retain(|s| !s.is_closed());
            if st.streams.len() >= MAX_STREAMS {
                // `stream_manager.go` `register` returns nil; `goldmane.go` `backfill` then
                // dereferences it: the process panics and restarts (modelled: abrupt restart).
                st.crashes += 1;
                drop(st);
                let _ = self.crash.send(());
                return Err(tonic::Status::unavailable("goldmane crashed (max streams)"));
            }
            let now = st.now();
            let gte = match r.start_time_gte {
                0 => 0,
                n if n < 0 => now + n,
                n => n,
            };
            let backfill = if gte == 0 {
                Vec::new()
            } else {
                st.backfill(gte)
            };
            st.calls.push(StreamCall {
                start_time_gte: r.start_time_gte,
                aggregation_interval: r.aggregation_interval,
                client_serial: self.client_serial.clone(),
                filter_sent: r.filter.is_some(),
                backfilled: backfill.len(),
            });
            st.streams.push(live_tx);
            let open = st.streams.len();
            st.max_open_streams = st.max_open_streams.max(open);
            backfill
        };
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            for f in backfill {
                if tx.send(Ok(f)).await.is_err() {
                    return;
                }
            }
            // A client that goes away ends the stream at once (upstream: the stream's context
            // is cancelled, `stream_manager.go` `unregister`), so the open-stream count is true.
            loop {
                let ev = tokio::select! {
                    ev = live_rx.recv() => ev,
                    _ = tx.closed() => return,
                };
                let Some(ev) = ev else { return };
                match ev {
                    Ev::Flow(f) => {
                        if tx.send(Ok(*f)).await.is_err() {
                            return;
                        }
                    }
                    Ev::End => return,
                    Ev::Fail(st) => {
                        let _ = tx.send(Err(st)).await;
                        return;
                    }
                }
            }
        });
        Ok(tonic::Response::new(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
    }

    async fn filter_hints(
        &self,
        _: tonic::Request<proto::FilterHintsRequest>,
    ) -> Result<tonic::Response<proto::FilterHintsResult>, tonic::Status> {
        Err(tonic::Status::unimplemented("FilterHints is not faked"))
    }
}

/// Server identity and the CA its clients must chain to.
#[derive(Clone)]
pub struct ServerTls {
    pub cert_pem: String,
    pub key_pem: String,
    pub client_ca_pem: String,
}

impl ServerTls {
    pub fn from_pki(pki: &GoldmanePki) -> ServerTls {
        ServerTls {
            cert_pem: pki.server.cert_pem.clone(),
            key_pem: pki.server.key_pem.clone(),
            client_ca_pem: pki.ca.cert_pem.clone(),
        }
    }

    fn config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in pem_certs(&self.client_ca_pem) {
            roots.add(c).expect("client CA");
        }
        // RequireAndVerifyClientCert, like gRPC-Go in Goldmane; no identity check
        // (`crypto/pkg/tls/tls.go`).
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .expect("client verifier");
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("tls versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(pem_certs(&self.cert_pem), pem_key(&self.key_pem))
            .expect("server cert");
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        Arc::new(cfg)
    }
}

/// A running fake Goldmane on `127.0.0.1:<port>` (stopped on drop).
pub struct FakeGoldmane {
    rt: Option<tokio::runtime::Runtime>,
    state: Shared,
    tls: ServerTls,
    port: u16,
    accept: Option<JoinHandle<()>>,
    ticker: Option<JoinHandle<()>>,
    crash_tx: mpsc::UnboundedSender<()>,
}

impl FakeGoldmane {
    /// Start with the PKI's server cert, requiring client certs from the PKI's CA.
    pub fn start(pki: &GoldmanePki) -> FakeGoldmane {
        Self::start_with(ServerTls::from_pki(pki), None)
    }

    /// Start with explicit TLS material, on `port` or a free one.
    pub fn start_with(tls: ServerTls, port: Option<u16>) -> FakeGoldmane {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fake-goldmane")
            .enable_all()
            .build()
            .expect("tokio runtime");
        let state: Shared = Arc::new(Mutex::new(State {
            now_bucket: bucket_start(now_unix()),
            ..Default::default()
        }));
        let (crash_tx, mut crash_rx) = mpsc::unbounded_channel::<()>();
        let mut g = FakeGoldmane {
            rt: Some(rt),
            state,
            tls,
            port: port.unwrap_or_else(crate::free_port),
            accept: None,
            ticker: None,
            crash_tx,
        };
        g.listen();
        // The rollover clock (`goldmane.go` `run`: a rollover each bucket interval).
        let st = g.state.clone();
        g.ticker = Some(g.rt().spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
                    c = crash_rx.recv() => {
                        if c.is_none() { return; }
                        // A crash: every connection cut, the ring lost.
                        let conns: Vec<JoinHandle<()>> = {
                            let mut s = lock(&st);
                            s.restart();
                            s.streams.clear();
                            s.conns.drain().map(|(_, h)| h).collect()
                        };
                        for h in conns {
                            h.abort();
                        }
                        continue;
                    }
                }
                let (out, senders) = {
                    let mut s = lock(&st);
                    let now = s.now();
                    let out = s.rollover_to(now);
                    s.streams.retain(|x| !x.is_closed());
                    (out, s.streams.clone())
                };
                for f in out {
                    for s in &senders {
                        let _ = s.send(Ev::Flow(Box::new(f.clone()))).await;
                    }
                }
            }
        }));
        g
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("runtime present until drop")
    }

    fn listen(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let cfg = self.tls.config();
        let state = self.state.clone();
        let crash = self.crash_tx.clone();
        let listener = self.rt().block_on(async {
            let mut last = None;
            for _ in 0..100 {
                match tokio::net::TcpListener::bind(addr).await {
                    Ok(l) => return l,
                    Err(e) => last = Some(e),
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!("fake goldmane: bind {addr}: {last:?}");
        });
        let h = self.rt().spawn(accept_loop(listener, cfg, state, crash));
        self.accept = Some(h);
    }

    pub fn port(&self) -> u16 {
        self.port
    }
    /// `127.0.0.1:<port>`, for `GOLDMANE_HOST`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's clock (wall clock plus [`FakeGoldmane::set_clock_offset`]).
    pub fn now(&self) -> i64 {
        lock(&self.state).now()
    }
    /// Start of the bucket the next rollover streams (a flow added here goes out live within
    /// one interval).
    pub fn streaming_bucket(&self) -> i64 {
        lock(&self.state).streaming()
    }
    /// Start of the oldest bucket in the ring.
    pub fn oldest_bucket(&self) -> i64 {
        lock(&self.state).oldest()
    }

    /// Felix reports flows: each lands in the bucket of its start time (merged with the same key
    /// there), outside the ring it is dropped. Nothing is sent before the bucket completes.
    /// Returns how many were stored.
    pub fn add_flows(&self, flows: impl IntoIterator<Item = FlowResult>) -> usize {
        let mut st = lock(&self.state);
        let mut n = 0;
        for f in flows {
            if st.add(&f) {
                n += 1;
            }
        }
        n
    }

    /// Felix's reports of `conns` (both sides where Felix reports both).
    pub fn add_connections<'a>(&self, conns: impl IntoIterator<Item = &'a Connection>) -> usize {
        self.add_flows(conns.into_iter().flat_map(|c| c.reports()))
    }

    /// Felix reports `flows` into the bucket the next rollover streams, and the clock moves on
    /// to that rollover (15 s): they go out live at once. Start/end times are overwritten.
    pub fn add_live(&self, flows: impl IntoIterator<Item = FlowResult>) -> usize {
        let n = {
            // One lock: no rollover between choosing the bucket and filling it.
            let mut st = lock(&self.state);
            let b = st.streaming();
            let mut n = 0;
            for mut f in flows {
                if let Some(fl) = f.flow.as_mut() {
                    fl.start_time = b;
                    fl.end_time = b + BUCKET_SECS;
                }
                if st.add(&f) {
                    n += 1;
                }
            }
            n
        };
        self.advance(BUCKET_SECS);
        n
    }

    /// Move the server's clock by `secs` (its rollovers follow at once): simulates skew between
    /// the aggregator's and Goldmane's clocks, or lets a test skip ahead.
    pub fn advance(&self, secs: i64) {
        lock(&self.state).clock_offset += secs;
        // Let the ticker run the rollovers.
        std::thread::sleep(std::time::Duration::from_millis(150));
    }

    /// Set the server clock to wall clock + `secs` before any stream uses it.
    pub fn set_clock_offset(&self, secs: i64) {
        let mut st = lock(&self.state);
        st.clock_offset = secs;
        let now = st.now();
        st.now_bucket = bucket_start(now);
    }

    /// Scripted fault: send these messages verbatim to every open stream now (a buggy server or a
    /// benchmark feed); they are not stored in the ring. Blocks while a stream's buffer is full.
    pub fn inject_raw(&self, flows: impl IntoIterator<Item = FlowResult>) {
        let flows: Vec<FlowResult> = flows.into_iter().collect();
        let senders = {
            let mut st = lock(&self.state);
            st.streams.retain(|s| !s.is_closed());
            st.streams.clone()
        };
        if senders.is_empty() {
            return;
        }
        self.rt().block_on(async {
            for f in flows {
                for s in &senders {
                    let _ = s.send(Ev::Flow(Box::new(f.clone()))).await;
                }
            }
        });
    }

    fn send_all(&self, senders: &[mpsc::Sender<Ev>], ev: impl Fn() -> Ev) {
        self.rt().block_on(async {
            for s in senders {
                let _ = s.send(ev()).await;
            }
        });
    }

    /// Scripted `List` faults.
    pub fn set_list_faults(&self, f: ListFaults) {
        lock(&self.state).list_faults = f;
    }

    /// Scripted fault (upstream never does this): end every open stream with gRPC status OK.
    pub fn end_streams(&self) {
        let senders = std::mem::take(&mut lock(&self.state).streams);
        self.send_all(&senders, || Ev::End);
    }

    /// Scripted fault: end every open stream with `status`.
    pub fn fail_streams(&self, code: tonic::Code, msg: &str) {
        let senders = std::mem::take(&mut lock(&self.state).streams);
        self.send_all(&senders, || {
            Ev::Fail(tonic::Status::new(code, msg.to_string()))
        });
    }

    /// Cut every connection at the TCP level (no gRPC status, no GOAWAY).
    pub fn drop_connections(&self) {
        let conns: Vec<JoinHandle<()>> = {
            let mut st = lock(&self.state);
            st.streams.clear();
            st.conns.drain().map(|(_, h)| h).collect()
        };
        for h in conns {
            h.abort();
        }
    }

    /// Stop listening and cut every connection (the ring is kept: a network partition).
    pub fn stop(&mut self) {
        if let Some(h) = self.accept.take() {
            h.abort();
            let _ = self.rt().block_on(h);
        }
        self.drop_connections();
    }

    /// Listen again after [`FakeGoldmane::stop`], ring kept.
    pub fn resume(&mut self) {
        if self.accept.is_none() {
            self.listen();
        }
    }

    /// A Goldmane restart: abrupt close of every connection, the ring and the id registry lost
    /// (ids restart from 1), listening again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        lock(&self.state).restart();
        self.listen();
    }

    /// A Goldmane restart after which Felix re-sends `flows` (its cache) before any client
    /// reconnects: they get new ids and land in their original (old) buckets.
    pub fn restart_with(&mut self, flows: impl IntoIterator<Item = FlowResult>) {
        self.stop();
        {
            let mut st = lock(&self.state);
            st.restart();
            for f in flows {
                st.add(&f);
            }
        }
        self.listen();
    }

    /// Replace the TLS material (takes effect at the next [`FakeGoldmane::restart`]).
    pub fn set_tls(&mut self, tls: ServerTls) {
        self.tls = tls;
    }

    /// Every `Flows.Stream` call so far.
    pub fn calls(&self) -> Vec<StreamCall> {
        lock(&self.state).calls.clone()
    }
    /// Every `Flows.List` call so far.
    pub fn list_calls(&self) -> Vec<ListCall> {
        lock(&self.state).list_calls.clone()
    }
    /// Number of streams currently open.
    pub fn open_streams(&self) -> usize {
        let mut st = lock(&self.state);
        st.streams.retain(|s| !s.is_closed());
        st.streams.len()
    }
    /// The most streams open at once so far.
    pub fn max_open_streams(&self) -> usize {
        lock(&self.state).max_open_streams
    }
    /// Times the server crashed on more than [`MAX_STREAMS`] streams.
    pub fn crashes(&self) -> u64 {
        lock(&self.state).crashes
    }
    /// Flows dropped because their start lay outside the ring.
    pub fn dropped_outside_ring(&self) -> u64 {
        lock(&self.state).dropped_outside_ring
    }
    /// Flow keys × buckets currently in the ring.
    pub fn ring_len(&self) -> usize {
        lock(&self.state).buckets.values().map(|m| m.len()).sum()
    }
    /// TLS handshakes that failed (unknown client CA, expired client cert, ...).
    pub fn handshake_failures(&self) -> u64 {
        lock(&self.state).handshake_failures
    }
    /// TCP connections accepted.
    pub fn connections(&self) -> u64 {
        lock(&self.state).connections
    }
    /// TCP connections currently open.
    pub fn open_connections(&self) -> usize {
        let mut st = lock(&self.state);
        st.conns.retain(|_, h| !h.is_finished());
        st.conns.len()
    }
}

impl Drop for FakeGoldmane {
    fn drop(&mut self) {
        if let Some(h) = self.accept.take() {
            h.abort();
        }
        if let Some(h) = self.ticker.take() {
            h.abort();
        }
        self.drop_connections();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    cfg: Arc<rustls::ServerConfig>,
    state: Shared,
    crash: mpsc::UnboundedSender<()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let st = state.clone();
        let crash = crash.clone();
        let id = {
            let mut g = lock(&state);
            g.connections += 1;
            g.next_conn += 1;
            g.next_conn
        };
        let h = tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(_) => {
                    lock(&st).handshake_failures += 1;
                    return;
                }
            };
            let serial = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| cert_serial(c))
                .unwrap_or_default();
            let svc = proto::flows_server::FlowsServer::new(Svc {
                state: st.clone(),
                client_serial: serial,
                crash,
            })
            .max_encoding_message_size(64 << 20);
            let svc = hyper_util::service::TowerToHyperService::new(svc);
            let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await;
            lock(&st).conns.remove(&id);
        });
        lock(&state).conns.insert(id, h);
    }
}

#[cfg(test)]
mod tests {
    //! The modelled rules on the ring state alone (no network).
    use super::*;

    /// A bucket start (a multiple of 15).
    const B: i64 = 1_800_000_000;

    fn state() -> State {
        State {
            now_bucket: B,
            clock_offset: 0,
            ..Default::default()
        }
    }

    fn at(t: i64, src: &str) -> FlowResult {
        flow(0, src, "dst", 1, t)
    }

    #[test]
    fn ring_bounds_follow_find_bucket() {
        let st = state();
        assert_eq!(st.head(), B + 15);
        assert_eq!(st.oldest(), B - 3600);
        assert_eq!((st.head() - st.oldest()) / 15 + 1, RING_BUCKETS);
        assert_eq!(st.streaming(), B - 15);
        assert_eq!(st.find(B - 3600), Some(B - 3600));
        assert_eq!(st.find(B - 3601), None);
        assert_eq!(st.find(B + 29), Some(B + 15));
        assert_eq!(st.find(B + 30), None);
        let mut st = state();
        assert!(!st.add(&at(B - 3700, "a")));
        assert_eq!(st.dropped_outside_ring, 1);
    }

    #[test]
    fn backfill_rules() {
        let mut st = state();
        let mut b = st.oldest();
        while b <= st.head() {
            st.add(&at(b, "a"));
            b += 15;
        }
        // One key: one id, one result per bucket, bucket bounds as times.
        assert_eq!(st.next_id, 1);
        let all = st.backfill(st.oldest());
        assert_eq!(all.len(), ((B - 15) - (B - 3600)) as usize / 15);
        let f = all[0].flow.as_ref().unwrap();
        assert_eq!((f.start_time, f.end_time), (B - 3600, B - 3585));
        // Older than the oldest bucket: nothing, silently.
        assert!(st.backfill(B - 3601).is_empty());
        // The streaming bucket itself: nothing (it goes out at the next rollover).
        assert!(st.backfill(B - 15).is_empty());
        // A start in the filling bucket wraps around the ring: 241 buckets.
        assert_eq!(st.backfill(B + 3).len(), 241);
        assert_eq!(st.backfill(B + 15).len(), 240);
    }

    #[test]
    fn rollover_streams_each_completed_bucket_once() {
        let mut st = state();
        st.add(&at(B - 15, "a"));
        st.add(&at(B, "b"));
        st.add(&at(B - 100, "late"));
        assert!(st.rollover_to(B + 14).is_empty());
        let out = st.rollover_to(B + 15);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].flow.as_ref().unwrap().start_time, B - 15);
        let out = st.rollover_to(B + 30);
        assert_eq!(out.len(), 1);
        assert!(st.rollover_to(B + 30).is_empty());
        // The ring moved: the oldest bucket rolled out.
        assert_eq!(st.oldest(), B + 30 - 3600);
    }

    #[test]
    fn list_quirks() {
        let mut st = state();
        st.add(&at(B - 600, "a"));
        st.add(&at(B - 300, "a"));
        st.add(&at(B - 300, "b"));
        st.add(&at(B - 60, "c"));
        // Same key, same bucket: merged, statistics summed.
        st.add(&at(B - 60, "c"));
        let idx = st.list_all(B - 3600, B);
        let all: Vec<FlowResult> = idx.iter().map(|e| st.list_result(*e)).collect();
        assert_eq!(all.len(), 3);
        // Newest first; a key totalled over its windows.
        let c = all[0].flow.as_ref().unwrap();
        assert_eq!((c.start_time, c.num_connections_started), (B - 60, 6));
        let a = all
            .iter()
            .find(|f| f.id == 1)
            .unwrap()
            .flow
            .as_ref()
            .unwrap();
        assert_eq!((a.start_time, a.end_time), (B - 600, B - 285));
        // A key whose only window ends after `lt` comes back with zero times.
        let idx = st.list_all(B - 61, B - 50);
        let part: Vec<FlowResult> = idx.iter().map(|e| st.list_result(*e)).collect();
        assert_eq!(part.len(), 1);
        let f = part[0].flow.as_ref().unwrap();
        assert_eq!((f.start_time, f.end_time), (0, 0));
        // 0 means the oldest bucket for List (now for Stream).
        assert_eq!(st.normalize(0, 0).0, st.oldest());
        // A restart forgets the ring and the ids.
        st.restart();
        st.add(&at(B - 60, "c"));
        assert_eq!(st.list_all(B - 3600, B)[0].2, 1);
    }

    #[test]
    fn felix_reports_both_sides() {
        let c = Connection::new(Endpoint::pod("a"), Endpoint::pod("b"), 1, 2, B);
        let r = c.reports();
        let kv: Vec<(i32, i32)> = r
            .iter()
            .map(|f| {
                let k = f.flow.as_ref().unwrap().key.as_ref().unwrap();
                (k.reporter, k.action)
            })
            .collect();
        assert_eq!(kv, [(1, 1), (2, 2)]);
        // Denied by the source's egress: the destination never sees it.
        assert_eq!(
            Connection::new(Endpoint::pod("a"), Endpoint::pod("b"), 2, 1, B)
                .reports()
                .len(),
            1
        );
        // To a network: only the source reports; namespace "-".
        let n =
            Connection::new(Endpoint::pod("a"), Endpoint::Network("pub".into()), 1, 1, B).reports();
        assert_eq!(n.len(), 1);
        let k = n[0].flow.as_ref().unwrap().key.as_ref().unwrap();
        assert_eq!(
            (k.dest_namespace.as_str(), k.dest_type, k.dest_name.as_str()),
            ("-", 4, "pub")
        );
    }
}
