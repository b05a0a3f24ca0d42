//! One way to make HTTP calls: a ureq + rustls agent with bounded timeouts, an optional
//! private CA, no cross-origin redirects, and errors that can be logged safely.
//!
//! Redaction guarantee: an [`HttpError`] names the method and the URL *path* only. Header
//! values, query strings and URL userinfo never appear in its `Display` or `Debug`, and any
//! occurrence of them in a server's answer or a transport message is replaced by `***`.

use std::fmt;
use std::time::Duration;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

/// How 3xx answers are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// Return the 3xx to the caller (Slack: a redirecting webhook is a misconfiguration).
    Never,
    /// Follow up to N redirects for GET/HEAD while the origin stays the same; a redirect to
    /// another origin is an error (credentials must never travel to another host).
    SameOrigin(u32),
}

/// Agent settings. Defaults: 5 s connect, 30 s total, system-independent Mozilla roots.
#[derive(Clone)]
pub struct HttpConfig {
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
    /// PEM bundle; when set it *replaces* the default roots (as `VAULT_CACERT` and a
    /// kubeconfig `certificate-authority` do).
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate chain and private key (mTLS, kubeconfig client certs).
    pub client_cert_pem: Option<(Vec<u8>, Vec<u8>)>,
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
            .field("redirects", &self.redirects)
            .finish()
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

/// A configured agent.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    redirects: Redirects,
    max_body: u64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("redirects", &self.redirects)
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

fn parse_pem_key(pem: &[u8]) -> Result<PrivateKey<'static>, String> {
    for item in ureq::tls::parse_pem(pem) {
        if let Ok(PemItem::PrivateKey(k)) = item {
            return Ok(k);
        }
    }
    Err("no private key found in PEM".to_string())
}

impl Client {
    pub fn new(cfg: &HttpConfig) -> Result<Client, HttpError> {
        let mut tls = TlsConfig::builder();
        if let Some(pem) = &cfg.ca_pem {
            let certs =
                parse_pem_certs(pem).map_err(|e| config_error(format!("CA bundle: {e}")))?;
            tls = tls.root_certs(RootCerts::new_with_certs(&certs));
        }
        if let Some((cert, key)) = &cfg.client_cert_pem {
            let chain = parse_pem_certs(cert)
                .map_err(|e| config_error(format!("client certificate: {e}")))?;
            let key = parse_pem_key(key).map_err(|e| config_error(format!("client key: {e}")))?;
            tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(cfg.connect_timeout))
            .timeout_global(Some(cfg.total_timeout))
            .user_agent(cfg.user_agent.as_str())
            .tls_config(tls.build())
            .build()
            .into();
        Ok(Client {
            agent,
            redirects: cfg.redirects,
            max_body: cfg.max_body,
        })
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
        let mut secrets = secrets_of(url, headers);
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
        let secrets = secrets_of(url, headers);
        let map = |e: ureq::Error| map_error("GET", url, e, &secrets);
        let mut builder = ureq::http::Request::builder().method("GET").uri(url);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let req = builder.body(Vec::new()).map_err(|_| bad_url("GET"))?;
        let mut resp = self.agent.run(req).map_err(map)?;
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
        let mut reader = resp.body_mut().with_config().limit(self.max_body).reader();
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
        let secrets = secrets_of(original, headers);
        let map = |e: ureq::Error| map_error(method, original, e, &secrets);
        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let req = builder
            .body(body.map(<[u8]>::to_vec).unwrap_or_default())
            .map_err(|_| bad_url(method))?;
        let resp = self.agent.run(req).map_err(map)?;
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

    #[test]
    fn excerpt_is_one_line_and_scrubbed() {
        let s = excerpt("a\n  b\tc secret", 100, &["secret".to_string()]);
        assert_eq!(s, "a b c ***");
        assert_eq!(excerpt("abcdef", 3, &[]), "abc…");
    }
}
