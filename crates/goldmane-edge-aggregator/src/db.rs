//! Postgres: one tokio-postgres connection (§4.6), the locked migration (§4.2), the sorted
//! unnest upsert (§4.4) and TLS per `sslmode` via rustls.

use crate::decide::{upsert_params, Row};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Socket, Statement};

pub const MIGRATION: &str = include_str!("../migrations/0001_edge.sql");
/// Fixed for all versions (§4.2.1).
pub const ADVISORY_LOCK: i64 = 7_166_126_151_936;

pub const UPSERT: &str = "\
INSERT INTO edge AS e (src_ns, dst_ns, action, first_seen, last_seen, flow_count)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::bigint[])
ON CONFLICT (src_ns, dst_ns, action) DO UPDATE SET
    first_seen = LEAST(e.first_seen, EXCLUDED.first_seen),
    last_seen  = GREATEST(e.last_seen, EXCLUDED.last_seen),
    flow_count = e.flow_count + EXCLUDED.flow_count
RETURNING src_ns, dst_ns, action, first_seen, (xmax = 0) AS inserted";

/// Parse and check a DSN (URL or key=value) without echoing it.
pub fn parse_dsn(dsn: &str) -> Result<tokio_postgres::Config, String> {
    let lower = dsn.to_ascii_lowercase();
    if lower.contains("sslmode=verify") {
        return Err(
            "sslmode verify-ca/verify-full is not supported; use disable, prefer or require".into(),
        );
    }
    let mut cfg = tokio_postgres::Config::from_str(dsn).map_err(|e| {
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
    cfg.connect_timeout(Duration::from_secs(10));
    cfg.keepalives(true);
    cfg.keepalives_idle(Duration::from_secs(60));
    Ok(cfg)
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
    task: tokio::task::JoinHandle<()>,
    pub created: bool,
}

impl Drop for Db {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub struct NewEdge {
    pub src: String,
    pub dst: String,
    pub action: String,
    pub first_seen: i64,
}

pub enum FlushError {
    /// Nothing was committed.
    Failed(tokio_postgres::Error),
    /// The connection died around COMMIT: the batch may or may not be in.
    Ambiguous(String),
}

/// Connect, migrate, prepare the upsert.
pub async fn connect(cfg: &tokio_postgres::Config) -> Result<Db, tokio_postgres::Error> {
    let (mut client, conn) = cfg.connect(PgTls::new()).await?;
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    let created = migrate(&mut client).await?;
    let upsert = client.prepare(UPSERT).await?;
    Ok(Db {
        client,
        upsert,
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
    tx.commit().await?;
    Ok(!existed)
}

impl Db {
    /// `max(last_seen)` as Unix seconds.
    pub async fn max_last_seen(&self) -> Result<Option<i64>, tokio_postgres::Error> {
        let row = self
            .client
            .query_one(
                "SELECT extract(epoch FROM max(last_seen))::float8 FROM edge",
                &[],
            )
            .await?;
        Ok(row.get::<_, Option<f64>>(0).map(|f| f as i64))
    }

    pub async fn ping(&self) -> Result<(), tokio_postgres::Error> {
        self.client.simple_query("SELECT 1").await.map(|_| ())
    }

    /// One transaction, ≤ `batch_max` rows per statement, rows sorted.
    pub async fn flush(
        &mut self,
        rows: &[Row],
        batch_max: usize,
    ) -> Result<Vec<NewEdge>, FlushError> {
        let tx = self
            .client
            .transaction()
            .await
            .map_err(FlushError::Failed)?;
        let mut new = Vec::new();
        for chunk in rows.chunks(batch_max.max(1)) {
            let p = upsert_params(chunk);
            let t = |v: &[i64]| -> Vec<time::OffsetDateTime> {
                v.iter()
                    .map(|s| {
                        time::OffsetDateTime::from_unix_timestamp(*s)
                            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
                    })
                    .collect()
            };
            let (first, last) = (t(&p.first), t(&p.last));
            let out = tx
                .query(
                    &self.upsert,
                    &[&p.src, &p.dst, &p.action, &first, &last, &p.count],
                )
                .await
                .map_err(FlushError::Failed)?;
            for r in out {
                if r.get::<_, bool>(4) {
                    let fs: time::OffsetDateTime = r.get(3);
                    new.push(NewEdge {
                        src: r.get(0),
                        dst: r.get(1),
                        action: r.get(2),
                        first_seen: fs.unix_timestamp(),
                    });
                }
            }
        }
        match tx.commit().await {
            Ok(()) => Ok(new),
            Err(e) if e.as_db_error().is_some() => Err(FlushError::Failed(e)),
            Err(e) => Err(FlushError::Ambiguous(describe(&e))),
        }
    }
}

// ---- TLS for tokio-postgres over rustls (sslmode prefer/require: encrypt, like libpq,
// without verifying the server) ---------------------------------------------------------

#[derive(Clone)]
pub struct PgTls(Arc<rustls::ClientConfig>);

impl PgTls {
    pub fn new() -> Self {
        let provider = crate::certs::provider();
        let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map(|b| {
                b.dangerous()
                    .with_custom_certificate_verifier(Arc::new(homelab_core::tls::EncryptOnly(
                        provider,
                    )))
                    .with_no_client_auth()
            });
        match cfg {
            Ok(c) => PgTls(Arc::new(c)),
            // The ring provider always supports the safe defaults.
            Err(e) => unreachable!("ring provider rejected default TLS versions: {e}"),
        }
    }
}

impl Default for PgTls {
    fn default() -> Self {
        Self::new()
    }
}

impl MakeTlsConnect<Socket> for PgTls {
    type Stream = PgTlsStream;
    type TlsConnect = PgTlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<PgTlsConnect, io::Error> {
        let name = rustls::pki_types::ServerName::try_from(domain.to_string()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid Postgres host name for TLS",
            )
        })?;
        Ok(PgTlsConnect(self.0.clone(), name))
    }
}

pub struct PgTlsConnect(
    Arc<rustls::ClientConfig>,
    rustls::pki_types::ServerName<'static>,
);

impl TlsConnect<Socket> for PgTlsConnect {
    type Stream = PgTlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<PgTlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let s = tokio_rustls::TlsConnector::from(self.0)
                .connect(self.1, stream)
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
        let e = parse_dsn("postgres://u:pw@db/g?sslmode=verify-full").unwrap_err();
        assert!(e.contains("verify-full"));
        assert!(parse_dsn("mysql://x").is_err());
        let c = parse_dsn("postgres://u:pw@db/g").unwrap();
        assert_eq!(c.get_application_name(), Some("goldmane-edge-aggregator"));
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
                Just(("sslmode", "verify-full")),
                Just(("sslmode", "verify-ca")),
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
                mode in prop_oneof![Just("disable"), Just("prefer"), Just("require")],
            ) {
                let u = parse_dsn(&format!("postgresql://{user}:{pw}@{host}:{port}/{db}?sslmode={mode}")).unwrap();
                let k = parse_dsn(&format!("host={host} port={port} user={user} password={pw} dbname={db} sslmode={mode}")).unwrap();
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
