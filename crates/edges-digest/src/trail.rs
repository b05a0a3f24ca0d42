//! Reading the edge trail for `policy` and `graph` (SCHEMA.md semantics), one REPEATABLE READ
//! snapshot, read-only. Aggregation happens in the server, so what reaches the client is one row
//! per destination (policy) or per namespace pair / external destination (graph).

use postgres::Transaction;
use time::OffsetDateTime;

/// An observed external destination of a namespace (one `egress_edge` key without verdict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    pub dst_type: String,
    pub dst_name: String,
    pub proto: String,
    pub dst_port: i32,
    pub flows: i64,
}

/// Everything `policy` needs about one namespace in the window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NsTrail {
    /// Oldest `first_seen` of any row touching the namespace (lifetime).
    pub data_start: Option<OffsetDateTime>,
    /// Rows touching the namespace with `last_seen` ≥ start (either table, either side).
    pub rows_in_window: i64,
    /// Observed allowed destination namespaces and the source side's lifetime flow count.
    pub egress_ns: Vec<(String, i64)>,
    pub external: Vec<External>,
    /// Source namespaces the destination side allowed into NS.
    pub ingress_ns: Vec<(String, i64)>,
    /// Deny rows touching NS in the window (either side, both tables).
    pub denies: i64,
}

/// One edge side the staged policy would deny.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedHit {
    pub src_ns: String,
    /// Destination namespace, or `<type> <name> <proto>/<port>` for external egress.
    pub dst: String,
    pub reporter: String,
    pub action: String,
    pub last: OffsetDateTime,
    pub flows: i64,
}

/// The snapshot's `now` and whether the per-side tables exist: `(edge, per_side, now)`.
pub fn probe(tx: &mut Transaction<'_>) -> Result<(bool, bool, OffsetDateTime), postgres::Error> {
    let row = tx.query_one(
        &format!(
            "SELECT to_regclass('edge') IS NOT NULL, {}, transaction_timestamp()",
            crate::db::PER_SIDE_SCHEMA_SQL
        ),
        &[],
    )?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

const OBSERVED_EGRESS: &str = "SELECT e.dst_ns, e.flow_count FROM edge e \
  WHERE e.src_ns = $1 AND e.action = 'allow' AND e.reporter = 'src' AND e.last_seen >= $2 \
  AND NOT EXISTS (SELECT 1 FROM edge d WHERE d.src_ns = e.src_ns AND d.dst_ns = e.dst_ns \
    AND d.action = 'deny' AND d.reporter = 'dst' AND d.last_seen >= $2) \
  ORDER BY e.dst_ns COLLATE \"C\"";

const OBSERVED_EXTERNAL: &str = "SELECT g.dst_type, g.dst_name, g.proto, g.dst_port, g.flow_count \
  FROM egress_edge g WHERE g.src_ns = $1 AND g.action = 'allow' AND g.reporter = 'src' AND g.last_seen >= $2 \
  AND NOT EXISTS (SELECT 1 FROM egress_edge d WHERE (d.src_ns, d.dst_type, d.dst_name, d.proto, d.dst_port) \
    = (g.src_ns, g.dst_type, g.dst_name, g.proto, g.dst_port) AND d.action = 'deny' AND d.reporter = 'dst' \
    AND d.last_seen >= $2) \
  ORDER BY g.proto COLLATE \"C\", g.dst_port, g.dst_type COLLATE \"C\", g.dst_name COLLATE \"C\"";

const OBSERVED_INGRESS: &str = "SELECT e.src_ns, e.flow_count FROM edge e \
  WHERE e.dst_ns = $1 AND e.action = 'allow' AND e.reporter = 'dst' AND e.last_seen >= $2 \
  ORDER BY e.src_ns COLLATE \"C\"";

const NS_SUMMARY: &str = "SELECT min(first_seen), \
  count(*) FILTER (WHERE last_seen >= $2), \
  count(*) FILTER (WHERE last_seen >= $2 AND action = 'deny') FROM ( \
    SELECT first_seen, last_seen, action FROM edge WHERE src_ns = $1 \
    UNION ALL SELECT first_seen, last_seen, action FROM edge WHERE dst_ns = $1 AND src_ns <> $1 \
    UNION ALL SELECT first_seen, last_seen, action FROM egress_edge WHERE src_ns = $1) r";

pub fn ns_trail(
    tx: &mut Transaction<'_>,
    ns: &str,
    start: OffsetDateTime,
    ingress: bool,
) -> Result<NsTrail, postgres::Error> {
    let s = tx.query_one(NS_SUMMARY, &[&ns, &start])?;
    let pairs = |rows: Vec<postgres::Row>| -> Vec<(String, i64)> {
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    };
    let egress_ns = pairs(tx.query(OBSERVED_EGRESS, &[&ns, &start])?);
    let external = tx
        .query(OBSERVED_EXTERNAL, &[&ns, &start])?
        .iter()
        .map(|r| External {
            dst_type: r.get(0),
            dst_name: r.get(1),
            proto: r.get(2),
            dst_port: r.get(3),
            flows: r.get(4),
        })
        .collect();
    let ingress_ns = if ingress {
        pairs(tx.query(OBSERVED_INGRESS, &[&ns, &start])?)
    } else {
        Vec::new()
    };
    Ok(NsTrail {
        data_start: s.get(0),
        rows_in_window: s.get(1),
        egress_ns,
        external,
        ingress_ns,
        denies: s.get(2),
    })
}

/// Edge sides touching NS that staged policy would have denied inside the window (SCHEMA.md:
/// `pending_deny_last_seen` ≥ start), today's deny first.
pub fn staged_hits(
    tx: &mut Transaction<'_>,
    ns: &str,
    start: OffsetDateTime,
) -> Result<Vec<StagedHit>, postgres::Error> {
    let sql = "SELECT src_ns, dst, reporter, action, last, flows FROM ( \
        SELECT src_ns, dst_ns AS dst, reporter, action, pending_deny_last_seen AS last, flow_count AS flows \
          FROM edge WHERE (src_ns = $1 OR dst_ns = $1) AND pending_deny_last_seen >= $2 \
        UNION ALL \
        SELECT src_ns, dst_type || ' ' || dst_name || ' ' || proto || CASE WHEN dst_port > 0 THEN '/' || dst_port ELSE '' END, \
          reporter, action, pending_deny_last_seen, flow_count \
          FROM egress_edge WHERE src_ns = $1 AND pending_deny_last_seen >= $2) h \
        ORDER BY CASE action WHEN 'deny' THEN 0 ELSE 1 END, src_ns COLLATE \"C\", dst COLLATE \"C\", reporter COLLATE \"C\", action COLLATE \"C\"";
    Ok(tx
        .query(sql, &[&ns, &start])?
        .iter()
        .map(|r| StagedHit {
            src_ns: r.get(0),
            dst: r.get(1),
            reporter: r.get(2),
            action: r.get(3),
            last: r.get(4),
            flows: r.get(5),
        })
        .collect())
}

/// The window's graph: per namespace pair (either side; flows = the larger side's count, denied
/// when any side denied) and per namespace → external destination name (all ports summed per
/// side, then the larger side). `ns` keeps only edges touching it. Rows stream into `b`.
pub fn graph_edges(
    tx: &mut Transaction<'_>,
    start: OffsetDateTime,
    ns: Option<&str>,
    b: &mut crate::graph::Builder,
) -> Result<(), postgres::Error> {
    use postgres::fallible_iterator::FallibleIterator;
    let sql = "SELECT src, dst, external, denied, flows FROM ( \
        SELECT src_ns AS src, dst_ns AS dst, false AS external, bool_or(action = 'deny') AS denied, \
          max(flow_count)::bigint AS flows FROM edge WHERE last_seen >= $1 \
          AND ($2::text IS NULL OR src_ns = $2 OR dst_ns = $2) GROUP BY src_ns, dst_ns \
        UNION ALL \
        SELECT src_ns, dst, true, bool_or(denied), max(flows)::bigint FROM ( \
          SELECT src_ns, dst_type || ':' || dst_name AS dst, reporter, bool_or(action = 'deny') AS denied, \
            sum(flow_count) AS flows FROM egress_edge WHERE last_seen >= $1 AND ($2::text IS NULL OR src_ns = $2) \
            GROUP BY src_ns, dst_type, dst_name, reporter) x GROUP BY src_ns, dst) g";
    let params: [&(dyn postgres::types::ToSql + Sync); 2] = [&start, &ns];
    let mut rows = tx.query_raw(sql, params)?;
    while let Some(r) = rows.next()? {
        let src: &str = r.get(0);
        let dst: &str = r.get(1);
        b.add(src, dst, r.get(2), r.get(3), r.get(4));
    }
    Ok(())
}
