//! GET-only Kubernetes API client (compat-gate §2.5, §11.5; nightly-report §2.2).
//!
//! Built on [`crate::http::Client`] (ureq + rustls): a handful of sync GET endpoints, no
//! kube-rs. Credentials come from, in this order (§2.5.1): an explicit `--server` (token/CA
//! files), `KUBECONFIG`, the in-cluster service account (`KUBERNETES_SERVICE_HOST`), then
//! `~/.kube/config`. Kubeconfig users may carry a token, a token file or a client certificate
//! (kubeadm's `admin.conf`); `exec`/`auth-provider` users and `insecure-skip-tls-verify` are
//! refused: a reader that cannot trust its source vouches for nothing.
//!
//! The token and the client key are [`Secret`]s: they never appear in an error or a log line.
//! Errors are typed ([`KubeError::Unauthorized`], `Forbidden`, `NotFound`, `Gone`, …) and render
//! as one line naming the method and the path: `GET /api/v1/nodes: HTTP 403: nodes is forbidden: …`.
//!
//! Lists follow `limit`/`continue`; a `410 Gone` on a continued page restarts the list once (the
//! page callback is told, so it can drop what it collected). Metadata-only lists send the
//! `PartialObjectMetadataList` `Accept` header.

use crate::http::{excerpt, Client, HttpConfig, HttpError, HttpErrorKind, Redirects, Response};
use crate::Secret;
use base64::Engine;
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `Accept` for metadata-only lists (falls back to full objects on old servers).
pub const ACCEPT_METADATA_LIST: &str =
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";

/// Where the in-cluster service account is mounted.
pub const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Everything that can go wrong, each variant naming the input or the request at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeError {
    /// Credentials/kubeconfig unusable (`input` = the file, variable or flag at fault).
    Config { input: String, reason: String },
    /// HTTP 401 (expired or wrong token).
    Unauthorized { path: String, message: String },
    /// HTTP 403 (RBAC).
    Forbidden { path: String, message: String },
    /// HTTP 404.
    NotFound { path: String, message: String },
    /// HTTP 410 (expired `continue` token / resourceVersion).
    Gone { path: String, message: String },
    /// Any other non-2xx answer (after retries for 429/5xx).
    Status {
        path: String,
        code: u16,
        message: String,
    },
    /// Connect, TLS, timeout, reset (after retries).
    Transport { path: String, reason: String },
    /// A 2xx answer that is not what was expected (bad JSON, missing field).
    Body { path: String, reason: String },
    /// The run's deadline passed before or while this request was due.
    Deadline { path: String },
}

impl KubeError {
    /// The HTTP status, for the status variants.
    pub fn status(&self) -> Option<u16> {
        match self {
            KubeError::Unauthorized { .. } => Some(401),
            KubeError::Forbidden { .. } => Some(403),
            KubeError::NotFound { .. } => Some(404),
            KubeError::Gone { .. } => Some(410),
            KubeError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }
    pub fn is_not_found(&self) -> bool {
        matches!(self, KubeError::NotFound { .. })
    }
    /// Build a body error for `path` (used by callers that find a field missing).
    pub fn body(path: &str, reason: impl Into<String>) -> Self {
        KubeError::Body {
            path: path.to_string(),
            reason: reason.into(),
        }
    }
}

fn status_line(f: &mut fmt::Formatter<'_>, path: &str, code: u16, message: &str) -> fmt::Result {
    if message.is_empty() {
        write!(f, "GET {path}: HTTP {code}")
    } else {
        write!(f, "GET {path}: HTTP {code}: {message}")
    }
}

impl fmt::Display for KubeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KubeError::Config { input, reason } => write!(f, "{input}: {reason}"),
            KubeError::Unauthorized { path, message } => status_line(f, path, 401, message),
            KubeError::Forbidden { path, message } => status_line(f, path, 403, message),
            KubeError::NotFound { path, message } => status_line(f, path, 404, message),
            KubeError::Gone { path, message } => status_line(f, path, 410, message),
            KubeError::Status {
                path,
                code,
                message,
            } => status_line(f, path, *code, message),
            KubeError::Transport { path, reason } => write!(f, "GET {path}: {reason}"),
            KubeError::Body { path, reason } => write!(f, "GET {path}: {reason}"),
            KubeError::Deadline { path } => write!(f, "GET {path}: run deadline exceeded"),
        }
    }
}

impl std::error::Error for KubeError {}

fn cfg_err(input: impl Into<String>, reason: impl Into<String>) -> KubeError {
    KubeError::Config {
        input: input.into(),
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Credentials

/// Inputs of the credential selection (§2.5.1). Empty strings count as unset.
#[derive(Debug, Clone, Default)]
pub struct AccessOptions {
    /// `--server`: explicit API server URL (with `token_file`/`ca_file`).
    pub server: Option<String>,
    /// `KUBECONFIG` / `--kubeconfig` (a `:`-separated list is merged, first wins).
    pub kubeconfig: Option<String>,
    /// `KUBE_CONTEXT` / `--context` (default: the kubeconfig's `current-context`).
    pub context: Option<String>,
    /// `KUBE_TOKEN_FILE` / `--token-file` (default: the service account's `token`).
    pub token_file: Option<PathBuf>,
    /// `KUBE_CA_FILE` / `--ca-file` (default: the service account's `ca.crt`).
    pub ca_file: Option<PathBuf>,
    /// `KUBERNETES_SERVICE_HOST` / `_PORT` (set by the kubelet in a pod).
    pub service_host: Option<String>,
    pub service_port: Option<String>,
    /// `$HOME`, for `~/.kube/config`.
    pub home: Option<PathBuf>,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl AccessOptions {
    /// Read `KUBECONFIG`, `KUBE_CONTEXT`, `KUBE_TOKEN_FILE`, `KUBE_CA_FILE`,
    /// `KUBERNETES_SERVICE_HOST`/`_PORT` and `HOME` (there is no env twin for `--server`).
    pub fn from_env() -> Self {
        AccessOptions {
            server: None,
            kubeconfig: env_nonempty("KUBECONFIG"),
            context: env_nonempty("KUBE_CONTEXT"),
            token_file: env_nonempty("KUBE_TOKEN_FILE").map(PathBuf::from),
            ca_file: env_nonempty("KUBE_CA_FILE").map(PathBuf::from),
            service_host: env_nonempty("KUBERNETES_SERVICE_HOST"),
            service_port: env_nonempty("KUBERNETES_SERVICE_PORT"),
            home: env_nonempty("HOME").map(PathBuf::from),
        }
    }
}

/// Resolved connection data. `Debug` never shows the token or the key.
#[derive(Clone)]
pub struct KubeAccess {
    /// `https://host:port` (or `http://` on loopback), without a trailing `/`.
    pub server: String,
    pub token: Option<Secret>,
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate chain and PEM private key.
    pub client_cert: Option<(Vec<u8>, Secret)>,
    /// `explicit`, `kubeconfig <path> context <name>`, `in-cluster`.
    pub origin: String,
}

impl fmt::Debug for KubeAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeAccess")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .field("client_cert", &self.client_cert.as_ref().map(|_| "***"))
            .field("origin", &self.origin)
            .finish()
    }
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, KubeError> {
    std::fs::read(path).map_err(|e| {
        cfg_err(
            format!("{what} {}", path.display()),
            format!("cannot read: {e}"),
        )
    })
}

fn read_token(path: &Path, what: &str) -> Result<Secret, KubeError> {
    let raw = read_file(path, what)?;
    let s = String::from_utf8(raw)
        .map_err(|_| cfg_err(format!("{what} {}", path.display()), "not UTF-8"))?;
    let t = s.trim();
    if t.is_empty() {
        return Err(cfg_err(format!("{what} {}", path.display()), "empty token"));
    }
    Ok(Secret::new(t))
}

/// Check a server URL: `https://…`, or `http://` on loopback only (§2.5.3).
pub fn check_server_url(url: &str, input: &str) -> Result<String, KubeError> {
    let url = url.trim().trim_end_matches('/');
    let Some(p) = crate::http::UrlParts::parse(url) else {
        return Err(cfg_err(
            input,
            format!("server {url:?} is not an http(s) URL"),
        ));
    };
    if p.userinfo.is_some() || p.query.is_some() {
        return Err(cfg_err(
            input,
            "server URL must not carry credentials or a query",
        ));
    }
    if p.scheme == "http" {
        let host = p
            .host_port
            .rsplit_once(':')
            .map_or(p.host_port.as_str(), |(h, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) {
                    h
                } else {
                    p.host_port.as_str()
                }
            });
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .map(|ip| ip.is_loopback())
                .unwrap_or(false);
        if !loopback {
            return Err(cfg_err(
                input,
                format!("plain http to {host} refused; use https (http only on loopback)"),
            ));
        }
    }
    Ok(url.to_string())
}

/// Select and load credentials (§2.5.1).
pub fn resolve_access(o: &AccessOptions) -> Result<KubeAccess, KubeError> {
    let sa = Path::new(SA_DIR);
    if let Some(server) = &o.server {
        let server = check_server_url(server, "--server")?;
        let token = match &o.token_file {
            Some(p) => Some(read_token(p, "token file")?),
            None if sa.join("token").is_file() => {
                Some(read_token(&sa.join("token"), "token file")?)
            }
            None => None,
        };
        let ca_pem = match &o.ca_file {
            Some(p) => Some(read_file(p, "CA file")?),
            None if sa.join("ca.crt").is_file() => Some(read_file(&sa.join("ca.crt"), "CA file")?),
            None => None,
        };
        return Ok(KubeAccess {
            server,
            token,
            ca_pem,
            client_cert: None,
            origin: "explicit".into(),
        });
    }
    if let Some(kc) = &o.kubeconfig {
        return load_kubeconfig(kc, o.context.as_deref());
    }
    if let Some(host) = &o.service_host {
        let port = o.service_port.clone().unwrap_or_else(|| "443".to_string());
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let server =
            check_server_url(&format!("https://{host}:{port}"), "KUBERNETES_SERVICE_HOST")?;
        let tf = o.token_file.clone().unwrap_or_else(|| sa.join("token"));
        let cf = o.ca_file.clone().unwrap_or_else(|| sa.join("ca.crt"));
        let token = Some(read_token(&tf, "service-account token")?);
        let ca_pem = Some(read_file(&cf, "service-account CA")?);
        return Ok(KubeAccess {
            server,
            token,
            ca_pem,
            client_cert: None,
            origin: "in-cluster".into(),
        });
    }
    if let Some(home) = &o.home {
        let p = home.join(".kube/config");
        if p.is_file() {
            return load_kubeconfig(&p.to_string_lossy(), o.context.as_deref());
        }
    }
    Err(cfg_err(
        "no Kubernetes credentials",
        "set KUBECONFIG, run in a pod, or pass --server with --token-file/--ca-file",
    ))
}

use yaml_rust2::Yaml;

fn y_str<'a>(y: &'a Yaml, key: &str) -> Option<&'a str> {
    y[key].as_str().filter(|s| !s.is_empty())
}

fn named<'a>(docs: &'a [(PathBuf, Yaml)], list: &str, name: &str) -> Option<(&'a Path, &'a Yaml)> {
    for (path, doc) in docs {
        if let Some(items) = doc[list].as_vec() {
            for it in items {
                if it["name"].as_str() == Some(name) {
                    return Some((path.as_path(), it));
                }
            }
        }
    }
    None
}

fn resolve_rel(base: &Path, p: &str) -> PathBuf {
    let pb = PathBuf::from(p);
    if pb.is_absolute() {
        pb
    } else {
        base.parent().unwrap_or(Path::new(".")).join(pb)
    }
}

fn b64(input: &str, what: &str, s: &str) -> Result<Vec<u8>, KubeError> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(clean)
        .map_err(|_| cfg_err(input, format!("{what}: invalid base64")))
}

/// Load a kubeconfig (a `:`-separated list is merged: the first file naming an entry wins).
pub fn load_kubeconfig(list: &str, context: Option<&str>) -> Result<KubeAccess, KubeError> {
    let mut docs: Vec<(PathBuf, Yaml)> = Vec::new();
    for p in list.split(':').filter(|p| !p.is_empty()) {
        let path = PathBuf::from(p);
        let input = format!("kubeconfig {}", path.display());
        let raw = std::fs::read_to_string(&path)
            .map_err(|e| cfg_err(&input, format!("cannot read: {e}")))?;
        let mut parsed = yaml_rust2::YamlLoader::load_from_str(&raw)
            .map_err(|e| cfg_err(&input, format!("invalid YAML: {e}")))?;
        let doc = if parsed.is_empty() {
            Yaml::Hash(Default::default())
        } else {
            parsed.swap_remove(0)
        };
        if !matches!(doc, Yaml::Hash(_)) {
            return Err(cfg_err(&input, "not a YAML mapping"));
        }
        docs.push((path, doc));
    }
    let first = docs
        .first()
        .map(|(p, _)| p.display().to_string())
        .unwrap_or_default();
    let input = format!("kubeconfig {first}");
    if docs.is_empty() {
        return Err(cfg_err("KUBECONFIG", "empty"));
    }
    let ctx_name = match context {
        Some(c) => c.to_string(),
        None => docs
            .iter()
            .find_map(|(_, d)| y_str(d, "current-context"))
            .ok_or_else(|| cfg_err(&input, "no current-context; pass --context"))?
            .to_string(),
    };
    let (_, ctx) = named(&docs, "contexts", &ctx_name)
        .ok_or_else(|| cfg_err(&input, format!("context {ctx_name:?} not found")))?;
    let cluster_name = y_str(&ctx["context"], "cluster")
        .ok_or_else(|| cfg_err(&input, format!("context {ctx_name:?} names no cluster")))?;
    let (cpath, cluster) = named(&docs, "clusters", cluster_name)
        .ok_or_else(|| cfg_err(&input, format!("cluster {cluster_name:?} not found")))?;
    let cluster = &cluster["cluster"];
    let cinput = format!("kubeconfig {} cluster {cluster_name:?}", cpath.display());
    if cluster["insecure-skip-tls-verify"].as_bool() == Some(true) {
        return Err(cfg_err(
            &cinput,
            "insecure-skip-tls-verify is refused: the API server must be verified",
        ));
    }
    let server = y_str(cluster, "server").ok_or_else(|| cfg_err(&cinput, "no server"))?;
    let server = check_server_url(server, &cinput)?;
    let ca_pem = if let Some(d) = y_str(cluster, "certificate-authority-data") {
        Some(b64(&cinput, "certificate-authority-data", d)?)
    } else if let Some(f) = y_str(cluster, "certificate-authority") {
        Some(read_file(&resolve_rel(cpath, f), "certificate-authority")?)
    } else {
        None
    };

    let mut token = None;
    let mut client_cert = None;
    if let Some(user_name) = y_str(&ctx["context"], "user") {
        let (upath, user) = named(&docs, "users", user_name)
            .ok_or_else(|| cfg_err(&input, format!("user {user_name:?} not found")))?;
        let user = &user["user"];
        let uinput = format!("kubeconfig {} user {user_name:?}", upath.display());
        if !user["exec"].is_badvalue() || !user["auth-provider"].is_badvalue() {
            return Err(cfg_err(&uinput, "exec/auth-provider credentials are not supported; use a token or a client certificate"));
        }
        if y_str(user, "username").is_some() || y_str(user, "password").is_some() {
            return Err(cfg_err(
                &uinput,
                "basic auth is not supported; use a token or a client certificate",
            ));
        }
        if let Some(t) = y_str(user, "token") {
            token = Some(Secret::new(t.trim()));
        } else if let Some(f) = y_str(user, "tokenFile") {
            token = Some(read_token(&resolve_rel(upath, f), "tokenFile")?);
        }
        let cert = if let Some(d) = y_str(user, "client-certificate-data") {
            Some(b64(&uinput, "client-certificate-data", d)?)
        } else if let Some(f) = y_str(user, "client-certificate") {
            Some(read_file(&resolve_rel(upath, f), "client-certificate")?)
        } else {
            None
        };
        let key = if let Some(d) = y_str(user, "client-key-data") {
            Some(b64(&uinput, "client-key-data", d)?)
        } else if let Some(f) = y_str(user, "client-key") {
            Some(read_file(&resolve_rel(upath, f), "client-key")?)
        } else {
            None
        };
        match (cert, key) {
            (Some(c), Some(k)) => {
                let k = String::from_utf8(k)
                    .map_err(|_| cfg_err(&uinput, "client key is not PEM text"))?;
                client_cert = Some((c, Secret::new(k)));
            }
            (None, None) => {}
            _ => {
                return Err(cfg_err(
                    &uinput,
                    "client certificate and client key must be given together",
                ))
            }
        }
    }
    Ok(KubeAccess {
        server,
        token,
        ca_pem,
        client_cert,
        origin: format!("kubeconfig {first} context {ctx_name}"),
    })
}

// ---------------------------------------------------------------------------------------------
// Client

/// `limit`, selectors and the metadata-only switch of a list call.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub limit: Option<u32>,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    /// Ask for `PartialObjectMetadataList` (only `metadata` of each item).
    pub metadata_only: bool,
}

/// One page handed to a list callback.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<Value>,
    /// True on the first page after a `410 Gone` restart: drop what earlier pages gave.
    pub restarted: bool,
}

/// What a list call cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListStats {
    pub pages: u64,
    pub items: u64,
    pub restarts: u64,
}

/// Read-only view of a cluster: what compat-gate and nightly-report need (GET only).
pub trait ClusterRead {
    /// `GET /version` (the apiserver's version info object).
    fn server_version(&self) -> Result<Value, KubeError>;
    /// `GET /api/v1/nodes`, all pages; full Node objects.
    fn list_nodes(&self) -> Result<Vec<Value>, KubeError>;
    /// `GET /apis/batch/v1/namespaces/<ns>/jobs`, all pages; full Job objects.
    fn list_jobs(&self, namespace: &str) -> Result<Vec<Value>, KubeError>;
    /// `GET <path>` (path with query) decoded as JSON.
    fn get_json(&self, path: &str) -> Result<Value, KubeError>;
    /// `GET <path>` as text, handed over line by line (e.g. `/metrics`); returns the line count.
    fn get_lines(&self, path: &str, on_line: &mut dyn FnMut(&str)) -> Result<u64, KubeError>;
    /// A paginated list; `on_page` sees each page once (see [`Page::restarted`]).
    fn list(
        &self,
        path: &str,
        params: &ListParams,
        on_page: &mut dyn FnMut(Page) -> Result<(), KubeError>,
    ) -> Result<ListStats, KubeError>;
    /// Requests sent so far (for scanned counts and benchmarks).
    fn request_count(&self) -> u64;
}

/// The real client.
pub struct KubeClient {
    http: Client,
    server: String,
    auth: Option<Secret>,
    retry_delays: Vec<Duration>,
    deadline: Option<Instant>,
    requests: AtomicU64,
}

impl fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeClient")
            .field("server", &self.server)
            .finish()
    }
}

impl KubeClient {
    /// A client with a per-request `timeout` (connect: 5 s or less).
    pub fn new(access: &KubeAccess, timeout: Duration) -> Result<KubeClient, KubeError> {
        let cfg = HttpConfig {
            connect_timeout: timeout.min(Duration::from_secs(5)),
            total_timeout: timeout,
            ca_pem: access.ca_pem.clone(),
            client_cert_pem: access
                .client_cert
                .as_ref()
                .map(|(c, k)| (c.clone(), k.expose().as_bytes().to_vec())),
            redirects: Redirects::Never,
            max_body: 48 * 1024 * 1024,
            ..HttpConfig::default()
        };
        let http = Client::new(&cfg).map_err(|e| cfg_err(access.origin.clone(), e.reason()))?;
        Ok(KubeClient {
            http,
            server: access.server.clone(),
            auth: access
                .token
                .as_ref()
                .map(|t| Secret::new(format!("Bearer {}", t.expose()))),
            retry_delays: vec![Duration::from_millis(500), Duration::from_secs(1)],
            deadline: None,
            requests: AtomicU64::new(0),
        })
    }

    /// Stop issuing requests once `deadline` has passed.
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Replace the retry back-off (default 0.5 s, 1 s).
    pub fn with_retry_delays(mut self, delays: Vec<Duration>) -> Self {
        self.retry_delays = delays;
        self
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    fn secrets(&self) -> Vec<String> {
        let mut s = Vec::new();
        if let Some(a) = &self.auth {
            s.push(a.expose().to_string());
            if let Some((_, t)) = a.expose().split_once(' ') {
                s.push(t.to_string());
            }
        }
        s
    }

    /// GET with retries; returns the 2xx answer or a typed error.
    pub fn get(&self, path_query: &str, accept: &str) -> Result<crate::http::Response, KubeError> {
        let path = path_query
            .split('?')
            .next()
            .unwrap_or(path_query)
            .to_string();
        let url = format!("{}{}", self.server, path_query);
        let auth = self.auth.as_ref().map(|a| a.expose().to_string());
        let mut headers: Vec<(&str, &str)> = vec![("Accept", accept)];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        let mut attempt = 0usize;
        loop {
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(KubeError::Deadline { path });
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let result = self.http.request("GET", &url, &headers, None);
            let (err, retry_after) = match result {
                Ok(resp) if resp.is_success() => return Ok(resp),
                Ok(resp) => {
                    let (e, retry_after) = status_error(&path, &resp, &self.secrets());
                    match retry_after {
                        Some(r) => (e, r),
                        None => return Err(e),
                    }
                }
                Err(e) => (transport(&path, &e), None),
            };
            match self.retry_delay(attempt, retry_after) {
                Some(delay) => std::thread::sleep(delay),
                None => return Err(err),
            }
            attempt += 1;
        }
    }

    /// How long to wait before retry `attempt`, or `None` when the retries are spent or the
    /// wait would cross the run's deadline. A server's `Retry-After` only ever lengthens it.
    fn retry_delay(&self, attempt: usize, retry_after: Option<Duration>) -> Option<Duration> {
        let delay = *self.retry_delays.get(attempt)?;
        let delay = retry_after.map_or(delay, |r| r.max(delay));
        match self.deadline {
            Some(d) if Instant::now() + delay >= d => None,
            _ => Some(delay),
        }
    }

    fn decode(&self, path_query: &str, body: &[u8]) -> Result<Value, KubeError> {
        let path = path_query.split('?').next().unwrap_or(path_query);
        serde_json::from_slice(body)
            .map_err(|e| KubeError::body(path, format!("invalid JSON: {e}")))
    }

    fn list_all(&self, path: &str) -> Result<Vec<Value>, KubeError> {
        let mut out = Vec::new();
        self.list(
            path,
            &ListParams {
                limit: Some(500),
                ..ListParams::default()
            },
            &mut |p: Page| {
                if p.restarted {
                    out.clear();
                }
                out.extend(p.items);
                Ok(())
            },
        )?;
        Ok(out)
    }
}

fn transport(path: &str, e: &HttpError) -> KubeError {
    match &e.kind {
        HttpErrorKind::Body { reason } => KubeError::Body {
            path: path.to_string(),
            reason: reason.clone(),
        },
        _ => KubeError::Transport {
            path: path.to_string(),
            reason: e.reason(),
        },
    }
}

/// A non-2xx answer as a typed error; `Some(retry_after)` when it may be retried (429, 5xx).
fn status_error(
    path: &str,
    resp: &Response,
    secrets: &[String],
) -> (KubeError, Option<Option<Duration>>) {
    let message = status_message(&resp.text(), secrets);
    let path = path.to_string();
    let code = resp.status;
    let e = match code {
        401 => KubeError::Unauthorized { path, message },
        403 => KubeError::Forbidden { path, message },
        404 => KubeError::NotFound { path, message },
        410 => KubeError::Gone { path, message },
        _ => KubeError::Status {
            path,
            code,
            message,
        },
    };
    if code == 429 || code >= 500 {
        let retry_after = resp
            .header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        (e, Some(retry_after))
    } else {
        (e, None)
    }
}

/// The `message` of a Kubernetes `Status` body, else a bounded excerpt; scrubbed.
fn status_message(body: &str, secrets: &[String]) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        if let Some(m) = v["message"].as_str() {
            return excerpt(m, 200, secrets);
        }
    }
    excerpt(body, 200, secrets)
}

fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path?limit=…&labelSelector=…&fieldSelector=…&continue=…`.
pub fn list_url(path: &str, params: &ListParams, cont: Option<&str>) -> String {
    let mut q: Vec<String> = Vec::new();
    if let Some(l) = params.limit {
        q.push(format!("limit={l}"));
    }
    if let Some(s) = &params.label_selector {
        q.push(format!("labelSelector={}", enc(s)));
    }
    if let Some(s) = &params.field_selector {
        q.push(format!("fieldSelector={}", enc(s)));
    }
    if let Some(c) = cont {
        q.push(format!("continue={}", enc(c)));
    }
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

impl ClusterRead for KubeClient {
    fn server_version(&self) -> Result<Value, KubeError> {
        self.get_json("/version")
    }

    fn list_nodes(&self) -> Result<Vec<Value>, KubeError> {
        self.list_all("/api/v1/nodes")
    }

    fn list_jobs(&self, namespace: &str) -> Result<Vec<Value>, KubeError> {
        self.list_all(&format!(
            "/apis/batch/v1/namespaces/{}/jobs",
            enc(namespace)
        ))
    }

    fn get_json(&self, path: &str) -> Result<Value, KubeError> {
        let resp = self.get(path, "application/json")?;
        self.decode(path, &resp.body)
    }

    fn get_lines(&self, path: &str, on_line: &mut dyn FnMut(&str)) -> Result<u64, KubeError> {
        // Streamed (a 20 MB `/metrics` never sits in memory whole); retried like `get` only
        // before the first line was handed over, so a line is never seen twice.
        let clean = path.split('?').next().unwrap_or(path).to_string();
        let url = format!("{}{}", self.server, path);
        let auth = self.auth.as_ref().map(|a| a.expose().to_string());
        let accept = "text/plain;version=0.0.4;q=0.9,*/*;q=0.1";
        let mut headers: Vec<(&str, &str)> = vec![("Accept", accept)];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        let mut attempt = 0usize;
        loop {
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(KubeError::Deadline { path: clean });
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let mut n = 0u64;
            let mut bad_utf8 = false;
            let result = self.http.get_streaming(&url, &headers, &mut |r| {
                use std::io::BufRead;
                let mut br = std::io::BufReader::with_capacity(64 * 1024, r);
                let mut buf = Vec::with_capacity(1024);
                loop {
                    buf.clear();
                    if br.read_until(b'\n', &mut buf)? == 0 {
                        return Ok(());
                    }
                    let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    match std::str::from_utf8(line) {
                        Ok(l) => on_line(l),
                        Err(_) => {
                            bad_utf8 = true;
                            return Ok(());
                        }
                    }
                    n += 1;
                }
            });
            let (err, retry_after) = match result {
                Ok(None) if bad_utf8 => return Err(KubeError::body(&clean, "not UTF-8 text")),
                Ok(None) => return Ok(n),
                Ok(Some(resp)) => {
                    let (e, retry_after) = status_error(&clean, &resp, &self.secrets());
                    match retry_after {
                        Some(r) => (e, r),
                        None => return Err(e),
                    }
                }
                Err(e) if n > 0 => return Err(transport(&clean, &e)),
                Err(e) => (transport(&clean, &e), None),
            };
            match self.retry_delay(attempt, retry_after) {
                Some(delay) => std::thread::sleep(delay),
                None => return Err(err),
            }
            attempt += 1;
        }
    }

    fn list(
        &self,
        path: &str,
        params: &ListParams,
        on_page: &mut dyn FnMut(Page) -> Result<(), KubeError>,
    ) -> Result<ListStats, KubeError> {
        let accept = if params.metadata_only {
            ACCEPT_METADATA_LIST
        } else {
            "application/json"
        };
        let mut stats = ListStats::default();
        let mut cont: Option<String> = None;
        let mut restarted = false;
        loop {
            let url = list_url(path, params, cont.as_deref());
            let resp = match self.get(&url, accept) {
                Ok(r) => r,
                Err(KubeError::Gone { .. }) if cont.is_some() && stats.restarts == 0 => {
                    stats.restarts += 1;
                    cont = None;
                    restarted = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut doc = self.decode(&url, &resp.body)?;
            drop(resp);
            let items = match doc.get_mut("items").map(Value::take) {
                Some(Value::Array(a)) => a,
                Some(Value::Null) => Vec::new(),
                _ => return Err(KubeError::body(path, "list answer has no items array")),
            };
            stats.pages += 1;
            stats.items += items.len() as u64;
            let next = doc["metadata"]["continue"]
                .as_str()
                .filter(|c| !c.is_empty())
                .map(str::to_string);
            on_page(Page { items, restarted })?;
            restarted = false;
            match next {
                Some(c) => cont = Some(c),
                None => return Ok(stats),
            }
        }
    }

    fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_urls() {
        let p = ListParams {
            limit: Some(20),
            label_selector: Some("owner=helm,status=deployed".into()),
            field_selector: Some("type=helm.sh/release.v1".into()),
            metadata_only: false,
        };
        assert_eq!(
            list_url("/api/v1/secrets", &p, Some("abc=")),
            "/api/v1/secrets?limit=20&labelSelector=owner%3Dhelm%2Cstatus%3Ddeployed&fieldSelector=type%3Dhelm.sh%2Frelease.v1&continue=abc%3D"
        );
        assert_eq!(
            list_url("/api/v1/nodes", &ListParams::default(), None),
            "/api/v1/nodes"
        );
    }

    #[test]
    fn server_urls() {
        assert!(check_server_url("https://10.0.0.1:6443", "x").is_ok());
        assert!(check_server_url("http://127.0.0.1:8001/", "x").is_ok());
        assert!(check_server_url("http://[::1]:8001", "x").is_ok());
        assert!(check_server_url("http://localhost:8001", "x").is_ok());
        assert!(check_server_url("http://10.0.0.1:6443", "x").is_err());
        assert!(check_server_url("https://u:p@h:1", "x").is_err());
        assert!(check_server_url("ftp://h", "x").is_err());
    }

    #[test]
    fn error_lines() {
        let e = KubeError::Forbidden {
            path: "/api/v1/nodes".into(),
            message: "nodes is forbidden: x".into(),
        };
        assert_eq!(
            e.to_string(),
            "GET /api/v1/nodes: HTTP 403: nodes is forbidden: x"
        );
        assert_eq!(e.status(), Some(403));
        assert_eq!(
            status_message(
                r#"{"kind":"Status","message":"Unauthorized tok123456"}"#,
                &["tok123456".into()]
            ),
            "Unauthorized ***"
        );
    }

    #[test]
    fn access_debug_hides_secrets() {
        let a = KubeAccess {
            server: "https://h:1".into(),
            token: Some(Secret::new("sekret-token")),
            ca_pem: None,
            client_cert: Some((b"c".to_vec(), Secret::new("KEYDATA"))),
            origin: "explicit".into(),
        };
        let d = format!("{a:?}");
        assert!(!d.contains("sekret") && !d.contains("KEYDATA"), "{d}");
    }
}

#[cfg(test)]
mod fake_server_tests {
    use super::*;
    use serde_json::json;
    use testkit::kube::{node, Auth, FakeCluster, FakeKube, Fault, FaultKind, TEST_TOKEN};

    fn cluster_with_nodes(n: usize) -> FakeCluster {
        let mut c = FakeCluster::default();
        for i in 0..n {
            c.add_node(node(
                &format!("k8s-node{}", i + 1),
                "v1.35.6",
                "containerd://2.1.4",
            ));
        }
        c
    }

    fn client_for(fk: &FakeKube) -> KubeClient {
        let dir = tempfile::tempdir().unwrap();
        let kc = fk.write_kubeconfig(&dir.path().join("config"));
        let access = load_kubeconfig(&kc.to_string_lossy(), None).unwrap();
        KubeClient::new(&access, Duration::from_secs(5))
            .unwrap()
            .with_retry_delays(vec![Duration::from_millis(10), Duration::from_millis(20)])
    }

    #[test]
    fn token_kubeconfig_version_and_paginated_nodes() {
        let fk = FakeKube::start(cluster_with_nodes(7));
        fk.with(|c| c.default_limit = Some(3));
        let c = client_for(&fk);
        assert_eq!(c.server_version().unwrap()["gitVersion"], "v1.35.6");
        let nodes = c.list_nodes().unwrap();
        assert_eq!(nodes.len(), 7);
        assert_eq!(nodes[6]["metadata"]["name"], "k8s-node7");
        let reqs = fk.requests();
        assert!(reqs.iter().all(|r| r.method == "GET"));
        assert_eq!(
            reqs.iter().filter(|r| r.path() == "/api/v1/nodes").count(),
            1,
            "limit=500 → one page"
        );
    }

    #[test]
    fn get_lines_streams_and_retries_before_the_first_line() {
        let fk = FakeKube::start(cluster_with_nodes(1));
        let body: String = (0..50_000)
            .map(|i| format!("m{{i=\"{i}\"}} 1\r\n"))
            .collect();
        fk.with(|c| {
            c.metrics = body.clone();
            c.faults.push(Fault {
                path_prefix: "/metrics".into(),
                kind: FaultKind::Status(503, "warming up".into()),
                times: Some(1),
            });
        });
        let c = client_for(&fk);
        let mut seen = Vec::new();
        let n = c
            .get_lines("/metrics", &mut |l| seen.push(l.len()))
            .unwrap();
        assert_eq!(n, 50_000);
        assert_eq!(seen.len(), 50_000, "each line once despite the retry");
        assert_eq!(
            fk.requests()
                .iter()
                .filter(|r| r.path() == "/metrics")
                .count(),
            2
        );
        fk.with(|c| {
            c.faults.push(Fault {
                path_prefix: "/metrics".into(),
                kind: FaultKind::Status(403, "metrics is forbidden".into()),
                times: None,
            })
        });
        let e = c.get_lines("/metrics", &mut |_| {}).unwrap_err();
        assert!(matches!(e, KubeError::Forbidden { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            "GET /metrics: HTTP 403: metrics is forbidden"
        );
    }

    #[test]
    fn pagination_three_pages_and_one_410_restart() {
        let fk = FakeKube::start(cluster_with_nodes(5));
        fk.with(|c| c.expire_continue = 1);
        let c = client_for(&fk);
        let mut seen = Vec::new();
        let stats = c
            .list(
                "/api/v1/nodes",
                &ListParams {
                    limit: Some(2),
                    metadata_only: true,
                    ..Default::default()
                },
                &mut |p| {
                    if p.restarted {
                        seen.clear();
                    }
                    for i in p.items {
                        assert_eq!(i["kind"], "PartialObjectMetadata");
                        assert!(i.get("status").is_none());
                        seen.push(i["metadata"]["name"].as_str().unwrap().to_string());
                    }
                    Ok(())
                },
            )
            .unwrap();
        assert_eq!(seen.len(), 5, "{seen:?}");
        assert_eq!(stats.restarts, 1);
        assert_eq!(stats.pages, 4, "1 page, 410, then 3 pages");
        let reqs = fk.requests();
        assert!(reqs
            .iter()
            .all(|r| r.header("accept") == Some(ACCEPT_METADATA_LIST)));
        // A second 410 is an error.
        fk.with(|c| c.expire_continue = 2);
        let e = c
            .list(
                "/api/v1/nodes",
                &ListParams {
                    limit: Some(2),
                    ..Default::default()
                },
                &mut |_| Ok(()),
            )
            .unwrap_err();
        assert!(matches!(e, KubeError::Gone { .. }), "{e}");
    }

    #[test]
    fn typed_errors_no_retry_for_4xx_retry_for_5xx() {
        let fk = FakeKube::start(cluster_with_nodes(1));
        let c = client_for(&fk);
        fk.with(|s| s.faults.push(Fault {
            path_prefix: "/api/v1/nodes".into(),
            kind: FaultKind::Status(403, "nodes is forbidden: User \"system:serviceaccount:k8s-upgrade:gate\" cannot list resource \"nodes\"".into()),
            times: None,
        }));
        let e = c.list_nodes().unwrap_err();
        assert!(matches!(e, KubeError::Forbidden { .. }));
        assert!(
            e.to_string()
                .starts_with("GET /api/v1/nodes: HTTP 403: nodes is forbidden"),
            "{e}"
        );
        assert_eq!(
            fk.requests()
                .iter()
                .filter(|r| r.path() == "/api/v1/nodes")
                .count(),
            1
        );
        let e = c
            .get_json("/apis/apps/v1/namespaces/x/deployments/nope")
            .unwrap_err();
        assert!(e.is_not_found(), "{e}");
        fk.with(|s| {
            s.faults.push(Fault {
                path_prefix: "/version".into(),
                kind: FaultKind::Status(500, "etcd down".into()),
                times: Some(2),
            })
        });
        assert_eq!(
            c.server_version().unwrap()["gitVersion"],
            "v1.35.6",
            "two 500s retried"
        );
        fk.with(|s| {
            s.faults.push(Fault {
                path_prefix: "/metrics".into(),
                kind: FaultKind::Garbage,
                times: None,
            })
        });
        let mut n = 0;
        // Garbage JSON is a body error on JSON endpoints.
        fk.with(|s| {
            s.faults.push(Fault {
                path_prefix: "/apis".into(),
                kind: FaultKind::Garbage,
                times: None,
            })
        });
        assert!(matches!(
            c.get_json("/apis").unwrap_err(),
            KubeError::Body { .. }
        ));
        let _ = c.get_lines("/metrics", &mut |_| n += 1);
    }

    #[test]
    fn wrong_token_is_401_and_never_shown() {
        let fk = FakeKube::start_with(cluster_with_nodes(1), Auth::Token("right-token-123".into()));
        let access = KubeAccess {
            server: fk.url(),
            token: Some(Secret::new("wrong-token-456")),
            ca_pem: Some(fk.ca_pem().as_bytes().to_vec()),
            client_cert: None,
            origin: "explicit".into(),
        };
        let c = KubeClient::new(&access, Duration::from_secs(5)).unwrap();
        let e = c.server_version().unwrap_err();
        assert!(matches!(e, KubeError::Unauthorized { .. }), "{e}");
        assert!(!format!("{e} {e:?}").contains("wrong-token-456"));
    }

    #[test]
    fn client_certificate_kubeconfig() {
        let fk = FakeKube::start_with(cluster_with_nodes(2), Auth::ClientCert);
        let c = client_for(&fk);
        assert_eq!(c.list_nodes().unwrap().len(), 2);
        // Without the certificate the TLS handshake fails: a transport error.
        let access = KubeAccess {
            server: fk.url(),
            token: None,
            ca_pem: Some(fk.ca_pem().as_bytes().to_vec()),
            client_cert: None,
            origin: "explicit".into(),
        };
        let c = KubeClient::new(&access, Duration::from_secs(5))
            .unwrap()
            .with_retry_delays(vec![]);
        assert!(matches!(
            c.server_version().unwrap_err(),
            KubeError::Transport { .. }
        ));
    }

    #[test]
    fn in_cluster_from_sa_dir_and_wrong_ca_fails() {
        let fk = FakeKube::start(cluster_with_nodes(1));
        let dir = tempfile::tempdir().unwrap();
        let (t, ca) = fk.write_sa_dir(dir.path());
        let o = AccessOptions {
            service_host: Some("127.0.0.1".into()),
            service_port: Some(fk.port().to_string()),
            token_file: Some(t.clone()),
            ca_file: Some(ca),
            ..Default::default()
        };
        let a = resolve_access(&o).unwrap();
        assert_eq!(a.origin, "in-cluster");
        assert_eq!(a.token.as_ref().unwrap().expose(), TEST_TOKEN);
        let c = KubeClient::new(&a, Duration::from_secs(5)).unwrap();
        assert_eq!(c.list_nodes().unwrap().len(), 1);
        // Another CA: TLS verification fails.
        let other = FakeKube::start(FakeCluster::default());
        let a2 = KubeAccess {
            ca_pem: Some(other.ca_pem().as_bytes().to_vec()),
            ..a
        };
        let c2 = KubeClient::new(&a2, Duration::from_secs(5))
            .unwrap()
            .with_retry_delays(vec![]);
        let e = c2.server_version().unwrap_err();
        assert!(matches!(e, KubeError::Transport { .. }), "{e}");
        assert!(!e.to_string().contains(TEST_TOKEN));
        // IPv6 host is bracketed.
        let o6 = AccessOptions {
            service_host: Some("::1".into()),
            service_port: Some("6443".into()),
            token_file: Some(t),
            ca_file: Some(dir.path().join("ca.crt")),
            ..Default::default()
        };
        assert_eq!(resolve_access(&o6).unwrap().server, "https://[::1]:6443");
    }

    #[test]
    fn kubeconfig_refusals_and_selection() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kc");
        let write = |s: &str| std::fs::write(&p, s).unwrap();
        let base = "apiVersion: v1\nkind: Config\ncurrent-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n- name: b\n  context: {cluster: c2, user: u2}\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n    insecure-skip-tls-verify: true\n- name: c2\n  cluster:\n    server: https://127.0.0.1:6444\n    certificate-authority: ca.pem\nusers:\n- name: u\n  user:\n    exec: {command: aws}\n- name: u2\n  user:\n    tokenFile: tok\n";
        write(base);
        let e = load_kubeconfig(&p.to_string_lossy(), None).unwrap_err();
        assert!(e.to_string().contains("insecure-skip-tls-verify"), "{e}");
        std::fs::write(dir.path().join("ca.pem"), "CA").unwrap();
        std::fs::write(dir.path().join("tok"), "secret-tok-789\n").unwrap();
        let a = load_kubeconfig(&p.to_string_lossy(), Some("b")).unwrap();
        assert_eq!(a.server, "https://127.0.0.1:6444");
        assert_eq!(a.token.unwrap().expose(), "secret-tok-789");
        assert_eq!(a.ca_pem.unwrap(), b"CA");
        write(&base.replace(
            "insecure-skip-tls-verify: true",
            "certificate-authority-data: Q0E=",
        ));
        let e = load_kubeconfig(&p.to_string_lossy(), None).unwrap_err();
        assert!(e.to_string().contains("exec/auth-provider"), "{e}");
        let e = load_kubeconfig(&p.to_string_lossy(), Some("zz")).unwrap_err();
        assert!(e.to_string().contains("context \"zz\" not found"), "{e}");
        write("{{{ not yaml");
        assert!(load_kubeconfig(&p.to_string_lossy(), None)
            .unwrap_err()
            .to_string()
            .contains("invalid YAML"));
        let e = resolve_access(&AccessOptions::default()).unwrap_err();
        assert!(
            e.to_string().starts_with("no Kubernetes credentials"),
            "{e}"
        );
        let _ = json!(null);
    }

    #[test]
    fn deadline_stops_requests() {
        let fk = FakeKube::start(cluster_with_nodes(1));
        let c = client_for(&fk).with_deadline(Instant::now());
        assert!(matches!(
            c.server_version().unwrap_err(),
            KubeError::Deadline { .. }
        ));
        assert_eq!(fk.request_count(), 0);
        fk.with(|s| {
            s.faults.push(Fault {
                path_prefix: "/version".into(),
                kind: FaultKind::Delay(Duration::from_secs(3)),
                times: None,
            })
        });
        let dir = tempfile::tempdir().unwrap();
        let kc = fk.write_kubeconfig(&dir.path().join("config"));
        let a = load_kubeconfig(&kc.to_string_lossy(), None).unwrap();
        let c = KubeClient::new(&a, Duration::from_millis(300))
            .unwrap()
            .with_retry_delays(vec![]);
        let e = c.server_version().unwrap_err();
        assert!(matches!(e, KubeError::Transport { .. }), "{e}");
        assert!(e.to_string().contains("timed out"), "{e}");
    }
}
