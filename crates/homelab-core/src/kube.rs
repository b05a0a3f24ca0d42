//! GET-only Kubernetes API client (compat-gate §2.5, §11.5; nightly-report §2.2).
//!
//! Built on [`crate::http::Client`] (ureq + rustls): a handful of sync GET endpoints, no
//! kube-rs. Credentials come from, in this order (§2.5.1): an explicit `--server` (token/CA
//! files), `KUBECONFIG`, the in-cluster service account (`KUBERNETES_SERVICE_HOST`), then
//! `~/.kube/config`. Kubeconfig users may carry a token, a token file, a client certificate
//! (kubeadm's `admin.conf`) or an `exec` credential plugin (`client.authentication.k8s.io/v1`
//! or `v1beta1`, run without a terminal: see [`ExecPlugin`]); clusters may set
//! `tls-server-name` and `proxy-url`. `auth-provider` users, basic auth and
//! `insecure-skip-tls-verify` are refused with one line naming the field: a reader that cannot
//! trust its source vouches for nothing.
//!
//! The token and the client key are [`Secret`]s: they never appear in an error or a log line.
//! Errors are typed ([`KubeError::Unauthorized`], `Forbidden`, `NotFound`, `Gone`, …) and render
//! as one line naming the method and the path: `GET /api/v1/nodes: HTTP 403: nodes is forbidden: …`.
//!
//! Lists follow `limit`/`continue`; a `410 Gone` on a continued page restarts the list once (the
//! page callback is told, so it can drop what it collected). Metadata-only lists send the
//! `PartialObjectMetadataList` `Accept` header.

use crate::http::{
    excerpt, Client, HttpConfig, HttpError, HttpErrorKind, ProxyMode, Redirects, Response,
};
use crate::Secret;
use base64::Engine;
use serde_json::{json, Value};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// `Accept` for metadata-only lists (falls back to full objects on old servers).
pub const ACCEPT_METADATA_LIST: &str =
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";

/// Longest line [`ClusterRead::get_lines`] accepts (Prometheus text lines are far shorter).
pub const MAX_LINE: u64 = 1024 * 1024;

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
#[derive(Clone, Default)]
pub struct KubeAccess {
    /// `https://host:port` (or `http://` on loopback), without a trailing `/`.
    pub server: String,
    pub token: Option<Secret>,
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate chain and PEM private key.
    pub client_cert: Option<(Vec<u8>, Secret)>,
    /// `explicit`, `kubeconfig <path> context <name>`, `in-cluster`.
    pub origin: String,
    /// kubeconfig `tls-server-name`: the name the server certificate is checked against.
    pub tls_server_name: Option<String>,
    /// kubeconfig `proxy-url`: this proxy for every request (no `NO_PROXY`, like client-go).
    pub proxy_url: Option<String>,
    /// kubeconfig `exec`: the plugin run for a token or client certificate.
    pub exec: Option<ExecPlugin>,
    /// The token's file when it may rotate (the in-cluster projected token): re-read when the
    /// copy in hand is older than a minute, like client-go `transport/token_source.go`.
    pub token_file: Option<PathBuf>,
}

impl fmt::Debug for KubeAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeAccess")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .field("client_cert", &self.client_cert.as_ref().map(|_| "***"))
            .field("origin", &self.origin)
            .field("tls_server_name", &self.tls_server_name)
            .field(
                "proxy_url",
                &self.proxy_url.as_deref().map(crate::http::redact_userinfo),
            )
            .field("exec", &self.exec.as_ref().map(|e| e.command.clone()))
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
            tls_server_name: None,
            proxy_url: None,
            exec: None,
            token_file: None,
        });
    }
    if let Some(kc) = &o.kubeconfig {
        return load_kubeconfig(kc, o.context.as_deref());
    }
    if let Some(host) = &o.service_host {
        // client-go rest/config.go InClusterConfig (v0.34.10): both variables or ErrNotInCluster.
        let port = o.service_port.clone().ok_or_else(|| {
            cfg_err(
                "KUBERNETES_SERVICE_PORT",
                "not set while KUBERNETES_SERVICE_HOST is; set both (the kubelet does in a pod) or use KUBECONFIG",
            )
        })?;
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
            tls_server_name: None,
            proxy_url: None,
            exec: None,
            token_file: Some(tf),
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
        "set KUBECONFIG, run in a pod, or create ~/.kube/config",
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
    let listed: Vec<&str> = list.split(':').filter(|p| !p.is_empty()).collect();
    for p in &listed {
        let path = PathBuf::from(p);
        let input = format!("kubeconfig {}", path.display());
        let raw = match std::fs::read_to_string(&path) {
            Ok(r) => r,
            // client-go tools/clientcmd/loader.go (v0.34.10, ClientConfigLoadingRules.Load):
            // "skip missing files" of a KUBECONFIG list; any other read error is still fatal.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && listed.len() > 1 => continue,
            Err(e) => return Err(cfg_err(&input, format!("cannot read: {e}"))),
        };
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
        return Err(if listed.is_empty() {
            cfg_err("KUBECONFIG", "empty")
        } else {
            cfg_err(
                format!("KUBECONFIG {list}"),
                "none of the listed files exists; fix KUBECONFIG",
            )
        });
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
    let tls_server_name = y_str(cluster, "tls-server-name").map(str::to_string);
    let proxy_url = match y_str(cluster, "proxy-url") {
        Some(u) => {
            // client-go tools/clientcmd/client_config.go: http, https and socks5 proxies.
            let scheme = u.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
            if !matches!(scheme.as_deref(), Some("http" | "https")) {
                return Err(cfg_err(
                    &cinput,
                    format!(
                        "proxy-url {} is not an http:// or https:// proxy (SOCKS is not supported); fix proxy-url",
                        crate::http::redact_userinfo(u)
                    ),
                ));
            }
            Some(u.to_string())
        }
        None => None,
    };
    let ca_pem = if let Some(d) = y_str(cluster, "certificate-authority-data") {
        Some(b64(&cinput, "certificate-authority-data", d)?)
    } else if let Some(f) = y_str(cluster, "certificate-authority") {
        Some(read_file(&resolve_rel(cpath, f), "certificate-authority")?)
    } else {
        None
    };

    let mut token = None;
    let mut client_cert = None;
    let mut exec = None;
    if let Some(user_name) = y_str(&ctx["context"], "user") {
        let (upath, user) = named(&docs, "users", user_name)
            .ok_or_else(|| cfg_err(&input, format!("user {user_name:?} not found")))?;
        let user = &user["user"];
        let uinput = format!("kubeconfig {} user {user_name:?}", upath.display());
        if !user["auth-provider"].is_badvalue() {
            let name = y_str(&user["auth-provider"], "name").unwrap_or("?");
            return Err(cfg_err(
                &uinput,
                format!("auth-provider {name:?} is not supported (client-go removed the in-tree providers); use an exec plugin, a token or a client certificate"),
            ));
        }
        if y_str(user, "username").is_some() || y_str(user, "password").is_some() {
            return Err(cfg_err(
                &uinput,
                "username/password (basic auth) is not supported; use a token, an exec plugin or a client certificate",
            ));
        }
        for field in ["as", "as-groups", "as-uid", "as-user-extra"] {
            if !user[field].is_badvalue() && !user[field].is_null() {
                return Err(cfg_err(
                    &uinput,
                    format!("impersonation ({field}) is not supported; use the impersonated identity's own credentials"),
                ));
            }
        }
        if !user["exec"].is_badvalue() {
            exec = Some(ExecPlugin::parse(&user["exec"], upath, &uinput)?);
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
    if let Some(e) = exec.as_mut() {
        e.cluster = json!({
            "server": server,
            "tls-server-name": tls_server_name,
            "proxy-url": proxy_url,
            "certificate-authority-data": ca_pem.as_ref().map(|c| base64::engine::general_purpose::STANDARD.encode(c)),
        });
    }
    Ok(KubeAccess {
        server,
        token,
        ca_pem,
        client_cert,
        origin: format!("kubeconfig {first} context {ctx_name}"),
        tls_server_name,
        proxy_url,
        exec,
        token_file: None,
    })
}

// ---------------------------------------------------------------------------------------------
// exec credential plugins, after client-go plugin/pkg/client/auth/exec/exec.go and
// tools/clientcmd/validation.go, api/v1/defaults.go (kubernetes/client-go v0.34.10 = e1a156e).

const EXEC_V1: &str = "client.authentication.k8s.io/v1";
const EXEC_V1BETA1: &str = "client.authentication.k8s.io/v1beta1";
/// More than any real credential; a plugin printing more is printing something else.
const EXEC_MAX_STDOUT: u64 = 1024 * 1024;

/// A kubeconfig `users[].user.exec` entry.
#[derive(Clone)]
pub struct ExecPlugin {
    pub api_version: String,
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// `Never` or `IfAvailable`: this tool never has a terminal, so both run non-interactively.
    pub interactive_mode: String,
    pub provide_cluster_info: bool,
    /// `spec.cluster` handed over when `provideClusterInfo` is set.
    pub cluster: Value,
    /// `kubeconfig <path> user "<name>" exec` for messages.
    pub input: String,
}

/// What a plugin returned.
pub struct ExecCredential {
    pub token: Option<Secret>,
    pub client_cert: Option<(Vec<u8>, Secret)>,
    pub expires: Option<SystemTime>,
}

impl ExecPlugin {
    fn parse(y: &Yaml, base: &Path, uinput: &str) -> Result<ExecPlugin, KubeError> {
        let input = format!("{uinput} exec");
        let api_version = y_str(y, "apiVersion").ok_or_else(|| {
            cfg_err(
                &input,
                "apiVersion must be set (client.authentication.k8s.io/v1)",
            )
        })?;
        if api_version != EXEC_V1 && api_version != EXEC_V1BETA1 {
            return Err(cfg_err(
                &input,
                format!(
                    "apiVersion {api_version:?} is not supported; use {EXEC_V1} or {EXEC_V1BETA1}"
                ),
            ));
        }
        let command = y_str(y, "command").ok_or_else(|| cfg_err(&input, "command must be set"))?;
        // loader.go ResolveLocalPaths: a command with a path separator is relative to the file.
        let command = if command.contains('/') {
            resolve_rel(base, command).to_string_lossy().into_owned()
        } else {
            command.to_string()
        };
        let mut args = Vec::new();
        for a in y["args"].as_vec().map(Vec::as_slice).unwrap_or(&[]) {
            args.push(
                a.as_str()
                    .ok_or_else(|| cfg_err(&input, "args must be strings"))?
                    .to_string(),
            );
        }
        let mut env = Vec::new();
        for e in y["env"].as_vec().map(Vec::as_slice).unwrap_or(&[]) {
            let name =
                y_str(e, "name").ok_or_else(|| cfg_err(&input, "env variable name must be set"))?;
            env.push((
                name.to_string(),
                e["value"].as_str().unwrap_or("").to_string(),
            ));
        }
        let interactive_mode = match (y_str(y, "interactiveMode"), api_version) {
            (Some(m), _) => m.to_string(),
            (None, EXEC_V1BETA1) => "IfAvailable".to_string(),
            (None, _) => {
                return Err(cfg_err(
                    &input,
                    format!(
                        "interactiveMode must be set for {EXEC_V1}; set interactiveMode: Never"
                    ),
                ))
            }
        };
        match interactive_mode.as_str() {
            "Never" | "IfAvailable" => {}
            "Always" => {
                return Err(cfg_err(
                    &input,
                    "interactiveMode Always needs a terminal and this tool never has one; use a plugin mode that can run with interactiveMode: Never",
                ))
            }
            other => {
                return Err(cfg_err(
                    &input,
                    format!("unknown interactiveMode {other:?}; use Never"),
                ))
            }
        }
        Ok(ExecPlugin {
            api_version: api_version.to_string(),
            command,
            args,
            env,
            interactive_mode,
            provide_cluster_info: y["provideClusterInfo"].as_bool() == Some(true),
            cluster: Value::Null,
            input,
        })
    }

    fn err(&self, reason: impl fmt::Display) -> KubeError {
        cfg_err(
            format!("{} command {:?}", self.input, self.command),
            reason.to_string(),
        )
    }

    /// Run the plugin once, for at most `limit`. Its stdout (the credential) is never logged;
    /// its stderr goes to ours, as with client-go (plugins print their own hints there).
    pub fn run(&self, limit: Duration) -> Result<ExecCredential, KubeError> {
        use std::io::Read;
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};
        let mut spec = json!({"interactive": false});
        if self.provide_cluster_info {
            spec["cluster"] = self.cluster.clone();
        }
        let info = json!({"apiVersion": self.api_version, "kind": "ExecCredential", "spec": spec});
        let mut child = Command::new(&self.command)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("KUBERNETES_EXEC_INFO", info.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Its own process group, so a hung plugin is killed with everything it started.
            .process_group(0)
            .spawn()
            .map_err(|e| {
                self.err(format!(
                    "cannot run: {e}; install the plugin or fix exec.command"
                ))
            })?;
        let stdout = child.stdout.take().expect("piped stdout");
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let r = stdout.take(EXEC_MAX_STDOUT + 1).read_to_end(&mut buf);
            r.map(|_| buf)
        });
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if start.elapsed() >= limit => {
                    if let Ok(pid) = i32::try_from(child.id()) {
                        // SAFETY: kill(2) on the plugin's own process group; no memory involved.
                        unsafe { libc::kill(-pid, libc::SIGKILL) };
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(self.err(format!(
                        "did not finish within {:.1}s (the run deadline) and was killed; check the plugin runs non-interactively",
                        limit.as_secs_f64()
                    )));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(self.err(format!("wait failed: {e}"))),
            }
        };
        let out = reader.join().ok().and_then(Result::ok).unwrap_or_default();
        if !status.success() {
            let code = status
                .code()
                .map_or_else(|| "a signal".to_string(), |c| format!("exit code {c}"));
            return Err(self.err(format!(
                "failed with {code}; run it by hand to see why (its output is not shown: it may hold a credential)"
            )));
        }
        if out.len() as u64 > EXEC_MAX_STDOUT {
            return Err(
                self.err("printed more than 1 MiB; expected one ExecCredential JSON object")
            );
        }
        self.decode(&out, SystemTime::now())
    }

    fn decode(&self, out: &[u8], now: SystemTime) -> Result<ExecCredential, KubeError> {
        let v: Value = serde_json::from_slice(out).map_err(|_| {
            self.err("did not print an ExecCredential JSON object on stdout; check the plugin and its arguments")
        })?;
        if v["kind"] != "ExecCredential" {
            return Err(self.err("printed JSON that is not an ExecCredential"));
        }
        let got = v["apiVersion"].as_str().unwrap_or("");
        if got != self.api_version {
            return Err(self.err(format!(
                "is configured for {} but returned apiVersion {got:?}; fix exec.apiVersion",
                self.api_version
            )));
        }
        let status = &v["status"];
        if !status.is_object() {
            return Err(self.err("returned no status field"));
        }
        let field = |k: &str| status[k].as_str().filter(|s| !s.is_empty());
        let token = field("token").map(Secret::new);
        let cert = field("clientCertificateData");
        let key = field("clientKeyData");
        if token.is_none() && cert.is_none() && key.is_none() {
            return Err(self.err("returned neither a token nor a client certificate and key"));
        }
        if cert.is_some() != key.is_some() {
            return Err(self.err("returned only a client certificate or only a key, not both"));
        }
        let expires = match status["expirationTimestamp"].as_str() {
            Some(ts) => {
                let t =
                    time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
                        .map_err(|_| {
                            self.err(format!("returned expirationTimestamp {ts:?}, not RFC 3339"))
                        })?;
                let t = SystemTime::from(t);
                if t <= now {
                    return Err(self.err(format!(
                        "returned a credential that expired at {ts}; check the plugin's clock or its cache"
                    )));
                }
                Some(t)
            }
            None => None,
        };
        Ok(ExecCredential {
            token,
            client_cert: cert
                .zip(key)
                .map(|(c, k)| (c.as_bytes().to_vec(), Secret::new(k))),
            expires,
        })
    }
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
    /// A reader for one apiserver instance at `server` (`https://<ip>:<port>` from the
    /// EndpointSlices of `default/kubernetes`): same credentials and CA, the certificate
    /// checked against the name this client dials. `None` when this reader cannot address
    /// instances (e.g. a `kubectl proxy` URL, which only reaches the apiserver it fronts).
    fn endpoint(&self, server: &str) -> Option<Result<Box<dyn ClusterRead + Send>, KubeError>> {
        let _ = server;
        None
    }
    /// Whether [`ClusterRead::endpoint`] can give readers for apiserver instances.
    fn addresses_instances(&self) -> bool {
        false
    }
}

/// Where the bearer token comes from, and so when it is fetched again.
#[derive(Clone)]
enum CredSource {
    Static,
    /// Re-read when older than [`TOKEN_FILE_MAX_AGE`].
    File(PathBuf),
    /// Re-run when expired or after a 401.
    Exec(ExecPlugin),
}

/// client-go transport/token_source.go (v0.34.10) `NewCachedFileTokenSource`: one minute.
const TOKEN_FILE_MAX_AGE: Duration = Duration::from_secs(60);

struct Cred {
    /// `Bearer <token>`.
    header: Option<Secret>,
    fetched: Instant,
    expires: Option<SystemTime>,
}

/// The real client.
pub struct KubeClient {
    http: Client,
    server: String,
    source: CredSource,
    cred: Mutex<Cred>,
    /// Bound for one exec plugin run.
    exec_limit: Duration,
    retry_delays: Vec<Duration>,
    deadline: Option<Instant>,
    requests: AtomicU64,
    /// Kept to derive per-endpoint clients ([`KubeClient::for_endpoint`]).
    http_cfg: HttpConfig,
}

impl fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeClient")
            .field("server", &self.server)
            .finish()
    }
}

fn bearer(t: &Secret) -> Secret {
    Secret::new(format!("Bearer {}", t.expose()))
}

impl KubeClient {
    /// A client with a per-request `timeout` (connect: 5 s or less). An exec plugin runs here
    /// (bounded by `timeout`, which callers cap at the run deadline).
    pub fn new(access: &KubeAccess, timeout: Duration) -> Result<KubeClient, KubeError> {
        let mut token = access.token.clone();
        let mut client_cert = access.client_cert.clone();
        let mut expires = None;
        let source = match (&access.exec, &access.token_file) {
            (Some(plugin), _) if token.is_none() => {
                let cred = plugin.run(timeout)?;
                token = cred.token;
                if cred.client_cert.is_some() {
                    client_cert = cred.client_cert;
                }
                expires = cred.expires;
                CredSource::Exec(plugin.clone())
            }
            (_, Some(f)) => CredSource::File(f.clone()),
            _ => CredSource::Static,
        };
        let cfg = HttpConfig {
            connect_timeout: timeout.min(Duration::from_secs(5)),
            total_timeout: timeout,
            ca_pem: access.ca_pem.clone(),
            client_cert_pem: client_cert
                .as_ref()
                .map(|(c, k)| (c.clone(), k.expose().as_bytes().to_vec())),
            tls_server_name: access.tls_server_name.clone(),
            proxy: match &access.proxy_url {
                Some(u) => ProxyMode::Url(u.clone()),
                None => ProxyMode::FromEnv,
            },
            redirects: Redirects::Never,
            max_body: 48 * 1024 * 1024,
            ..HttpConfig::default()
        };
        let http = Client::new(&cfg).map_err(|e| cfg_err(access.origin.clone(), e.reason()))?;
        Ok(KubeClient {
            http,
            server: access.server.clone(),
            source,
            cred: Mutex::new(Cred {
                header: token.as_ref().map(bearer),
                fetched: Instant::now(),
                expires,
            }),
            exec_limit: timeout,
            retry_delays: vec![Duration::from_millis(500), Duration::from_secs(1)],
            deadline: None,
            requests: AtomicU64::new(0),
            http_cfg: cfg,
        })
    }

    /// A client for one apiserver instance behind the same cluster (an EndpointSlice
    /// address): same credentials and CA; the certificate is checked against `tls_name` (the
    /// name clients normally dial), as the instance's own address is rarely in it.
    pub fn for_endpoint(&self, server: &str, tls_name: &str) -> Result<KubeClient, KubeError> {
        let server = check_server_url(server, "EndpointSlice address")?;
        let mut cfg = self.http_cfg.clone();
        if cfg.tls_server_name.is_none() {
            cfg.tls_server_name = Some(tls_name.to_string());
        }
        let http = Client::new(&cfg).map_err(|e| cfg_err(server.clone(), e.reason()))?;
        let cred = self.cred.lock().unwrap_or_else(|e| e.into_inner());
        Ok(KubeClient {
            http,
            server,
            source: self.source.clone(),
            cred: Mutex::new(Cred {
                header: cred.header.clone(),
                fetched: cred.fetched,
                expires: cred.expires,
            }),
            exec_limit: self.exec_limit,
            retry_delays: self.retry_delays.clone(),
            deadline: self.deadline,
            requests: AtomicU64::new(0),
            http_cfg: cfg,
        })
    }

    /// The `Authorization` value to send now, refreshing a rotating credential first.
    fn auth_header(&self, force: bool) -> Result<Option<String>, KubeError> {
        let mut cred = self.cred.lock().unwrap_or_else(|e| e.into_inner());
        match &self.source {
            CredSource::Static => {}
            CredSource::File(p) => {
                if force || cred.fetched.elapsed() >= TOKEN_FILE_MAX_AGE {
                    // A failed re-read keeps the token in hand (client-go logs and does the same).
                    if let Ok(t) = read_token(p, "service-account token") {
                        cred.header = Some(bearer(&t));
                    }
                    cred.fetched = Instant::now();
                }
            }
            CredSource::Exec(plugin) => {
                let expired = cred.expires.is_some_and(|e| SystemTime::now() >= e);
                if force || expired {
                    let limit = match self.deadline {
                        Some(d) => d
                            .saturating_duration_since(Instant::now())
                            .min(self.exec_limit),
                        None => self.exec_limit,
                    };
                    let c = plugin.run(limit)?;
                    if let Some(t) = &c.token {
                        cred.header = Some(bearer(t));
                    }
                    cred.expires = c.expires;
                    cred.fetched = Instant::now();
                }
            }
        }
        Ok(cred.header.as_ref().map(|h| h.expose().to_string()))
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

    fn is_exec(&self) -> bool {
        matches!(self.source, CredSource::Exec(_))
    }

    fn secrets(&self) -> Vec<String> {
        let mut s = Vec::new();
        let cred = self.cred.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = &cred.header {
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
        let mut attempt = 0usize;
        let mut refreshed = false;
        loop {
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(KubeError::Deadline { path });
            }
            let auth = self.auth_header(false)?;
            let mut headers: Vec<(&str, &str)> = vec![("Accept", accept)];
            if let Some(a) = &auth {
                headers.push(("Authorization", a.as_str()));
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let result = self.http.request("GET", &url, &headers, None);
            let (err, retry_after) = match result {
                Ok(resp) if resp.is_success() => return Ok(resp),
                // exec.go: a 401 makes client-go run the plugin again; so do we, once.
                Ok(resp) if resp.status == 401 && !refreshed && self.is_exec() => {
                    refreshed = true;
                    self.auth_header(true)?;
                    continue;
                }
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
        let accept = "text/plain;version=0.0.4;q=0.9,*/*;q=0.1";
        let mut attempt = 0usize;
        loop {
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(KubeError::Deadline { path: clean });
            }
            let auth = self.auth_header(false)?;
            let mut headers: Vec<(&str, &str)> = vec![("Accept", accept)];
            if let Some(a) = &auth {
                headers.push(("Authorization", a.as_str()));
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let mut n = 0u64;
            let mut bad_utf8 = false;
            let mut too_long = false;
            // No cap on the whole body (a large cluster's /metrics passes 48 MiB); each line is
            // capped instead, so memory stays bounded whatever the server sends.
            let result = self
                .http
                .get_streaming_limit(&url, &headers, u64::MAX, &mut |r| {
                    use std::io::{BufRead, Read};
                    let mut br = std::io::BufReader::with_capacity(64 * 1024, r);
                    let mut buf = Vec::with_capacity(1024);
                    loop {
                        buf.clear();
                        if (&mut br).take(MAX_LINE + 1).read_until(b'\n', &mut buf)? == 0 {
                            return Ok(());
                        }
                        if buf.len() as u64 > MAX_LINE {
                            too_long = true;
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
                Ok(None) if too_long => {
                    return Err(KubeError::body(
                        &clean,
                        format!("line {} longer than {MAX_LINE} bytes", n + 1),
                    ))
                }
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
        let mut unpaginated = false;
        loop {
            let url = if unpaginated {
                list_url(
                    path,
                    &ListParams {
                        limit: None,
                        ..params.clone()
                    },
                    None,
                )
            } else {
                list_url(path, params, cont.as_deref())
            };
            let resp = match self.get(&url, accept) {
                Ok(r) => r,
                // client-go tools/pager/pager.go (v0.34.10, ListPager.List): a 410 on a
                // continued page is followed by ONE full list without limit/continue.
                Err(KubeError::Gone { .. }) if cont.is_some() && !unpaginated => {
                    stats.restarts += 1;
                    cont = None;
                    restarted = true;
                    unpaginated = true;
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
                Some(c) if !unpaginated => cont = Some(c),
                _ => return Ok(stats),
            }
        }
    }

    fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn addresses_instances(&self) -> bool {
        self.server.starts_with("https://")
    }

    fn endpoint(&self, server: &str) -> Option<Result<Box<dyn ClusterRead + Send>, KubeError>> {
        let parts = crate::http::UrlParts::parse(&self.server)?;
        if parts.scheme != "https" {
            return None;
        }
        let host = match parts.host_port.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or("").to_string(),
            None => parts
                .host_port
                .rsplit_once(':')
                .map_or(parts.host_port.clone(), |(h, _)| h.to_string()),
        };
        Some(
            self.for_endpoint(server, &host)
                .map(|c| Box::new(c) as Box<dyn ClusterRead + Send>),
        )
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
            ..Default::default()
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
        assert_eq!(stats.pages, 2, "1 page, 410, then one unpaginated list");
        let reqs = fk.requests();
        assert!(reqs
            .iter()
            .all(|r| r.header("accept") == Some(ACCEPT_METADATA_LIST)));
        // client-go tools/pager: the fallback list carries neither limit nor continue.
        let last = reqs.last().unwrap();
        assert_eq!(last.query(), None, "{}", last.target);
        // Even a server that keeps expiring continue tokens is read completely.
        fk.with(|c| c.expire_continue = 2);
        let mut n = 0;
        c.list(
            "/api/v1/nodes",
            &ListParams {
                limit: Some(2),
                ..Default::default()
            },
            &mut |p| {
                if p.restarted {
                    n = 0;
                }
                n += p.items.len();
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(n, 5);
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
            ..Default::default()
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
            ..Default::default()
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
        assert!(e.to_string().contains("apiVersion must be set"), "{e}");
        assert!(e.to_string().contains("user \"u\" exec"), "{e}");
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

    fn kubeconfig_with_user(fk: &FakeKube, dir: &Path, user: &str, cluster_extra: &str) -> PathBuf {
        let b64 = base64::engine::general_purpose::STANDARD;
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {{cluster: k, user: u}}\nclusters:\n- name: k\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\n{cluster_extra}users:\n- name: u\n  user:\n{user}",
            url = fk.url(),
            ca = b64.encode(fk.ca_pem()),
        );
        let p = dir.join("kubeconfig");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// An exec plugin stand-in: records its args, env and KUBERNETES_EXEC_INFO, checks stdin
    /// is not a terminal, then prints `cred.json` (or misbehaves as told by `mode`).
    fn plugin(dir: &Path, mode: &str, cred: &Value) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(dir.join("cred.json"), cred.to_string()).unwrap();
        let body = match mode {
            "hang" => "sleep 30\n".to_string(),
            "junk" => {
                "echo 'Please visit https://login.example/device and enter code XKCD'\n".to_string()
            }
            "fail" => "echo 'token: should-never-be-shown' ; exit 3\n".to_string(),
            _ => format!("cat '{}'\n", dir.join("cred.json").display()),
        };
        let script = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{d}/args'\nprintf '%s' \"$KUBERNETES_EXEC_INFO\" > '{d}/info'\nprintf '%s' \"$PLUGIN_REGION\" > '{d}/env'\n[ -t 0 ] && echo tty > '{d}/stdin'\n{body}",
            d = dir.display()
        );
        let p = dir.join("plugin.sh");
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn exec_user(api: &str, extra: &str) -> String {
        format!("    exec:\n      apiVersion: {api}\n      command: ./plugin.sh\n      args: [eks, get-token, --cluster, \"homelab one\"]\n      env:\n      - {{name: PLUGIN_REGION, value: eu-1}}\n{extra}")
    }

    fn cred(api: &str, status: Value) -> Value {
        json!({"apiVersion": api, "kind": "ExecCredential", "spec": {}, "status": status})
    }

    #[test]
    fn exec_plugin_v1_token_with_args_env_and_cluster_info() {
        let fk = FakeKube::start(cluster_with_nodes(2));
        let dir = tempfile::tempdir().unwrap();
        let future = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        plugin(
            dir.path(),
            "ok",
            &cred(
                EXEC_V1,
                json!({"token": TEST_TOKEN, "expirationTimestamp": future}),
            ),
        );
        let kc = kubeconfig_with_user(
            &fk,
            dir.path(),
            &exec_user(
                EXEC_V1,
                "      interactiveMode: Never\n      provideClusterInfo: true\n",
            ),
            "",
        );
        let a = load_kubeconfig(&kc.to_string_lossy(), None).unwrap();
        assert!(!format!("{a:?}").contains(TEST_TOKEN));
        let c = KubeClient::new(&a, Duration::from_secs(5)).unwrap();
        assert_eq!(c.list_nodes().unwrap().len(), 2);
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert_eq!(args, "eks\nget-token\n--cluster\nhomelab one\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("env")).unwrap(),
            "eu-1"
        );
        assert!(!dir.path().join("stdin").exists(), "plugin got a terminal");
        let info: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("info")).unwrap())
                .unwrap();
        assert_eq!(info["apiVersion"], EXEC_V1);
        assert_eq!(info["kind"], "ExecCredential");
        assert_eq!(info["spec"]["interactive"], false);
        assert_eq!(info["spec"]["cluster"]["server"], fk.url().as_str());
    }

    #[test]
    fn exec_plugin_v1beta1_client_certificate() {
        let fk = FakeKube::start_with(cluster_with_nodes(1), Auth::ClientCert);
        let dir = tempfile::tempdir().unwrap();
        plugin(
            dir.path(),
            "ok",
            &cred(
                EXEC_V1BETA1,
                json!({"clientCertificateData": fk.pki.client_cert_pem,
                       "clientKeyData": fk.pki.client_key_pem}),
            ),
        );
        // v1beta1 defaults interactiveMode to IfAvailable: still run without a terminal.
        let kc = kubeconfig_with_user(&fk, dir.path(), &exec_user(EXEC_V1BETA1, ""), "");
        let a = load_kubeconfig(&kc.to_string_lossy(), None).unwrap();
        let c = KubeClient::new(&a, Duration::from_secs(5)).unwrap();
        assert_eq!(c.list_nodes().unwrap().len(), 1);
    }

    #[test]
    fn exec_plugin_bad_inputs_are_one_line_errors_without_output() {
        let fk = FakeKube::start(cluster_with_nodes(1));
        let past = "2020-01-01T00:00:00Z";
        let cases: Vec<(&str, Value, &str)> = vec![
            ("hang", json!({}), "did not finish within"),
            ("junk", json!({}), "did not print an ExecCredential"),
            ("fail", json!({}), "failed with exit code 3"),
            (
                "ok",
                cred(
                    EXEC_V1,
                    json!({"token": "t0ken-abc", "expirationTimestamp": past}),
                ),
                "expired at 2020-01-01T00:00:00Z",
            ),
            (
                "ok",
                cred(EXEC_V1BETA1, json!({"token": "t0ken-abc"})),
                "returned apiVersion \"client.authentication.k8s.io/v1beta1\"",
            ),
            (
                "ok",
                cred(EXEC_V1, json!({"clientCertificateData": "x"})),
                "only a client certificate",
            ),
            ("ok", cred(EXEC_V1, json!({})), "neither a token nor"),
        ];
        for (mode, c, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            plugin(dir.path(), mode, &c);
            let kc = kubeconfig_with_user(
                &fk,
                dir.path(),
                &exec_user(EXEC_V1, "      interactiveMode: Never\n"),
                "",
            );
            let a = load_kubeconfig(&kc.to_string_lossy(), None).unwrap();
            let start = Instant::now();
            let e = KubeClient::new(&a, Duration::from_secs(1)).unwrap_err();
            let s = e.to_string();
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{mode}: not bounded"
            );
            assert!(s.contains(want), "{mode}: {s}");
            assert!(s.contains("user \"u\" exec command"), "{mode}: {s}");
            assert!(!s.contains('\n'), "{s}");
            for leak in ["t0ken-abc", "should-never-be-shown", "XKCD"] {
                assert!(!s.contains(leak), "{mode}: {s}");
            }
        }
        assert_eq!(fk.request_count(), 0);
    }

    #[test]
    fn exec_config_refusals_name_the_field() {
        let fk = FakeKube::start(FakeCluster::default());
        let dir = tempfile::tempdir().unwrap();
        for (user, want) in [
            (exec_user(EXEC_V1, ""), "interactiveMode must be set"),
            (
                exec_user(EXEC_V1, "      interactiveMode: Always\n"),
                "interactiveMode Always",
            ),
            (
                exec_user("client.authentication.k8s.io/v1alpha1", ""),
                "apiVersion \"client.authentication.k8s.io/v1alpha1\" is not supported",
            ),
            (
                "    auth-provider:\n      name: oidc\n".to_string(),
                "auth-provider \"oidc\" is not supported",
            ),
            (
                "    username: admin\n    password: hunter2\n".to_string(),
                "username/password",
            ),
            (
                "    token: abcd\n    as: someone\n".to_string(),
                "impersonation (as)",
            ),
        ] {
            let kc = kubeconfig_with_user(&fk, dir.path(), &user, "");
            let e = load_kubeconfig(&kc.to_string_lossy(), None).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
        let kc = kubeconfig_with_user(
            &fk,
            dir.path(),
            "    token: abcd\n",
            "    proxy-url: socks5://u:pw5ecret@p.example:1080\n",
        );
        let e = load_kubeconfig(&kc.to_string_lossy(), None).unwrap_err();
        assert!(e.to_string().contains("proxy-url"), "{e}");
        assert!(!e.to_string().contains("pw5ecret"), "{e}");
    }

    #[test]
    fn exec_token_rerun_after_401_and_on_expiry() {
        let fk = FakeKube::start(cluster_with_nodes(1));
        let dir = tempfile::tempdir().unwrap();
        plugin(
            dir.path(),
            "ok",
            &cred(EXEC_V1, json!({"token": "stale-token-1"})),
        );
        let kc = kubeconfig_with_user(
            &fk,
            dir.path(),
            &exec_user(EXEC_V1, "      interactiveMode: Never\n"),
            "",
        );
        let a = load_kubeconfig(&kc.to_string_lossy(), None).unwrap();
        let c = KubeClient::new(&a, Duration::from_secs(5))
            .unwrap()
            .with_retry_delays(vec![]);
        // The plugin now hands out the valid token: the 401 makes the client ask again.
        std::fs::write(
            dir.path().join("cred.json"),
            cred(EXEC_V1, json!({"token": TEST_TOKEN})).to_string(),
        )
        .unwrap();
        assert_eq!(c.list_nodes().unwrap().len(), 1);
        let auths: Vec<_> = fk
            .requests()
            .iter()
            .map(|r| r.header("authorization").unwrap_or("").to_string())
            .collect();
        assert_eq!(
            auths,
            vec![
                "Bearer stale-token-1".to_string(),
                format!("Bearer {TEST_TOKEN}")
            ]
        );
    }

    #[test]
    fn kubeconfig_list_skips_missing_files_like_client_go() {
        let fk = FakeKube::start(cluster_with_nodes(1));
        let dir = tempfile::tempdir().unwrap();
        let kc = fk.write_kubeconfig(&dir.path().join("config"));
        let missing = dir.path().join("absent.yaml");
        let list = format!("{}:{}", missing.display(), kc.display());
        let a = load_kubeconfig(&list, None).unwrap();
        assert_eq!(a.server, fk.url());
        let both = format!(
            "{}:{}",
            missing.display(),
            dir.path().join("gone").display()
        );
        let e = load_kubeconfig(&both, None).unwrap_err();
        assert!(
            e.to_string().contains("none of the listed files exists"),
            "{e}"
        );
        // A single named file that is missing is still an error naming it.
        let e = load_kubeconfig(&missing.to_string_lossy(), None).unwrap_err();
        assert!(e.to_string().contains("absent.yaml"), "{e}");
    }

    #[test]
    fn kubeconfig_tls_server_name_and_proxy_url() {
        let pki = testkit::kube::TestPki::generate_with_sans(&["api.homelab.internal"]);
        let fk =
            FakeKube::start_with_pki(cluster_with_nodes(1), Auth::Token(TEST_TOKEN.into()), pki);
        let dir = tempfile::tempdir().unwrap();
        let user = format!("    token: {TEST_TOKEN}\n");
        let kc = kubeconfig_with_user(&fk, dir.path(), &user, "");
        let a = load_kubeconfig(&kc.to_string_lossy(), None).unwrap();
        let c = KubeClient::new(&a, Duration::from_secs(5))
            .unwrap()
            .with_retry_delays(vec![]);
        assert!(
            c.list_nodes().is_err(),
            "127.0.0.1 is not in the certificate"
        );
        let kc = kubeconfig_with_user(
            &fk,
            dir.path(),
            &user,
            "    tls-server-name: api.homelab.internal\n",
        );
        let a = load_kubeconfig(&kc.to_string_lossy(), None).unwrap();
        assert_eq!(a.tls_server_name.as_deref(), Some("api.homelab.internal"));
        let c = KubeClient::new(&a, Duration::from_secs(5)).unwrap();
        assert_eq!(c.list_nodes().unwrap().len(), 1);
        // proxy-url: every request goes to that proxy, loopback included.
        let proxy = testkit::HttpServer::start(|_| testkit::Reply::text(403, "no"));
        let kc = kubeconfig_with_user(
            &fk,
            dir.path(),
            &user,
            &format!("    proxy-url: http://ops:pr0xypw@{}\n", proxy.addr()),
        );
        let a = load_kubeconfig(&kc.to_string_lossy(), None).unwrap();
        assert!(!format!("{a:?}").contains("pr0xypw"));
        let c = KubeClient::new(&a, Duration::from_secs(5))
            .unwrap()
            .with_retry_delays(vec![]);
        let e = c.server_version().unwrap_err();
        assert!(!e.to_string().contains("pr0xypw"), "{e}");
        let reqs = proxy.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].method, "CONNECT");
        assert_eq!(reqs[0].target, format!("127.0.0.1:{}", fk.port()));
    }

    #[test]
    fn in_cluster_token_is_reread_after_a_minute_and_port_is_required() {
        let fk = FakeKube::start(cluster_with_nodes(1));
        let dir = tempfile::tempdir().unwrap();
        let (t, ca) = fk.write_sa_dir(dir.path());
        std::fs::write(&t, "old-rotated-away-token").unwrap();
        let o = AccessOptions {
            service_host: Some("127.0.0.1".into()),
            service_port: Some(fk.port().to_string()),
            token_file: Some(t.clone()),
            ca_file: Some(ca),
            ..Default::default()
        };
        let a = resolve_access(&o).unwrap();
        let c = KubeClient::new(&a, Duration::from_secs(5))
            .unwrap()
            .with_retry_delays(vec![]);
        assert!(matches!(
            c.server_version(),
            Err(KubeError::Unauthorized { .. })
        ));
        std::fs::write(&t, TEST_TOKEN).unwrap();
        // Within the minute the copy in hand is used...
        assert!(c.server_version().is_err());
        // ...and once it is older, the kubelet's rotated file is read again.
        c.cred.lock().unwrap().fetched = Instant::now() - TOKEN_FILE_MAX_AGE;
        assert!(c.server_version().is_ok());
        let e = resolve_access(&AccessOptions {
            service_port: None,
            ..o
        })
        .unwrap_err();
        assert!(
            e.to_string().starts_with("KUBERNETES_SERVICE_PORT: "),
            "{e}"
        );
    }

    #[test]
    fn get_lines_has_no_body_cap_but_a_line_cap() {
        let mut cluster = cluster_with_nodes(0);
        // 50 MiB of metrics: larger than the 48 MiB body cap the JSON calls keep.
        let line = format!("apiserver_x{{a=\"{}\"}} 1\n", "y".repeat(1000));
        cluster.metrics = line.repeat(50 * 1024 * 1024 / line.len());
        let fk = FakeKube::start(cluster);
        let c = client_for(&fk);
        let n = c.get_lines("/metrics", &mut |_| {}).unwrap();
        assert!(n > 50_000, "{n}");
        fk.with(|s| s.metrics = format!("ok 1\n{}\n", "z".repeat(2 * 1024 * 1024)));
        let e = c.get_lines("/metrics", &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("line 2 longer than"), "{e}");
    }

    #[test]
    fn fake_kube_is_as_strict_as_the_apiserver() {
        let mut cluster = cluster_with_nodes(1);
        cluster.add(
            "metrics.k8s.io/v1beta1/nodes",
            [
                json!({"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                    "metadata": {"name": "k8s-node1"}, "usage": {"cpu": "1"}}),
            ],
        );
        cluster.discovery.push((
            "metrics.k8s.io".into(),
            "v1beta1".into(),
            vec![testkit::kube::ApiResource {
                name: "nodes".into(),
                kind: "NodeMetrics".into(),
                namespaced: false,
            }],
        ));
        cluster.aggregated.push("metrics.k8s.io/v1beta1".into());
        let fk = FakeKube::start(cluster);
        let c = client_for(&fk).with_retry_delays(vec![]);
        let only_meta = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
        // An aggregated API without metadata support: 406 unless a fallback is offered.
        let e = c
            .get("/apis/metrics.k8s.io/v1beta1/nodes", only_meta)
            .unwrap_err();
        assert_eq!(e.status(), Some(406), "{e}");
        let mut kinds = Vec::new();
        c.list(
            "/apis/metrics.k8s.io/v1beta1/nodes",
            &ListParams {
                metadata_only: true,
                ..Default::default()
            },
            &mut |p| {
                kinds.extend(
                    p.items
                        .iter()
                        .map(|i| i["kind"].as_str().unwrap_or("").to_string()),
                );
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(kinds, ["NodeMetrics"], "full objects through the fallback");
        // Exact parameters: another meta version is not what the client asked for.
        let e = c
            .get(
                "/api/v1/nodes",
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta2",
            )
            .unwrap_err();
        assert_eq!(e.status(), Some(406));
        let r = c.get("/api/v1/nodes", only_meta).unwrap();
        assert!(r.text().contains("PartialObjectMetadataList"));
        // Field selectors: only the labels a kind registers.
        let e = c
            .get(
                "/api/v1/configmaps?fieldSelector=type%3Dhelm.sh%2Frelease.v1",
                "application/json",
            )
            .unwrap_err();
        assert_eq!(e.status(), Some(400));
        assert!(
            e.to_string().contains("field label not supported: type"),
            "{e}"
        );
        assert!(c
            .get(
                "/api/v1/secrets?fieldSelector=type%3Dhelm.sh%2Frelease.v1",
                "application/json"
            )
            .is_ok());
        // A 410 on a continued list carries a fresh continue token, like etcd3's errors.go.
        fk.with(|s| s.expire_continue = 1);
        let e = c
            .get("/api/v1/nodes?limit=1&continue=eyJ9", "application/json")
            .unwrap_err();
        assert!(matches!(e, KubeError::Gone { .. }), "{e}");
        let raw = fk.requests().len();
        assert!(raw > 0);
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
