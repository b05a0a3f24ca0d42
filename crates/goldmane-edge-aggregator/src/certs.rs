//! Client certificate material (§2.2), the rustls client config for Goldmane (§3.3) and
//! TLS error classification (§3.3.2). Key bytes never reach a log line or error.

use homelab_core::tls::EncryptOnly;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::Arc;

/// Parsed, validated client material.
#[derive(Debug)]
pub struct Material {
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    pub roots: Arc<RootCertStore>,
    pub leaf: LeafInfo,
}

impl Clone for Material {
    fn clone(&self) -> Self {
        Material {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            roots: self.roots.clone(),
            leaf: self.leaf.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafInfo {
    pub subject_cn: String,
    pub issuer_cn: String,
    pub not_before: i64,
    pub not_after: i64,
}

/// (variable, reason) — the variable names the file at fault.
pub type CertError = (&'static str, String);

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(var: &'static str, path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|e| (var, format!("cannot read {}: {e}", path.display())))
}

/// Read cert, key and CA from disk and check they fit together.
pub fn load(cert: &Path, key: &Path, ca: &Path) -> Result<Material, CertError> {
    let cert_pem = read("GOLDMANE_CLIENT_CERT", cert)?;
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| {
            (
                "GOLDMANE_CLIENT_CERT",
                format!("{}: unparseable PEM: {e}", cert.display()),
            )
        })?;
    if chain.is_empty() {
        return Err((
            "GOLDMANE_CLIENT_CERT",
            format!("{}: no PEM certificate found", cert.display()),
        ));
    }
    let leaf = leaf_info(&chain[0]).ok_or_else(|| {
        (
            "GOLDMANE_CLIENT_CERT",
            format!("{}: leaf certificate is not valid X.509", cert.display()),
        )
    })?;
    let key_pem = read("GOLDMANE_CLIENT_KEY", key)?;
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|_| {
            (
                "GOLDMANE_CLIENT_KEY",
                format!("{}: unparseable PEM", key.display()),
            )
        })?
        .ok_or_else(|| {
            (
                "GOLDMANE_CLIENT_KEY",
                format!(
                    "{}: no PKCS#1, PKCS#8 or SEC1 private key found",
                    key.display()
                ),
            )
        })?;
    let signing = provider()
        .key_provider
        .load_private_key(key_der.clone_key())
        .map_err(|_| {
            (
                "GOLDMANE_CLIENT_KEY",
                format!("{}: unsupported or corrupt private key", key.display()),
            )
        })?;
    let ck = rustls::sign::CertifiedKey::new(chain.clone(), signing);
    if let Err(rustls::Error::InconsistentKeys(_)) = ck.keys_match() {
        return Err((
            "GOLDMANE_CLIENT_KEY",
            format!(
                "{}: key does not match the leaf certificate in GOLDMANE_CLIENT_CERT",
                key.display()
            ),
        ));
    }
    let ca_pem = read("GOLDMANE_CA", ca)?;
    let ca_certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut ca_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| {
            (
                "GOLDMANE_CA",
                format!("{}: unparseable PEM: {e}", ca.display()),
            )
        })?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(ca_certs);
    if added == 0 {
        return Err((
            "GOLDMANE_CA",
            format!("{}: no usable CA certificate", ca.display()),
        ));
    }
    Ok(Material {
        chain,
        key: key_der,
        roots: Arc::new(roots),
        leaf,
    })
}

/// The rustls client config for one connect: TLS 1.2/1.3, ALPN h2, client cert + chain.
pub fn client_config(m: &Material, insecure: bool) -> Result<ClientConfig, rustls::Error> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
    } else {
        builder.with_root_certificates(m.roots.clone())
    };
    let mut cfg = builder.with_client_auth_cert(m.chain.clone(), m.key.clone_key())?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

/// §3.3.2 classes for L-TLS and the `tls` reconnect reason.
pub fn classify_tls_error(e: &rustls::Error) -> &'static str {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(C::UnknownIssuer | C::BadSignature | C::InvalidPurpose) => {
            "unknown_ca"
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => "bad_name",
        E::InvalidCertificate(
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
        ) => "server_cert_expired",
        E::AlertReceived(
            A::BadCertificate
            | A::UnknownCA
            | A::CertificateExpired
            | A::CertificateRequired
            | A::CertificateUnknown
            | A::CertificateRevoked
            | A::UnsupportedCertificate
            | A::AccessDenied
            | A::DecryptError,
        ) => "client_rejected",
        _ => "other",
    }
}

/// Find a rustls error anywhere in an error's source chain (through io::Error wrappers).
pub fn find_tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(t) = inner.downcast_ref::<rustls::Error>() {
                    return Some(t);
                }
            }
        }
        cur = err.source();
    }
    None
}

// ---- minimal DER reading for the leaf's subject/issuer CN and validity -----------------

fn tlv(d: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *d.first()?;
    let l0 = *d.get(1)? as usize;
    let (len, hdr) = if l0 < 0x80 {
        (l0, 2)
    } else {
        let n = l0 & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *d.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len)?;
    if end > d.len() {
        return None;
    }
    Some((tag, &d[hdr..end], &d[end..]))
}

fn common_name(name: &[u8]) -> String {
    let mut rest = name;
    while let Some((0x31, set, next)) = tlv(rest) {
        let mut atvs = set;
        while let Some((0x30, atv, more)) = tlv(atvs) {
            if let Some((0x06, oid, val)) = tlv(atv) {
                if oid == [0x55, 0x04, 0x03] {
                    if let Some((_, v, _)) = tlv(val) {
                        return String::from_utf8_lossy(v).into_owned();
                    }
                }
            }
            atvs = more;
        }
        rest = next;
    }
    "-".to_string()
}

fn der_time(tag: u8, v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i32 = s.get(0..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, s.get(2..)?)
        }
        0x18 => (s.get(0..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    let n = |i: usize| -> Option<u8> { rest.get(i..i + 2)?.parse().ok() };
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(n(0)?).ok()?, n(2)?).ok()?;
    let t = time::Time::from_hms(n(4)?, n(6)?, n(8).unwrap_or(0)).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// Subject CN, issuer CN and validity of a certificate.
pub fn leaf_info(cert: &[u8]) -> Option<LeafInfo> {
    let (0x30, c, _) = tlv(cert)? else {
        return None;
    };
    let (0x30, tbs, _) = tlv(c)? else { return None };
    let mut r = tbs;
    let (tag, _, next) = tlv(r)?;
    if tag == 0xa0 {
        r = next;
        r = tlv(r)?.2; // serial
    } else {
        r = next; // that was the serial (v1)
    }
    r = tlv(r)?.2; // signature algorithm
    let (_, issuer, next) = tlv(r)?;
    let (_, validity, next) = tlv(next)?;
    let (_, subject, _) = tlv(next)?;
    let (t1, nb, vrest) = tlv(validity)?;
    let (t2, na, _) = tlv(vrest)?;
    Some(LeafInfo {
        subject_cn: common_name(subject),
        issuer_cn: common_name(issuer),
        not_before: der_time(t1, nb)?,
        not_after: der_time(t2, na)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::{AlertDescription, CertificateError, Error};

    #[test]
    fn tls_error_classes() {
        assert_eq!(
            classify_tls_error(&Error::InvalidCertificate(CertificateError::UnknownIssuer)),
            "unknown_ca"
        );
        assert_eq!(
            classify_tls_error(&Error::InvalidCertificate(
                CertificateError::NotValidForName
            )),
            "bad_name"
        );
        assert_eq!(
            classify_tls_error(&Error::InvalidCertificate(CertificateError::Expired)),
            "server_cert_expired"
        );
        assert_eq!(
            classify_tls_error(&Error::AlertReceived(AlertDescription::CertificateRequired)),
            "client_rejected"
        );
        assert_eq!(
            classify_tls_error(&Error::AlertReceived(AlertDescription::BadCertificate)),
            "client_rejected"
        );
        assert_eq!(
            classify_tls_error(&Error::AlertReceived(AlertDescription::HandshakeFailure)),
            "other"
        );
        assert_eq!(classify_tls_error(&Error::DecryptError), "other");
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            Error::AlertReceived(AlertDescription::UnknownCA),
        );
        assert_eq!(
            find_tls_error(&io).map(classify_tls_error),
            Some("client_rejected")
        );
    }

    #[test]
    fn der_times() {
        assert_eq!(der_time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(der_time(0x18, b"20300101000000Z"), Some(1_893_456_000));
        assert_eq!(der_time(0x17, b"garbage"), None);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn enc(tag: u8, content: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            let n = content.len();
            if n < 0x80 {
                out.push(n as u8);
            } else {
                let bytes: Vec<u8> = n
                    .to_be_bytes()
                    .into_iter()
                    .skip_while(|b| *b == 0)
                    .collect();
                out.push(0x80 | bytes.len() as u8);
                out.extend(bytes);
            }
            out.extend_from_slice(content);
            out
        }

        fn name(cn: Option<&str>) -> Vec<u8> {
            let mut rdns = enc(
                0x31,
                &enc(
                    0x30,
                    &[enc(0x06, &[0x55, 0x04, 0x0a]), enc(0x0c, b"org")].concat(),
                ),
            );
            if let Some(cn) = cn {
                let atv = [enc(0x06, &[0x55, 0x04, 0x03]), enc(0x0c, cn.as_bytes())].concat();
                rdns.extend(enc(0x31, &enc(0x30, &atv)));
            }
            enc(0x30, &rdns)
        }

        /// UTCTime for 1950–2049 (as RFC 5280 demands), GeneralizedTime otherwise.
        fn der_time_enc(t: i64) -> Vec<u8> {
            let d = time::OffsetDateTime::from_unix_timestamp(t).unwrap();
            let hms = format!(
                "{:02}{:02}{:02}{:02}{:02}Z",
                d.month() as u8,
                d.day(),
                d.hour(),
                d.minute(),
                d.second()
            );
            if (1950..2050).contains(&d.year()) {
                enc(0x17, format!("{:02}{hms}", d.year() % 100).as_bytes())
            } else {
                enc(0x18, format!("{:04}{hms}", d.year()).as_bytes())
            }
        }

        fn cert(
            subject: Option<&str>,
            issuer: Option<&str>,
            nb: i64,
            na: i64,
            v3: bool,
            serial: &[u8],
        ) -> Vec<u8> {
            let alg = enc(
                0x30,
                &enc(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]),
            );
            let mut tbs = Vec::new();
            if v3 {
                tbs.extend(enc(0xa0, &enc(0x02, &[2])));
            }
            tbs.extend(enc(0x02, serial));
            tbs.extend(&alg);
            tbs.extend(name(issuer));
            tbs.extend(enc(0x30, &[der_time_enc(nb), der_time_enc(na)].concat()));
            tbs.extend(name(subject));
            tbs.extend(enc(0x30, &[]));
            enc(
                0x30,
                &[enc(0x30, &tbs), alg, enc(0x03, &[0, 1, 2, 3])].concat(),
            )
        }

        // 0000-01-01 … 9999-12-31 23:59:59 UTC.
        const T_MIN: i64 = -62_167_219_200;
        const T_MAX: i64 = 253_402_300_799;

        /// Any representable time, half of them in the UTCTime years 1950–2049.
        fn any_t() -> impl Strategy<Value = i64> {
            prop_oneof![T_MIN..=T_MAX, -631_152_000i64..2_524_608_000]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Certificate files: a structurally generated leaf (v1/v3, short and long DER
            /// lengths, with or without a CN, any UTF-8 name, any time in 0000–9999 as UTCTime or
            /// GeneralizedTime) reads back exactly.
            #[test]
            fn leaf_info_round_trips(
                subject in proptest::option::of(".{0,150}"),
                issuer in proptest::option::of(".{0,150}"),
                nb in any_t(),
                na in any_t(),
                v3 in any::<bool>(),
                serial in proptest::collection::vec(any::<u8>(), 1..=20),
            ) {
                let der = cert(subject.as_deref(), issuer.as_deref(), nb, na, v3, &serial);
                let info = leaf_info(&der);
                prop_assert_eq!(info, Some(LeafInfo {
                    subject_cn: subject.unwrap_or_else(|| "-".into()),
                    issuer_cn: issuer.unwrap_or_else(|| "-".into()),
                    not_before: nb,
                    not_after: na,
                }));
            }

            /// Arbitrary bytes, truncations and byte flips of a valid leaf never panic, and a
            /// truncated certificate is never read.
            #[test]
            fn leaf_info_never_panics(
                junk in proptest::collection::vec(any::<u8>(), 0..200),
                cut in any::<prop::sample::Index>(),
                flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
                cn in ".{0,40}",
            ) {
                let _ = leaf_info(&junk);
                let der = cert(Some(&cn), Some("ca"), 0, 1_800_000_000, true, &[1]);
                let c = cut.index(der.len());
                prop_assert_eq!(leaf_info(&der[..c]), None);
                let mut bad = der.clone();
                for (i, b) in flips {
                    let i = i.index(bad.len());
                    bad[i] = b;
                }
                let _ = leaf_info(&bad);
                let _ = common_name(&junk);
                for tag in [0x17, 0x18] {
                    let _ = der_time(tag, &junk);
                }
            }

            /// Validity times: render → der_time round-trips for both encodings; junk and
            /// impossible dates give None instead of panicking.
            #[test]
            fn der_time_round_trips(t in any_t(), junk in "[0-9+\\-Z ]{0,16}") {
                let e = der_time_enc(t);
                prop_assert_eq!(der_time(e[0], &e[2..]), Some(t));
                let d = time::OffsetDateTime::from_unix_timestamp(t).unwrap();
                let g = format!("{:04}{:02}{:02}{:02}{:02}{:02}Z", d.year(), d.month() as u8, d.day(), d.hour(), d.minute(), d.second());
                prop_assert_eq!(der_time(0x18, g.as_bytes()), Some(t));
                let _ = der_time(0x17, junk.as_bytes());
                let _ = der_time(0x18, junk.as_bytes());
            }
        }
    }
}
