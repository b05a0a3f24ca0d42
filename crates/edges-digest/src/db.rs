//! The database side (spec §3): connection, state tables, the advisory lock and the three
//! statements of the REPEATABLE READ snapshot. Errors are one line, password scrubbed.

use crate::decide::Item;
use homelab_core::Secret;
use postgres::{Client, IsolationLevel, NoTls, Transaction};
use std::time::Duration;
use time::OffsetDateTime;

/// `pg_advisory_xact_lock` key for the state-table DDL (§3.2).
pub const MIGRATE_LOCK: i64 = 7_166_126_151_937;
/// `pg_try_advisory_lock` key for single-instance runs (§3.6).
pub const RUN_LOCK: i64 = 7_166_126_151_938;

pub const STATE_DDL: &str = "\
CREATE TABLE IF NOT EXISTS edge_digest_run (
    id bigserial PRIMARY KEY, window_start timestamptz NOT NULL, window_end timestamptz NOT NULL,
    new_edges integer NOT NULL, posted boolean NOT NULL, finished_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS edge_digest_announced (
    src_ns text NOT NULL, dst_ns text NOT NULL, action text NOT NULL, first_seen timestamptz NOT NULL,
    run_id bigint NOT NULL REFERENCES edge_digest_run (id), PRIMARY KEY (src_ns, dst_ns, action));";

const SESSION: &str = "SET TIME ZONE 'UTC'; SET statement_timeout='30s'; SET lock_timeout='10s'; \
SET idle_in_transaction_session_timeout='180s'";

/// A DB error as one safe line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError(pub String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn password_of(dsn: &str) -> Option<String> {
    let cfg = crate::tls::parse_dsn(dsn).ok()?.config;
    cfg.get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
}

/// Map any error to a line without the DSN's password.
pub fn scrubbed(e: &dyn std::fmt::Display, dsn: &Secret) -> DbError {
    let mut secrets = vec![dsn.expose().to_string()];
    secrets.extend(password_of(dsn.expose()).filter(|p| !p.is_empty()));
    let mut text = homelab_core::http::scrub(&e.to_string(), &secrets);
    text = text.replace('\n', " ");
    DbError(text.trim().to_string())
}

/// Connect (TLS per `sslmode`, see `tls.rs`), name the session and set its timeouts (§3.1).
pub fn connect(dsn: &Secret) -> Result<Client, DbError> {
    let parsed = crate::tls::parse_dsn(dsn.expose()).map_err(|e| scrubbed(&e, dsn))?;
    let mut cfg = parsed.config;
    cfg.application_name("edges-digest");
    cfg.connect_timeout(Duration::from_secs(10));
    let mut client = if parsed.mode == crate::tls::TlsMode::Disable {
        cfg.connect(NoTls)
    } else {
        let tls = crate::tls::client_config(parsed.mode, parsed.root_cert.as_deref())
            .map_err(|e| scrubbed(&e, dsn))?;
        cfg.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
    }
    .map_err(|e| scrubbed(&full_error(&e), dsn))?;
    client
        .batch_execute(SESSION)
        .map_err(|e| scrubbed(&full_error(&e), dsn))?;
    Ok(client)
}

/// `postgres::Error`'s Display hides the server's message behind "db error"; show it.
pub fn full_error(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {} ({})", d.severity(), d.message(), d.code().code()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                let t = inner.to_string();
                if !s.contains(&t) {
                    s.push_str(": ");
                    s.push_str(&t);
                }
                src = inner.source();
            }
            s
        }
    }
}

/// Whether `edge_digest_run` and `edge_digest_announced` both exist.
pub fn state_tables_exist(client: &mut Client) -> Result<bool, postgres::Error> {
    both_tables_exist(client)
}

fn both_tables_exist(client: &mut Client) -> Result<bool, postgres::Error> {
    let row = client.query_one(
        "SELECT to_regclass('edge_digest_run') IS NOT NULL AND to_regclass('edge_digest_announced') IS NOT NULL",
        &[],
    )?;
    Ok(row.get(0))
}

/// §3.2: create the state tables under the migration lock (no DDL when both exist, so a
/// role without CREATE works once they do).
pub fn ensure_state_tables(client: &mut Client) -> Result<(), postgres::Error> {
    if both_tables_exist(client)? {
        return Ok(());
    }
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])?;
    tx.batch_execute(STATE_DDL)?;
    tx.commit()
}

/// §3.6: one try of the session lock.
pub fn try_lock(client: &mut Client) -> Result<bool, postgres::Error> {
    Ok(client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&RUN_LOCK])?
        .get(0))
}

pub fn begin(client: &mut Client) -> Result<Transaction<'_>, postgres::Error> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .start()
}

/// What the snapshot shows before the window is known.
#[derive(Debug, Clone)]
pub struct Probe {
    pub edge_exists: bool,
    /// `edge.reporter`, `edge.pending_deny_last_seen` and `egress_edge` all present (the
    /// aggregator's migration 0002, `SCHEMA.md`).
    pub per_side_schema: bool,
    pub state_tables: bool,
    pub now: OffsetDateTime,
    pub last_end: Option<OffsetDateTime>,
}

/// SQL that is true when the per-side schema (issue 13/17) is in place.
pub const PER_SIDE_SCHEMA_SQL: &str = "to_regclass('egress_edge') IS NOT NULL AND \
    (SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() \
     AND table_name = 'edge' AND column_name IN ('reporter', 'pending_deny_last_seen')) = 2";

pub fn probe(tx: &mut Transaction<'_>, use_state: bool) -> Result<Probe, postgres::Error> {
    let row = tx.query_one(
        &format!(
            "SELECT to_regclass('edge') IS NOT NULL, \
             to_regclass('edge_digest_run') IS NOT NULL AND to_regclass('edge_digest_announced') IS NOT NULL, \
             transaction_timestamp(), {PER_SIDE_SCHEMA_SQL}"
        ),
        &[],
    )?;
    let (edge_exists, state_tables, now, per_side_schema): (bool, bool, OffsetDateTime, bool) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let last_end = if use_state && state_tables {
        tx.query_one("SELECT max(window_end) FROM edge_digest_run", &[])?
            .get(0)
    } else {
        None
    };
    Ok(Probe {
        edge_exists,
        per_side_schema,
        state_tables: use_state && state_tables,
        now,
        last_end,
    })
}

/// Every candidate item of a digest, one row per announced key.
///
/// - `edge`: `(src, dst, action)` over both reporting sides (issue 13): first seen = earliest
///   side, flows = the larger side's count (each side counts its own reports, so summing would
///   double an in-cluster connection); a pair with a `deny` row of either side shows only as
///   `deny`.
/// - `egress`: the same over `egress_edge`, keyed by destination, protocol and port; the ledger
///   key is `(src_ns, 'egress:<type>:<name>:<proto>:<port>', action)` — `:` is not in a DNS
///   label, so it never meets a namespace key.
/// - `staged`: pairs (edge or egress) whose `pending_deny_last_seen` falls after the window
///   start; ledger key action `staged-deny`, so each is told once.
fn cte(announced: bool) -> String {
    let filter = if announced {
        "WHERE NOT EXISTS (SELECT 1 FROM edge_digest_announced a \
         WHERE (a.src_ns, a.dst_ns, a.action) = (c0.src_ns, c0.key_dst, c0.key_action))"
    } else {
        ""
    };
    format!(
        "WITH p AS (SELECT src_ns, dst_ns, bool_or(action = 'deny') AS denied, \
           max(pending_deny_last_seen) AS pending, max(flow_count) AS flows FROM edge GROUP BY src_ns, dst_ns), \
         t AS (SELECT src_ns, dst_ns, action, min(first_seen) AS first_seen, max(flow_count) AS flow_count \
           FROM edge GROUP BY src_ns, dst_ns, action), \
         gp AS (SELECT src_ns, dst_type, dst_name, proto, dst_port, bool_or(action = 'deny') AS denied, \
           max(pending_deny_last_seen) AS pending, max(flow_count) AS flows \
           FROM egress_edge GROUP BY src_ns, dst_type, dst_name, proto, dst_port), \
         gt AS (SELECT src_ns, dst_type, dst_name, proto, dst_port, action, min(first_seen) AS first_seen, \
           max(flow_count) AS flow_count FROM egress_edge GROUP BY src_ns, dst_type, dst_name, proto, dst_port, action), \
         c0 AS ( \
           SELECT 'edge'::text AS kind, t.src_ns, t.dst_ns, ''::text AS dst_type, ''::text AS dst_name, \
             ''::text AS proto, 0 AS dst_port, t.action, t.first_seen AS at, t.flow_count, \
             t.dst_ns AS key_dst, t.action AS key_action \
           FROM t JOIN p USING (src_ns, dst_ns) WHERE t.first_seen > $1 AND (t.action = 'deny' OR NOT p.denied) \
           UNION ALL \
           SELECT 'egress', gt.src_ns, '', gt.dst_type, gt.dst_name, gt.proto, gt.dst_port, gt.action, \
             gt.first_seen, gt.flow_count, \
             'egress:' || gt.dst_type || ':' || gt.dst_name || ':' || gt.proto || ':' || gt.dst_port, gt.action \
           FROM gt JOIN gp USING (src_ns, dst_type, dst_name, proto, dst_port) \
           WHERE gt.first_seen > $1 AND (gt.action = 'deny' OR NOT gp.denied) \
           UNION ALL \
           SELECT 'staged', p.src_ns, p.dst_ns, '', '', '', 0, CASE WHEN p.denied THEN 'deny' ELSE 'allow' END, \
             p.pending, p.flows, p.dst_ns, 'staged-deny' \
           FROM p WHERE p.pending >= $1 \
           UNION ALL \
           SELECT 'staged', gp.src_ns, '', gp.dst_type, gp.dst_name, gp.proto, gp.dst_port, \
             CASE WHEN gp.denied THEN 'deny' ELSE 'allow' END, gp.pending, gp.flows, \
             'egress:' || gp.dst_type || ':' || gp.dst_name || ':' || gp.proto || ':' || gp.dst_port, 'staged-deny' \
           FROM gp WHERE gp.pending >= $1), \
         c AS (SELECT * FROM c0 {filter}) "
    )
}

/// The candidates of this run, computed once into a temporary table dropped at the end of the
/// transaction (§3.4 evaluated the CTE per statement; with the per-side grouping that tripled
/// the work). Counts, lines and the ledger insert read it, all in the same snapshot.
pub const CANDIDATES: &str = "edges_digest_candidates";

pub fn materialize(
    tx: &mut Transaction<'_>,
    since: OffsetDateTime,
    announced: bool,
) -> Result<(), postgres::Error> {
    let sql = format!(
        "CREATE TEMPORARY TABLE {CANDIDATES} ON COMMIT DROP AS {}SELECT * FROM c",
        cte(announced)
    );
    tx.execute(&sql, &[&since])?;
    Ok(())
}

/// §3.4a, per section: `(kind, action, count)`.
pub fn counts(tx: &mut Transaction<'_>) -> Result<Vec<(String, String, i64)>, postgres::Error> {
    let sql = format!("SELECT kind, action, count(*) FROM {CANDIDATES} GROUP BY kind, action");
    Ok(tx
        .query(&sql, &[])?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// §3.4b for one section: at most `limit` rows reach the client, deny first.
pub fn lines(
    tx: &mut Transaction<'_>,
    kind: &str,
    limit: i64,
) -> Result<Vec<Item>, postgres::Error> {
    let sql = format!(
        "SELECT src_ns, dst_ns, dst_type, dst_name, proto, dst_port, action, at, flow_count FROM {CANDIDATES} \
         WHERE kind = $1 ORDER BY \
         CASE action WHEN 'deny' THEN 0 WHEN 'allow' THEN 1 WHEN 'pass' THEN 2 WHEN 'unspecified' THEN 3 ELSE 4 END, \
         src_ns COLLATE \"C\", key_dst COLLATE \"C\", action COLLATE \"C\" LIMIT $2"
    );
    Ok(tx
        .query(&sql, &[&kind, &limit])?
        .iter()
        .map(|r| Item {
            src_ns: r.get(0),
            dst_ns: r.get(1),
            dst_type: r.get(2),
            dst_name: r.get(3),
            proto: r.get(4),
            dst_port: r.get(5),
            action: r.get(6),
            at: r.get(7),
            flow_count: r.get(8),
        })
        .collect())
}

/// §3.4c: the run row and the announced keys; returns the number of keys inserted.
pub fn record(
    tx: &mut Transaction<'_>,
    since: OffsetDateTime,
    now: OffsetDateTime,
    new_edges: i64,
    posted: bool,
) -> Result<u64, postgres::Error> {
    let n = i32::try_from(new_edges).unwrap_or(i32::MAX);
    let id: i64 = tx
        .query_one(
            "INSERT INTO edge_digest_run (window_start, window_end, new_edges, posted) VALUES ($1, $2, $3, $4) RETURNING id",
            &[&since, &now, &n, &posted],
        )?
        .get(0);
    let sql = format!(
        "INSERT INTO edge_digest_announced (src_ns, dst_ns, action, first_seen, run_id) \
         SELECT src_ns, key_dst, key_action, at, $1::bigint FROM {CANDIDATES}"
    );
    tx.execute(&sql, &[&id])
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn url_encode(s: &str) -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever an error echoes (the password as given, the whole DSN, both, around any
        /// text), the scrubbed line shows neither, for URL and quoted key=value DSNs alike.
        #[test]
        fn scrubbed_never_shows_the_password(
            pw in "[A-Za-z0-9'\\\\!@#%&/:=?$-]{1,16}",
            user in "[a-z]{1,8}",
            host in "[a-z]{1,10}",
            db in "[a-z]{1,8}",
            mode in prop_oneof![Just(""), Just(" sslmode=require"), Just(" sslmode=bogus")],
            (a, b, c) in ("[^*]{0,10}", "[^*]{0,10}", "[^*]{0,10}"),
            url in any::<bool>(),
        ) {
            let dsn = if url {
                let q = if mode.is_empty() { String::new() } else { format!("?{}", mode.trim()) };
                format!("postgresql://{user}:{}@{host}:5432/{db}{q}", url_encode(&pw))
            } else {
                let quoted = pw.replace('\\', "\\\\").replace('\'', "\\'");
                format!("host={host} user={user} password='{quoted}' dbname={db}{mode}")
            };
            let secret = Secret::new(dsn.clone());
            if mode != " sslmode=bogus" {
                let parsed = crate::tls::parse_dsn(&dsn).unwrap();
                prop_assert_eq!(parsed.config.get_password(), Some(pw.as_bytes()));
            }
            let text = format!("{a}{pw}{b}{dsn}{c}\n{pw}");
            let out = scrubbed(&text, &secret).0;
            prop_assert!(!out.contains(&dsn), "{}", out);
            if mode != " sslmode=bogus" {
                prop_assert!(!out.contains(&pw), "{}", out);
            }
            prop_assert!(!out.contains('\n'));
        }
    }
}
