//! `sslmode` as libpq means it (spec §3.1 "rustls per sslmode"). The `postgres` crate knows
//! only disable/prefer/require and has no `sslrootcert`, and a rustls connector verifies by
//! default — which would make the default `prefer` fail against CNPG's own CA. So the libpq TLS
//! options are split off the DSN here and mapped onto a rustls configuration:
//!
//! | sslmode | TLS | certificate check |
//! |---|---|---|
//! | `disable` | never | — |
//! | `allow`, `prefer` (default) | if the server offers it | none (libpq: encryption only) |
//! | `require` | always | none; with `sslrootcert` like `verify-ca` (libpq compatibility) |
//! | `verify-ca` | always | chain to `sslrootcert` (or the web PKI roots) |
//! | `verify-full` | always | chain and host name |

use homelab_core::tls::EncryptOnly;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A DSN with its libpq TLS options taken out.
#[derive(Debug, Clone)]
pub struct Dsn {
    pub config: postgres::Config,
    pub mode: TlsMode,
    pub root_cert: Option<PathBuf>,
}

/// Byte ranges of the whitespace-separated `key=value` words of a key/value DSN (quotes and
/// backslash escapes respected).
fn kv_words(s: &str) -> Vec<(usize, usize)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        let mut quoted = false;
        while i < b.len() && (quoted || !b[i].is_ascii_whitespace()) {
            match b[i] {
                b'\\' => i += 1,
                b'\'' => quoted = !quoted,
                _ => {}
            }
            i += 1;
        }
        out.push((start, i.min(b.len())));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    match v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
        Some(inner) => inner.replace("\\'", "'").replace("\\\\", "\\"),
        None => v.to_string(),
    }
}

/// Take `sslmode` and `sslrootcert` out of a URL or key/value DSN; returns the rest.
fn split_tls_options(dsn: &str) -> (String, Option<String>, Option<String>) {
    let (mut mode, mut root) = (None, None);
    let trimmed = dsn.trim_start();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        let Some((head, query)) = dsn.split_once('?') else {
            return (dsn.to_string(), None, None);
        };
        let (query, frag) = match query.split_once('#') {
            Some((q, f)) => (q, Some(f)),
            None => (query, None),
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|kv| match kv.split_once('=') {
                Some(("sslmode", v)) => {
                    mode = Some(percent_decode(v));
                    false
                }
                Some(("sslrootcert", v)) => {
                    root = Some(percent_decode(v));
                    false
                }
                _ => !kv.is_empty(),
            })
            .collect();
        let mut rest = head.to_string();
        if !kept.is_empty() {
            rest.push('?');
            rest.push_str(&kept.join("&"));
        }
        if let Some(f) = frag {
            rest.push('#');
            rest.push_str(f);
        }
        return (rest, mode, root);
    }
    let mut rest = String::with_capacity(dsn.len());
    for (s, e) in kv_words(dsn) {
        let word = &dsn[s..e];
        match word.split_once('=') {
            Some((k, v)) if k.trim() == "sslmode" => mode = Some(unquote(v)),
            Some((k, v)) if k.trim() == "sslrootcert" => root = Some(unquote(v)),
            _ => {
                if !rest.is_empty() {
                    rest.push(' ');
                }
                rest.push_str(word);
            }
        }
    }
    (rest, mode, root)
}

/// Parse a DSN the way libpq would for TLS; the error never repeats the DSN.
pub fn parse_dsn(dsn: &str) -> Result<Dsn, String> {
    let (rest, mode, root) = split_tls_options(dsn);
    let mode = match mode.as_deref() {
        None | Some("prefer") | Some("allow") => TlsMode::Prefer,
        Some("disable") => TlsMode::Disable,
        Some("require") if root.is_some() => TlsMode::VerifyCa,
        Some("require") => TlsMode::Require,
        Some("verify-ca") => TlsMode::VerifyCa,
        Some("verify-full") => TlsMode::VerifyFull,
        Some(other) => {
            return Err(format!(
                "sslmode={other} is not disable, allow, prefer, require, verify-ca or verify-full"
            ))
        }
    };
    let mut config: postgres::Config = rest.parse().map_err(|e: postgres::Error| e.to_string())?;
    config.ssl_mode(match mode {
        TlsMode::Disable => postgres::config::SslMode::Disable,
        TlsMode::Prefer => postgres::config::SslMode::Prefer,
        _ => postgres::config::SslMode::Require,
    });
    let root_cert = root.filter(|r| r != "system").map(PathBuf::from);
    Ok(Dsn {
        config,
        mode,
        root_cert,
    })
}

/// Verifies the chain but not the host name (libpq `verify-ca`).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The rustls client configuration for `mode` (not called for `Disable`).
pub fn client_config(
    mode: TlsMode,
    root_cert: Option<&std::path::Path>,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let config = match mode {
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            let mut roots = rustls::RootCertStore::empty();
            match root_cert {
                Some(path) => {
                    let pem = std::fs::read(path)
                        .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                    let certs = homelab_core::http::parse_pem_certs(&pem)
                        .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                    for c in certs {
                        roots
                            .add(CertificateDer::from(c.der().to_vec()))
                            .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            let verifier =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|e| format!("TLS roots: {e}"))?;
            if mode == TlsMode::VerifyFull {
                builder.with_webpki_verifier(verifier).with_no_client_auth()
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly(verifier)))
                    .with_no_client_auth()
            }
        }
    };
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(d: &str) -> (String, Option<String>, Option<String>) {
        split_tls_options(d)
    }

    #[test]
    fn tls_options_are_split_off_both_dsn_forms() {
        assert_eq!(
            split("postgres://u:p@h:5432/db?sslmode=verify-full&application_name=x&sslrootcert=%2Fca.pem"),
            (
                "postgres://u:p@h:5432/db?application_name=x".to_string(),
                Some("verify-full".into()),
                Some("/ca.pem".into())
            )
        );
        assert_eq!(
            split("postgresql://h/db?sslmode=require"),
            (
                "postgresql://h/db".to_string(),
                Some("require".into()),
                None
            )
        );
        assert_eq!(
            split("host=h password='a b sslmode=x' sslmode=verify-ca sslrootcert='/r/ca.pem' dbname=d"),
            (
                "host=h password='a b sslmode=x' dbname=d".to_string(),
                Some("verify-ca".into()),
                Some("/r/ca.pem".into())
            )
        );
        assert_eq!(
            split("host=h dbname=d"),
            ("host=h dbname=d".to_string(), None, None)
        );
    }

    #[test]
    fn modes_follow_libpq() {
        let m = |d: &str| parse_dsn(d).map(|x| x.mode);
        assert_eq!(m("host=h"), Ok(TlsMode::Prefer));
        assert_eq!(m("host=h sslmode=allow"), Ok(TlsMode::Prefer));
        assert_eq!(m("host=h sslmode=disable"), Ok(TlsMode::Disable));
        assert_eq!(m("postgres://h/d?sslmode=require"), Ok(TlsMode::Require));
        assert_eq!(
            m("postgres://h/d?sslmode=require&sslrootcert=/ca"),
            Ok(TlsMode::VerifyCa)
        );
        assert_eq!(m("host=h sslmode=verify-full"), Ok(TlsMode::VerifyFull));
        let e = m("host=h password=hunter2 sslmode=sometimes").unwrap_err();
        assert!(
            e.contains("sslmode=sometimes") && !e.contains("hunter2"),
            "{e}"
        );
        assert_eq!(
            parse_dsn("host=h sslmode=verify-full sslrootcert=system")
                .unwrap()
                .root_cert,
            None
        );
    }

    #[test]
    fn configs_build() {
        for m in [
            TlsMode::Prefer,
            TlsMode::Require,
            TlsMode::VerifyCa,
            TlsMode::VerifyFull,
        ] {
            assert!(client_config(m, None).is_ok(), "{m:?}");
        }
        let e = client_config(
            TlsMode::VerifyFull,
            Some(std::path::Path::new("/nonexistent/ca.pem")),
        )
        .unwrap_err();
        assert!(e.starts_with("sslrootcert /nonexistent/ca.pem: "), "{e}");
    }
}
