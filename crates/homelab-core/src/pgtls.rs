//! Postgres `sslmode` as libpq means it, for every binary that talks to Postgres over rustls
//! (edges-digest, goldmane-edge-aggregator). Neither `postgres` nor `tokio-postgres` knows
//! `verify-ca`/`verify-full` or `sslrootcert`, and a rustls connector verifies by default —
//! which would make the default `prefer` fail against CNPG's own CA. So the libpq TLS options
//! are split off the DSN here and mapped onto a rustls configuration:
//!
//! | sslmode | TLS | certificate check |
//! |---|---|---|
//! | `disable` | never | — |
//! | `allow`, `prefer` (default) | if the server offers it | none (libpq: encryption only) |
//! | `require` | always | none; with `sslrootcert` like `verify-ca` (libpq compatibility) |
//! | `verify-ca` | always | chain to `sslrootcert` (or the web PKI roots) |
//! | `verify-full` | always | chain and host name |
//!
//! `sslrootcert=system` means the web PKI roots. This module is driver-free: the remaining DSN
//! text goes to the binary's own `postgres`/`tokio-postgres` parser, and the binary maps
//! [`TlsMode`] onto the driver's `SslMode` (disable / prefer / require for everything else).

use crate::tls::EncryptOnly;
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

/// A DSN with its libpq TLS options taken out: `rest` is for the driver's own parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitDsn {
    pub rest: String,
    pub mode: TlsMode,
    /// `None` for no `sslrootcert` and for `sslrootcert=system` (web PKI roots).
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
        if b[i] == b'%'
            && i + 2 < b.len()
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit()
        {
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

/// Take `sslmode` and `sslrootcert` out of a URL or key/value DSN; returns the rest and the two
/// raw values (URL values percent-decoded, key/value values unquoted).
pub fn split_tls_options(dsn: &str) -> (String, Option<String>, Option<String>) {
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

/// Split the libpq TLS options off a URL or key/value DSN and decide the mode as libpq does.
/// The only error is an unknown `sslmode`; it names that value and never repeats the DSN.
pub fn split_dsn(dsn: &str) -> Result<SplitDsn, String> {
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
    let root_cert = root.filter(|r| r != "system").map(PathBuf::from);
    Ok(SplitDsn {
        rest,
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
                    let certs = crate::http::parse_pem_certs(&pem)
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
        // A fragment survives; an empty query disappears.
        assert_eq!(
            split("postgres://h/d?sslmode=disable#f"),
            ("postgres://h/d#f".to_string(), Some("disable".into()), None)
        );
    }

    #[test]
    fn modes_follow_libpq() {
        let m = |d: &str| split_dsn(d).map(|x| x.mode);
        assert_eq!(m("host=h"), Ok(TlsMode::Prefer));
        assert_eq!(m("host=h sslmode=prefer"), Ok(TlsMode::Prefer));
        assert_eq!(m("host=h sslmode=allow"), Ok(TlsMode::Prefer));
        assert_eq!(m("host=h sslmode=disable"), Ok(TlsMode::Disable));
        assert_eq!(m("postgres://h/d?sslmode=require"), Ok(TlsMode::Require));
        assert_eq!(
            m("postgres://h/d?sslmode=require&sslrootcert=/ca"),
            Ok(TlsMode::VerifyCa)
        );
        assert_eq!(m("host=h sslmode=verify-ca"), Ok(TlsMode::VerifyCa));
        assert_eq!(m("host=h sslmode=verify-full"), Ok(TlsMode::VerifyFull));
        let e = m("host=h password=hunter2 sslmode=sometimes").unwrap_err();
        assert!(
            e.contains("sslmode=sometimes") && !e.contains("hunter2"),
            "{e}"
        );
        let e = m("postgres://u:hunter2@h/d?sslmode=verify").unwrap_err();
        assert!(
            e.starts_with("sslmode=verify is not ") && !e.contains("hunter2"),
            "{e}"
        );
        let s = split_dsn("host=h sslmode=verify-full sslrootcert=system").unwrap();
        assert_eq!((s.rest.as_str(), s.root_cert), ("host=h", None));
        let s =
            split_dsn("postgres://u:pw@h/d?sslrootcert=%2Fr%2Fca.pem&sslmode=verify-ca").unwrap();
        assert_eq!(s.rest, "postgres://u:pw@h/d");
        assert_eq!(s.root_cert, Some(PathBuf::from("/r/ca.pem")));
    }

    #[test]
    fn percent_decode_regressions() {
        // Found by `parse_dsn_never_panics` (edges-digest): a `%` before a multi-byte
        // character sliced inside it and panicked.
        assert_eq!(percent_decode("%Ⱥ"), "%Ⱥ");
        assert_eq!(percent_decode("%\0¡"), "%\0¡");
        assert!(split_dsn("postgres://?sslmode=%\0¡").is_err());
        assert!(split_dsn("postgres://h/d?sslmode=%aé").is_err());
        // `from_str_radix` takes a sign: `%+1` is not an escape.
        assert_eq!(percent_decode("%+1%2F%2f"), "%+1//");
    }

    #[test]
    fn configs_build() {
        for m in [
            TlsMode::Disable,
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
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a pem\n").unwrap();
        let e = client_config(TlsMode::VerifyCa, Some(&junk)).unwrap_err();
        assert!(
            e.starts_with(&format!("sslrootcert {}: ", junk.display())),
            "{e}"
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Every byte as `%XX` (upper or lower hex).
        fn encode_all(s: &str, lower: bool) -> String {
            s.bytes()
                .map(|b| {
                    if lower {
                        format!("%{b:02x}")
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// URL query values: decode(encode(s)) == s for any text; text without a `%`
            /// followed by two hex digits passes through unchanged (no panic on any input).
            #[test]
            fn percent_decode_round_trips(s in ".{0,40}", lower in any::<bool>(), junk in "([%+-]|.){0,20}") {
                prop_assert_eq!(percent_decode(&encode_all(&s, lower)), s.clone());
                let has_escape = junk.as_bytes().windows(3).any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit());
                let out = percent_decode(&junk);
                if !has_escape {
                    prop_assert_eq!(out, junk);
                }
            }

            /// Arbitrary text, percent escapes and quoted key/value words never panic the
            /// splitter; what it keeps never contains an `sslmode`/`sslrootcert` option.
            #[test]
            fn split_never_panics_and_removes_the_options(s in prop_oneof![
                ".{0,80}",
                "(postgres|postgresql)://[a-z:@/]{0,12}\\?((sslmode|sslrootcert|application_name)=([a-z%0-9]|.){0,6}&?){0,3}(#.{0,4})?",
                "[ ]?(([a-z]{1,10}|sslmode|sslrootcert) ?= ?('([^']|\\\\')*'?|[^ ]{0,6}|\\\\.) ?){0,5}",
            ]) {
                let (rest, _, _) = split_tls_options(&s);
                let _ = split_dsn(&s);
                if (s.starts_with("postgres://") || s.starts_with("postgresql://")) && !s.contains('#') {
                    let q = rest.split_once('?').map(|x| x.1).unwrap_or("");
                    for kv in q.split('&') {
                        prop_assert!(!kv.starts_with("sslmode=") && !kv.starts_with("sslrootcert="), "{}", rest);
                    }
                }
            }

            /// An unknown sslmode is rejected in both forms without echoing the password.
            #[test]
            fn password_never_in_the_error(
                user in "[a-z]{1,8}",
                pw in "PW[A-Z0-9]{6,14}",
                host in "[a-z]{1,10}",
                mode in "[a-z]{0,3}(bogus|verify|x)[0-9]{0,4}",
                quoted in any::<bool>(),
            ) {
                let url = format!("postgres://{user}:{pw}@{host}:5432/db?sslmode={mode}");
                let p = if quoted { format!("'{pw}'") } else { pw.clone() };
                let kv = format!("host={host} user={user} password={p} dbname=db sslmode={mode}");
                for dsn in [url, kv] {
                    let e = split_dsn(&dsn).expect_err(&dsn);
                    prop_assert!(!e.contains("PW"), "{}", e);
                    prop_assert!(e.starts_with(&format!("sslmode={mode} is not ")), "{}", e);
                }
            }
        }
    }
}
