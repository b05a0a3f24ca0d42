//! One Goldmane session (§3.3–3.5): fresh DNS, TCP, our own rustls handshake (so TLS
//! failures can be classified), then a tonic channel over that one connection and the
//! `Flows.Stream` call. The receive loop only decodes and hands messages to `on_flow`.

use crate::certs::{classify_tls_error, find_tls_error};
use crate::proto::flows_client::FlowsClient;
use crate::proto::{FlowResult, FlowStreamRequest};
use hyper_util::rt::TokioIo;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Why a session ended: the `stream_reconnects_total` reason index and the log detail.
#[derive(Debug)]
pub struct End {
    /// 0 eof, 1 status, 2 transport, 3 tls, 4 stall
    pub reason: usize,
    pub tls_class: Option<&'static str>,
    pub detail: String,
    pub delivered: u64,
    pub open_for: Duration,
}

impl End {
    fn new(reason: usize, detail: impl Into<String>) -> Self {
        End {
            reason,
            tls_class: None,
            detail: detail.into(),
            delivered: 0,
            open_for: Duration::ZERO,
        }
    }
    fn tls(class: &'static str, detail: impl Into<String>) -> Self {
        End {
            tls_class: Some(class),
            ..End::new(3, detail)
        }
    }
}

pub const EOF: usize = 0;
pub const STATUS: usize = 1;
pub const TRANSPORT: usize = 2;
pub const STALL: usize = 4;

/// The TLS connection with the bytes already read while waiting for the server's verdict on
/// our certificate (TLS 1.3 reports a rejected client cert only after the handshake).
pub struct Primed {
    prefix: Vec<u8>,
    pos: usize,
    inner: TlsStream<TcpStream>,
}

impl tokio::io::AsyncRead for Primed {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = &mut *self;
        if me.pos < me.prefix.len() {
            let n = (me.prefix.len() - me.pos).min(buf.remaining());
            buf.put_slice(&me.prefix[me.pos..me.pos + n]);
            me.pos += n;
            if me.pos == me.prefix.len() {
                me.prefix = Vec::new();
                me.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut me.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Primed {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Hands the already-established TLS connection to tonic exactly once.
#[derive(Clone)]
struct OneShot(Arc<Mutex<Option<Primed>>>);

impl tonic::codegen::Service<tonic::codegen::http::Uri> for OneShot {
    type Response = TokioIo<Primed>;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: tonic::codegen::http::Uri) -> Self::Future {
        let taken = self.0.lock().map(|mut g| g.take()).unwrap_or(None);
        std::future::ready(match taken {
            Some(s) => Ok(TokioIo::new(s)),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "connection closed; a new session reconnects",
            )),
        })
    }
}

/// After a TLS 1.3 handshake, wait (≤ 5 s) for the server's first bytes: an HTTP/2 server
/// sends its SETTINGS at once, a server that rejects our certificate sends an alert instead.
/// The bytes read are replayed to the HTTP/2 client.
async fn prime(mut tls: TlsStream<TcpStream>) -> Result<Primed, End> {
    use tokio::io::AsyncReadExt;
    let tls13 = tls.get_ref().1.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
    let mut prefix = Vec::new();
    if tls13 {
        let mut buf = vec![0u8; 4096];
        match tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await {
            Ok(Ok(0)) => {
                return Err(End::new(
                    TRANSPORT,
                    "tls: server closed the connection after the handshake",
                ))
            }
            Ok(Ok(n)) => {
                buf.truncate(n);
                prefix = buf;
            }
            Ok(Err(e)) => return Err(classify_io(&e, "tls")),
            Err(_) => {}
        }
    }
    Ok(Primed {
        prefix,
        pos: 0,
        inner: tls,
    })
}

fn set_keepalive(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let fd = s.as_raw_fd();
    let on: libc::c_int = 1;
    let idle: libc::c_int = 60;
    let sz = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: fd is a live socket owned by `s`; the option values point to valid c_ints.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            (&on as *const libc::c_int).cast(),
            sz,
        );
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPIDLE,
            (&idle as *const libc::c_int).cast(),
            sz,
        );
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPINTVL,
            (&idle as *const libc::c_int).cast(),
            sz,
        );
    }
}

fn classify_io(e: &(dyn std::error::Error + 'static), what: &str) -> End {
    match find_tls_error(e) {
        Some(t) => End::tls(classify_tls_error(t), t.to_string()),
        None => End::new(TRANSPORT, format!("{what}: {}", chain(e))),
    }
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

fn classify_status(st: &tonic::Status) -> End {
    if let Some(t) = find_tls_error(st) {
        return End::tls(classify_tls_error(t), t.to_string());
    }
    if std::error::Error::source(st).is_some() {
        return End::new(TRANSPORT, chain(st));
    }
    End::new(STATUS, format!("{:?}: {}", st.code(), st.message()))
}

/// gRPC's default receive limit, which Goldmane's clients use too: a bigger message (a List
/// page) is refused by the decoder.
pub const MAX_MESSAGE: usize = 4 << 20;

/// One `Flows.List` page within `timeout`.
pub async fn list_page(
    channel: tonic::transport::Channel,
    req: crate::proto::FlowListRequest,
    timeout: Duration,
) -> Result<crate::proto::FlowListResult, tonic::Status> {
    let mut client = FlowsClient::new(channel).max_decoding_message_size(MAX_MESSAGE);
    match tokio::time::timeout(timeout, client.list(req)).await {
        Ok(r) => r.map(|r| r.into_inner()),
        Err(_) => Err(tonic::Status::deadline_exceeded("List page timed out")),
    }
}

/// True when a List page was refused for its size (tonic: `OutOfRange` "decoded message length
/// too large"), so a smaller page can be asked for.
pub fn too_large(st: &tonic::Status) -> bool {
    st.code() == tonic::Code::OutOfRange
        || (st.code() == tonic::Code::ResourceExhausted)
        || st.message().contains("too large")
}

/// Parameters of one session.
pub struct Target<'a> {
    pub authority: &'a str,
    pub server_name: &'a str,
    pub tls: rustls::ClientConfig,
    pub request: FlowStreamRequest,
    pub stall: Duration,
}

/// Establish the stream. `on_open` runs once the call is accepted (with a handle to the same
/// HTTP/2 connection, for `Flows.List`), `on_flow` per message.
pub async fn session(
    t: Target<'_>,
    mut on_open: impl FnMut(tonic::transport::Channel),
    mut on_flow: impl FnMut(FlowResult),
) -> End {
    let addrs: Vec<std::net::SocketAddr> = match tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::lookup_host(t.authority),
    )
    .await
    {
        Ok(Ok(a)) => a.collect(),
        Ok(Err(e)) => return End::new(TRANSPORT, format!("dns {}: {e}", t.authority)),
        Err(_) => return End::new(TRANSPORT, format!("dns {}: timed out", t.authority)),
    };
    let mut tcp = None;
    let mut last = format!("no address for {}", t.authority);
    for a in addrs {
        match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(a)).await {
            Ok(Ok(s)) => {
                tcp = Some(s);
                break;
            }
            Ok(Err(e)) => last = format!("connect {a}: {e}"),
            Err(_) => last = format!("connect {a}: timed out"),
        }
    }
    let Some(tcp) = tcp else {
        return End::new(TRANSPORT, last);
    };
    let _ = tcp.set_nodelay(true);
    set_keepalive(&tcp);
    let name = match rustls::pki_types::ServerName::try_from(t.server_name.to_string()) {
        Ok(n) => n,
        Err(_) => return End::tls("bad_name", format!("invalid server name {}", t.server_name)),
    };
    let tls = match tokio::time::timeout(
        Duration::from_secs(10),
        tokio_rustls::TlsConnector::from(Arc::new(t.tls)).connect(name, tcp),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return classify_io(&e, "tls handshake"),
        Err(_) => return End::new(TRANSPORT, "tls handshake: timed out"),
    };
    let tls = match prime(tls).await {
        Ok(p) => p,
        Err(end) => return end,
    };
    let endpoint = match tonic::transport::Endpoint::from_shared(format!("http://{}", t.authority))
    {
        Ok(e) => e,
        Err(e) => return End::new(TRANSPORT, format!("endpoint {}: {e}", t.authority)),
    };
    let channel = match endpoint
        .http2_keep_alive_interval(Duration::from_secs(360))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(false)
        .connect_with_connector(OneShot(Arc::new(Mutex::new(Some(tls)))))
        .await
    {
        Ok(c) => c,
        Err(e) => return classify_io(&e, "http2"),
    };
    let mut client = FlowsClient::new(channel.clone()).max_decoding_message_size(MAX_MESSAGE);
    let resp = match tokio::time::timeout(t.stall, client.stream(t.request)).await {
        Ok(Ok(r)) => r,
        Ok(Err(st)) => return classify_status(&st),
        Err(_) => return End::new(STALL, "no response"),
    };
    let mut stream = resp.into_inner();
    on_open(channel);
    let opened = Instant::now();
    let mut delivered = 0u64;
    let mut end = loop {
        match tokio::time::timeout(t.stall, stream.message()).await {
            Ok(Ok(Some(m))) => {
                delivered += 1;
                on_flow(m);
            }
            Ok(Ok(None)) => break End::new(EOF, "OK"),
            Ok(Err(st)) => break classify_status(&st),
            Err(_) => break End::new(STALL, "stalled"),
        }
    };
    end.delivered = delivered;
    end.open_for = opened.elapsed();
    end
}
