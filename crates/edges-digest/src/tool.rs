//! `policy` and `graph`: config → one read-only snapshot → pure rendering → stdout. Exit codes
//! (issue 17): 0 printed · 2 bad input (caught in config, before any connection) · 3 database
//! unreachable or the per-side tables missing · 6 no observed data · 7 `--check` found edges
//! the staged policy would deny · 8 stdout could not be written. Errors are one line on stderr
//! and nothing on stdout.

use crate::cli::Command;
use crate::config::{Config, GraphFormat, SinceSpec};
use crate::report::{error, info, Sink};
use crate::{db, graph, policy, trail};
use std::io::Write;
use time::OffsetDateTime;

pub const EXIT_NO_DATA: i32 = 6;
pub const EXIT_STAGED_DENIES: i32 = 7;
pub const EXIT_OUTPUT: i32 = 8;

/// `L-OUTPUT`: stdout refused the document (a closed pipe, a full disk).
pub const L_OUTPUT: &str = "stdout: write failed (closed pipe or full disk); the output is incomplete — rerun into a file or a reader that stays open";

fn since_text(s: &SinceSpec) -> String {
    match s {
        SinceSpec::Ago(d) => d.text.clone(),
        SinceSpec::At(t) => crate::decide::zulu(*t),
    }
}

/// Run `policy` or `graph`, writing the document to `out`.
pub fn run(cfg: &Config, sink: &mut dyn Sink, out: &mut dyn Write) -> i32 {
    let mut client = match db::connect(&cfg.database_url) {
        Ok(c) => c,
        Err(e) => {
            error(sink, &crate::report::l_db(&e.0));
            return 3;
        }
    };
    let db_fail = |sink: &mut dyn Sink, e: &postgres::Error| {
        error(
            sink,
            &crate::report::l_db(&db::scrubbed(&db::full_error(e), &cfg.database_url).0),
        );
        3
    };
    let mut tx = match client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
    {
        Ok(t) => t,
        Err(e) => return db_fail(sink, &e),
    };
    let (edge, per_side, now) = match trail::probe(&mut tx) {
        Ok(p) => p,
        Err(e) => return db_fail(sink, &e),
    };
    if !edge {
        error(sink, crate::report::L_NOTABLE);
        return 3;
    }
    if !per_side {
        error(sink, crate::report::L_OLDSCHEMA);
        return 3;
    }
    let start: OffsetDateTime = match &cfg.tool.since {
        SinceSpec::Ago(d) => now - d.value,
        SinceSpec::At(t) => *t,
    };
    if start >= now {
        error(
            sink,
            &format!(
                "config DIGEST_SINCE: {} is not before the database's now() {} — give a past time or a duration like 7d",
                crate::report::ts(start),
                crate::report::ts(now)
            ),
        );
        return 2;
    }
    let w = policy::Window {
        start,
        end: now,
        since_text: since_text(&cfg.tool.since),
    };
    let text_or_write = match cfg.command {
        Command::Policy => {
            let ns = cfg.tool.namespace.as_deref().unwrap_or_default();
            let t = match trail::ns_trail(&mut tx, ns, start, cfg.tool.ingress) {
                Ok(t) => t,
                Err(e) => return db_fail(sink, &e),
            };
            if t.rows_in_window == 0 {
                error(sink, &format!(
                    "no observed data for namespace {ns} since {} — unknown namespace or empty window; check the name or widen --since",
                    crate::report::ts(start)
                ));
                return EXIT_NO_DATA;
            }
            if cfg.tool.check {
                let hits = match trail::staged_hits(&mut tx, ns, start) {
                    Ok(h) => h,
                    Err(e) => return db_fail(sink, &e),
                };
                let text = policy::render_check(ns, &w, &hits);
                if !write_all(out, text.as_bytes()) {
                    error(sink, L_OUTPUT);
                    return EXIT_OUTPUT;
                }
                if hits.is_empty() {
                    info(
                        sink,
                        &format!("staged check {ns}: no observed edge would be denied"),
                    );
                    return 0;
                }
                error(sink, &format!(
                    "staged check {ns}: {} observed edge side(s) would be denied by the staged policy — fix the staged policy before enforcing it",
                    hits.len()
                ));
                return EXIT_STAGED_DENIES;
            }
            policy::render_policy(ns, &w, &t, &cfg.tool)
        }
        _ => {
            let mut b = graph::Builder::default();
            if let Err(e) =
                trail::graph_edges(&mut tx, start, cfg.tool.namespace.as_deref(), &mut b)
            {
                return db_fail(sink, &e);
            }
            if b.is_empty() {
                let scope = cfg
                    .tool
                    .namespace
                    .as_deref()
                    .map_or(String::new(), |n| format!(" touching {n}"));
                error(sink, &format!(
                    "no observed edges{scope} since {} — empty window or unknown namespace; widen --since",
                    crate::report::ts(start)
                ));
                return EXIT_NO_DATA;
            }
            let g = b.finish();
            let mut buf = std::io::BufWriter::with_capacity(64 * 1024, &mut *out);
            let r = match cfg.tool.graph_format {
                GraphFormat::Mermaid => graph::write_mermaid(&mut buf, &g, start, now),
                GraphFormat::Dot => graph::write_dot(&mut buf, &g, start, now),
                GraphFormat::Svg => graph::write_svg(&mut buf, &g, start, now),
            };
            if r.and_then(|_| buf.flush()).is_err() {
                error(sink, L_OUTPUT);
                return EXIT_OUTPUT;
            }
            return 0;
        }
    };
    if !write_all(out, text_or_write.as_bytes()) {
        error(sink, L_OUTPUT);
        return EXIT_OUTPUT;
    }
    0
}

fn write_all(out: &mut dyn Write, b: &[u8]) -> bool {
    out.write_all(b).and_then(|_| out.flush()).is_ok()
}
