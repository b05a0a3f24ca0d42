//! `FakeGoldmane`: a stand-in for Calico Goldmane's `Flows` gRPC service, generated from the
//! **full** upstream `api.proto` (labels, statistics, policy traces included), served over real
//! mutual TLS with a throwaway CA from rcgen.
//!
//! Behaviour modelled on the real server (v3.30): flows live in a ring; a `Stream` call first
//! backfills every ring flow with `start_time >= start_time_gte`, then streams flows added later.
//! Tests drive the faults: end streams cleanly or with a status, cut connections, stop and restart
//! on the same port, stay silent (stall). Every `FlowStreamRequest` is recorded with the serial of
//! the client certificate that made it.

use std::collections::HashMap;
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

pub use proto::{Flow, FlowKey, FlowResult, FlowStreamRequest, PolicyHit, PolicyTrace};

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

/// The throwaway PKI of one test: the Tigera-like CA with a server cert for
/// `localhost`/`127.0.0.1`/`::1` and a client cert; a second, foreign CA with the same kinds.
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
        let server = ca.issue("goldmane", &["localhost", "127.0.0.1", "::1"], false);
        let client = ca.issue("whisker-backend", &[], false);
        let foreign_ca = TestCa::new("some-other-ca", 2);
        let foreign_server =
            foreign_ca.issue("goldmane", &["localhost", "127.0.0.1", "::1"], false);
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

/// A realistic flow: workload to workload, labels and a policy trace (like a live Goldmane),
/// `start .. start+15`.
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
}

enum Ev {
    Flow(Box<FlowResult>),
    End,
    Fail(tonic::Status),
}

#[derive(Default)]
struct State {
    ring: Vec<FlowResult>,
    keep_ring: bool,
    calls: Vec<StreamCall>,
    streams: Vec<mpsc::Sender<Ev>>,
    conns: HashMap<u64, JoinHandle<()>>,
    next_conn: u64,
    handshake_failures: u64,
    connections: u64,
}

type Shared = Arc<Mutex<State>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Clone)]
struct Svc {
    state: Shared,
    client_serial: Vec<u8>,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[tonic::async_trait]
impl proto::flows_server::Flows for Svc {
    async fn list(
        &self,
        _: tonic::Request<proto::FlowListRequest>,
    ) -> Result<tonic::Response<proto::FlowListResult>, tonic::Status> {
        Err(tonic::Status::unimplemented("List is not faked"))
    }

    type StreamStream = tokio_stream::wrappers::ReceiverStream<Result<FlowResult, tonic::Status>>;

    async fn stream(
        &self,
        req: tonic::Request<FlowStreamRequest>,
    ) -> Result<tonic::Response<Self::StreamStream>, tonic::Status> {
        let r = req.into_inner();
        let gte = match r.start_time_gte {
            0 => i64::MAX, // "now": no backfill
            n if n < 0 => now_unix() + n,
            n => n,
        };
        let (live_tx, mut live_rx) = mpsc::channel::<Ev>(1024);
        let backfill: Vec<FlowResult> = {
            let mut st = lock(&self.state);
            st.calls.push(StreamCall {
                start_time_gte: r.start_time_gte,
                aggregation_interval: r.aggregation_interval,
                client_serial: self.client_serial.clone(),
                filter_sent: r.filter.is_some(),
            });
            st.streams.push(live_tx);
            st.ring
                .iter()
                .filter(|f| f.flow.as_ref().is_none_or(|fl| fl.start_time >= gte))
                .cloned()
                .collect()
        };
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            for f in backfill {
                if tx.send(Ok(f)).await.is_err() {
                    return;
                }
            }
            while let Some(ev) = live_rx.recv().await {
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
        // RequireAndVerifyClientCert, like gRPC-Go in Goldmane; no identity check.
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
            keep_ring: true,
            ..Default::default()
        }));
        let mut g = FakeGoldmane {
            rt: Some(rt),
            state,
            tls,
            port: port.unwrap_or_else(crate::free_port),
            accept: None,
        };
        g.listen();
        g
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("runtime present until drop")
    }

    fn listen(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let cfg = self.tls.config();
        let state = self.state.clone();
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
        let h = self.rt().spawn(accept_loop(listener, cfg, state));
        self.accept = Some(h);
    }

    pub fn port(&self) -> u16 {
        self.port
    }
    /// `127.0.0.1:<port>`, for `GOLDMANE_HOST`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Add flows to the ring and send them to every open stream (after its backfill). Blocks
    /// while a stream's buffer is full (Goldmane has no real backpressure either).
    pub fn add_flows(&self, flows: impl IntoIterator<Item = FlowResult>) {
        let flows: Vec<FlowResult> = flows.into_iter().collect();
        let senders = {
            let mut st = lock(&self.state);
            if st.keep_ring {
                st.ring.extend(flows.iter().cloned());
            }
            st.streams.retain(|s| !s.is_closed());
            st.streams.clone()
        };
        if senders.is_empty() {
            return;
        }
        self.rt().block_on(async {
            for f in flows {
                for s in &senders {
                    // A closed stream is skipped.
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

    /// Keep flows in the ring for backfill (default) or only stream them live (benchmarks).
    pub fn set_keep_ring(&self, keep: bool) {
        lock(&self.state).keep_ring = keep;
    }

    /// Forget the ring (a Goldmane restart loses it).
    pub fn clear_ring(&self) {
        lock(&self.state).ring.clear();
    }

    /// End every open stream with gRPC status OK.
    pub fn end_streams(&self) {
        let senders = std::mem::take(&mut lock(&self.state).streams);
        self.send_all(&senders, || Ev::End);
    }

    /// End every open stream with `status`.
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

    /// Stop listening and cut every connection; the ring is kept unless cleared.
    pub fn stop(&mut self) {
        if let Some(h) = self.accept.take() {
            h.abort();
            let _ = self.rt().block_on(h);
        }
        self.drop_connections();
    }

    /// Listen again on the same port after [`FakeGoldmane::stop`].
    pub fn restart(&mut self) {
        self.stop();
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
    /// Number of streams currently open.
    pub fn open_streams(&self) -> usize {
        let mut st = lock(&self.state);
        st.streams.retain(|s| !s.is_closed());
        st.streams.len()
    }
    /// TLS handshakes that failed (unknown client CA, expired client cert, ...).
    pub fn handshake_failures(&self) -> u64 {
        lock(&self.state).handshake_failures
    }
    /// TCP connections accepted.
    pub fn connections(&self) -> u64 {
        lock(&self.state).connections
    }
}

impl Drop for FakeGoldmane {
    fn drop(&mut self) {
        if let Some(h) = self.accept.take() {
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
            });
            let svc = hyper_util::service::TowerToHyperService::new(svc);
            let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await;
            lock(&st).conns.remove(&id);
        });
        lock(&state).conns.insert(id, h);
    }
}
