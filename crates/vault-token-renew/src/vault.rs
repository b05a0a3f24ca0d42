//! The Vault/OpenBao token API (spec §3) over `homelab_core::http`. Only this crate talks to
//! Vault, so the client lives here (§8.8).
//!
//! Guarantees: the token travels only in `X-Vault-Token` and only to the configured origin
//! (307/308 followed at most 3 times on the same scheme+host+port, §3.3) or, once, to the
//! active node an HA standby's 307 names over verified TLS (issue 15 item 6); reads and
//! renew-self are retried twice on transport errors and 5xx except 501, token creation never
//! (§3.4); every error is one line `<METHOD> <path>: …` of at most 500 chars without the token
//! (§4.3).

use crate::config::VaultSettings;
use crate::decide;
use homelab_core::http::{scrub, Client, HttpConfig, HttpErrorKind, Redirects, UrlParts};
use homelab_core::Secret;
use serde_json::{json, Value};
use std::time::Duration;

/// A failed Vault call: the HTTP status when there was an answer, and the one-line text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultError {
    pub status: Option<u16>,
    pub text: String,
}

impl std::fmt::Display for VaultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The token endpoints the tool uses; implemented over HTTP by [`HttpVault`].
pub trait TokenApi {
    fn lookup_self(&self, token: &Secret) -> Result<Value, VaultError>;
    fn renew_self(&self, token: &Secret) -> Result<Value, VaultError>;
    /// Never retried: a lost answer would strand a 32-day token.
    fn create(&self, token: &Secret, body: &Value) -> Result<Value, VaultError>;
    fn list_accessors(&self, token: &Secret) -> Result<Vec<String>, VaultError>;
    fn lookup_accessor(&self, token: &Secret, accessor: &str) -> Result<Value, VaultError>;
    fn revoke_accessor(&self, token: &Secret, accessor: &str) -> Result<(), VaultError>;
    fn revoke_self(&self, token: &Secret) -> Result<(), VaultError>;
    fn capabilities_self(&self, token: &Secret, paths: &[&str]) -> Result<Value, VaultError>;
    /// `GET /v1/sys/policies/acl/<name>` (dry-run: judge the minted token's scope).
    fn read_policy(&self, token: &Secret, name: &str) -> Result<Value, VaultError>;
}

pub struct HttpVault {
    client: Client,
    addr: String,
    namespace: Option<String>,
    retry_base: Duration,
}

const MAX_ERR: usize = 500;
const MAX_REDIRECTS: u32 = 3;

/// Make an error text one line, bounded, without control characters or secrets.
pub fn one_line(text: &str, secrets: &[&str]) -> String {
    let secrets: Vec<String> = secrets
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.to_string())
        .collect();
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let clean = scrub(&flat, &secrets);
    let escaped: String = clean
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                format!("\\x{:02x}", c as u32).chars().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if escaped.chars().count() <= MAX_ERR {
        escaped
    } else {
        let mut s: String = escaped.chars().take(MAX_ERR - 1).collect();
        s.push('…');
        s
    }
}

/// Whether a failed attempt may be retried (§3.4; 429 too, as §7 asks for "after retries").
fn retryable(e: &VaultError, transport: bool) -> bool {
    match e.status {
        Some(s) => (s >= 500 && s != 501) || s == 429,
        None => transport,
    }
}

impl HttpVault {
    pub fn new(s: &VaultSettings) -> Result<HttpVault, String> {
        let client = Client::new(&HttpConfig {
            connect_timeout: Duration::from_secs(10).min(s.timeout),
            total_timeout: s.timeout,
            ca_pem: s.ca_pem.clone(),
            client_cert_pem: s.client_pem.clone(),
            tls_server_name: s.tls_server_name.clone(),
            redirects: Redirects::Never,
            user_agent: concat!("vault-token-renew/", env!("CARGO_PKG_VERSION")).to_string(),
            ..HttpConfig::default()
        })
        .map_err(|e| e.reason())?;
        Ok(HttpVault {
            client,
            addr: s.addr.clone(),
            namespace: s.namespace.clone(),
            retry_base: Duration::from_secs(1),
        })
    }

    /// One call with the redirect rule; returns `(status, body)` of a 2xx or an error.
    /// `transport` in the error tuple tells whether it failed without any answer.
    fn call_once(
        &self,
        method: &str,
        path: &str,
        query: &str,
        token: &Secret,
        body: Option<&Value>,
    ) -> Result<Vec<u8>, (VaultError, bool)> {
        let secrets = [token.expose()];
        let err = |status: Option<u16>, reason: String, transport: bool| {
            (
                VaultError {
                    status,
                    text: one_line(&format!("{method} {path}: {reason}"), &secrets),
                },
                transport,
            )
        };
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap_or_default());
        let mut headers: Vec<(&str, &str)> = vec![
            ("X-Vault-Token", token.expose()),
            ("X-Vault-Request", "true"),
        ];
        if bytes.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        if let Some(ns) = &self.namespace {
            headers.push(("X-Vault-Namespace", ns.as_str()));
        }
        let mut url = format!("{}{path}{query}", self.addr);
        let mut hops = 0;
        let mut cross_hops = 0u32;
        loop {
            let resp = match self
                .client
                .request(method, &url, &headers, bytes.as_deref())
            {
                Ok(r) => r,
                Err(e) => {
                    let transport = !matches!(e.kind, HttpErrorKind::Config { .. });
                    return Err(err(None, e.reason(), transport));
                }
            };
            if (300..400).contains(&resp.status) && resp.status != 304 {
                let loc = resp.header("location").unwrap_or("").to_string();
                let next = if loc.contains("://") {
                    loc.clone()
                } else if loc.starts_with('/') {
                    UrlParts::parse(&url)
                        .map(|p| format!("{}://{}{loc}", p.scheme, p.host_port))
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                let target = UrlParts::parse(&next);
                let here = UrlParts::parse(&url).map(|p| p.origin());
                let refuse = |why: String| {
                    err(
                        Some(resp.status),
                        format!("HTTP {} {why}", resp.status),
                        false,
                    )
                };
                let Some(target) = target else {
                    return Err(refuse(if loc.is_empty() {
                        "without Location refused".into()
                    } else {
                        "redirect to an unusable Location refused".into()
                    }));
                };
                match decide::redirect(resp.status, here.as_deref(), &target, cross_hops) {
                    decide::Redirect::Follow { cross } => {
                        cross_hops += u32::from(cross);
                    }
                    decide::Redirect::Refuse(why) => return Err(refuse(why)),
                }
                hops += 1;
                if hops > MAX_REDIRECTS {
                    return Err(err(
                        Some(resp.status),
                        format!("more than {MAX_REDIRECTS} redirects"),
                        false,
                    ));
                }
                url = next;
                continue;
            }
            if resp.is_success() {
                return Ok(resp.body);
            }
            let reason = match serde_json::from_slice::<Value>(&resp.body)
                .ok()
                .and_then(|v| v.get("errors").and_then(Value::as_array).cloned())
            {
                Some(errs) => {
                    let msgs: Vec<&str> = errs.iter().filter_map(Value::as_str).collect();
                    if msgs.is_empty() {
                        format!("HTTP {}", resp.status)
                    } else {
                        format!("HTTP {}: {}", resp.status, msgs.join("; "))
                    }
                }
                None => {
                    let body = homelab_core::http::excerpt(&resp.text(), 200, &[]);
                    if body.is_empty() {
                        format!("HTTP {}", resp.status)
                    } else {
                        format!("HTTP {}: {body}", resp.status)
                    }
                }
            };
            return Err(err(Some(resp.status), reason, false));
        }
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        query: &str,
        token: &Secret,
        body: Option<&Value>,
        retry: bool,
    ) -> Result<Vec<u8>, VaultError> {
        let mut attempt = 0;
        loop {
            match self.call_once(method, path, query, token, body) {
                Ok(b) => return Ok(b),
                Err((e, transport)) => {
                    if !retry || attempt >= 2 || !retryable(&e, transport) {
                        return Err(e);
                    }
                    attempt += 1;
                    std::thread::sleep(self.retry_base + jitter(self.retry_base / 2));
                }
            }
        }
    }

    fn call_json(
        &self,
        method: &str,
        path: &str,
        query: &str,
        token: &Secret,
        body: Option<&Value>,
        retry: bool,
    ) -> Result<Value, VaultError> {
        let bytes = self.call(method, path, query, token, body, retry)?;
        serde_json::from_slice(&bytes).map_err(|_| VaultError {
            status: None,
            text: format!("{method} {path}: invalid JSON from {path}"),
        })
    }
}

/// A pseudo-random fraction of `max` (backoff jitter; no RNG dependency needed).
fn jitter(max: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    max.mul_f64(f64::from(nanos % 1000) / 1000.0)
}

/// An error for a 2xx whose JSON lacks what the step needs.
pub fn shape_error(method: &str, path: &str, what: &str) -> VaultError {
    VaultError {
        status: None,
        text: format!("{method} {path}: invalid JSON from {path} ({what})"),
    }
}

pub const LOOKUP_SELF: &str = "/v1/auth/token/lookup-self";
pub const RENEW_SELF: &str = "/v1/auth/token/renew-self";
pub const CREATE: &str = "/v1/auth/token/create";
pub const ACCESSORS: &str = "/v1/auth/token/accessors";
pub const LOOKUP_ACCESSOR: &str = "/v1/auth/token/lookup-accessor";
pub const REVOKE_ACCESSOR: &str = "/v1/auth/token/revoke-accessor";
pub const REVOKE_SELF: &str = "/v1/auth/token/revoke-self";
pub const CAPABILITIES_SELF: &str = "/v1/sys/capabilities-self";

impl TokenApi for HttpVault {
    fn lookup_self(&self, token: &Secret) -> Result<Value, VaultError> {
        self.call_json("GET", LOOKUP_SELF, "", token, None, true)
    }
    fn renew_self(&self, token: &Secret) -> Result<Value, VaultError> {
        self.call_json("PUT", RENEW_SELF, "", token, Some(&json!({})), true)
    }
    fn create(&self, token: &Secret, body: &Value) -> Result<Value, VaultError> {
        self.call_json("POST", CREATE, "", token, Some(body), false)
    }
    fn list_accessors(&self, token: &Secret) -> Result<Vec<String>, VaultError> {
        let v = self.call_json("GET", ACCESSORS, "?list=true", token, None, true)?;
        let keys = v["data"]["keys"]
            .as_array()
            .ok_or_else(|| shape_error("LIST", ACCESSORS, "data.keys missing"))?;
        Ok(keys
            .iter()
            .filter_map(Value::as_str)
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect())
    }
    fn lookup_accessor(&self, token: &Secret, accessor: &str) -> Result<Value, VaultError> {
        let body = json!({ "accessor": accessor });
        self.call_json("POST", LOOKUP_ACCESSOR, "", token, Some(&body), true)
    }
    fn revoke_accessor(&self, token: &Secret, accessor: &str) -> Result<(), VaultError> {
        let body = json!({ "accessor": accessor });
        self.call("POST", REVOKE_ACCESSOR, "", token, Some(&body), false)
            .map(|_| ())
    }
    fn revoke_self(&self, token: &Secret) -> Result<(), VaultError> {
        self.call("POST", REVOKE_SELF, "", token, None, false)
            .map(|_| ())
    }
    fn capabilities_self(&self, token: &Secret, paths: &[&str]) -> Result<Value, VaultError> {
        let body = json!({ "paths": paths });
        self.call_json("POST", CAPABILITIES_SELF, "", token, Some(&body), true)
    }
    fn read_policy(&self, token: &Secret, name: &str) -> Result<Value, VaultError> {
        // Policy names are validated by the user map (no `/`, `?`, `#`).
        let path = format!("/v1/sys/policies/acl/{name}");
        self.call_json("GET", &path, "", token, None, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_flattens_scrubs_and_bounds() {
        let s = one_line(
            "GET /x: HTTP 403: 1 error occurred:\n\t* permission denied\n\n",
            &[],
        );
        assert_eq!(s, "GET /x: HTTP 403: 1 error occurred: * permission denied");
        assert_eq!(
            one_line("bad s.TOKEN123 here", &["s.TOKEN123"]),
            "bad *** here"
        );
        assert_eq!(one_line("a\u{1b}b", &[]), "a\\x1bb");
        let long = one_line(&"x".repeat(2000), &[]);
        assert_eq!(long.chars().count(), 500);
    }

    #[test]
    fn retry_rule() {
        let e = |s| VaultError {
            status: s,
            text: String::new(),
        };
        assert!(retryable(&e(Some(503)), false));
        assert!(retryable(&e(Some(500)), false));
        assert!(!retryable(&e(Some(501)), false));
        assert!(!retryable(&e(Some(403)), false));
        assert!(retryable(&e(Some(429)), false));
        assert!(retryable(&e(None), true));
        assert!(!retryable(&e(None), false));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any error text (controls, newlines, huge) with a Vault-shaped token anywhere in it:
        /// the result is one line of ≤ 500 chars, no control character, and never the token.
        #[test]
        fn one_line_is_bounded_clean_and_secret_free(
            a in "\\PC{0,300}|[\\x00-\\x1f\\x7f\\u{85}\\u{2028} a-z]{0,300}",
            b in "\\PC{0,300}|[\\x00-\\x1f\\x7f a-z]{0,700}",
            token in "(hvs|s|hvb|b)\\.[A-Za-z0-9]{8,40}",
            other in "[A-Za-z0-9.]{0,12}",
        ) {
            let text = format!("{a}{token}{b}{token}");
            let out = one_line(&text, &[&other, &token]);
            prop_assert!(!out.contains(&token), "{}", out);
            prop_assert!(out.chars().count() <= MAX_ERR);
            prop_assert!(!out.chars().any(|c| c.is_control() || c == '\n'));
            // Without secrets and for short plain text, only whitespace runs change.
            let plain = one_line(&a, &[]);
            if !a.chars().any(char::is_control) && a.chars().count() <= MAX_ERR {
                prop_assert_eq!(plain, a.split_whitespace().collect::<Vec<_>>().join(" "));
            }
        }
    }
}
