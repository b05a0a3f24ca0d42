//! `sslmode` as libpq means it (spec §3.1 "rustls per sslmode"). The `postgres` crate knows
//! only disable/prefer/require and has no `sslrootcert`, and a rustls connector verifies by
//! default — which would make the default `prefer` fail against CNPG's own CA. So the libpq TLS
//! options are split off the DSN (shared with goldmane-edge-aggregator in
//! `homelab_core::pgtls`) and mapped onto a rustls configuration:
//!
//! | sslmode | TLS | certificate check |
//! |---|---|---|
//! | `disable` | never | — |
//! | `allow`, `prefer` (default) | if the server offers it | none (libpq: encryption only) |
//! | `require` | always | none; with `sslrootcert` like `verify-ca` (libpq compatibility) |
//! | `verify-ca` | always | chain to `sslrootcert` (or the web PKI roots) |
//! | `verify-full` | always | chain and host name |

pub use homelab_core::pgtls::{client_config, TlsMode};
use std::path::PathBuf;

/// A DSN with its libpq TLS options taken out.
#[derive(Debug, Clone)]
pub struct Dsn {
    pub config: postgres::Config,
    pub mode: TlsMode,
    pub root_cert: Option<PathBuf>,
}

/// Parse a DSN the way libpq would for TLS; the error never repeats the DSN.
pub fn parse_dsn(dsn: &str) -> Result<Dsn, String> {
    let split = homelab_core::pgtls::split_dsn(dsn)?;
    let mut config: postgres::Config = split
        .rest
        .parse()
        .map_err(|e: postgres::Error| e.to_string())?;
    config.ssl_mode(match split.mode {
        TlsMode::Disable => postgres::config::SslMode::Disable,
        TlsMode::Prefer => postgres::config::SslMode::Prefer,
        _ => postgres::config::SslMode::Require,
    });
    Ok(Dsn {
        config,
        mode: split.mode,
        root_cert: split.root_cert,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn percent_decode_regressions() {
        // Found by `props::parse_dsn_never_panics`: a `%` before a multi-byte character
        // sliced inside it and panicked (the decoder now lives in `homelab_core::pgtls`).
        assert!(parse_dsn("postgres://?sslmode=%\0¡").is_err());
        assert!(parse_dsn("postgres://h/d?sslmode=%aé").is_err());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn mode_name() -> impl Strategy<Value = &'static str> {
            prop_oneof![
                Just("disable"),
                Just("allow"),
                Just("prefer"),
                Just("require"),
                Just("verify-ca"),
                Just("verify-full"),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// DATABASE_URL: arbitrary text, percent escapes and quoted key/value words never
            /// panic the splitter or the parser.
            #[test]
            fn parse_dsn_never_panics(s in prop_oneof![
                ".{0,80}",
                "(postgres|postgresql)://[a-z:@/]{0,12}\\?((sslmode|sslrootcert|application_name)=([a-z%0-9]|.){0,6}&?){0,3}(#.{0,4})?",
                "[ ]?(([a-z]{1,10}|sslmode|sslrootcert) ?= ?('([^']|\\\\')*'?|[^ ]{0,6}|\\\\.) ?){0,5}",
            ]) {
                let _ = parse_dsn(&s);
            }

            /// Both forms with one invalid part are rejected without echoing the password.
            #[test]
            fn password_never_in_the_error(
                user in "[a-z]{1,8}",
                pw in "PW[A-Z0-9]{6,14}",
                host in "[a-z]{1,10}",
                db in "[a-z]{1,8}",
                (k, v) in prop_oneof![
                    Just(("sslmode", "bogus")),
                    Just(("sslmode", "verify")),
                    Just(("port", "notaport")),
                    Just(("port", "99999")),
                    Just(("frobnicate", "1")),
                    Just(("connect_timeout", "x")),
                    Just(("target_session_attrs", "weird")),
                ],
                quoted in any::<bool>(),
            ) {
                let url = format!("postgres://{user}:{pw}@{host}:5432/{db}?{k}={v}");
                let p = if quoted { format!("'{pw}'") } else { pw.clone() };
                let kv = format!("host={host} user={user} password={p} dbname={db} {k}={v}");
                for dsn in [url, kv] {
                    let e = parse_dsn(&dsn).expect_err(&dsn);
                    prop_assert!(!e.contains("PW"), "{}", e);
                }
            }

            /// The URL and key=value spellings of one DSN agree: same TLS mode, root
            /// certificate and connection settings; the TLS options never reach `postgres`.
            #[test]
            fn url_and_key_value_forms_agree(
                user in "[a-z][a-z0-9_]{0,8}",
                pw in "[A-Za-z0-9]{1,14}",
                host in "[a-z][a-z0-9-]{0,10}",
                port in 1u16..,
                db in "[a-z][a-z0-9_]{0,8}",
                mode in proptest::option::of(mode_name()),
                root in proptest::option::of(prop_oneof![Just("system".to_string()), "/[a-z]{1,8}/ca\\.pem"]),
                app in proptest::option::of("[a-z]{1,8}"),
                reorder in any::<bool>(),
            ) {
                let mut q: Vec<String> = Vec::new();
                let mut w: Vec<String> = Vec::new();
                if let Some(m) = mode {
                    q.push(format!("sslmode={m}"));
                    w.push(format!("sslmode={m}"));
                }
                if let Some(r) = &root {
                    q.push(format!("sslrootcert={}", r.replace('/', "%2F")));
                    w.push(format!("sslrootcert='{r}'"));
                }
                if let Some(a) = &app {
                    q.push(format!("application_name={a}"));
                    w.push(format!("application_name={a}"));
                }
                if reorder {
                    q.reverse();
                    w.reverse();
                }
                let mut url = format!("postgresql://{user}:{pw}@{host}:{port}/{db}");
                if !q.is_empty() {
                    url.push('?');
                    url.push_str(&q.join("&"));
                }
                let kv = format!("host={host} port={port} user={user} password={pw} dbname={db} {}", w.join(" "));
                let u = parse_dsn(&url).unwrap();
                let k = parse_dsn(&kv).unwrap();
                let want_mode = match (mode, root.is_some()) {
                    (None | Some("allow") | Some("prefer"), _) => TlsMode::Prefer,
                    (Some("disable"), _) => TlsMode::Disable,
                    (Some("require"), true) | (Some("verify-ca"), _) => TlsMode::VerifyCa,
                    (Some("require"), false) => TlsMode::Require,
                    _ => TlsMode::VerifyFull,
                };
                prop_assert_eq!(u.mode, want_mode);
                prop_assert_eq!(k.mode, want_mode);
                let want_root = root.filter(|r| r != "system").map(PathBuf::from);
                prop_assert_eq!(&u.root_cert, &want_root);
                prop_assert_eq!(&k.root_cert, &want_root);
                prop_assert_eq!(u.config.get_user(), Some(user.as_str()));
                prop_assert_eq!(u.config.get_password(), Some(pw.as_bytes()));
                prop_assert_eq!(u.config.get_dbname(), Some(db.as_str()));
                prop_assert_eq!(u.config.get_ports(), &[port][..]);
                prop_assert_eq!(u.config.get_application_name(), app.as_deref());
                prop_assert_eq!(u.config.get_user(), k.config.get_user());
                prop_assert_eq!(u.config.get_password(), k.config.get_password());
                prop_assert_eq!(u.config.get_dbname(), k.config.get_dbname());
                prop_assert_eq!(u.config.get_hosts(), k.config.get_hosts());
                prop_assert_eq!(u.config.get_ports(), k.config.get_ports());
                prop_assert_eq!(u.config.get_application_name(), k.config.get_application_name());
                prop_assert_eq!(u.config.get_ssl_mode(), k.config.get_ssl_mode());
            }
        }
    }
}
