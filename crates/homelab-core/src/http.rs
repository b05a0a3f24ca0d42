//! One way to make HTTP calls: a ureq + rustls agent with bounded timeouts, an optional
//! private CA, no cross-origin redirects, and errors that can be logged safely.
//!
//! Trust: with no CA configured the agent trusts the host's store (`SSL_CERT_FILE`,
//! `SSL_CERT_DIR`, then the distribution bundle such as Debian's
//! `/etc/ssl/certs/ca-certificates.crt`), as Go's `crypto/x509` does; only a host without any
//! bundle falls back to the compiled-in Mozilla roots.
//!
//! Proxies follow Go's `golang.org/x/net/http/httpproxy` (what every Go CLI, kubectl and the
//! Vault CLI use), not ureq's own environment rules; see [`ProxyRules`].
//!
//! Redaction guarantee: an [`HttpError`] names the method and the URL *path* only. Header
//! values, query strings and URL userinfo never appear in its `Display` or `Debug`, and any
//! occurrence of them in a server's answer or a transport message is replaced by `***`.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use ureq::tls::{Certificate, PemItem};
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout,
    TcpConnector, Transport, TransportAdapter,
};

/// How 3xx answers are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// Return the 3xx to the caller (Slack: a redirecting webhook is a misconfiguration).
    Never,
    /// Follow up to N redirects for GET/HEAD while the origin stays the same; a redirect to
    /// another origin is an error (credentials must never travel to another host).
    SameOrigin(u32),
}

/// Which proxy the agent uses.
#[derive(Clone, Default)]
pub enum ProxyMode {
    /// `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` read from the environment with Go's rules.
    #[default]
    FromEnv,
    /// Never a proxy.
    Direct,
    /// This proxy for every request, whatever the environment says (kubeconfig `proxy-url`,
    /// which client-go hands to `http.ProxyURL`: no `NO_PROXY`, loopback included).
    Url(String),
    /// Explicit rules (tests, or a caller that read them elsewhere).
    Rules(ProxyRules),
}

impl fmt::Debug for ProxyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyMode::FromEnv => write!(f, "FromEnv"),
            ProxyMode::Direct => write!(f, "Direct"),
            ProxyMode::Url(u) => write!(f, "Url({})", redact_userinfo(u)),
            ProxyMode::Rules(r) => write!(f, "{r:?}"),
        }
    }
}

/// Agent settings. Defaults: 5 s connect, 30 s total, the host's trust store, proxies from
/// the environment with Go's rules.
#[derive(Clone)]
pub struct HttpConfig {
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
    /// PEM bundle; when set it *replaces* the default roots (as `VAULT_CACERT` and a
    /// kubeconfig `certificate-authority` do).
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate chain and private key (mTLS, kubeconfig client certs).
    pub client_cert_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// Verify the server certificate against this name and send it as SNI instead of the
    /// URL's host (kubeconfig `tls-server-name`, `VAULT_TLS_SERVER_NAME`); the `Host` header
    /// still names the URL's host, as in Go's `tls.Config.ServerName`.
    pub tls_server_name: Option<String>,
    pub proxy: ProxyMode,
    pub redirects: Redirects,
    /// Largest response body read; larger bodies are an error, never silently cut.
    pub max_body: u64,
    pub user_agent: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(30),
            ca_pem: None,
            client_cert_pem: None,
            tls_server_name: None,
            proxy: ProxyMode::FromEnv,
            redirects: Redirects::SameOrigin(5),
            max_body: 32 * 1024 * 1024,
            user_agent: concat!("homelab-ops/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("connect_timeout", &self.connect_timeout)
            .field("total_timeout", &self.total_timeout)
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .field(
                "client_cert_pem",
                &self.client_cert_pem.as_ref().map(|_| "***"),
            )
            .field("tls_server_name", &self.tls_server_name)
            .field("proxy", &self.proxy)
            .field("redirects", &self.redirects)
            .finish()
    }
}

/// `scheme://***@host` for a URL with userinfo; the URL unchanged otherwise.
pub fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_string(),
        };
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[end..]),
        None => url.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Proxy selection, after golang.org/x/net http/httpproxy/proxy.go (golang/net v0.38.0):
// `FromEnvironment` (upper-case name first, then lower-case; an empty value counts as unset),
// `ProxyFunc`/`proxyForURL` (https → HTTPS_PROXY, http → HTTP_PROXY, nothing else; HTTP_PROXY is
// ignored under CGI, i.e. when REQUEST_METHOD is set), `useProxy` (localhost and loopback IPs
// never proxied) and `config.init` (the NO_PROXY grammar). ALL_PROXY is not read by Go's HTTP
// stack, so it is not read here either.

/// Proxy rules as Go's `httpproxy.Config` holds them.
#[derive(Clone, Default)]
pub struct ProxyRules {
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    pub no_proxy: String,
    /// `REQUEST_METHOD` is set (CGI): HTTP_PROXY may come from a client header, so Go ignores it.
    pub cgi: bool,
}

impl fmt::Debug for ProxyRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyRules")
            .field(
                "http_proxy",
                &self.http_proxy.as_deref().map(redact_userinfo),
            )
            .field(
                "https_proxy",
                &self.https_proxy.as_deref().map(redact_userinfo),
            )
            .field("no_proxy", &self.no_proxy)
            .field("cgi", &self.cgi)
            .finish()
    }
}

impl ProxyRules {
    /// Read the rules through `get` (`std::env::var` in production).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> ProxyRules {
        let any = |names: [&str; 2]| names.iter().filter_map(|n| get(n)).find(|v| !v.is_empty());
        ProxyRules {
            http_proxy: any(["HTTP_PROXY", "http_proxy"]),
            https_proxy: any(["HTTPS_PROXY", "https_proxy"]),
            no_proxy: any(["NO_PROXY", "no_proxy"]).unwrap_or_default(),
            cgi: get("REQUEST_METHOD").is_some_and(|v| !v.is_empty()),
        }
    }

    pub fn from_env() -> ProxyRules {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// The proxy URL (as configured) for a request URL, or `None` to connect directly.
    pub fn proxy_for(&self, url: &str) -> Option<&str> {
        let parts = UrlParts::parse(url)?;
        let proxy = match parts.scheme.as_str() {
            "https" => self.https_proxy.as_deref(),
            "http" if !self.cgi => self.http_proxy.as_deref(),
            _ => None,
        }?;
        let (host, port) = split_host_port(&parts.host_port, &parts.scheme);
        NoProxy::parse(&self.no_proxy)
            .use_proxy(&host, &port)
            .then_some(proxy)
    }
}

/// `host` (brackets removed, lower case) and port (scheme default when absent).
fn split_host_port(host_port: &str, scheme: &str) -> (String, String) {
    let default = if scheme == "https" { "443" } else { "80" };
    if let Some(rest) = host_port.strip_prefix('[') {
        if let Some((h, tail)) = rest.split_once(']') {
            let port = tail.strip_prefix(':').filter(|p| !p.is_empty());
            return (h.to_ascii_lowercase(), port.unwrap_or(default).to_string());
        }
    }
    match host_port.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_ascii_lowercase(), p.to_string()),
        _ => (host_port.to_ascii_lowercase(), default.to_string()),
    }
}

#[derive(Debug, Clone)]
enum NoProxyRule {
    All,
    Cidr(IpAddr, u8),
    Ip(IpAddr, String),
    /// `.suffix` with the leading dot; `exact` also matches the bare name (an entry written
    /// without a leading dot).
    Domain {
        suffix: String,
        port: String,
        exact: bool,
    },
}

/// A parsed `NO_PROXY` list (Go `httpproxy.config.init`).
#[derive(Debug, Clone, Default)]
pub struct NoProxy(Vec<NoProxyRule>);

impl NoProxy {
    pub fn parse(list: &str) -> NoProxy {
        let mut rules = Vec::new();
        for raw in list.split(',') {
            let p = raw.trim().to_ascii_lowercase();
            if p.is_empty() {
                continue;
            }
            if p == "*" {
                return NoProxy(vec![NoProxyRule::All]);
            }
            if let Some((ip, bits)) = p.split_once('/') {
                if let (Ok(ip), Ok(bits)) = (ip.parse::<IpAddr>(), bits.parse::<u8>()) {
                    let max = if ip.is_ipv4() { 32 } else { 128 };
                    if bits <= max {
                        rules.push(NoProxyRule::Cidr(ip, bits));
                    }
                }
                continue;
            }
            let (host, port) = match go_split_host_port(&p) {
                Some((h, _)) if h.is_empty() => continue,
                Some((h, port)) => (h, port),
                None => (p.clone(), String::new()),
            };
            if let Ok(ip) = host.parse::<IpAddr>() {
                rules.push(NoProxyRule::Ip(ip, port));
                continue;
            }
            let host = host
                .strip_prefix("*.")
                .map_or(host.clone(), |h| format!(".{h}"));
            let (suffix, exact) = match host.strip_prefix('.') {
                Some(_) => (host.clone(), false),
                None => (format!(".{host}"), true),
            };
            rules.push(NoProxyRule::Domain {
                suffix,
                port,
                exact,
            });
        }
        NoProxy(rules)
    }

    /// Go `useProxy`: whether a request to `host:port` goes through the proxy.
    pub fn use_proxy(&self, host: &str, port: &str) -> bool {
        if host == "localhost" {
            return false;
        }
        let ip = host.parse::<IpAddr>().ok();
        if ip.is_some_and(|i| i.is_loopback()) {
            return false;
        }
        for rule in &self.0 {
            let hit = match rule {
                NoProxyRule::All => true,
                NoProxyRule::Cidr(net, bits) => ip.is_some_and(|i| cidr_contains(*net, *bits, i)),
                NoProxyRule::Ip(want, p) => {
                    ip.is_some_and(|i| i == *want) && (p.is_empty() || p == port)
                }
                NoProxyRule::Domain {
                    suffix,
                    port: p,
                    exact,
                } => {
                    (host.ends_with(suffix.as_str()) || (*exact && host == &suffix[1..]))
                        && (p.is_empty() || p == port)
                }
            };
            if hit {
                return false;
            }
        }
        true
    }
}

/// Go `net.SplitHostPort` for NO_PROXY entries: `host:port` or `[v6]:port`; `None` when the
/// entry has no port (including a bare IPv6 address).
fn go_split_host_port(p: &str) -> Option<(String, String)> {
    if let Some(rest) = p.strip_prefix('[') {
        let (h, tail) = rest.split_once(']')?;
        let port = tail.strip_prefix(':')?;
        return Some((h.to_string(), port.to_string()));
    }
    let (h, port) = p.rsplit_once(':')?;
    if h.contains(':') {
        return None;
    }
    Some((h.to_string(), port.to_string()))
}

fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    // Go's IPNet.Contains matches an IPv4 address against an IPv4 network only (and the
    // IPv4-mapped form of it), never across families.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// Go `parseProxy`: a value without a scheme means `http://`; http, https, socks5 and
/// socks5h are the schemes Go's transport knows. Only the HTTP CONNECT kinds are offered here.
fn parse_proxy_url(raw: &str, source: &str) -> Result<(ureq::Proxy, Option<String>), HttpError> {
    let url = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    let shown = redact_userinfo(&url);
    let parts = UrlParts::parse(&url).ok_or_else(|| {
        config_error(format!(
            "{source} proxy {shown} is not an http:// or https:// URL; fix {source} (SOCKS proxies are not supported)"
        ))
    })?;
    let proxy = ureq::Proxy::new(&url).map_err(|_| {
        config_error(format!(
            "{source} proxy {shown} is not a usable URL; fix {source}"
        ))
    })?;
    Ok((proxy, parts.userinfo))
}

// ---------------------------------------------------------------------------------------------
// TLS: our own rustls connector so the trust store and the server name are ours to choose.

static SYSTEM_ROOTS: OnceLock<Arc<rustls::RootCertStore>> = OnceLock::new();

/// The host's trust store (rustls-native-certs: `SSL_CERT_FILE`/`SSL_CERT_DIR`, then the
/// distribution bundle paths of openssl-probe), read once per process. A host without any
/// readable bundle (a bare `scratch` image) gets the compiled-in Mozilla roots instead.
fn system_roots() -> Arc<rustls::RootCertStore> {
    SYSTEM_ROOTS
        .get_or_init(|| Arc::new(roots_from(rustls_native_certs::load_native_certs())))
        .clone()
}

fn roots_from(found: rustls_native_certs::CertificateResult) -> rustls::RootCertStore {
    let mut store = rustls::RootCertStore::empty();
    let (_added, _ignored) = store.add_parsable_certificates(found.certs);
    if store.is_empty() {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    store
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_tls(
    roots: Arc<rustls::RootCertStore>,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots);
    let cfg = match client {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("client certificate: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// Wraps the TCP (or CONNECT-tunnelled) transport in rustls.
#[derive(Debug)]
struct TlsConnector {
    target: Arc<rustls::ClientConfig>,
    /// Used for the hop to an `https://` proxy itself: host store, proxy's own name.
    proxy: Arc<rustls::ClientConfig>,
    server_name: Option<ServerName<'static>>,
    /// This connector serves an agent configured with a proxy.
    proxied: bool,
}

fn uri_server_name(uri: &ureq::http::Uri) -> Result<ServerName<'static>, ureq::Error> {
    let host = uri.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|_| ureq::Error::Tls("invalid server name"))
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        // ConnectProxyConnector dials the proxy with a proxy-less copy of the agent config:
        // a TLS hop without a proxy on a proxied agent is the hop to the proxy itself.
        let to_proxy = self.proxied && details.config.proxy().is_none();
        let (cfg, name) = if to_proxy {
            (self.proxy.clone(), uri_server_name(details.uri)?)
        } else {
            let name = match &self.server_name {
                Some(n) => n.clone(),
                None => uri_server_name(details.uri)?,
            };
            (self.target.clone(), name)
        };
        let mut conn = rustls::ClientConnection::new(cfg, name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        // A handshake failure surfaces as io::Error wrapping the rustls error: keep it a TLS
        // error so the message says so (and a retry knows nothing was sent).
        conn.complete_io(&mut sock).map_err(|e| {
            match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                Some(r) => ureq::Error::Rustls(r.clone()),
                None => ureq::Error::Io(e),
            }
        })?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(TlsTransport {
            buffers,
            stream: rustls::StreamOwned { conn, sock },
        })))
    }
}

struct TlsTransport {
    buffers: LazyBuffers,
    stream: rustls::StreamOwned<rustls::ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsTransport")
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }
    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        use std::io::Write;
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }
    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        use std::io::Read;
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let n = self.stream.read(input)?;
        self.buffers.input_appended(n);
        Ok(n > 0)
    }
    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }
    fn is_tls(&self) -> bool {
        true
    }
}

/// Whether the request may have reached the server: decides whether a retry is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Failed before the request was written (DNS, connect, TLS): retrying cannot duplicate.
    No,
    /// The request may have been processed (timeout or reset while waiting for the answer).
    Maybe,
}

/// What went wrong, without secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpErrorKind {
    /// A non-2xx answer (only from the `*_ok` helpers); `excerpt` is bounded and scrubbed.
    Status {
        code: u16,
        excerpt: String,
    },
    Timeout {
        sent: Sent,
    },
    Transport {
        sent: Sent,
        reason: String,
    },
    /// A redirect to another origin (or too many redirects).
    Redirect {
        reason: String,
    },
    /// The URL or a setting (CA bundle, client cert) is unusable.
    Config {
        reason: String,
    },
    /// The answer could not be read or decoded (too large, bad JSON).
    Body {
        reason: String,
    },
}

#[derive(Clone, PartialEq, Eq)]
pub struct HttpError {
    pub method: String,
    /// The URL path only: no scheme, host, userinfo or query.
    pub path: String,
    pub kind: HttpErrorKind,
}

impl HttpError {
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            HttpErrorKind::Status { code, .. } => Some(code),
            _ => None,
        }
    }
    /// Whether a retry cannot duplicate the request's effect.
    pub fn not_sent(&self) -> bool {
        matches!(
            self.kind,
            HttpErrorKind::Timeout { sent: Sent::No }
                | HttpErrorKind::Transport { sent: Sent::No, .. }
        )
    }
    /// The reason without the `METHOD path: ` prefix.
    pub fn reason(&self) -> String {
        match &self.kind {
            HttpErrorKind::Status { code, excerpt } if excerpt.is_empty() => format!("HTTP {code}"),
            HttpErrorKind::Status { code, excerpt } => format!("HTTP {code}: {excerpt}"),
            HttpErrorKind::Timeout { sent: Sent::No } => "timed out connecting".to_string(),
            HttpErrorKind::Timeout { sent: Sent::Maybe } => {
                "timed out waiting for the answer".to_string()
            }
            HttpErrorKind::Transport { reason, .. } => reason.clone(),
            HttpErrorKind::Redirect { reason } => reason.clone(),
            HttpErrorKind::Config { reason } => reason.clone(),
            HttpErrorKind::Body { reason } => reason.clone(),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.method, self.path, self.reason())
    }
}

impl fmt::Debug for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HttpError({self})")
    }
}

impl std::error::Error for HttpError {}

/// A received answer (any status).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Parsed pieces of a URL that matter for origin checks and redaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts {
    pub scheme: String,
    pub userinfo: Option<String>,
    pub host_port: String,
    pub path: String,
    pub query: Option<String>,
}

impl UrlParts {
    pub fn parse(url: &str) -> Option<UrlParts> {
        let (scheme, rest) = url.split_once("://")?;
        if !matches!(scheme, "http" | "https") {
            return None;
        }
        let rest = rest.split('#').next().unwrap_or("");
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..auth_end];
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h.to_string()),
            None => (None, authority.to_string()),
        };
        if host_port.is_empty() {
            return None;
        }
        let after = &rest[auth_end..];
        let (path, query) = match after.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (after, None),
        };
        Some(UrlParts {
            scheme: scheme.to_ascii_lowercase(),
            userinfo,
            host_port: host_port.to_ascii_lowercase(),
            path: if path.is_empty() {
                "/".to_string()
            } else {
                path.to_string()
            },
            query,
        })
    }

    /// `scheme://host:port` with default ports made explicit.
    pub fn origin(&self) -> String {
        let has_port = self.host_port.rsplit_once(':').is_some_and(|(_, p)| {
            p.chars().all(|c| c.is_ascii_digit()) && !self.host_port.ends_with(']')
        });
        if has_port {
            format!("{}://{}", self.scheme, self.host_port)
        } else {
            let port = if self.scheme == "https" { 443 } else { 80 };
            format!("{}://{}:{port}", self.scheme, self.host_port)
        }
    }
}

/// How a client picks its agent per request.
#[derive(Clone)]
enum Route {
    Direct,
    /// Every request through `proxied[0]`.
    All,
    Rules(ProxyRules),
}

/// A configured agent (one per proxy in use, plus the direct one).
#[derive(Clone)]
pub struct Client {
    direct: ureq::Agent,
    proxied: Vec<(String, ureq::Agent)>,
    route: Route,
    redirects: Redirects,
    max_body: u64,
    /// Proxy userinfo: scrubbed from every error like the request's own secrets.
    proxy_secrets: Vec<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("redirects", &self.redirects)
            .field("proxies", &self.proxied.len())
            .finish()
    }
}

fn config_error(reason: impl Into<String>) -> HttpError {
    HttpError {
        method: "-".into(),
        path: "-".into(),
        kind: HttpErrorKind::Config {
            reason: reason.into(),
        },
    }
}

/// Parse every certificate of a PEM bundle; an empty or unreadable bundle is an error.
pub fn parse_pem_certs(pem: &[u8]) -> Result<Vec<Certificate<'static>>, String> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("invalid PEM: {e}")),
        }
    }
    if certs.is_empty() {
        return Err("no certificate found in PEM".to_string());
    }
    Ok(certs)
}

fn parse_pem_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    use rustls::pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| "no private key found in PEM".to_string())
}

impl Client {
    pub fn new(cfg: &HttpConfig) -> Result<Client, HttpError> {
        let roots = match &cfg.ca_pem {
            Some(pem) => {
                let certs =
                    parse_pem_certs(pem).map_err(|e| config_error(format!("CA bundle: {e}")))?;
                let mut store = rustls::RootCertStore::empty();
                let (added, _) = store.add_parsable_certificates(
                    certs
                        .iter()
                        .map(|c| CertificateDer::from(c.der()).into_owned()),
                );
                if added == 0 {
                    return Err(config_error("CA bundle: no usable CA certificate"));
                }
                Arc::new(store)
            }
            None => system_roots(),
        };
        let client = match &cfg.client_cert_pem {
            Some((cert, key)) => {
                let chain = parse_pem_certs(cert)
                    .map_err(|e| config_error(format!("client certificate: {e}")))?;
                let key =
                    parse_pem_key(key).map_err(|e| config_error(format!("client key: {e}")))?;
                let chain = chain
                    .iter()
                    .map(|c| CertificateDer::from(c.der()).into_owned())
                    .collect();
                Some((chain, key))
            }
            None => None,
        };
        let target = client_tls(roots, client).map_err(config_error)?;
        let proxy_tls = client_tls(system_roots(), None).map_err(config_error)?;
        let server_name = match &cfg.tls_server_name {
            Some(n) => Some(ServerName::try_from(n.clone()).map_err(|_| {
                config_error(format!(
                    "TLS server name {n:?} is not a DNS name or IP address; fix the server name setting"
                ))
            })?),
            None => None,
        };
        let build = |proxy: Option<ureq::Proxy>| -> ureq::Agent {
            let proxied = proxy.is_some();
            let config = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_connect(Some(cfg.connect_timeout))
                .timeout_global(Some(cfg.total_timeout))
                .user_agent(cfg.user_agent.as_str())
                .proxy(proxy)
                .build();
            let connector =
                ().chain(ConnectProxyConnector::default())
                    .chain(TcpConnector::default())
                    .chain(TlsConnector {
                        target: target.clone(),
                        proxy: proxy_tls.clone(),
                        server_name: server_name.clone(),
                        proxied,
                    });
            ureq::Agent::with_parts(
                config,
                connector,
                ureq::unversioned::resolver::DefaultResolver::default(),
            )
        };
        let mut proxied = Vec::new();
        let mut proxy_secrets = Vec::new();
        let mut add = |raw: &str, source: &str| -> Result<(), HttpError> {
            if proxied
                .iter()
                .any(|(k, _): &(String, ureq::Agent)| k == raw)
            {
                return Ok(());
            }
            let (proxy, userinfo) = parse_proxy_url(raw, source)?;
            if let Some(u) = userinfo {
                proxy_secrets.extend(u.split(':').map(str::to_string));
                proxy_secrets.push(u);
            }
            proxied.push((raw.to_string(), build(Some(proxy))));
            Ok(())
        };
        let route = match &cfg.proxy {
            ProxyMode::Direct => Route::Direct,
            ProxyMode::Url(u) => {
                add(u, "proxy-url")?;
                Route::All
            }
            ProxyMode::FromEnv | ProxyMode::Rules(_) => {
                let rules = match &cfg.proxy {
                    ProxyMode::Rules(r) => r.clone(),
                    _ => ProxyRules::from_env(),
                };
                if let Some(p) = &rules.https_proxy {
                    add(p, "HTTPS_PROXY")?;
                }
                if let (Some(p), false) = (&rules.http_proxy, rules.cgi) {
                    add(p, "HTTP_PROXY")?;
                }
                Route::Rules(rules)
            }
        };
        proxy_secrets.retain(|s| s.len() >= 4);
        Ok(Client {
            direct: build(None),
            proxied,
            route,
            redirects: cfg.redirects,
            max_body: cfg.max_body,
            proxy_secrets,
        })
    }

    /// The agent for `url`: direct, or the proxy the rules pick for it.
    fn agent_for(&self, url: &str) -> &ureq::Agent {
        let key = match &self.route {
            Route::Direct => None,
            Route::All => self.proxied.first().map(|(k, _)| k.as_str()),
            Route::Rules(r) => r.proxy_for(url),
        };
        key.and_then(|k| self.proxied.iter().find(|(p, _)| p == k))
            .map_or(&self.direct, |(_, a)| a)
    }

    /// Whether a request to `url` would go through a proxy (for diagnostics; never the URL).
    pub fn uses_proxy(&self, url: &str) -> bool {
        !std::ptr::eq(self.agent_for(url), &self.direct)
    }

    fn secrets(&self, url: &str, headers: &[(&str, &str)]) -> Vec<String> {
        let mut s = secrets_of(url, headers);
        s.extend(self.proxy_secrets.iter().cloned());
        s.sort_by_key(|x| std::cmp::Reverse(x.len()));
        s
    }

    /// Send one request and return the answer whatever its status.
    pub fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, HttpError> {
        let mut current = url.to_string();
        let mut hops = 0u32;
        loop {
            let resp = self.once(method, &current, url, headers, body)?;
            let follow = match self.redirects {
                Redirects::SameOrigin(max) if matches!(method, "GET" | "HEAD") => Some(max),
                _ => None,
            };
            let (Some(max), true) = (follow, (300..400).contains(&resp.status)) else {
                return Ok(resp);
            };
            let Some(loc) = resp.header("location").map(str::to_string) else {
                return Ok(resp);
            };
            let from = UrlParts::parse(&current).ok_or_else(|| bad_url(method))?;
            let next = resolve_location(&from, &loc);
            let path = safe_path(url);
            let Some(to) = UrlParts::parse(&next) else {
                return Err(HttpError {
                    method: method.into(),
                    path,
                    kind: HttpErrorKind::Redirect {
                        reason: format!("HTTP {} redirect to an unusable location", resp.status),
                    },
                });
            };
            if to.origin() != from.origin() {
                return Err(HttpError {
                    method: method.into(),
                    path,
                    kind: HttpErrorKind::Redirect {
                        reason: format!(
                            "HTTP {} redirect to another origin ({}) refused",
                            resp.status,
                            to.scheme.clone() + "://" + &to.host_port
                        ),
                    },
                });
            }
            hops += 1;
            if hops > max {
                return Err(HttpError {
                    method: method.into(),
                    path,
                    kind: HttpErrorKind::Redirect {
                        reason: format!("more than {max} redirects"),
                    },
                });
            }
            current = next;
        }
    }

    /// As [`Client::request`] but a non-2xx answer is an [`HttpErrorKind::Status`] error.
    pub fn request_ok(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, HttpError> {
        let resp = self.request(method, url, headers, body)?;
        if resp.is_success() {
            return Ok(resp);
        }
        let mut secrets = self.secrets(url, headers);
        if let Some(b) = body {
            secrets.push(String::from_utf8_lossy(b).into_owned());
        }
        Err(HttpError {
            method: method.into(),
            path: safe_path(url),
            kind: HttpErrorKind::Status {
                code: resp.status,
                excerpt: excerpt(&resp.text(), 200, &secrets),
            },
        })
    }

    /// GET and decode a 2xx JSON answer.
    pub fn get_json(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<serde_json::Value, HttpError> {
        let resp = self.request_ok("GET", url, headers, None)?;
        serde_json::from_slice(&resp.body).map_err(|e| HttpError {
            method: "GET".into(),
            path: safe_path(url),
            kind: HttpErrorKind::Body {
                reason: format!("invalid JSON: {e}"),
            },
        })
    }

    /// GET whose 2xx body is handed to `on_body` as a reader instead of being buffered (large
    /// answers such as `/metrics`); a non-2xx answer is read whole and returned as
    /// `Ok(Some(response))`. `on_body` errors (I/O while reading) become transport errors.
    pub fn get_streaming(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        on_body: &mut dyn FnMut(&mut dyn std::io::Read) -> std::io::Result<()>,
    ) -> Result<Option<Response>, HttpError> {
        self.get_streaming_limit(url, headers, self.max_body, on_body)
    }

    /// As [`Client::get_streaming`] with its own cap on the streamed 2xx body (`u64::MAX`
    /// when the reader bounds what it keeps itself, e.g. per line); error bodies keep
    /// `max_body`.
    pub fn get_streaming_limit(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        limit: u64,
        on_body: &mut dyn FnMut(&mut dyn std::io::Read) -> std::io::Result<()>,
    ) -> Result<Option<Response>, HttpError> {
        let secrets = self.secrets(url, headers);
        let map = |e: ureq::Error| map_error("GET", url, e, &secrets);
        let mut builder = ureq::http::Request::builder().method("GET").uri(url);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let req = builder.body(Vec::new()).map_err(|_| bad_url("GET"))?;
        let mut resp = self.agent_for(url).run(req).map_err(map)?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let headers: Vec<(String, String)> = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = resp
                .body_mut()
                .with_config()
                .limit(self.max_body)
                .read_to_vec()
                .map_err(map)?;
            return Ok(Some(Response {
                status,
                headers,
                body,
            }));
        }
        let mut reader = resp.body_mut().with_config().limit(limit).reader();
        on_body(&mut reader).map_err(|e| map(ureq::Error::Io(e)))?;
        Ok(None)
    }

    fn once(
        &self,
        method: &str,
        url: &str,
        original: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, HttpError> {
        let secrets = self.secrets(original, headers);
        let map = |e: ureq::Error| map_error(method, original, e, &secrets);
        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let req = builder
            .body(body.map(<[u8]>::to_vec).unwrap_or_default())
            .map_err(|_| bad_url(method))?;
        let resp = self.agent_for(url).run(req).map_err(map)?;
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut resp = resp;
        let body = resp
            .body_mut()
            .with_config()
            .limit(self.max_body)
            .read_to_vec()
            .map_err(map)?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

fn bad_url(method: &str) -> HttpError {
    HttpError {
        method: method.into(),
        path: "-".into(),
        kind: HttpErrorKind::Config {
            reason: "invalid URL".into(),
        },
    }
}

fn resolve_location(from: &UrlParts, loc: &str) -> String {
    if loc.contains("://") {
        loc.to_string()
    } else if loc.starts_with("//") {
        format!("{}:{loc}", from.scheme)
    } else if loc.starts_with('/') {
        format!("{}://{}{loc}", from.scheme, from.host_port)
    } else {
        let base = from.path.rsplit_once('/').map_or("", |(b, _)| b);
        format!("{}://{}{base}/{loc}", from.scheme, from.host_port)
    }
}

/// The path of `url` for error text: no userinfo, host, query or fragment.
pub fn safe_path(url: &str) -> String {
    UrlParts::parse(url).map_or_else(|| "-".to_string(), |p| p.path)
}

/// Everything of a request that must never be echoed: header values, query, userinfo.
fn secrets_of(url: &str, headers: &[(&str, &str)]) -> Vec<String> {
    let mut s: Vec<String> = headers
        .iter()
        .flat_map(|(_, v)| {
            // Also the bare credential of `Bearer <token>` style values.
            let mut out = vec![v.to_string()];
            if let Some((_, cred)) = v.split_once(' ') {
                out.push(cred.to_string());
            }
            out
        })
        .collect();
    if let Some(p) = UrlParts::parse(url) {
        s.extend(p.userinfo);
        if let Some(q) = p.query {
            s.extend(
                q.split('&')
                    .filter_map(|kv| kv.split_once('=').map(|(_, v)| v.to_string())),
            );
            s.push(q);
        }
        if p.path.len() > 1 {
            // Webhook-style URLs carry the secret in the path: scrub its long segments.
            s.extend(
                p.path
                    .split('/')
                    .filter(|seg| seg.len() >= 16)
                    .map(str::to_string),
            );
        }
    }
    s.retain(|x| x.len() >= 4);
    s.sort_by_key(|x| std::cmp::Reverse(x.len()));
    s
}

/// Replace every occurrence of a secret by `***`.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if !s.is_empty() && out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// A one-line, bounded, scrubbed excerpt of a response body (chars, not bytes).
pub fn excerpt(body: &str, max_chars: usize, secrets: &[String]) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let clean = scrub(&one_line, secrets);
    if clean.chars().count() <= max_chars {
        clean
    } else {
        let mut s: String = clean.chars().take(max_chars).collect();
        s.push('…');
        s
    }
}

fn map_error(method: &str, url: &str, e: ureq::Error, secrets: &[String]) -> HttpError {
    use ureq::Error as E;
    use ureq::Timeout as T;
    let kind = match e {
        E::Timeout(T::Resolve | T::Connect) => HttpErrorKind::Timeout { sent: Sent::No },
        E::Timeout(_) => HttpErrorKind::Timeout { sent: Sent::Maybe },
        E::HostNotFound => HttpErrorKind::Transport {
            sent: Sent::No,
            reason: "host not found".into(),
        },
        E::ConnectionFailed => HttpErrorKind::Transport {
            sent: Sent::No,
            reason: "connection failed".into(),
        },
        E::Io(io) => {
            use std::io::ErrorKind as K;
            let sent = match io.kind() {
                K::ConnectionRefused | K::AddrNotAvailable | K::NotFound => Sent::No,
                _ => Sent::Maybe,
            };
            if io.kind() == K::TimedOut || io.kind() == K::WouldBlock {
                HttpErrorKind::Timeout { sent }
            } else {
                HttpErrorKind::Transport {
                    sent,
                    reason: scrub(&io.to_string(), secrets),
                }
            }
        }
        E::Tls(m) => HttpErrorKind::Transport {
            sent: Sent::No,
            reason: format!("TLS: {m}"),
        },
        E::Rustls(r) => HttpErrorKind::Transport {
            sent: Sent::No,
            reason: format!("TLS: {r}"),
        },
        E::Pem(_) => HttpErrorKind::Config {
            reason: "invalid PEM".into(),
        },
        E::BadUri(_) | E::Http(_) => HttpErrorKind::Config {
            reason: "invalid URL".into(),
        },
        E::BodyExceedsLimit(n) => HttpErrorKind::Body {
            reason: format!("answer larger than {n} bytes"),
        },
        E::Protocol(p) => HttpErrorKind::Transport {
            sent: Sent::Maybe,
            reason: scrub(&format!("protocol error: {p}"), secrets),
        },
        other => HttpErrorKind::Transport {
            sent: Sent::Maybe,
            reason: scrub(&other.to_string(), secrets),
        },
    };
    HttpError {
        method: method.into(),
        path: safe_path(url),
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::{HttpServer, Reply};

    fn client() -> Client {
        Client::new(&HttpConfig {
            total_timeout: Duration::from_secs(2),
            ..HttpConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn url_parts_and_origin() {
        let p = UrlParts::parse("https://u:pw@Host.example/a/b?x=1#f").unwrap();
        assert_eq!(p.userinfo.as_deref(), Some("u:pw"));
        assert_eq!(p.origin(), "https://host.example:443");
        assert_eq!(p.path, "/a/b");
        assert_eq!(p.query.as_deref(), Some("x=1"));
        assert_eq!(
            UrlParts::parse("http://h:8200").unwrap().origin(),
            "http://h:8200"
        );
        assert!(UrlParts::parse("ftp://h/").is_none());
        assert!(UrlParts::parse("http:///x").is_none());
    }

    #[test]
    fn status_error_names_method_path_and_bounded_body() {
        let srv = HttpServer::start(|_| {
            Reply::text(403, format!("permission denied {}", "x".repeat(500)))
        });
        let e = client()
            .request_ok(
                "GET",
                &format!("{}/v1/auth/token/lookup-self?token=abcd1234", srv.url()),
                &[],
                None,
            )
            .unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("GET /v1/auth/token/lookup-self: HTTP 403: permission denied x"),
            "{s}"
        );
        assert!(s.chars().count() < 260, "{s}");
        assert_eq!(e.status(), Some(403));
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        let token = "hvs.CAESIJsupersecrettoken";
        // The server echoes everything it got, as a careless proxy might.
        let srv = HttpServer::start(|r| {
            Reply::text(
                500,
                format!("{} {:?} {}", r.target, r.headers, r.body_str()),
            )
        });
        let url = format!("http://user:pa55word@{}/x?api_key=qu3ryS3cret", srv.addr());
        let e = client()
            .request_ok(
                "POST",
                &url,
                &[("X-Vault-Token", token)],
                Some(b"{\"pw\":\"b0dyS3cret\"}"),
            )
            .unwrap_err();
        for shown in [e.to_string(), format!("{e:?}")] {
            for secret in [token, "pa55word", "qu3ryS3cret", "b0dyS3cret"] {
                assert!(!shown.contains(secret), "{secret} leaked in {shown}");
            }
        }
    }

    #[test]
    fn transport_error_before_send_is_retry_safe() {
        let port = testkit::free_port();
        let e = client()
            .request(
                "GET",
                &format!("http://127.0.0.1:{port}/v1/sys/health"),
                &[],
                None,
            )
            .unwrap_err();
        assert!(e.not_sent(), "{e:?}");
        assert!(e.to_string().starts_with("GET /v1/sys/health: "), "{e}");
    }

    #[test]
    fn hang_after_send_is_ambiguous_timeout() {
        let srv = HttpServer::start(|_| Reply::hang());
        let e = client()
            .request("POST", &srv.url(), &[], Some(b"{}"))
            .unwrap_err();
        assert_eq!(e.kind, HttpErrorKind::Timeout { sent: Sent::Maybe });
        assert!(!e.not_sent());
    }

    #[test]
    fn same_origin_redirect_followed_cross_origin_refused() {
        let other = HttpServer::start(|_| Reply::text(200, "stolen"));
        let other_url = other.url();
        let srv = HttpServer::start(move |r| match r.path() {
            "/a" => Reply::new(302).header("Location", "/b"),
            "/b" => Reply::text(200, "landed"),
            _ => Reply::new(307).header("Location", &format!("{other_url}/steal")),
        });
        let c = client();
        let r = c
            .request(
                "GET",
                &format!("{}/a", srv.url()),
                &[("Authorization", "Bearer t0ken")],
                None,
            )
            .unwrap();
        assert_eq!(r.text(), "landed");
        let e = c
            .request(
                "GET",
                &format!("{}/c", srv.url()),
                &[("Authorization", "Bearer t0ken")],
                None,
            )
            .unwrap_err();
        assert!(matches!(e.kind, HttpErrorKind::Redirect { .. }), "{e:?}");
        assert_eq!(
            other.request_count(),
            0,
            "credentials followed a cross-origin redirect"
        );
    }

    #[test]
    fn never_redirect_returns_the_3xx() {
        let srv = HttpServer::start(|_| Reply::new(301).header("Location", "/elsewhere"));
        let c = Client::new(&HttpConfig {
            redirects: Redirects::Never,
            ..HttpConfig::default()
        })
        .unwrap();
        let r = c.request("POST", &srv.url(), &[], Some(b"x")).unwrap();
        assert_eq!(r.status, 301);
        assert_eq!(srv.request_count(), 1);
    }

    #[test]
    fn oversized_body_is_an_error() {
        let srv = HttpServer::start(|_| Reply::text(200, "y".repeat(10_000)));
        let c = Client::new(&HttpConfig {
            max_body: 1000,
            ..HttpConfig::default()
        })
        .unwrap();
        let e = c.request("GET", &srv.url(), &[], None).unwrap_err();
        assert!(matches!(e.kind, HttpErrorKind::Body { .. }), "{e:?}");
    }

    #[test]
    fn bad_ca_bundle_is_config_error() {
        let e = Client::new(&HttpConfig {
            ca_pem: Some(b"not pem".to_vec()),
            ..HttpConfig::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("CA bundle"), "{e}");
    }

    fn rules(http: Option<&str>, https: Option<&str>, no: &str) -> ProxyRules {
        ProxyRules::from_lookup(|k| match k {
            "HTTP_PROXY" => http.map(str::to_string),
            "HTTPS_PROXY" => https.map(str::to_string),
            "NO_PROXY" => Some(no.to_string()),
            "ALL_PROXY" | "all_proxy" => Some("http://all.example:3128".to_string()),
            _ => None,
        })
    }

    #[test]
    fn proxy_env_follows_go_httpproxy_scheme_rules() {
        // Cases from golang/net http/httpproxy/proxy_test.go (v0.38.0) `proxyForURLTests`.
        let only_http = rules(Some("http://p.example:3128"), None, "");
        assert_eq!(
            only_http.proxy_for("http://10.1.2.3/x"),
            Some("http://p.example:3128")
        );
        assert_eq!(
            only_http.proxy_for("https://10.1.2.3/x"),
            None,
            "HTTP_PROXY captured https"
        );
        let only_https = rules(None, Some("p.example:3128"), "");
        assert_eq!(
            only_https.proxy_for("https://api.example/x"),
            Some("p.example:3128")
        );
        assert_eq!(only_https.proxy_for("http://api.example/x"), None);
        // ALL_PROXY is never read.
        assert_eq!(
            rules(None, None, "").proxy_for("https://api.example/"),
            None
        );
        // Lower-case names count; an empty upper-case value counts as unset.
        let lower = ProxyRules::from_lookup(|k| match k {
            "HTTPS_PROXY" => Some(String::new()),
            "https_proxy" => Some("http://low.example:1".into()),
            "no_proxy" => Some("skip.example".into()),
            _ => None,
        });
        assert_eq!(
            lower.proxy_for("https://a.example/"),
            Some("http://low.example:1")
        );
        assert_eq!(lower.proxy_for("https://skip.example/"), None);
        // CGI: HTTP_PROXY may be a client's `Proxy:` header.
        let cgi = ProxyRules::from_lookup(|k| match k {
            "HTTP_PROXY" => Some("http://p.example:1".into()),
            "REQUEST_METHOD" => Some("GET".into()),
            _ => None,
        });
        assert_eq!(cgi.proxy_for("http://a.example/"), None);
    }

    #[test]
    fn no_proxy_matches_like_go_with_non_loopback_addresses() {
        let r = rules(
            Some("http://p.example:3128"),
            Some("http://p.example:3128"),
            " 10.96.0.0/12, .svc, cluster.local, 192.168.1.7, api.corp:8443, [2001:db8::1]:443, fd00::/8, *.wild.example ",
        );
        let direct = |u: &str| r.proxy_for(u).is_none();
        assert!(
            direct("https://10.96.0.1:443/api"),
            "CIDR (in-cluster service IP)"
        );
        assert!(direct("https://10.111.255.254/"), "CIDR upper end");
        assert!(!direct("https://10.112.0.1/"), "outside the CIDR");
        assert!(
            direct("https://kubernetes.default.svc/"),
            "leading dot matches subdomains"
        );
        assert!(
            !direct("https://svc/"),
            "leading dot does not match the bare name"
        );
        assert!(direct("https://cluster.local/"), "no dot: the name itself");
        assert!(
            direct("https://x.cluster.local/"),
            "no dot: and its subdomains"
        );
        assert!(
            !direct("https://xcluster.local/"),
            "suffix must start at a label"
        );
        assert!(
            direct("http://192.168.1.7:8080/"),
            "IP without port: every port"
        );
        assert!(!direct("http://192.168.1.8/"));
        assert!(
            direct("https://api.corp:8443/"),
            "host:port matches that port"
        );
        assert!(
            !direct("https://api.corp/"),
            "host:port leaves the default port proxied"
        );
        assert!(
            direct("https://[2001:db8::1]/"),
            "[v6]:443 matches the default https port"
        );
        assert!(!direct("http://[2001:db8::1]/"), "but not port 80");
        assert!(direct("https://[fd00::5]:6443/"), "v6 CIDR");
        assert!(direct("https://a.wild.example/"), "*. prefix");
        assert!(direct("https://API.CORP:8443/"), "case-insensitive");
        assert!(!direct("https://203.0.113.9/"), "everything else proxied");
        let all = rules(None, Some("http://p.example:3128"), "*");
        assert!(
            all.proxy_for("https://203.0.113.9/").is_none(),
            "* disables the proxy"
        );
        assert!(!NoProxy::parse("*").use_proxy("x", "1"));
    }

    #[test]
    fn loopback_is_never_proxied() {
        let r = rules(Some("http://p.example:1"), Some("http://p.example:1"), "");
        for u in [
            "http://localhost:8200/",
            "https://127.0.0.1:6443/",
            "https://127.9.9.9/",
            "http://[::1]:9091/",
        ] {
            assert_eq!(r.proxy_for(u), None, "{u}");
        }
        assert!(r.proxy_for("http://localhost.example/").is_some());
    }

    /// A stand-in forward proxy: records the CONNECT line and refuses it.
    fn refusing_proxy() -> HttpServer {
        HttpServer::start(|r| Reply::text(403, format!("denied {} {:?}", r.target, r.headers)))
    }

    #[test]
    fn env_rules_send_https_through_https_proxy_and_never_print_userinfo() {
        let proxy = refusing_proxy();
        let url = format!("http://proxyuser:pr0xyS3cret@{}", proxy.addr());
        let cfg = HttpConfig {
            total_timeout: Duration::from_secs(3),
            proxy: ProxyMode::Rules(ProxyRules {
                https_proxy: Some(url.clone()),
                no_proxy: "10.96.0.0/12".into(),
                ..ProxyRules::default()
            }),
            ..HttpConfig::default()
        };
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("pr0xyS3cret"), "{shown}");
        let c = Client::new(&cfg).unwrap();
        assert!(c.uses_proxy("https://203.0.113.10:6443/"));
        assert!(!c.uses_proxy("https://10.96.0.1:443/"), "NO_PROXY CIDR");
        assert!(
            !c.uses_proxy("http://203.0.113.10/"),
            "HTTPS_PROXY used for http"
        );
        let e = c
            .request("GET", "https://203.0.113.10:6443/version", &[], None)
            .unwrap_err();
        let reqs = proxy.requests();
        assert_eq!(reqs.len(), 1, "{e}");
        assert_eq!(reqs[0].method, "CONNECT");
        assert_eq!(reqs[0].target, "203.0.113.10:6443");
        for shown in [e.to_string(), format!("{e:?}"), format!("{c:?}")] {
            assert!(!shown.contains("pr0xyS3cret"), "{shown}");
            assert!(!shown.contains("proxyuser"), "{shown}");
        }
    }

    #[test]
    fn proxy_url_override_applies_even_to_loopback() {
        let proxy = refusing_proxy();
        let target = HttpServer::start(|_| Reply::text(200, "direct"));
        let c = Client::new(&HttpConfig {
            total_timeout: Duration::from_secs(3),
            proxy: ProxyMode::Url(proxy.url()),
            ..HttpConfig::default()
        })
        .unwrap();
        assert!(c.request("GET", &target.url(), &[], None).is_err());
        assert_eq!(proxy.request_count(), 1);
        assert_eq!(target.request_count(), 0);
        // Direct ignores whatever the environment says.
        let d = Client::new(&HttpConfig {
            proxy: ProxyMode::Direct,
            ..HttpConfig::default()
        })
        .unwrap();
        assert_eq!(
            d.request("GET", &target.url(), &[], None).unwrap().text(),
            "direct"
        );
    }

    #[test]
    fn bad_proxy_url_is_one_line_naming_the_variable_without_userinfo() {
        let e = Client::new(&HttpConfig {
            proxy: ProxyMode::Rules(ProxyRules {
                https_proxy: Some("socks5://u:hunter22@p.example:1080".into()),
                ..ProxyRules::default()
            }),
            ..HttpConfig::default()
        })
        .unwrap_err();
        let s = e.to_string();
        assert!(s.contains("HTTPS_PROXY"), "{s}");
        assert!(!s.contains("hunter22") && !s.contains('\n'), "{s}");
    }

    #[test]
    fn tls_server_name_is_verified_and_sent_as_sni() {
        let pki = testkit::kube::TestPki::generate_with_sans(&["apiserver.internal"]);
        let srv = HttpServer::start_tls(
            pki.server_config_requiring_sni("apiserver.internal"),
            |_| Reply::text(200, "ok"),
        );
        let url = format!("{}/healthz", srv.url());
        let with = |name: Option<&str>| {
            Client::new(&HttpConfig {
                total_timeout: Duration::from_secs(3),
                ca_pem: Some(pki.ca_pem.as_bytes().to_vec()),
                tls_server_name: name.map(str::to_string),
                ..HttpConfig::default()
            })
            .unwrap()
            .request("GET", &url, &[], None)
        };
        let r = with(Some("apiserver.internal")).expect("verified against the override");
        assert_eq!(r.text(), "ok");
        assert_eq!(
            srv.requests()[0].header("host"),
            Some(srv.addr().to_string().as_str()),
            "Host names the URL's host, as Go does"
        );
        let e = with(None).unwrap_err();
        assert!(e.to_string().contains("TLS"), "{e}");
        let e = with(Some("other.internal")).unwrap_err();
        assert!(e.to_string().contains("TLS"), "{e}");
    }

    #[test]
    fn no_ca_means_host_store_with_mozilla_fallback_only_when_empty() {
        let pki = testkit::kube::TestPki::generate();
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("ca-certificates.crt");
        std::fs::write(&bundle, &pki.ca_pem).unwrap();
        let found = rustls_native_certs::load_certs_from_paths(Some(&bundle), None);
        assert_eq!(
            roots_from(found).len(),
            1,
            "the host bundle alone is trusted"
        );
        let none =
            rustls_native_certs::load_certs_from_paths(Some(&dir.path().join("absent.crt")), None);
        assert!(
            roots_from(none).len() > 100,
            "no bundle at all: Mozilla roots"
        );
    }

    #[test]
    fn excerpt_is_one_line_and_scrubbed() {
        let s = excerpt("a\n  b\tc secret", 100, &["secret".to_string()]);
        assert_eq!(s, "a b c ***");
        assert_eq!(excerpt("abcdef", 3, &[]), "abc…");
    }
}
