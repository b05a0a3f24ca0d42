//! Postgres: one tokio-postgres connection (§4.6), the locked migration (§4.2), the sorted
//! unnest upsert (§4.4) and TLS per `sslmode` via rustls.

use crate::decide::{upsert_params, Row};
use homelab_core::pgtls::TlsMode;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Socket, Statement};

pub const MIGRATION: &str = include_str!("../migrations/0001_edge.sql");
/// Issue 13 + 17: reporter, staged-policy columns, `egress_edge` (SCHEMA.md).
pub const MIGRATION_2: &str = include_str!("../migrations/0002_reporter_egress.sql");
/// Fixed for all versions (§4.2.1).
pub const ADVISORY_LOCK: i64 = 7_166_126_151_936;

/// Stream rows: counts add, staged verdict of the newest batch wins, deny time the latest.
pub const UPSERT: &str = "\
INSERT INTO edge AS e (src_ns, dst_ns, action, reporter, first_seen, last_seen, flow_count, pending_action, pending_deny_last_seen)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::bigint[], $8::text[], $9::timestamptz[])
ON CONFLICT (src_ns, dst_ns, action, reporter) DO UPDATE SET
    first_seen = LEAST(e.first_seen, EXCLUDED.first_seen),
    last_seen  = GREATEST(e.last_seen, EXCLUDED.last_seen),
    flow_count = e.flow_count + EXCLUDED.flow_count,
    pending_action = COALESCE(EXCLUDED.pending_action, e.pending_action),
    pending_deny_last_seen = GREATEST(e.pending_deny_last_seen, EXCLUDED.pending_deny_last_seen)
RETURNING src_ns, dst_ns, action, reporter, first_seen, (xmax = 0) AS inserted";

pub const UPSERT_EGRESS: &str = "\
INSERT INTO egress_edge AS e (src_ns, dst_type, dst_name, proto, dst_port, action, reporter, first_seen, last_seen, flow_count, pending_action, pending_deny_last_seen)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int4[], $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[], $10::bigint[], $11::text[], $12::timestamptz[])
ON CONFLICT (src_ns, dst_type, dst_name, proto, dst_port, action, reporter) DO UPDATE SET
    first_seen = LEAST(e.first_seen, EXCLUDED.first_seen),
    last_seen  = GREATEST(e.last_seen, EXCLUDED.last_seen),
    flow_count = e.flow_count + EXCLUDED.flow_count,
    pending_action = COALESCE(EXCLUDED.pending_action, e.pending_action),
    pending_deny_last_seen = GREATEST(e.pending_deny_last_seen, EXCLUDED.pending_deny_last_seen)
RETURNING src_ns, dst_type || ':' || dst_name || ' ' || proto || '/' || dst_port, action, reporter, first_seen, (xmax = 0) AS inserted";

/// Reconciliation rows (issue 13): a key already in the table merges first/last seen only
/// (never `flow_count`, never the staged verdict); a key only List found is inserted with the
/// List's count. Returns the rows that were inserted or whose times moved.
pub const RECONCILE: &str = "\
INSERT INTO edge AS e (src_ns, dst_ns, action, reporter, first_seen, last_seen, flow_count, pending_action, pending_deny_last_seen)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::bigint[], $8::text[], $9::timestamptz[])
ON CONFLICT (src_ns, dst_ns, action, reporter) DO UPDATE SET
    first_seen = LEAST(e.first_seen, EXCLUDED.first_seen),
    last_seen  = GREATEST(e.last_seen, EXCLUDED.last_seen)
  WHERE e.first_seen > EXCLUDED.first_seen OR e.last_seen < EXCLUDED.last_seen
RETURNING src_ns, dst_ns, action, reporter, first_seen, (xmax = 0) AS inserted";

pub const RECONCILE_EGRESS: &str = "\
INSERT INTO egress_edge AS e (src_ns, dst_type, dst_name, proto, dst_port, action, reporter, first_seen, last_seen, flow_count, pending_action, pending_deny_last_seen)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int4[], $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[], $10::bigint[], $11::text[], $12::timestamptz[])
ON CONFLICT (src_ns, dst_type, dst_name, proto, dst_port, action, reporter) DO UPDATE SET
    first_seen = LEAST(e.first_seen, EXCLUDED.first_seen),
    last_seen  = GREATEST(e.last_seen, EXCLUDED.last_seen)
  WHERE e.first_seen > EXCLUDED.first_seen OR e.last_seen < EXCLUDED.last_seen
RETURNING src_ns, dst_type || ':' || dst_name || ' ' || proto || '/' || dst_port, action, reporter, first_seen, (xmax = 0) AS inserted";

/// DATABASE_URL taken apart: the driver configuration (with `ssl_mode` set) and the libpq TLS
/// options the driver does not know (`homelab_core::pgtls`).
#[derive(Debug, Clone)]
pub struct Dsn {
    pub config: tokio_postgres::Config,
    pub mode: TlsMode,
    pub root_cert: Option<PathBuf>,
}

/// Parse and check a DSN (URL or key=value) without echoing it. `sslmode` and `sslrootcert`
/// follow libpq (see `homelab_core::pgtls`); tokio-postgres gets disable, prefer or require.
pub fn parse_dsn(dsn: &str) -> Result<Dsn, String> {
    let split = homelab_core::pgtls::split_dsn(dsn)?;
    let mut cfg = tokio_postgres::Config::from_str(&split.rest).map_err(|e| {
        format!(
            "not a valid Postgres URL or key=value DSN ({})",
            homelab_core::redact_dsn(&e.to_string())
        )
    })?;
    if cfg.get_hosts().is_empty() {
        return Err("no host given".into());
    }
    if cfg.get_application_name().is_none() {
        cfg.application_name("goldmane-edge-aggregator");
    }
    cfg.ssl_mode(match split.mode {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
    });
    cfg.connect_timeout(Duration::from_secs(10));
    cfg.keepalives(true);
    cfg.keepalives_idle(Duration::from_secs(60));
    Ok(Dsn {
        config: cfg,
        mode: split.mode,
        root_cert: split.root_cert,
    })
}

/// What the flusher, `migrate` and `check` connect with: built once at startup, so an
/// unreadable `sslrootcert` is a config error before any network I/O.
#[derive(Clone)]
pub struct Target {
    pub config: tokio_postgres::Config,
    pub tls: PgTls,
}

impl Target {
    /// Parse DATABASE_URL and load its root certificates. The error names the problem
    /// (`sslmode=…`, `sslrootcert <path>: …`), never the DSN.
    pub fn new(dsn: &str) -> Result<Target, String> {
        let d = parse_dsn(dsn)?;
        let tls = PgTls::new(d.mode, d.root_cert.as_deref())?;
        Ok(Target {
            config: d.config,
            tls,
        })
    }
}

/// True for authentication failures (28P01, 28000): retried, and exit after DB_AUTH_EXIT.
pub fn is_auth_error(e: &tokio_postgres::Error) -> bool {
    matches!(e.code(), Some(c) if *c == SqlState::INVALID_PASSWORD || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
}

pub fn is_undefined_table(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNDEFINED_TABLE)
}

/// One line, no secrets (tokio-postgres errors never carry the password).
pub fn describe(e: &tokio_postgres::Error) -> String {
    let mut s = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    };
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        if e.as_db_error().is_some() {
            break;
        }
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s.replace('\n', " ")
}

pub struct Db {
    client: Client,
    upsert: Statement,
    upsert_egress: Statement,
    reconcile: Statement,
    reconcile_egress: Statement,
    task: tokio::task::JoinHandle<()>,
    pub created: bool,
}

impl Drop for Db {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A row an upsert inserted (or, for reconciliation, also one whose times moved).
pub struct NewEdge {
    pub src: String,
    /// Destination namespace, or `type:name proto/port` for external egress.
    pub dst: String,
    pub action: String,
    pub reporter: String,
    pub first_seen: i64,
    pub inserted: bool,
    pub egress: bool,
}

/// What one flush wrote.
#[derive(Default)]
pub struct Flushed {
    /// Stream rows inserted for the first time.
    pub new: Vec<NewEdge>,
    /// Reconciliation rows inserted (the stream never saw the key) or extended.
    pub reconciled: Vec<NewEdge>,
}

pub enum FlushError {
    /// Nothing was committed.
    Failed(tokio_postgres::Error),
    /// The connection died around COMMIT: the batch may or may not be in.
    Ambiguous(String),
}

/// Connect, migrate, prepare the upsert.
pub async fn connect(t: &Target) -> Result<Db, tokio_postgres::Error> {
    let (mut client, conn) = t.config.connect(t.tls.clone()).await?;
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    let created = migrate(&mut client).await?;
    let upsert = client.prepare(UPSERT).await?;
    let upsert_egress = client.prepare(UPSERT_EGRESS).await?;
    let reconcile = client.prepare(RECONCILE).await?;
    let reconcile_egress = client.prepare(RECONCILE_EGRESS).await?;
    Ok(Db {
        client,
        upsert,
        upsert_egress,
        reconcile,
        reconcile_egress,
        task,
        created,
    })
}

/// §4.2.1: one transaction under the advisory lock. Returns true when the table was created.
pub async fn migrate(client: &mut Client) -> Result<bool, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ADVISORY_LOCK])
        .await?;
    let existed: bool = tx
        .query_one("SELECT to_regclass('edge') IS NOT NULL", &[])
        .await?
        .get(0);
    tx.batch_execute(MIGRATION).await?;
    tx.batch_execute(MIGRATION_2).await?;
    tx.commit().await?;
    Ok(!existed)
}

impl Db {
    /// `max(last_seen)` as Unix seconds.
    pub async fn max_last_seen(&self) -> Result<Option<i64>, tokio_postgres::Error> {
        let row = self
            .client
            .query_one(
                "SELECT extract(epoch FROM GREATEST((SELECT max(last_seen) FROM edge), \
                 (SELECT max(last_seen) FROM egress_edge)))::float8",
                &[],
            )
            .await?;
        Ok(row.get::<_, Option<f64>>(0).map(|f| f as i64))
    }

    pub async fn ping(&self) -> Result<(), tokio_postgres::Error> {
        self.client.simple_query("SELECT 1").await.map(|_| ())
    }

    /// One transaction, ≤ `batch_max` rows per statement, rows sorted: the stream rows, then
    /// the reconciliation rows.
    pub async fn flush(
        &mut self,
        rows: &[Row],
        reconcile: &[Row],
        batch_max: usize,
    ) -> Result<Flushed, FlushError> {
        let tx = self
            .client
            .transaction()
            .await
            .map_err(FlushError::Failed)?;
        let mut out = Flushed::default();
        for (set, is_rec) in [(rows, false), (reconcile, true)] {
            let (edges, egress): (Vec<&Row>, Vec<&Row>) =
                set.iter().partition(|r| r.egress.is_none());
            for (part, is_egress) in [(edges, false), (egress, true)] {
                let part: Vec<Row> = part.into_iter().cloned().collect();
                for chunk in part.chunks(batch_max.max(1)) {
                    let p = upsert_params(chunk);
                    let t = |v: &[i64]| -> Vec<time::OffsetDateTime> {
                        v.iter().map(|s| ts(*s)).collect()
                    };
                    let (first, last) = (t(&p.first), t(&p.last));
                    let deny: Vec<Option<time::OffsetDateTime>> =
                        p.pending_deny_last.iter().map(|o| o.map(ts)).collect();
                    let res = match (is_egress, is_rec) {
                        (false, rec) => {
                            let st = if rec { &self.reconcile } else { &self.upsert };
                            tx.query(
                                st,
                                &[
                                    &p.src,
                                    &p.dst,
                                    &p.action,
                                    &p.reporter,
                                    &first,
                                    &last,
                                    &p.count,
                                    &p.pending_action,
                                    &deny,
                                ],
                            )
                            .await
                        }
                        (true, rec) => {
                            let st = if rec {
                                &self.reconcile_egress
                            } else {
                                &self.upsert_egress
                            };
                            tx.query(
                                st,
                                &[
                                    &p.src,
                                    &p.dst_type,
                                    &p.dst,
                                    &p.proto,
                                    &p.port,
                                    &p.action,
                                    &p.reporter,
                                    &first,
                                    &last,
                                    &p.count,
                                    &p.pending_action,
                                    &deny,
                                ],
                            )
                            .await
                        }
                    };
                    for r in res.map_err(FlushError::Failed)? {
                        let inserted: bool = r.get(5);
                        if !inserted && !is_rec {
                            continue;
                        }
                        let fs: time::OffsetDateTime = r.get(4);
                        let e = NewEdge {
                            src: r.get(0),
                            dst: r.get(1),
                            action: r.get(2),
                            reporter: r.get(3),
                            first_seen: fs.unix_timestamp(),
                            inserted,
                            egress: is_egress,
                        };
                        if is_rec {
                            out.reconciled.push(e);
                        } else {
                            out.new.push(e);
                        }
                    }
                }
            }
        }
        match tx.commit().await {
            Ok(()) => Ok(out),
            Err(e) if e.as_db_error().is_some() => Err(FlushError::Failed(e)),
            Err(e) => Err(FlushError::Ambiguous(describe(&e))),
        }
    }
}

fn ts(s: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(s).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

// ---- TLS for tokio-postgres over rustls, per sslmode (homelab_core::pgtls) ---------------

#[derive(Clone)]
pub struct PgTls(Arc<rustls::ClientConfig>);

impl PgTls {
    /// The rustls configuration for `mode`: encrypt only for prefer/require, the chain to
    /// `root_cert` (or the web PKI roots) for verify-ca, plus the host name for verify-full.
    /// With `disable` tokio-postgres never starts TLS, so the configuration is unused.
    pub fn new(mode: TlsMode, root_cert: Option<&Path>) -> Result<Self, String> {
        homelab_core::pgtls::client_config(mode, root_cert).map(|c| PgTls(Arc::new(c)))
    }
}

impl MakeTlsConnect<Socket> for PgTls {
    type Stream = PgTlsStream;
    type TlsConnect = PgTlsConnect;
    type Error = io::Error;

    /// tokio-postgres asks for a connector before it knows whether TLS will be used (also
    /// for `sslmode=disable` and for `hostaddr` without `host`), so a name rustls cannot take
    /// only fails once a handshake is actually attempted.
    fn make_tls_connect(&mut self, domain: &str) -> Result<PgTlsConnect, io::Error> {
        let name = rustls::pki_types::ServerName::try_from(domain.to_string()).ok();
        Ok(PgTlsConnect(self.0.clone(), name))
    }
}

pub struct PgTlsConnect(
    Arc<rustls::ClientConfig>,
    Option<rustls::pki_types::ServerName<'static>>,
);

impl TlsConnect<Socket> for PgTlsConnect {
    type Stream = PgTlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<PgTlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let name = self.1.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "invalid Postgres host name for TLS",
                )
            })?;
            let s = tokio_rustls::TlsConnector::from(self.0)
                .connect(name, stream)
                .await?;
            Ok(PgTlsStream(s))
        })
    }
}

pub struct PgTlsStream(tokio_rustls::client::TlsStream<Socket>);

impl tokio_postgres::tls::TlsStream for PgTlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl AsyncRead for PgTlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for PgTlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_forms() {
        assert!(parse_dsn("postgres://u:pw@db:5432/goldmane_edges").is_ok());
        assert!(parse_dsn("host=db user=u password=pw dbname=g sslmode=require").is_ok());
        assert!(parse_dsn("mysql://x").is_err());
        let c = parse_dsn("postgres://u:pw@db/g").unwrap().config;
        assert_eq!(c.get_application_name(), Some("goldmane-edge-aggregator"));
        let e = parse_dsn("postgres://u:pw@/g").unwrap_err();
        assert_eq!(e, "no host given");
    }

    /// libpq's sslmode semantics: what tokio-postgres is told, and which verifier is used.
    #[test]
    fn sslmode_decisions() {
        let d = |s: &str| {
            let d = parse_dsn(s).unwrap();
            (d.mode, d.config.get_ssl_mode(), d.root_cert)
        };
        let ca = Some(PathBuf::from("/r/ca.pem"));
        assert_eq!(
            d("postgres://u:pw@db/g"),
            (TlsMode::Prefer, SslMode::Prefer, None)
        );
        assert_eq!(
            d("postgres://u:pw@db/g?sslmode=allow"),
            (TlsMode::Prefer, SslMode::Prefer, None)
        );
        assert_eq!(
            d("host=db sslmode=disable"),
            (TlsMode::Disable, SslMode::Disable, None)
        );
        assert_eq!(
            d("host=db sslmode=require"),
            (TlsMode::Require, SslMode::Require, None)
        );
        // libpq: require with a root certificate verifies like verify-ca.
        assert_eq!(
            d("host=db sslmode=require sslrootcert=/r/ca.pem"),
            (TlsMode::VerifyCa, SslMode::Require, ca.clone())
        );
        assert_eq!(
            d("postgres://u:pw@db/g?sslmode=verify-ca&sslrootcert=%2Fr%2Fca.pem"),
            (TlsMode::VerifyCa, SslMode::Require, ca.clone())
        );
        assert_eq!(
            d("postgresql://u:pw@db/g?sslrootcert=/r/ca.pem&sslmode=verify-full&application_name=x"),
            (TlsMode::VerifyFull, SslMode::Require, ca)
        );
        // `system`: the web PKI roots.
        assert_eq!(
            d("host=db sslmode=verify-full sslrootcert=system"),
            (TlsMode::VerifyFull, SslMode::Require, None)
        );
        // The TLS options never reach tokio-postgres; other options still do.
        let c = parse_dsn("postgres://u:pw@db/g?sslmode=verify-full&application_name=x")
            .unwrap()
            .config;
        assert_eq!(c.get_application_name(), Some("x"));
        let e = parse_dsn("postgres://u:hunter2@db/g?sslmode=verify").unwrap_err();
        assert!(
            e.starts_with(
                "sslmode=verify is not disable, allow, prefer, require, verify-ca or verify-full"
            ),
            "{e}"
        );
        assert!(!e.contains("hunter2"));
    }

    /// Root certificates are loaded when the target is built (startup, before any I/O).
    #[test]
    fn target_loads_the_root_certificate() {
        assert!(Target::new("postgres://u:pw@db/g?sslmode=verify-full").is_ok());
        assert!(Target::new("host=db sslmode=disable").is_ok());
        let e = Target::new(
            "postgres://u:hunter2@db/g?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        )
        .err()
        .unwrap();
        assert!(e.starts_with("sslrootcert /nonexistent/ca.pem: "), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a pem\n").unwrap();
        let e = Target::new(&format!(
            "host=db password=hunter2 sslmode=verify-ca sslrootcert='{}'",
            junk.display()
        ))
        .err()
        .unwrap();
        assert!(
            e.starts_with(&format!("sslrootcert {}: ", junk.display())),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn redacted_in_logs() {
        assert_eq!(
            homelab_core::redact_dsn("postgresql://user:pw@host:5432/db"),
            "postgresql://user:***@host:5432/db"
        );
        assert_eq!(
            homelab_core::redact_dsn("host=h password=pw dbname=d"),
            "host=h password=*** dbname=d"
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// One fault that makes an otherwise well-formed DSN invalid.
        fn fault() -> impl Strategy<Value = (&'static str, &'static str)> {
            prop_oneof![
                Just(("sslmode", "verify")),
                Just(("sslmode", "verify_full")),
                Just(("sslmode", "bogus")),
                Just(("port", "notaport")),
                Just(("port", "99999")),
                Just(("frobnicate", "1")),
                Just(("connect_timeout", "x")),
                Just(("target_session_attrs", "weird")),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// DATABASE_URL: arbitrary text never panics the parser.
            #[test]
            fn parse_dsn_never_panics(s in prop_oneof![
                ".{0,80}",
                "(postgres|postgresql)://[a-z:@%/?&=.\\[\\]0-9]{0,40}",
                "([a-z_]{1,10}=('[^']{0,6}'?|[^ ]{0,6}) ?){0,5}",
            ]) {
                let _ = parse_dsn(&s);
            }

            /// Both DSN forms with one invalid part: rejected, and neither the password nor
            /// its escaped spelling appears in the error (nor in the config error built from it).
            #[test]
            fn password_never_in_the_error(
                user in "[a-z]{1,8}",
                pw in "PW[A-Z0-9]{6,14}",
                host in "[a-z]{1,10}",
                db in "[a-z]{1,8}",
                (k, v) in fault(),
            ) {
                let url = format!("postgres://{user}:{pw}@{host}:5432/{db}?{k}={v}");
                let kv = format!("host={host} user={user} password='{pw}' dbname={db} {k}={v}");
                for dsn in [url, kv] {
                    let e = parse_dsn(&dsn).expect_err(&dsn);
                    prop_assert!(!e.contains(&pw), "{}", e);
                    prop_assert!(!e.contains("PW"), "{}", e);
                }
            }

            /// The URL and key=value spellings of one DSN give the same connection settings.
            #[test]
            fn url_and_key_value_forms_agree(
                user in "[a-z][a-z0-9_]{0,8}",
                pw in "[A-Za-z0-9]{1,14}",
                host in "[a-z][a-z0-9-]{0,10}",
                port in 1u16..,
                db in "[a-z][a-z0-9_]{0,8}",
                mode in prop_oneof![
                    Just("disable"),
                    Just("allow"),
                    Just("prefer"),
                    Just("require"),
                    Just("verify-ca"),
                    Just("verify-full"),
                ],
                root in proptest::option::of("/[a-z]{1,8}/ca\\.pem"),
            ) {
                let (q, w) = match &root {
                    Some(r) => (format!("&sslrootcert={}", r.replace('/', "%2F")), format!(" sslrootcert='{r}'")),
                    None => (String::new(), String::new()),
                };
                let u = parse_dsn(&format!("postgresql://{user}:{pw}@{host}:{port}/{db}?sslmode={mode}{q}")).unwrap();
                let k = parse_dsn(&format!("host={host} port={port} user={user} password={pw} dbname={db} sslmode={mode}{w}")).unwrap();
                prop_assert_eq!(u.mode, k.mode);
                prop_assert_eq!(&u.root_cert, &root.as_ref().map(PathBuf::from));
                prop_assert_eq!(&k.root_cert, &u.root_cert);
                let want = match mode {
                    "disable" => SslMode::Disable,
                    "allow" | "prefer" => SslMode::Prefer,
                    _ => SslMode::Require,
                };
                prop_assert_eq!(u.config.get_ssl_mode(), want);
                let (u, k) = (u.config, k.config);
                prop_assert_eq!(u.get_user(), Some(user.as_str()));
                prop_assert_eq!(u.get_password(), Some(pw.as_bytes()));
                prop_assert_eq!(u.get_dbname(), Some(db.as_str()));
                prop_assert_eq!(u.get_ports(), &[port][..]);
                prop_assert_eq!(u.get_user(), k.get_user());
                prop_assert_eq!(u.get_password(), k.get_password());
                prop_assert_eq!(u.get_dbname(), k.get_dbname());
                prop_assert_eq!(u.get_hosts(), k.get_hosts());
                prop_assert_eq!(u.get_ports(), k.get_ports());
                prop_assert_eq!(u.get_ssl_mode(), k.get_ssl_mode());
                prop_assert_eq!(u.get_application_name(), Some("goldmane-edge-aggregator"));
            }
        }
    }
}
