//! Validated configuration built from flags and environment (spec §2.1). Pure: the
//! environment is passed in, so tests drive it. Every error names the variable.

use crate::cli::{Cli, Command};
use homelab_core::Secret;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "config {}: {}", self.var, self.reason)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub command: Command,
    /// `host:port` as given (without `https://`), used for DNS resolution.
    pub goldmane_host: String,
    pub host: String,
    pub port: u16,
    pub server_name: String,
    pub tls_insecure: bool,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub ca: PathBuf,
    pub database_url: Option<Secret>,
    pub dry_run: bool,
    pub aggregation_interval: i64,
    pub backfill_secs: i64,
    /// Seconds between periodic `Flows.List` reconciliations; `None` = only after (re)connects.
    pub reconcile: Option<Duration>,
    pub flush_interval: Duration,
    pub batch_max: usize,
    pub max_pending: usize,
    pub dedup_window_secs: i64,
    pub stall_timeout: Duration,
    pub backoff_max: Duration,
    pub health_addr: Option<SocketAddr>,
    pub shutdown_timeout: Duration,
    pub db_auth_exit: Option<Duration>,
    pub log_format: LogFormat,
}

/// Split `host:port` / `[v6]:port` (an `https://` prefix is stripped). Returns (host, port).
pub fn split_host(raw: &str) -> Result<(String, u16), String> {
    let s = raw.strip_prefix("https://").unwrap_or(raw);
    let s = s.strip_suffix('/').unwrap_or(s);
    if s.contains("://") {
        return Err("only https:// or a bare host:port is accepted".into());
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| "unterminated [ipv6] literal".to_string())?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| "missing :port".to_string())?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{h}` is not an IPv6 address"));
        }
        (h.to_string(), port)
    } else {
        let (h, p) = s
            .rsplit_once(':')
            .ok_or_else(|| "missing :port (expected host:port)".to_string())?;
        if h.contains(':') {
            return Err("IPv6 addresses must be written [addr]:port".into());
        }
        (h.to_string(), p)
    };
    if host.is_empty() || host.contains(['/', ' ', '@']) {
        return Err(format!("invalid host `{host}`"));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("invalid port `{port}`"))?;
    Ok((host, port))
}

/// `GOLDMANE_HOST` default: the Service name that resolves on any cluster domain.
pub const DEFAULT_HOST: &str = "goldmane.calico-system.svc:7443";
/// `GOLDMANE_SERVER_NAME` default: a SAN of every operator-issued Goldmane certificate.
pub const DEFAULT_SERVER_NAME: &str = "goldmane.calico-system.svc";
/// The most a backfill may reach back: the ring spans 242 × 15 s = 3630 s from the head bucket,
/// which is 15 s in the future, so the oldest bucket starts 3600–3615 s before now and rolls out
/// every 15 s; 30 s of margin keeps a start inside the ring through a rollover and a pod clock
/// up to 15 s behind (`goldmane/pkg/goldmane/goldmane.go` `numBuckets`,
/// `goldmane/pkg/storage/bucket_ring.go` `findBucket`, projectcalico/calico v3.30.7).
pub const MAX_BACKFILL_SECS: i64 = 3570;

fn parse_bool(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(ConfigError {
            var,
            reason: format!("`{v}` is not a boolean (use 1/true or 0/false)"),
        }),
    }
}

fn parse_int(var: &'static str, v: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    let n: i64 = v.trim().parse().map_err(|_| ConfigError {
        var,
        reason: format!("`{v}` is not an integer"),
    })?;
    if n < min || n > max {
        return Err(ConfigError {
            var,
            reason: format!("{n} is out of range {min}..={max}"),
        });
    }
    Ok(n)
}

/// Build the validated config: the flag wins, then a non-empty environment variable, then
/// the default.
pub fn parse_config(cli: &Cli, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
    let pick = |flag: &Option<String>, var: &str| -> Option<String> {
        flag.clone()
            .or_else(|| env.get(var).cloned())
            .filter(|s| !s.is_empty())
    };
    let host_raw = pick(&cli.goldmane_host, "GOLDMANE_HOST").unwrap_or_else(|| DEFAULT_HOST.into());
    let (host, port) = split_host(&host_raw).map_err(|reason| ConfigError {
        var: "GOLDMANE_HOST",
        reason,
    })?;
    let goldmane_host = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    // Issue 13: the operator's Goldmane certificate always carries this SAN, whatever the
    // cluster domain (tigera/operator `pkg/render/goldmane/component.go`).
    let server_name = pick(&cli.server_name, "GOLDMANE_SERVER_NAME")
        .unwrap_or_else(|| DEFAULT_SERVER_NAME.into());
    if rustls_pki_types::ServerName::try_from(server_name.clone()).is_err() {
        return Err(ConfigError {
            var: "GOLDMANE_SERVER_NAME",
            reason: format!("`{server_name}` is not a valid DNS name or IP address"),
        });
    }
    let tls_insecure = match pick(&cli.tls_insecure, "GOLDMANE_TLS_INSECURE") {
        Some(v) => parse_bool("GOLDMANE_TLS_INSECURE", &v)?,
        None => false,
    };
    let path = |flag: &Option<String>, var: &str, def: &str| {
        PathBuf::from(pick(flag, var).unwrap_or_else(|| def.to_string()))
    };
    let client_cert = path(
        &cli.client_cert,
        "GOLDMANE_CLIENT_CERT",
        "/etc/goldmane/client/tls.crt",
    );
    let client_key = path(
        &cli.client_key,
        "GOLDMANE_CLIENT_KEY",
        "/etc/goldmane/client/tls.key",
    );
    let ca = path(
        &cli.ca,
        "GOLDMANE_CA",
        "/etc/goldmane/ca/tigera-ca-bundle.crt",
    );
    let dry_run = match pick(&cli.dry_run, "DRY_RUN") {
        Some(v) => parse_bool("DRY_RUN", &v)?,
        None => false,
    };
    let database_url = pick(&cli.database_url, "DATABASE_URL").map(Secret::new);
    match &database_url {
        None if !dry_run => {
            return Err(ConfigError {
                var: "DATABASE_URL",
                reason: "required unless DRY_RUN=1".into(),
            })
        }
        Some(url) => crate::db::parse_dsn(url.expose())
            .map_err(|reason| ConfigError {
                var: "DATABASE_URL",
                reason,
            })
            .map(|_| ())?,
        None => {}
    }
    let int = |flag: &Option<String>, var: &'static str, def: i64, min: i64, max: i64| match pick(
        flag, var,
    ) {
        Some(v) => parse_int(var, &v, min, max),
        None => Ok(def),
    };
    let aggregation_interval = int(
        &cli.aggregation_interval,
        "GEA_AGGREGATION_INTERVAL",
        15,
        1,
        3600,
    )?;
    let backfill_secs = match pick(&cli.backfill, "GEA_BACKFILL_SECS") {
        None => MAX_BACKFILL_SECS,
        Some(v) => {
            let n = parse_int("GEA_BACKFILL_SECS", &v, 0, i64::MAX).map_err(|mut e| {
                e.reason.push_str(" (0..=3570 seconds)");
                e
            })?;
            if n > MAX_BACKFILL_SECS {
                return Err(ConfigError {
                    var: "GEA_BACKFILL_SECS",
                    reason: format!(
                        "{n} is above the ring limit {MAX_BACKFILL_SECS}: Goldmane keeps 242 buckets \
                         of 15 s and silently backfills nothing for an older start; set 0..={MAX_BACKFILL_SECS}"
                    ),
                });
            }
            n
        }
    };
    let reconcile = int(&cli.reconcile, "GEA_RECONCILE_SECS", 300, 0, 3600)?;
    let flush = int(&cli.flush_interval, "GEA_FLUSH_INTERVAL_SECS", 5, 1, 300)?;
    let batch_max = int(&cli.batch_max, "GEA_BATCH_MAX_EDGES", 1000, 1, 100_000)?;
    let max_pending = int(
        &cli.max_pending,
        "GEA_MAX_PENDING_EDGES",
        100_000,
        1,
        10_000_000,
    )?;
    let dedup = int(&cli.dedup_window, "GEA_DEDUP_WINDOW_SECS", 60, 0, 86_400)?;
    let stall = int(&cli.stall_timeout, "GEA_STALL_TIMEOUT_SECS", 300, 1, 86_400)?;
    let backoff_max = int(&cli.backoff_max, "GEA_BACKOFF_MAX_SECS", 60, 1, 3600)?;
    let shutdown = int(
        &cli.shutdown_timeout,
        "GEA_SHUTDOWN_TIMEOUT_SECS",
        20,
        1,
        3600,
    )?;
    let auth_exit = int(
        &cli.db_auth_exit,
        "GEA_DB_AUTH_EXIT_SECS",
        600,
        0,
        86_400 * 7,
    )?;
    let health_addr = match pick(&cli.health_addr, "GEA_HEALTH_ADDR").as_deref() {
        Some("off") => None,
        Some(v) => Some(v.parse::<SocketAddr>().map_err(|_| ConfigError {
            var: "GEA_HEALTH_ADDR",
            reason: format!("`{v}` is not ip:port or `off`"),
        })?),
        None => Some(SocketAddr::from(([0, 0, 0, 0], 8080))),
    };
    let log_format = match pick(&cli.log_format, "GEA_LOG_FORMAT").as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(v) => {
            return Err(ConfigError {
                var: "GEA_LOG_FORMAT",
                reason: format!("`{v}` is not text or json"),
            })
        }
    };
    Ok(Config {
        command: cli.command.unwrap_or(Command::Run),
        goldmane_host,
        host,
        port,
        server_name,
        tls_insecure,
        client_cert,
        client_key,
        ca,
        database_url,
        dry_run,
        aggregation_interval,
        backfill_secs,
        reconcile: (reconcile > 0).then(|| Duration::from_secs(reconcile as u64)),
        flush_interval: Duration::from_secs(flush as u64),
        batch_max: batch_max as usize,
        max_pending: max_pending as usize,
        dedup_window_secs: dedup,
        stall_timeout: Duration::from_secs(stall as u64),
        backoff_max: Duration::from_secs(backoff_max as u64),
        health_addr,
        shutdown_timeout: Duration::from_secs(shutdown as u64),
        db_auth_exit: (auth_exit > 0).then(|| Duration::from_secs(auth_exit as u64)),
        log_format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cfg(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut a = vec!["goldmane-edge-aggregator"];
        a.extend_from_slice(args);
        let cli = Cli::try_parse_from(a).expect("clap parse");
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_config(&cli, &env)
    }

    const DB: (&str, &str) = ("DATABASE_URL", "postgres://u:pw@db:5432/goldmane_edges");

    #[test]
    fn defaults() {
        let c = cfg(&[], &[DB]).unwrap();
        assert_eq!(c.goldmane_host, "goldmane.calico-system.svc:7443");
        assert_eq!(c.server_name, "goldmane.calico-system.svc");
        assert_eq!(c.port, 7443);
        assert!(!c.tls_insecure && !c.dry_run);
        assert_eq!(c.client_cert, PathBuf::from("/etc/goldmane/client/tls.crt"));
        assert_eq!(c.client_key, PathBuf::from("/etc/goldmane/client/tls.key"));
        assert_eq!(c.ca, PathBuf::from("/etc/goldmane/ca/tigera-ca-bundle.crt"));
        assert_eq!(c.aggregation_interval, 15);
        assert_eq!(c.backfill_secs, 3570);
        assert_eq!(c.reconcile, Some(Duration::from_secs(300)));
        assert_eq!(c.flush_interval, Duration::from_secs(5));
        assert_eq!(c.batch_max, 1000);
        assert_eq!(c.max_pending, 100_000);
        assert_eq!(c.dedup_window_secs, 60);
        assert_eq!(c.stall_timeout, Duration::from_secs(300));
        assert_eq!(c.backoff_max, Duration::from_secs(60));
        assert_eq!(c.health_addr, Some("0.0.0.0:8080".parse().unwrap()));
        assert_eq!(c.shutdown_timeout, Duration::from_secs(20));
        assert_eq!(c.db_auth_exit, Some(Duration::from_secs(600)));
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.command, Command::Run);
    }

    #[test]
    fn flag_beats_env_and_empty_env_is_unset() {
        let c = cfg(
            &["--flush-interval", "2", "aggregate"],
            &[
                DB,
                ("GEA_FLUSH_INTERVAL_SECS", "9"),
                ("GEA_BATCH_MAX_EDGES", ""),
            ],
        )
        .unwrap();
        assert_eq!(c.flush_interval, Duration::from_secs(2));
        assert_eq!(c.batch_max, 1000);
        assert_eq!(c.command, Command::Run);
    }

    #[test]
    fn each_invalid_value_names_its_variable() {
        let cases: &[(&str, &str)] = &[
            ("GOLDMANE_HOST", "goldmane:notaport"),
            ("GOLDMANE_SERVER_NAME", "bad name!"),
            ("GOLDMANE_TLS_INSECURE", "maybe"),
            ("DRY_RUN", "2"),
            ("GEA_AGGREGATION_INTERVAL", "0"),
            ("GEA_BACKFILL_SECS", "3571"),
            ("GEA_BACKFILL_SECS", "-1"),
            ("GEA_RECONCILE_SECS", "3601"),
            ("GEA_RECONCILE_SECS", "x"),
            ("GEA_FLUSH_INTERVAL_SECS", "301"),
            ("GEA_BATCH_MAX_EDGES", "x"),
            ("GEA_MAX_PENDING_EDGES", "0"),
            ("GEA_DEDUP_WINDOW_SECS", "-1"),
            ("GEA_STALL_TIMEOUT_SECS", "0"),
            ("GEA_BACKOFF_MAX_SECS", "abc"),
            ("GEA_HEALTH_ADDR", "localhost"),
            ("GEA_SHUTDOWN_TIMEOUT_SECS", "0"),
            ("GEA_DB_AUTH_EXIT_SECS", "-5"),
            ("GEA_LOG_FORMAT", "xml"),
            ("DATABASE_URL", "mysql://x"),
            ("DATABASE_URL", "postgres://u:pw@db/g?sslmode=bogus"),
            ("DATABASE_URL", "host=db sslmode=verify"),
        ];
        for (var, val) in cases {
            let e = cfg(&[], &[DB, (var, val)]).expect_err(var);
            assert_eq!(e.var, *var, "{val}: {e}");
            assert!(e.to_string().starts_with(&format!("config {var}: ")));
        }
        let e = cfg(&[], &[]).unwrap_err();
        assert_eq!(e.var, "DATABASE_URL");
        assert!(cfg(&[], &[("DRY_RUN", "true")]).is_ok());
    }

    /// Issue 13: the backfill never reaches past the ring; 0 means live only; the periodic
    /// reconciliation can be turned off without turning off the one after each connect.
    #[test]
    fn backfill_and_reconcile_ranges() {
        let c = cfg(&[], &[DB, ("GEA_BACKFILL_SECS", "3570")]).unwrap();
        assert_eq!(c.backfill_secs, 3570);
        let c = cfg(&[], &[DB, ("GEA_BACKFILL_SECS", "0")]).unwrap();
        assert_eq!(c.backfill_secs, 0);
        let e = cfg(&[], &[DB, ("GEA_BACKFILL_SECS", "3600")]).unwrap_err();
        assert_eq!(e.var, "GEA_BACKFILL_SECS");
        let text = e.to_string();
        assert!(text.contains("ring limit 3570"), "{text}");
        assert!(text.ends_with("set 0..=3570"), "{text}");
        let c = cfg(&[], &[DB, ("GEA_RECONCILE_SECS", "0")]).unwrap();
        assert_eq!(c.reconcile, None);
        let c = cfg(&["--reconcile", "1"], &[DB]).unwrap();
        assert_eq!(c.reconcile, Some(Duration::from_secs(1)));
    }

    #[test]
    fn host_forms() {
        assert_eq!(
            split_host("https://gm.example:7443").unwrap(),
            ("gm.example".into(), 7443)
        );
        assert_eq!(split_host("[::1]:7443").unwrap(), ("::1".into(), 7443));
        assert!(split_host("http://gm:7443").is_err());
        assert!(split_host("gm").is_err());
        assert!(split_host("::1:7443").is_err());
        let c = cfg(&["--goldmane-host", "[::1]:9000"], &[DB]).unwrap();
        assert_eq!(c.goldmane_host, "[::1]:9000");
        assert_eq!(c.server_name, "goldmane.calico-system.svc");
        let c = cfg(&[], &[DB, ("GOLDMANE_HOST", "https://127.0.0.1:1")]).unwrap();
        assert_eq!(c.goldmane_host, "127.0.0.1:1");
    }

    #[test]
    fn dsn_password_never_in_config_errors() {
        let e = cfg(
            &[],
            &[("DATABASE_URL", "postgres://u:hunter2@h/db?sslmode=bogus")],
        )
        .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        // libpq's verify modes are accepted (the root file is read at startup, not here).
        for q in [
            "sslmode=verify-full",
            "sslmode=verify-ca&sslrootcert=/etc/pg/ca.crt",
            "sslmode=require&sslrootcert=system",
        ] {
            let url = format!("postgres://u:hunter2@h/db?{q}");
            assert!(cfg(&[], &[("DATABASE_URL", &url)]).is_ok(), "{q}");
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        const VARS: [&str; 3] = [
            "GEA_FLUSH_INTERVAL_SECS",
            "DRY_RUN",
            "GOLDMANE_TLS_INSECURE",
        ];

        fn int_text() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                (-100_000i64..100_000).prop_map(|n| n.to_string()),
                ("[ \\t]{0,2}", -100i64..100, "[ \\t\\n]{0,2}")
                    .prop_map(|(a, n, b)| format!("{a}{n}{b}")),
                "[+-]?[0-9]{1,25}",
                "[0-9]{1,4}[a-z.e_ ][0-9]{0,3}",
                ".{0,12}",
            ]
        }

        fn range() -> impl Strategy<Value = (i64, i64)> {
            prop_oneof![
                Just((1, 3600)),
                Just((0, 86_400)),
                Just((1, 10_000_000)),
                (any::<i64>(), any::<i64>()).prop_map(|(a, b)| (a.min(b), a.max(b))),
                (-1000i64..1000, 0i64..2000).prop_map(|(a, w)| (a, a + w)),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Integer variables: accepted iff the trimmed text is a decimal i64 inside
            /// [min, max], returning exactly that number; every error names the variable.
            #[test]
            fn parse_int_accepts_exactly_the_range(
                junk in int_text(), (min, max) in range(), var in 0usize..3,
                edge in 0usize..6, pad in "[ \t]{0,2}",
            ) {
                let var = VARS[var];
                // Half the cases sit on or next to the bounds.
                let near = [min.checked_sub(1), Some(min), Some(((i128::from(min) + i128::from(max)) / 2) as i64), Some(max), max.checked_add(1)];
                let v = match near.get(edge).copied().flatten() {
                    Some(n) => format!("{pad}{n}{pad}"),
                    None => junk,
                };
                let want = v.trim().parse::<i64>().ok().filter(|n| (min..=max).contains(n));
                match parse_int(var, &v, min, max) {
                    Ok(n) => prop_assert_eq!(Some(n), want),
                    Err(e) => {
                        prop_assert_eq!(want, None);
                        prop_assert_eq!(e.var, var);
                        let head = format!("config {var}: ");
                        prop_assert!(e.to_string().starts_with(&head));
                    }
                }
            }

            /// Boolean variables: exactly 1/true/yes and 0/false/no in any letter case; the
            /// rest is rejected with an error that names the variable.
            #[test]
            fn parse_bool_accepts_exactly_the_six_words(
                v in prop_oneof![
                    "(1|0|[tT][rR][uU][eE]|[fF][aA][lL][sS][eE]|[yY][eE][sS]|[nN][oO])",
                    "[ ]?(1|0|true|no)[ ]?",
                    "[a-zA-Z0-9]{0,6}",
                    ".{0,8}",
                ],
                var in 0usize..3,
            ) {
                let var = VARS[var];
                let l = v.to_ascii_lowercase();
                let want = match l.as_str() {
                    "1" | "true" | "yes" => Some(true),
                    "0" | "false" | "no" => Some(false),
                    _ => None,
                };
                match parse_bool(var, &v) {
                    Ok(b) => prop_assert_eq!(Some(b), want),
                    Err(e) => {
                        prop_assert_eq!(want, None);
                        prop_assert_eq!(e.var, var);
                        let head = format!("config {var}: ");
                        prop_assert!(e.to_string().starts_with(&head));
                    }
                }
            }

            /// GOLDMANE_HOST never panics; whatever it accepts has a non-empty host without
            /// `/`, space or `@`, and a port > 0.
            #[test]
            fn split_host_never_panics(s in prop_oneof![".{0,40}", "(https://)?\\[?[0-9a-f:.]{0,12}\\]?(:[0-9]{0,6})?/?"]) {
                if let Ok((h, p)) = split_host(&s) {
                    prop_assert!(!h.is_empty() && !h.contains(['/', ' ', '@']));
                    prop_assert!(p > 0);
                }
            }

            /// host:port, `https://host:port/` and `[v6]:port` render → parse round-trip.
            #[test]
            fn split_host_round_trips(
                host in "[a-z0-9]([a-z0-9.-]{0,30}[a-z0-9])?",
                v6 in any::<[u16; 8]>(),
                port in 1u16..,
                https in any::<bool>(),
                slash in any::<bool>(),
            ) {
                let wrap = |hp: String| {
                    let mut s = if https { format!("https://{hp}") } else { hp };
                    if slash { s.push('/') }
                    s
                };
                prop_assert_eq!(split_host(&wrap(format!("{host}:{port}"))), Ok((host.clone(), port)));
                let a = std::net::Ipv6Addr::from(v6).to_string();
                prop_assert_eq!(split_host(&wrap(format!("[{a}]:{port}"))), Ok((a.clone(), port)));
                // Out-of-range or zero ports are refused.
                let bad_port = format!("{host}:{}", u32::from(port) + 65_535);
                prop_assert!(split_host(&bad_port).is_err());
                let zero = format!("{host}:0");
                prop_assert!(split_host(&zero).is_err());
            }
        }
    }
}
