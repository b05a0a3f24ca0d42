//! Validated configuration built once from the command line (§2.1) and the optional user-map
//! file (§2.4). Every error names the input at fault.

use crate::cli::Opts;
use crate::decide::{parse_duration, UserEntry, UserMap, DEFAULT_PERIOD, DEFAULT_PREFIX};
use std::fmt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_VAULT_ADDR: &str = "https://vault.viktorbarzin.me";
pub const DEFAULT_CONFIG: &str = "/etc/homelab/vault-token-renew.json";
pub const LOG_NAME: &str = "vault-token-renew.log";
pub const LOCK_NAME: &str = "vault-token-renew.lock";
pub const STATE_NAME: &str = "vault-token-renew.state.json";

/// `FAIL: config <what>: <reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub what: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config {}: {}", self.what, self.reason)
    }
}

fn cerr(what: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        what: what.into(),
        reason: reason.into(),
    }
}

/// Treat an empty value as unset (§2.1 "unset or empty → default").
fn non_empty<T: AsRef<std::ffi::OsStr>>(v: &Option<T>) -> Option<&T> {
    v.as_ref().filter(|s| !s.as_ref().is_empty())
}

/// Where things live for this user; resolvable before the lock is taken.
#[derive(Debug, Clone)]
pub struct Paths {
    pub user: String,
    pub home: PathBuf,
    pub state_dir: PathBuf,
    pub token_file: PathBuf,
    pub log_file: PathBuf,
    pub lock_file: PathBuf,
    pub state_file: PathBuf,
    pub config_file: PathBuf,
}

/// The effective uid's passwd entry: `(name, home)`.
fn passwd_entry() -> Option<(String, PathBuf)> {
    let u = nix::unistd::User::from_uid(nix::unistd::geteuid()).ok()??;
    Some((u.name, u.dir))
}

impl Paths {
    pub fn resolve(opts: &Opts) -> Result<Paths, ConfigError> {
        let pw = passwd_entry();
        let user = match non_empty(&opts.user) {
            Some(u) => u.clone(),
            None => pw.as_ref().map(|p| p.0.clone()).ok_or_else(|| {
                cerr(
                    "user",
                    format!(
                        "effective uid {} has no passwd entry; set VTR_USER/--user",
                        nix::unistd::geteuid()
                    ),
                )
            })?,
        };
        let home = match non_empty(&opts.home) {
            Some(h) => h.clone(),
            None => pw.map(|p| p.1).ok_or_else(|| {
                cerr(
                    "HOME",
                    "unset and the effective uid has no passwd entry; set HOME/--home",
                )
            })?,
        };
        let state_dir = non_empty(&opts.state_home)
            .cloned()
            .unwrap_or_else(|| home.join(".local/state"));
        let config_file = non_empty(&opts.config)
            .cloned()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
        Ok(Paths {
            user,
            token_file: home.join(".vault-token"),
            log_file: state_dir.join(LOG_NAME),
            lock_file: state_dir.join(LOCK_NAME),
            state_file: state_dir.join(STATE_NAME),
            home,
            state_dir,
            config_file,
        })
    }
}

/// How to reach Vault.
#[derive(Clone)]
pub struct VaultSettings {
    pub addr: String,
    /// VAULT_CACERT and the certificates of VAULT_CAPATH, one bundle.
    pub ca_pem: Option<Vec<u8>>,
    /// VAULT_CLIENT_CERT / VAULT_CLIENT_KEY (PEM), checked to match.
    pub client_pem: Option<PemPair>,
    /// VAULT_TLS_SERVER_NAME / BAO_TLS_SERVER_NAME: the name the server certificate is
    /// verified against (and sent as SNI) instead of the VAULT_ADDR host.
    pub tls_server_name: Option<String>,
    pub namespace: Option<String>,
    pub timeout: Duration,
    /// Issue 15 item 4: a renewed TTL under this (seconds) is a failure.
    pub min_ttl: i64,
    /// Issue 15 item 7: time budget of the full accessor scan.
    pub sweep_budget: Duration,
}

/// `VTR_SWEEP_BUDGET` default: well inside the unit's TimeoutStartSec=10min, even with one
/// slow request (30 s, two retries) running over the budget.
pub const DEFAULT_SWEEP_BUDGET: i64 = 120;

/// `VTR_MIN_TTL` default: 7 days (the `status` WARNING threshold of spec §8.1).
pub const DEFAULT_MIN_TTL: i64 = 7 * 86_400;

impl fmt::Debug for VaultSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultSettings")
            .field("addr", &self.addr)
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Validate `VAULT_ADDR` (§2.1): scheme http/https, a host, trailing `/` stripped.
pub fn validate_addr(raw: &str) -> Result<String, String> {
    let addr = raw.trim().trim_end_matches('/').to_string();
    let Some((scheme, rest)) = addr.split_once("://") else {
        return Err(format!(
            "{raw:?} is not a URL (expected http:// or https://)"
        ));
    };
    if !matches!(scheme, "http" | "https") {
        return Err(format!("scheme {scheme:?} is not http or https"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // An `@` anywhere (not only in the authority) is refused: parsers disagree on where user
    // info ends (`http://a/@b`), and a Vault address never needs one.
    if authority.is_empty() || rest.contains('@') {
        return Err("the URL needs a host and no user info".to_string());
    }
    if rest.contains(['?', '#']) || addr.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL must not carry a query, fragment or whitespace".to_string());
    }
    Ok(addr)
}

impl VaultSettings {
    pub fn from_opts(opts: &Opts) -> Result<VaultSettings, ConfigError> {
        let addr = match non_empty(&opts.vault_addr) {
            Some(a) => validate_addr(a).map_err(|r| cerr("VAULT_ADDR", r))?,
            None => DEFAULT_VAULT_ADDR.to_string(),
        };
        check_tls_env(&|k| std::env::var_os(k))?;
        let mut ca: Vec<u8> = Vec::new();
        if let Some(p) = non_empty(&opts.cacert) {
            let pem = std::fs::read(p)
                .map_err(|e| cerr("VAULT_CACERT", format!("{}: {e}", p.display())))?;
            homelab_core::http::parse_pem_certs(&pem)
                .map_err(|e| cerr("VAULT_CACERT", format!("{}: {e}", p.display())))?;
            ca.extend_from_slice(&pem);
            ca.push(b'\n');
        }
        if let Some(d) = non_empty(&opts.capath) {
            ca.extend(read_capath(d)?);
        }
        let ca_pem = (!ca.is_empty()).then_some(ca);
        let client_pem = client_pair(non_empty(&opts.client_cert), non_empty(&opts.client_key))?;
        let tls_server_name = match non_empty(&opts.tls_server_name) {
            // The bao CLI hands the name to Go's tls.Config.ServerName (api/client.go): the
            // certificate is verified against it and it is sent as SNI.
            Some(n) => Some(valid_server_name(n).map_err(|r| cerr("VAULT_TLS_SERVER_NAME", r))?),
            None => None,
        };
        let namespace = non_empty(&opts.namespace).cloned();
        if let Some(ns) = &namespace {
            if ns.chars().any(|c| c.is_control()) {
                return Err(cerr("VAULT_NAMESPACE", "contains control characters"));
            }
        }
        let timeout = match non_empty(&opts.http_timeout) {
            Some(t) => match t.trim().parse::<f64>() {
                Ok(s) if s > 0.0 && s <= 3600.0 => Duration::from_secs_f64(s),
                _ => {
                    return Err(cerr(
                        "VTR_HTTP_TIMEOUT",
                        format!("{t:?} is not a number of seconds in (0, 3600]"),
                    ))
                }
            },
            None => Duration::from_secs(30),
        };
        let min_ttl = match non_empty(&opts.min_ttl) {
            Some(t) => parse_duration(t).filter(|s| *s > 0).ok_or_else(|| {
                cerr(
                    "VTR_MIN_TTL",
                    format!(
                        "{t:?} is not a positive duration (e.g. 7d, 168h, 604800); fix or unset it"
                    ),
                )
            })?,
            None => DEFAULT_MIN_TTL,
        };
        let sweep_budget = match non_empty(&opts.sweep_budget) {
            Some(t) => parse_duration(t).filter(|s| *s >= 0 && *s <= 3600).ok_or_else(|| {
                cerr(
                    "VTR_SWEEP_BUDGET",
                    format!("{t:?} is not a duration of at most 1h (e.g. 120s, 2m); fix or unset it"),
                )
            })?,
            None => DEFAULT_SWEEP_BUDGET,
        };
        let sweep_budget = Duration::from_secs(sweep_budget as u64);
        Ok(VaultSettings {
            addr,
            ca_pem,
            tls_server_name,
            client_pem,
            sweep_budget,
            namespace,
            timeout,
            min_ttl,
        })
    }
}

/// A TLS server name must be a DNS name or an IP address: anything else could never match a
/// certificate, so it is refused before any connection instead of failing every handshake.
fn valid_server_name(n: &str) -> Result<String, String> {
    let n = n.trim();
    if !n.is_empty()
        && n.len() <= 253
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        && rustls::pki_types::ServerName::try_from(n).is_ok()
    {
        Ok(n.to_string())
    } else {
        Err(format!(
            "{:?} is not a DNS name or IP address; set it to a name in the server certificate",
            n.chars().take(64).collect::<String>()
        ))
    }
}

/// Go `strconv.ParseBool` (what the bao CLI applies to `*_SKIP_VERIFY`).
pub fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Issue 15 item 5: refuse, before any connection, what would weaken TLS or be silently
/// ignored. `*_SKIP_VERIFY` true (either twin): a root-capable token never travels over
/// unverified TLS. Unparseable: the bao CLI refuses it too ("could not parse",
/// openbao/openbao v2.6.2 `api/client.go` `ReadEnvironment`). The in-memory `*_BYTES`
/// variants are not supported, so they are refused instead of dropped.
pub fn check_tls_env(env: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> Result<(), ConfigError> {
    for var in ["BAO_SKIP_VERIFY", "VAULT_SKIP_VERIFY"] {
        let Some(v) = env(var) else { continue };
        let v = v.to_string_lossy().into_owned();
        if v.is_empty() {
            continue;
        }
        match go_parse_bool(&v) {
            Some(false) => {}
            Some(true) => {
                return Err(cerr(
                    var,
                    format!("is {v:?}: refused, the token never travels over unverified TLS; unset it and trust the server with VAULT_CACERT or VAULT_CAPATH"),
                ))
            }
            None => {
                return Err(cerr(
                    var,
                    format!("{v:?} is not a boolean (Go ParseBool); unset it"),
                ))
            }
        }
    }
    for p in ["BAO_", "VAULT_"] {
        for s in ["CACERT_BYTES", "CLIENT_CERT_BYTES", "CLIENT_KEY_BYTES"] {
            let var = format!("{p}{s}");
            if env(&var).is_some_and(|v| !v.is_empty()) {
                let file = s.trim_end_matches("_BYTES");
                return Err(cerr(
                    &var,
                    format!("in-memory PEM is not supported; write it to a file and set {p}{file}"),
                ));
            }
        }
    }
    Ok(())
}

/// `VAULT_CAPATH`: every regular file under the directory (recursively, like Go's
/// `filepath.Walk` in openbao/openbao v2.6.2 `api/rootcerts.go` `appendCAPath`); files that
/// hold no certificate are skipped as there; an unreadable file is an error as there. A
/// directory without any certificate is an error here (bao would fall back silently).
pub fn read_capath(dir: &Path) -> Result<Vec<u8>, ConfigError> {
    let err = |r: String| cerr("VAULT_CAPATH", format!("{}: {r}", dir.display()));
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|e| err(format!("{}: {e}", d.display())))?;
        for e in rd {
            let e = e.map_err(|e| err(e.to_string()))?;
            let p = e.path();
            let m = std::fs::metadata(&p).map_err(|e| err(format!("{}: {e}", p.display())))?;
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    let mut n = 0;
    for f in files {
        let pem = std::fs::read(&f).map_err(|e| err(format!("{}: {e}", f.display())))?;
        if homelab_core::http::parse_pem_certs(&pem).is_ok() {
            out.extend_from_slice(&pem);
            out.push(b'\n');
            n += 1;
        }
    }
    if n == 0 {
        return Err(err(
            "no PEM certificate in any file; point VAULT_CAPATH at the CA directory".into(),
        ));
    }
    Ok(out)
}

/// A PEM certificate chain and its private key.
pub type PemPair = (Vec<u8>, Vec<u8>);

/// `VAULT_CLIENT_CERT` + `VAULT_CLIENT_KEY`: both or neither (bao: "both client cert and
/// client key must be provided"), readable PEM, and the key must belong to the certificate.
pub fn client_pair(
    cert: Option<&PathBuf>,
    key: Option<&PathBuf>,
) -> Result<Option<PemPair>, ConfigError> {
    use rustls_pki_types::pem::PemObject;
    let (cert, key) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(cerr(
                "VAULT_CLIENT_KEY",
                "unset but VAULT_CLIENT_CERT is set; give both or neither",
            ))
        }
        (None, Some(_)) => {
            return Err(cerr(
                "VAULT_CLIENT_CERT",
                "unset but VAULT_CLIENT_KEY is set; give both or neither",
            ))
        }
        (Some(c), Some(k)) => (c, k),
    };
    let cpem = std::fs::read(cert)
        .map_err(|e| cerr("VAULT_CLIENT_CERT", format!("{}: {e}", cert.display())))?;
    let chain: Vec<rustls_pki_types::CertificateDer<'static>> =
        rustls_pki_types::CertificateDer::pem_slice_iter(&cpem)
            .collect::<Result<_, _>>()
            .ok()
            .filter(|c: &Vec<_>| !c.is_empty())
            .ok_or_else(|| {
                cerr(
                    "VAULT_CLIENT_CERT",
                    format!("{}: no PEM certificate", cert.display()),
                )
            })?;
    // The key file is secret: its errors name the file, never its content.
    let kpem = std::fs::read(key)
        .map_err(|e| cerr("VAULT_CLIENT_KEY", format!("{}: {e}", key.display())))?;
    let der = rustls_pki_types::PrivateKeyDer::from_pem_slice(&kpem).map_err(|_| {
        cerr(
            "VAULT_CLIENT_KEY",
            format!("{}: no PEM private key", key.display()),
        )
    })?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&der).map_err(|_| {
        cerr(
            "VAULT_CLIENT_KEY",
            format!("{}: unsupported private key type", key.display()),
        )
    })?;
    rustls::sign::CertifiedKey::new(chain, signer)
        .keys_match()
        .map_err(|_| {
            cerr(
                "VAULT_CLIENT_KEY",
                format!(
                    "{} does not match the certificate in {}; give the key of that certificate",
                    key.display(),
                    cert.display()
                ),
            )
        })?;
    Ok(Some((cpem, kpem)))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    version: u32,
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    display_name_prefix: Option<String>,
    users: serde_json::Map<String, serde_json::Value>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUser {
    required_policy: String,
    mint_policies: Vec<String>,
    #[serde(default)]
    remint_hint: Option<String>,
}

fn valid_user_key(k: &str) -> bool {
    let mut cs = k.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && cs.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
}

/// Load the user map (§2.4): the file when it exists, else the built-in table. `euid` is the
/// uid that may own the file besides root.
pub fn load_user_map(path: &Path, euid: u32) -> Result<UserMap, ConfigError> {
    let what = path.display().to_string();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(UserMap::builtin()),
        Err(e) => return Err(cerr(what, e.to_string())),
    };
    if !meta.is_file() {
        return Err(cerr(what, "not a regular file"));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(cerr(
            what,
            format!(
                "mode {:04o} is group- or world-writable; chmod go-w it",
                meta.permissions().mode() & 0o7777
            ),
        ));
    }
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(cerr(
            what,
            format!("owned by uid {}, expected root or uid {euid}", meta.uid()),
        ));
    }
    let text = std::fs::read(path).map_err(|e| cerr(&what, e.to_string()))?;
    parse_user_map(&text, &what).map_err(|r| cerr(&what, r))
}

/// Parse and validate the JSON document of §2.4.2/§2.4.3.
pub fn parse_user_map(text: &[u8], source: &str) -> Result<UserMap, String> {
    let doc: FileDoc = serde_json::from_slice(text).map_err(|e| format!("invalid JSON: {e}"))?;
    if doc.version != 1 {
        return Err(format!(
            "version {} is not supported (expected 1)",
            doc.version
        ));
    }
    let period = doc.period.unwrap_or_else(|| DEFAULT_PERIOD.to_string());
    if parse_duration(&period).is_none_or(|s| s <= 0) {
        return Err(format!(
            "period {period:?} is not a Vault duration like \"768h\""
        ));
    }
    let prefix = doc
        .display_name_prefix
        .unwrap_or_else(|| DEFAULT_PREFIX.to_string());
    if prefix.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("display_name_prefix contains whitespace or control characters".into());
    }
    let mut users = Vec::new();
    for (name, v) in doc.users {
        if !valid_user_key(&name) {
            return Err(format!(
                "user key {name:?} does not match ^[a-z_][a-z0-9_.-]*$"
            ));
        }
        let u: FileUser = serde_json::from_value(v).map_err(|e| format!("users.{name}: {e}"))?;
        if u.mint_policies.is_empty() {
            return Err(format!("users.{name}.mint_policies is empty"));
        }
        for (i, p) in u.mint_policies.iter().enumerate() {
            if p.trim().is_empty() {
                return Err(format!("users.{name}.mint_policies has an empty name"));
            }
            if u.mint_policies[..i].contains(p) {
                return Err(format!("users.{name}.mint_policies lists {p:?} twice"));
            }
        }
        if u.required_policy.trim().is_empty() {
            return Err(format!("users.{name}.required_policy is empty"));
        }
        if u.required_policy == "default" {
            return Err(format!(
                "users.{name}.required_policy must not be \"default\" (every token has it)"
            ));
        }
        if !u.mint_policies.contains(&u.required_policy) {
            return Err(format!(
                "users.{name}.required_policy {:?} is not in mint_policies",
                u.required_policy
            ));
        }
        users.push((
            name,
            UserEntry {
                required_policy: u.required_policy,
                mint_policies: u.mint_policies,
                remint_hint: u.remint_hint.filter(|h| !h.trim().is_empty()),
            },
        ));
    }
    Ok(UserMap {
        period,
        display_name_prefix: prefix,
        users,
        source: source.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addr_rules() {
        assert_eq!(validate_addr("http://h:8200/").unwrap(), "http://h:8200");
        assert_eq!(
            validate_addr("https://v.example").unwrap(),
            "https://v.example"
        );
        assert!(validate_addr("ftp://h").unwrap_err().contains("scheme"));
        assert!(validate_addr("vault.example").is_err());
        assert!(validate_addr("http://").is_err());
        assert!(validate_addr("http://u:p@h").is_err());
        // Found by the addr_accepts_only_clean_urls property: `@` in the path.
        assert!(validate_addr("http://a/@").is_err());
    }

    #[test]
    fn good_file() {
        let m = parse_user_map(
            br#"{"version":1,"users":{"root":{"required_policy":"a","mint_policies":["a","b"],"remint_hint":"ask"}}}"#,
            "/x.json",
        )
        .unwrap();
        assert_eq!(m.period, "768h");
        assert_eq!(m.display_name_prefix, "devvm-");
        assert_eq!(m.users[0].0, "root");
        assert_eq!(m.users[0].1.remint_hint.as_deref(), Some("ask"));
        assert_eq!(m.source, "/x.json");
    }

    #[test]
    fn bad_files_name_the_problem() {
        let cases: &[(&str, &str)] = &[
            ("{", "invalid JSON"),
            (r#"{"version":2,"users":{}}"#, "version 2"),
            (
                r#"{"version":1,"users":{"a":{"required_policy":"x","mint_policies":["y"]}}}"#,
                "not in mint_policies",
            ),
            (
                r#"{"version":1,"users":{"a":{"required_policy":"default","mint_policies":["default"]}}}"#,
                "must not be \"default\"",
            ),
            (
                r#"{"version":1,"users":{"a":{"required_policy":"x","mint_policies":[]}}}"#,
                "is empty",
            ),
            (
                r#"{"version":1,"users":{"a":{"required_policy":"x","mint_policies":["x","x"]}}}"#,
                "twice",
            ),
            (
                r#"{"version":1,"users":{"a":{"required_policy":"x","mint_policies":["x",""]}}}"#,
                "empty name",
            ),
            (
                r#"{"version":1,"users":{"A":{"required_policy":"x","mint_policies":["x"]}}}"#,
                "does not match",
            ),
            (r#"{"version":1,"period":"soon","users":{}}"#, "period"),
            (r#"{"version":1,"users":{},"extra":1}"#, "unknown field"),
        ];
        for (doc, want) in cases {
            let e = parse_user_map(doc.as_bytes(), "f").unwrap_err();
            assert!(e.contains(want), "{doc}: {e}");
        }
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn host() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9]{1,12}(\\.[a-z0-9-]{1,10}){0,3}",
            "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
            "\\[[0-9a-f:]{2,20}\\]",
        ]
    }

    fn user_entry() -> impl Strategy<Value = (Vec<String>, usize, Option<String>)> {
        proptest::collection::btree_set("[a-z][a-z0-9_-]{0,12}", 1..5)
            .prop_filter("default is never required", |s| !s.contains("default"))
            .prop_flat_map(|set| {
                let v: Vec<String> = set.into_iter().collect();
                let n = v.len();
                (Just(v), 0..n, proptest::option::of("[ -~]{0,20}"))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any string: no panic; an accepted address is http(s)://host without a trailing `/`,
        /// user info, query, fragment or whitespace, and validating it again is the identity.
        #[test]
        fn addr_accepts_only_clean_urls(s in "\\PC{0,40}|(https?|ftp)://[a-z@:/?#. \t]{0,20}") {
            if let Ok(a) = validate_addr(&s) {
                prop_assert!(a.starts_with("http://") || a.starts_with("https://"), "{}", a);
                prop_assert!(!a.ends_with('/'));
                prop_assert!(!a.contains(['@', '?', '#']) && !a.chars().any(|c| c.is_whitespace() || c.is_control()));
                prop_assert_eq!(validate_addr(&a), Ok(a.clone()));
            }
        }

        /// Well-formed addresses (any scheme case of http/https, port, path, trailing slashes,
        /// surrounding blanks) are accepted as written minus the blanks and trailing slashes;
        /// adding user info, a query or a fragment is refused.
        #[test]
        fn addr_round_trips(
            tls in any::<bool>(), h in host(), port in proptest::option::of(1u16..),
            path in "(/[a-z0-9._-]{1,8}){0,3}", slashes in "/{0,3}", pad in "[ \t\n]{0,2}",
            bad in prop_oneof![Just("u:p@"), Just("u@")], tail in prop_oneof![Just("?x=1"), Just("#f"), Just(" x")],
        ) {
            let scheme = if tls { "https" } else { "http" };
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let want = format!("{scheme}://{h}{port}{path}");
            prop_assert_eq!(validate_addr(&format!("{pad}{want}{slashes}{pad}")), Ok(want.clone()));
            let with_userinfo = format!("{scheme}://{bad}{h}{port}{path}");
            let with_tail = format!("{want}{tail}");
            let ftp = format!("ftp://{h}{port}{path}");
            prop_assert!(validate_addr(&with_userinfo).is_err());
            prop_assert!(validate_addr(&with_tail).is_err());
            prop_assert!(validate_addr(&ftp).is_err());
        }

        /// `valid_user_key` is exactly `^[a-z_][a-z0-9_.-]*$`.
        #[test]
        fn user_key_rule(good in "[a-z_][a-z0-9_.-]{0,40}", bad in "[^a-z0-9_.-]", at in any::<prop::sample::Index>(), lead in "[0-9.-]") {
            prop_assert!(valid_user_key(&good));
            let mut chars: Vec<char> = good.chars().collect();
            chars.insert(at.index(chars.len() + 1), bad.chars().next().unwrap());
            prop_assert!(!valid_user_key(&chars.into_iter().collect::<String>()));
            let led = format!("{lead}{good}");
            prop_assert!(!valid_user_key(&led));
            prop_assert!(!valid_user_key(""));
        }

        /// Any bytes or any JSON as the user-map file: no panic, and whatever is accepted
        /// satisfies every §2.4.3 rule.
        #[test]
        fn user_map_any_input_is_checked(
            raw in proptest::collection::vec(any::<u8>(), 0..200),
            users in crate::decide::props::arb_json(),
            period in proptest::option::of("[0-9]{0,4}[smhd]?|\\PC{0,6}"),
        ) {
            let doc = json!({"version": 1, "period": period, "users": users});
            for text in [raw, serde_json::to_vec(&doc).unwrap(), serde_json::to_vec(&users).unwrap()] {
                let Ok(m) = parse_user_map(&text, "f") else { continue };
                prop_assert!(parse_duration(&m.period).is_some_and(|s| s > 0));
                for (k, u) in &m.users {
                    prop_assert!(valid_user_key(k));
                    prop_assert!(u.mint_policies.contains(&u.required_policy));
                    prop_assert!(u.required_policy != "default" && !u.required_policy.trim().is_empty());
                }
            }
        }

        /// A generated valid map parses back to what was written (users compared as a set).
        #[test]
        fn user_map_round_trips(
            entries in proptest::collection::btree_map("[a-z_][a-z0-9_.-]{0,10}", user_entry(), 0..5),
            period in proptest::option::of("[1-9][0-9]{0,3}[smhd]"), prefix in proptest::option::of("[!-~]{0,10}"),
        ) {
            let users: serde_json::Map<String, serde_json::Value> = entries.iter().map(|(k, (pols, req, hint))| {
                (k.clone(), json!({"required_policy": pols[*req], "mint_policies": pols, "remint_hint": hint}))
            }).collect();
            let mut doc = json!({"version": 1, "users": users});
            if let Some(p) = &period { doc["period"] = json!(p); }
            if let Some(p) = &prefix { doc["display_name_prefix"] = json!(p); }
            let m = parse_user_map(&serde_json::to_vec(&doc).unwrap(), "src").unwrap();
            prop_assert_eq!(&m.period, period.as_deref().unwrap_or(DEFAULT_PERIOD));
            prop_assert_eq!(&m.display_name_prefix, prefix.as_deref().unwrap_or(DEFAULT_PREFIX));
            prop_assert_eq!(m.users.len(), entries.len());
            for (k, u) in &m.users {
                let (pols, req, hint) = &entries[k];
                prop_assert_eq!(&u.mint_policies, pols);
                prop_assert_eq!(&u.required_policy, &pols[*req]);
                prop_assert_eq!(&u.remint_hint, &hint.clone().filter(|h| !h.trim().is_empty()));
            }
        }

        /// VTR_HTTP_TIMEOUT: any text never panics; accepted exactly in (0, 3600] seconds, and
        /// the duration is the number written.
        #[test]
        fn http_timeout_bounds(s in "\\PC{0,12}|[-+]?[0-9]{0,5}(\\.[0-9]{0,4})?(e[0-9])?|NaN|inf", ms in 1u64..=3_600_000, pad in "[ \t]{0,2}") {
            let set = |t: &str| VaultSettings::from_opts(&Opts { http_timeout: Some(t.to_string()), ..Opts::default() });
            match set(&s) {
                Ok(v) if s.is_empty() => prop_assert_eq!(v.timeout, Duration::from_secs(30)),
                Ok(v) => {
                    let n: f64 = s.trim().parse().unwrap();
                    prop_assert!(n > 0.0 && n <= 3600.0);
                    prop_assert_eq!(v.timeout, Duration::from_secs_f64(n));
                }
                Err(e) => {
                    prop_assert_eq!(&e.what, "VTR_HTTP_TIMEOUT");
                    prop_assert!(s.trim().parse::<f64>().map_or(true, |n| !(n > 0.0 && n <= 3600.0)));
                }
            }
            let secs = ms as f64 / 1000.0;
            prop_assert_eq!(set(&format!("{pad}{secs}{pad}")).unwrap().timeout, Duration::from_secs_f64(secs));
            let over = (3600.0 + secs).to_string();
            let neg = format!("-{secs}");
            prop_assert!(set(&over).is_err());
            prop_assert!(set(&neg).is_err());
        }
    }
}
