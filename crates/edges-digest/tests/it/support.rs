//! Shared set-up: a throwaway Postgres with the aggregator's `edge` table, config building, an
//! in-process run with captured output and recorded sleeps, and the binary.

use edges_digest::config::{parse_config, Config};
use edges_digest::report::Sink;
use edges_digest::World;
use homelab_core::log::Severity;
use std::collections::HashMap;
use std::process::Output;
use std::time::Duration;
use testkit::{Postgres, SlackSink};

pub const DB: &str = "goldmane_edges";

/// `edge` as the aggregator's per-side migration leaves it: /work/wt/SCHEMA.md (issues 13 + 17),
/// exact. Tests create the tables from these constants; the aggregator owns the real migration.
pub const EDGE_DDL: &str = "CREATE TABLE IF NOT EXISTS edge (
    src_ns         text        NOT NULL,
    dst_ns         text        NOT NULL,
    action         text        NOT NULL,
    reporter       text        NOT NULL,
    first_seen     timestamptz NOT NULL,
    last_seen      timestamptz NOT NULL,
    flow_count     bigint      NOT NULL,
    pending_action text        NULL,
    pending_deny_last_seen timestamptz NULL,
    PRIMARY KEY (src_ns, dst_ns, action, reporter)
);";

/// `egress_edge`, SCHEMA.md exact.
pub const EGRESS_EDGE_DDL: &str = "CREATE TABLE IF NOT EXISTS egress_edge (
    src_ns         text        NOT NULL,
    dst_type       text        NOT NULL,
    dst_name       text        NOT NULL,
    proto          text        NOT NULL,
    dst_port       integer     NOT NULL,
    action         text        NOT NULL,
    reporter       text        NOT NULL,
    first_seen     timestamptz NOT NULL,
    last_seen      timestamptz NOT NULL,
    flow_count     bigint      NOT NULL,
    pending_action text        NULL,
    pending_deny_last_seen timestamptz NULL,
    PRIMARY KEY (src_ns, dst_type, dst_name, proto, dst_port, action, reporter)
);";

/// Today's table before the per-side migration (aggregator `migrations/0001_edge.sql`).
pub const OLD_EDGE_DDL: &str = "CREATE TABLE IF NOT EXISTS edge (
    src_ns     text        NOT NULL,
    dst_ns     text        NOT NULL,
    action     text        NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    flow_count bigint      NOT NULL,
    PRIMARY KEY (src_ns, dst_ns, action)
);";

/// The original table: nullable non-key columns (aggregator spec 4.1.1).
pub const LEGACY_EDGE_DDL: &str = "CREATE TABLE edge (
    src_ns text, dst_ns text, action text, first_seen timestamptz, last_seen timestamptz,
    flow_count bigint, PRIMARY KEY (src_ns, dst_ns, action));";

/// Where the aggregator keeps its first migration (today's table).
pub const AGGREGATOR_MIGRATION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../goldmane-edge-aggregator/migrations/0001_edge.sql"
);

/// Both per-side tables (SCHEMA.md).
pub fn edge_ddl() -> String {
    format!("{EDGE_DDL}\n{EGRESS_EDGE_DDL}")
}

pub struct Env {
    pub pg: Postgres,
    pub slack: SlackSink,
}

impl Env {
    pub fn new() -> Env {
        Self::with_ddl(Some(&edge_ddl()))
    }
    pub fn with_ddl(ddl: Option<&str>) -> Env {
        let pg = Postgres::start();
        pg.create_db(DB);
        if let Some(d) = ddl {
            pg.psql(DB, d);
        }
        Env {
            pg,
            slack: SlackSink::start(),
        }
    }
    pub fn sql(&self, sql: &str) -> String {
        self.pg.psql(DB, sql).trim().to_string()
    }
    /// Insert a source-reported edge first seen `ago` before now (e.g. `'30 minutes'`).
    pub fn edge(&self, src: &str, dst: &str, action: &str, ago: &str, flows: i64) {
        self.edge_side(src, dst, action, "src", ago, flows);
    }
    /// Insert an edge reported by `reporter` (`src`|`dst`), first and last seen `ago`..now.
    pub fn edge_side(
        &self,
        src: &str,
        dst: &str,
        action: &str,
        reporter: &str,
        ago: &str,
        flows: i64,
    ) {
        self.sql(&format!(
            "INSERT INTO edge (src_ns, dst_ns, action, reporter, first_seen, last_seen, flow_count) \
             VALUES ({}, {}, {}, {}, now() - interval '{ago}', now(), {flows})",
            lit(src),
            lit(dst),
            lit(action),
            lit(reporter)
        ));
    }
    /// Insert an `egress_edge` row (source-reported).
    #[allow(clippy::too_many_arguments)]
    pub fn egress(
        &self,
        src: &str,
        dst_type: &str,
        dst_name: &str,
        proto: &str,
        port: i32,
        action: &str,
        ago: &str,
        flows: i64,
    ) {
        self.sql(&format!(
            "INSERT INTO egress_edge (src_ns, dst_type, dst_name, proto, dst_port, action, reporter, first_seen, last_seen, flow_count) \
             VALUES ({}, {}, {}, {}, {port}, {}, 'src', now() - interval '{ago}', now(), {flows})",
            lit(src),
            lit(dst_type),
            lit(dst_name),
            lit(proto),
            lit(action)
        ));
    }
    pub fn announced(&self) -> i64 {
        self.sql("SELECT count(*) FROM edge_digest_announced")
            .parse()
            .unwrap()
    }
    pub fn runs(&self) -> i64 {
        self.sql("SELECT count(*) FROM edge_digest_run")
            .parse()
            .unwrap()
    }
    pub fn state_tables_exist(&self) -> bool {
        self.sql("SELECT to_regclass('edge_digest_run') IS NOT NULL") == "t"
    }
    /// Base environment: DB URL, webhook, `#alerts`.
    pub fn vars(&self) -> Vec<(String, String)> {
        vec![
            ("DATABASE_URL".into(), self.pg.url(DB)),
            ("SLACK_WEBHOOK_URL".into(), self.slack.webhook_url()),
            ("SLACK_CHANNEL".into(), "#alerts".into()),
        ]
    }
    pub fn config(&self, args: &[&str]) -> Config {
        config(&self.vars(), args)
    }
    pub fn run(&self, args: &[&str]) -> Run {
        run(&self.config(args))
    }
}

pub fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub fn config(vars: &[(String, String)], args: &[&str]) -> Config {
    let m: HashMap<String, String> = vars.iter().cloned().collect();
    let mut argv = vec!["edges-digest".to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    parse_config(&|k| m.get(k).cloned(), &argv).unwrap_or_else(|e| panic!("config: {e}"))
}

#[derive(Default)]
pub struct Capture {
    pub logs: Vec<(Severity, String)>,
    pub stdout: Vec<String>,
}

impl Sink for Capture {
    fn log(&mut self, sev: Severity, text: &str) {
        self.logs.push((sev, text.to_string()));
    }
    fn stdout(&mut self, text: &str) {
        self.stdout.push(text.to_string());
    }
}

pub struct Run {
    pub code: i32,
    pub cap: Capture,
    pub sleeps: Vec<Duration>,
}

impl Run {
    /// The first log line starting with `prefix` (panics with all lines when absent).
    pub fn line(&self, prefix: &str) -> String {
        self.cap
            .logs
            .iter()
            .find(|(_, l)| l.starts_with(prefix))
            .map(|(_, l)| l.clone())
            .unwrap_or_else(|| panic!("no line starting {prefix:?} in {:#?}", self.cap.logs))
    }
    pub fn level(&self, prefix: &str) -> Severity {
        self.cap
            .logs
            .iter()
            .find(|(_, l)| l.starts_with(prefix))
            .map(|(s, _)| *s)
            .unwrap()
    }
    pub fn has(&self, prefix: &str) -> bool {
        self.cap.logs.iter().any(|(_, l)| l.starts_with(prefix))
    }
    pub fn all(&self) -> String {
        let mut s: Vec<String> = self.cap.logs.iter().map(|(_, l)| l.clone()).collect();
        s.extend(self.cap.stdout.iter().cloned());
        s.join("\n")
    }
    pub fn json(&self) -> serde_json::Value {
        assert_eq!(self.cap.stdout.len(), 1, "{:?}", self.cap.stdout);
        serde_json::from_str(&self.cap.stdout[0]).expect("stdout is one JSON document")
    }
}

/// In-process run; sleeps are recorded, not slept (unless `real_sleep`).
pub fn run(cfg: &Config) -> Run {
    run_sleeping(cfg, false)
}

pub fn run_sleeping(cfg: &Config, real_sleep: bool) -> Run {
    let mut cap = Capture::default();
    let mut sleeps = Vec::new();
    let code = {
        let mut sleep = |d: Duration| {
            sleeps.push(d);
            if real_sleep {
                std::thread::sleep(d);
            }
        };
        edges_digest::run_with(
            cfg,
            &mut World {
                sink: &mut cap,
                sleep: &mut sleep,
            },
        )
    };
    Run { code, cap, sleeps }
}

/// The built binary with exactly these variables (nothing inherited but PATH).
pub fn bin(vars: &[(String, String)], args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_edges-digest"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .args(args)
        .output()
        .expect("run edges-digest")
}

/// A demo-like trail (the shape the aggregator's Goldmane scenario leaves): two-sided reports
/// incl. a src-allow/dst-deny pair, egress to the public network on tcp/443 and a udp port, a
/// namespaced networkset, an ICMP flow and a staged-policy pending deny.
pub fn seed_demo(env: &Env) {
    let e = |src: &str, dst: &str, action: &str, rep: &str, first: &str, flows: i64| {
        env.sql(&format!(
            "INSERT INTO edge (src_ns, dst_ns, action, reporter, first_seen, last_seen, flow_count) \
             VALUES ({}, {}, {}, {}, now() - interval '{first}', now() - interval '5 minutes', {flows})",
            lit(src),
            lit(dst),
            lit(action),
            lit(rep)
        ));
    };
    e("monitoring", "immich", "allow", "src", "10 days", 12);
    e("monitoring", "immich", "allow", "dst", "10 days", 12);
    e("argocd", "monitoring", "allow", "src", "9 days", 1);
    e("argocd", "monitoring", "allow", "dst", "9 days", 1);
    e("recruiter-responder", "dbaas", "allow", "src", "2 days", 3);
    e("recruiter-responder", "dbaas", "deny", "dst", "2 days", 3);
    e("immich", "dbaas", "allow", "src", "10 days", 7);
    e("immich", "dbaas", "allow", "dst", "10 days", 7);
    e("immich", "monitoring", "allow", "src", "10 days", 2);
    e("immich", "monitoring", "allow", "dst", "10 days", 2);
    // Outside a 7 d window (last seen 8 days ago): never observed in it.
    env.sql("INSERT INTO edge (src_ns, dst_ns, action, reporter, first_seen, last_seen, flow_count) \
             VALUES ('immich', 'old-ns', 'allow', 'src', now() - interval '20 days', now() - interval '8 days', 4)");
    env.sql("UPDATE edge SET pending_action = 'deny', pending_deny_last_seen = now() - interval '10 minutes' \
             WHERE src_ns = 'immich' AND dst_ns = 'monitoring'");
    let g = |dst_type: &str, name: &str, proto: &str, port: i32, flows: i64| {
        env.sql(&format!(
            "INSERT INTO egress_edge (src_ns, dst_type, dst_name, proto, dst_port, action, reporter, first_seen, last_seen, flow_count) \
             VALUES ('immich', {}, {}, {}, {port}, 'allow', 'src', now() - interval '10 days', now() - interval '5 minutes', {flows})",
            lit(dst_type),
            lit(name),
            lit(proto)
        ));
    };
    g("network", "pub", "tcp", 443, 40);
    g("network", "pub", "udp", 3478, 2);
    g("networkset", "immich/cdn", "tcp", 443, 5);
    g("network", "pvt", "icmp", 0, 1);
}

/// The binary with `DATABASE_URL` of this env and the given args; stdout and stderr as text.
pub fn tool(env: &Env, args: &[&str]) -> (Option<i32>, String, String) {
    let o = bin(&[("DATABASE_URL".into(), env.pg.url(DB))], args);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
