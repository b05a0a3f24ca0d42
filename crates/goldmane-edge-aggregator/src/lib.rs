//! `run`: wires config → certs → health server → DB task ‖ Goldmane stream ‖ flusher ‖
//! summary ‖ signals (spec §5.1), and owns the exit-code mapping (§2.3.2).

pub mod certs;
pub mod cli;
pub mod config;
pub mod db;
pub mod decide;
pub mod entry;
pub mod health;
pub mod reconcile;
pub mod report;
pub mod stream;

/// Generated (offline, protox + tonic-build) from `proto/goldmane_subset.proto`.
pub mod proto {
    #![allow(clippy::all)]
    tonic::include_proto!("goldmane");
}

use crate::certs::Material;
use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::decide::{
    backoff, classify, fingerprint, resume_point, Agg, Classified, Dedup, DropReason, KeyRef,
    MergeOutcome, Pend, Pending, ReadyState, DEDUP_CAP,
};
use crate::report::{log, ts, Level, Stats};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{oneshot, watch, Notify};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// State shared by the stream, the flusher and the health server.
/// One finished `Flows.List` pass waiting for the flusher.
pub struct ReconcileBatch {
    pub rows: Vec<decide::Row>,
    pub window: (i64, i64),
    pub pages: u64,
    pub flows: u64,
    /// Wall time of the List pass.
    pub took_ms: u64,
}

pub struct Shared {
    pub pending: Pending,
    pub reconcile: std::collections::VecDeque<ReconcileBatch>,
    pub dedup: Dedup,
    pub watermark: Option<i64>,
    pub stats: Stats,
    pub ready: ReadyState,
    unknown_logged: HashMap<i32, Instant>,
    malformed_unlogged: u64,
    malformed_last: String,
    malformed_logged_at: Option<Instant>,
    unknown_enum_unlogged: u64,
    unknown_enum_last: String,
    unknown_enum_logged_at: Option<Instant>,
    skew_logged_at: Option<Instant>,
    pending_full_episode: bool,
}

pub struct Ctx {
    pub cfg: Config,
    /// The Postgres target, `None` in dry-run without DATABASE_URL.
    pg: Option<db::Target>,
    shared: Mutex<Shared>,
    flush_notify: Notify,
    epoch: Instant,
    heartbeat_ms: AtomicU64,
    /// The open session's HTTP/2 connection (generation, channel), for `Flows.List`.
    chan: watch::Sender<Option<(u64, tonic::transport::Channel)>>,
}

impl Ctx {
    pub fn lock(&self) -> MutexGuard<'_, Shared> {
        match self.shared.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
    pub fn mono(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }
    pub fn heartbeat_age(&self) -> Duration {
        let ms = self.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(ms.saturating_sub(self.heartbeat_ms.load(Ordering::Relaxed)))
    }
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Uniform jitter in [0, 1) without a RNG dependency.
fn jitter() -> f64 {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64 ^ d.as_secs())
        .unwrap_or(0);
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Entry point from `main`: returns the process exit code.
pub fn run(cli: Cli, env: &HashMap<String, String>) -> i32 {
    let cfg = match config::parse_config(&cli, env) {
        Ok(c) => c,
        Err(e) => {
            log(Level::Error, "L-CONFIG", &e.to_string());
            return 2;
        }
    };
    report::set_format(cfg.log_format);
    // The DB target (TLS roots included) is part of the config: exit 2 before any I/O.
    let pg = match cfg
        .database_url
        .as_ref()
        .map(|u| db::Target::new(u.expose()))
    {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(reason)) => {
            log(
                Level::Error,
                "L-CONFIG",
                &format!("config DATABASE_URL: {reason}"),
            );
            return 2;
        }
    };
    let material = match certs::load(&cfg.client_cert, &cfg.client_key, &cfg.ca) {
        Ok(m) => m,
        Err((var, reason)) => {
            log(Level::Error, "L-CONFIG", &format!("config {var}: {reason}"));
            return 2;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log(
                Level::Error,
                "L-CONFIG",
                &format!("config runtime: cannot start tokio: {e}"),
            );
            return 1;
        }
    };
    match cfg.command {
        Command::Migrate => rt.block_on(migrate_cmd(pg.as_ref())),
        Command::Check => rt.block_on(check_cmd(&cfg, pg.as_ref(), &material)),
        Command::Run => rt.block_on(run_service(cfg, pg, material)),
    }
}

fn db_label(cfg: &Config) -> String {
    cfg.database_url
        .as_ref()
        .map_or_else(|| "-".to_string(), |u| homelab_core::redact_dsn(u.expose()))
}

async fn migrate_cmd(pg: Option<&db::Target>) -> i32 {
    let Some(pg) = pg else {
        log(
            Level::Error,
            "L-CONFIG",
            "config DATABASE_URL: required for migrate",
        );
        return 2;
    };
    match db::connect(pg).await {
        Ok(d) => {
            log_schema(d.created);
            0
        }
        Err(e) => {
            log(
                Level::Error,
                "L-DBERR",
                &format!("db: {}; migration not applied", db::describe(&e)),
            );
            1
        }
    }
}

fn log_schema(created: bool) {
    let what = if created { "created" } else { "present" };
    log(
        Level::Info,
        "L-SCHEMA",
        &format!("schema ready (edge table {what})"),
    );
}

/// `check`: config, certs, DB, one stream message within 20 s; writes nothing.
async fn check_cmd(cfg: &Config, pg: Option<&db::Target>, m: &Material) -> i32 {
    let mut ok = true;
    println!(
        "cert: subject={} issuer={} not_after={}",
        m.leaf.subject_cn,
        m.leaf.issuer_cn,
        ts(m.leaf.not_after)
    );
    if !cfg.dry_run {
        if let Some(pg) = pg {
            match tokio::time::timeout(Duration::from_secs(10), pg.config.connect(pg.tls.clone()))
                .await
            {
                Ok(Ok((client, conn))) => {
                    let task = tokio::spawn(conn);
                    // After issue 13 the edge table is per side (primary key with `reporter`)
                    // and external egress has its own table.
                    let q = "SELECT to_regclass('edge') IS NOT NULL, \
                             EXISTS (SELECT 1 FROM information_schema.columns \
                                     WHERE table_name = 'edge' AND column_name = 'reporter'), \
                             to_regclass('egress_edge') IS NOT NULL";
                    let (present, per_side, egress) = client
                        .query_one(q, &[])
                        .await
                        .map(|r| {
                            (
                                r.get::<_, bool>(0),
                                r.get::<_, bool>(1),
                                r.get::<_, bool>(2),
                            )
                        })
                        .unwrap_or((false, false, false));
                    let state = match (present, per_side && egress) {
                        (false, _) => "absent",
                        (true, true) => "present, per side; egress_edge present",
                        (true, false) => "present, before issue 13: the next run migrates it",
                    };
                    println!("db: ok {} (edge table {state})", db_label(cfg));
                    drop(client);
                    task.abort();
                }
                Ok(Err(e)) => {
                    ok = false;
                    println!("db: FAILED {}: {}", db_label(cfg), db::describe(&e));
                }
                Err(_) => {
                    ok = false;
                    println!("db: FAILED {}: connect timed out", db_label(cfg));
                }
            }
        }
    }
    let tls = match certs::client_config(m, cfg.tls_insecure) {
        Ok(t) => t,
        Err(e) => {
            println!("goldmane: FAILED tls config: {e}");
            return 1;
        }
    };
    let (r, _) = resume_point(
        None,
        None,
        unix_now(),
        cfg.backfill_secs,
        cfg.aggregation_interval,
    );
    let mut first: Option<proto::FlowResult> = None;
    let target = stream::Target {
        authority: &cfg.goldmane_host,
        server_name: &cfg.server_name,
        tls,
        request: proto::FlowStreamRequest {
            start_time_gte: r,
            aggregation_interval: cfg.aggregation_interval,
        },
        stall: Duration::from_secs(20),
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sess = stream::session(
        target,
        |_| {},
        move |f| {
            let _ = tx.send(f);
        },
    );
    tokio::select! {
        end = sess => {
            if let Ok(f) = rx.try_recv() { first = Some(f); } else {
                println!("goldmane: FAILED {}: {}{}", cfg.goldmane_host, end.tls_class.map(|c| format!("tls {c}: ")).unwrap_or_default(), end.detail);
            }
        }
        f = rx.recv() => first = f,
        _ = tokio::time::sleep(Duration::from_secs(20)) => {
            println!("goldmane: FAILED {}: no flow within 20s", cfg.goldmane_host);
        }
    }
    match first {
        Some(f) => {
            let (src, dst) = f
                .flow
                .as_ref()
                .and_then(|fl| fl.key.as_ref())
                .map(|k| (k.source_namespace.clone(), k.dest_namespace.clone()))
                .unwrap_or_default();
            println!(
                "goldmane: ok {} first flow id={} {src} -> {dst}",
                cfg.goldmane_host, f.id
            );
        }
        None => ok = false,
    }
    println!("check {}", if ok { "ok" } else { "FAILED" });
    if ok {
        0
    } else {
        1
    }
}

async fn run_service(cfg: Config, pg: Option<db::Target>, material: Material) -> i32 {
    let dry = cfg.dry_run;
    log(
        Level::Info,
        "L-START",
        &format!(
            "start version={VERSION} goldmane={} server_name={} db={} dry_run={}",
            cfg.goldmane_host,
            cfg.server_name,
            db_label(&cfg),
            u8::from(dry)
        ),
    );
    log(
        Level::Info,
        "L-CERT",
        &format!(
            "client cert subject={} issuer={} not_after={}",
            material.leaf.subject_cn,
            material.leaf.issuer_cn,
            ts(material.leaf.not_after)
        ),
    );
    let shared = Shared {
        pending: Pending::new(cfg.max_pending),
        dedup: Dedup::new(DEDUP_CAP),
        watermark: None,
        stats: Stats {
            cert_not_after: material.leaf.not_after,
            ..Default::default()
        },
        ready: ReadyState {
            dry_run: dry,
            ..Default::default()
        },
        unknown_logged: HashMap::new(),
        malformed_unlogged: 0,
        malformed_last: String::new(),
        malformed_logged_at: None,
        unknown_enum_unlogged: 0,
        unknown_enum_last: String::new(),
        unknown_enum_logged_at: None,
        skew_logged_at: None,
        pending_full_episode: false,
        reconcile: Default::default(),
    };
    let ctx = Arc::new(Ctx {
        cfg,
        pg,
        shared: Mutex::new(shared),
        flush_notify: Notify::new(),
        epoch: Instant::now(),
        heartbeat_ms: AtomicU64::new(0),
        chan: watch::channel(None).0,
    });
    if let Some(addr) = ctx.cfg.health_addr {
        health::spawn(ctx.clone(), addr).await;
    }
    // Heartbeat for /healthz.
    let hb = ctx.clone();
    tokio::spawn(async move {
        loop {
            hb.heartbeat_ms
                .store(hb.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    tokio::spawn(summary_loop(ctx.clone()));

    let (stop_tx, stop_rx) = watch::channel(false);
    let (m_tx, m_rx) = oneshot::channel();
    let (fatal_tx, mut fatal_rx) = oneshot::channel::<()>();
    let flusher = tokio::spawn(flusher_loop(ctx.clone(), stop_rx.clone(), m_tx, fatal_tx));
    // Cold start: wait ≤ 10 s for max(last_seen).
    let db_max = if dry {
        None
    } else {
        tokio::time::timeout(Duration::from_secs(10), m_rx)
            .await
            .ok()
            .and_then(|r| r.ok())
            .flatten()
    };
    tokio::spawn(reconcile::run(ctx.clone(), stop_rx.clone()));
    let streamer = tokio::spawn(stream_loop(ctx.clone(), material, db_max, stop_rx));

    let mut term = signal(tokio::signal::unix::SignalKind::terminate());
    let mut int = signal(tokio::signal::unix::SignalKind::interrupt());
    let sig = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
        _ = &mut fatal_rx => {
            // L-AUTHEXIT was logged by the flusher.
            return 1;
        }
    };
    // A second signal exits at once.
    tokio::spawn(async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        std::process::exit(1);
    });
    let _ = stop_tx.send(true);
    let deadline = Instant::now() + ctx.cfg.shutdown_timeout;
    let _ = tokio::time::timeout_at(deadline.into(), streamer).await;
    let state = match tokio::time::timeout_at(deadline.into(), flusher).await {
        Ok(Ok(Some(s))) => Some(s),
        _ => None,
    };
    let pending_now = || ctx.lock().pending.len();
    let Some(mut st) = state else {
        log(
            Level::Error,
            "L-SHUTFAIL",
            &format!(
                "shutdown flush failed: flusher did not finish in time; {} edges not written",
                pending_now()
            ),
        );
        return 1;
    };
    let before = st.flushed_edges;
    let mut last_err = String::from("timed out");
    loop {
        if ctx.lock().pending.is_empty() {
            break;
        }
        if let Err(e) = st.step(&ctx, true).await {
            last_err = e;
        }
        if ctx.lock().pending.is_empty() {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let wake = decide::shutdown_wake(st.next_try, now, deadline);
        tokio::time::sleep_until(wake.into()).await;
    }
    let left = pending_now();
    if left == 0 {
        log(
            Level::Info,
            "L-SHUTDOWN",
            &format!(
                "shutdown on {sig}: flushed {} edges",
                st.flushed_edges - before
            ),
        );
        0
    } else {
        log(
            Level::Error,
            "L-SHUTFAIL",
            &format!("shutdown flush failed: {last_err}; {left} edges not written"),
        );
        1
    }
}

fn signal(kind: tokio::signal::unix::SignalKind) -> tokio::signal::unix::Signal {
    match tokio::signal::unix::signal(kind) {
        Ok(s) => s,
        // Only fails when the runtime has no signal driver, which enable_all provides.
        Err(e) => unreachable!("signal handler: {e}"),
    }
}

async fn summary_loop(ctx: Arc<Ctx>) {
    let mut prev = Stats::default();
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let (cur, pending) = {
            let s = ctx.lock();
            (s.stats.clone(), s.pending.len())
        };
        let d = |f: fn(&Stats) -> u64| f(&cur) - f(&prev);
        let dr = |r: DropReason| cur.dropped[r.index()] - prev.dropped[r.index()];
        log(
            Level::Info,
            "L-SUMMARY",
            &format!(
                "summary flows={} upserted={} new={} self_edge={} empty_namespace={} invalid_namespace={} malformed={} duplicate={} pending={}",
                d(|s| s.flows_received),
                d(|s| s.edges_upserted),
                d(|s| s.edges_new),
                dr(DropReason::SelfEdge),
                dr(DropReason::EmptyNamespace),
                dr(DropReason::InvalidNamespace),
                dr(DropReason::Malformed),
                dr(DropReason::Duplicate),
                pending
            ),
        );
        prev = cur;
    }
}

/// Hot path: classify, de-duplicate and merge one message (never waits on Postgres).
fn on_flow(ctx: &Ctx, s: &mut Shared, msg: &proto::FlowResult, now: i64) {
    s.stats.flows_received += 1;
    s.ready.last_stream_activity = ctx.mono();
    if let Some(f) = &msg.flow {
        if f.key.is_some() {
            s.watermark = Some(s.watermark.map_or(f.start_time, |w| w.max(f.start_time)));
            s.stats.last_flow_end = s.stats.last_flow_end.max(f.end_time);
        }
    }
    match classify(msg, now) {
        Classified::Dropped(r, why) => {
            s.stats.drop(r);
            if r == DropReason::UnknownEnum {
                s.unknown_enum_unlogged += 1;
                let k = msg.flow.as_ref().and_then(|f| f.key.as_ref());
                s.unknown_enum_last = format!(
                    "id={} {why}: reporter={} source_type={} dest_type={}",
                    msg.id,
                    k.map_or(0, |k| k.reporter),
                    k.map_or(0, |k| k.source_type),
                    k.map_or(0, |k| k.dest_type)
                );
                let due = s
                    .unknown_enum_logged_at
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
                if due {
                    log(
                        Level::Warn,
                        "L-UNKENUM",
                        &format!(
                            "dropped {} flow(s) with a Reporter or EndpointType value this version does not know (last: {}); upgrade the aggregator if Goldmane was upgraded",
                            s.unknown_enum_unlogged, s.unknown_enum_last
                        ),
                    );
                    s.unknown_enum_unlogged = 0;
                    s.unknown_enum_logged_at = Some(Instant::now());
                }
            }
            if r == DropReason::Malformed {
                s.malformed_unlogged += 1;
                s.malformed_last = format!("id={} {why}", msg.id);
                let due = s
                    .malformed_logged_at
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
                if due {
                    log(
                        Level::Warn,
                        "L-MALFORMED",
                        &format!(
                            "dropped {} malformed flow(s) (last: {})",
                            s.malformed_unlogged, s.malformed_last
                        ),
                    );
                    s.malformed_unlogged = 0;
                    s.malformed_logged_at = Some(Instant::now());
                }
            }
        }
        Classified::Edge(o) => {
            let start = msg.flow.as_ref().map_or(0, |f| f.start_time);
            if !s.dedup.insert(fingerprint(msg), start) {
                s.stats.drop(DropReason::Duplicate);
                return;
            }
            if !o.known_action {
                s.stats.unknown_action += 1;
                let due = s
                    .unknown_logged
                    .get(&o.raw_action)
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(3600));
                if due {
                    s.unknown_logged.insert(o.raw_action, Instant::now());
                    log(
                        Level::Warn,
                        "L-UNKACTION",
                        &format!(
                            "unknown action value {} mapped to unspecified",
                            o.raw_action
                        ),
                    );
                }
            }
            if o.clamped {
                s.stats.time_clamped += 1;
                let due = s
                    .skew_logged_at
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(3600));
                if due {
                    s.skew_logged_at = Some(Instant::now());
                    let end = msg.flow.as_ref().map_or(0, |f| f.end_time);
                    log(
                        Level::Warn,
                        "L-SKEW",
                        &format!(
                            "clock skew: flow id={} ends {}s after this pod's clock (stored as now); check NTP on the nodes and the Goldmane pod",
                            msg.id,
                            end.saturating_sub(now)
                        ),
                    );
                }
            }
            let agg = Agg {
                first: o.first,
                last: o.last,
                count: 1,
            };
            let pend = Pend::of(o.pending, o.last);
            match s.pending.merge_pend(&KeyRef::of(&o), agg, pend) {
                MergeOutcome::Full => {
                    s.stats.drop(DropReason::PendingFull);
                    if !s.pending_full_episode {
                        s.pending_full_episode = true;
                        log(
                            Level::Error,
                            "L-PENDINGFULL",
                            &format!(
                                "pending map full ({} edges); dropping new edges until the db recovers",
                                s.pending.len()
                            ),
                        );
                    }
                }
                MergeOutcome::New | MergeOutcome::Merged => {
                    if s.pending.len() >= ctx.cfg.batch_max {
                        ctx.flush_notify.notify_one();
                    }
                }
            }
        }
    }
}

async fn stream_loop(
    ctx: Arc<Ctx>,
    mut material: Material,
    db_max: Option<i64>,
    mut stop: watch::Receiver<bool>,
) {
    let cfg = &ctx.cfg;
    let mut attempt: u32 = 0;
    let mut generation: u64 = 0;
    let mut first = true;
    let mut last_warn: Option<Instant> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        if !first {
            match certs::load(&cfg.client_cert, &cfg.client_key, &cfg.ca) {
                Ok(m) => material = m,
                Err((var, reason)) => log(
                    Level::Error,
                    "L-CERTREAD",
                    &format!("cert reload failed: {var}: {reason}; keeping previous material"),
                ),
            }
        }
        first = false;
        let now = unix_now();
        let leaf = material.leaf.clone();
        let expired = now >= leaf.not_after || now < leaf.not_before;
        if expired {
            log(
                Level::Error,
                "L-CERTEXP",
                &format!(
                    "client cert expired at {} — re-sync goldmane-client-tls from whisker-backend-key-pair",
                    ts(leaf.not_after)
                ),
            );
        } else if leaf.not_after - now < 7 * 86_400
            && last_warn.is_none_or(|t| t.elapsed() >= Duration::from_secs(86_400))
        {
            last_warn = Some(Instant::now());
            log(
                Level::Warn,
                "L-CERTWARN",
                &format!(
                    "client cert expires in {}d (not_after={})",
                    (leaf.not_after - now) / 86_400,
                    ts(leaf.not_after)
                ),
            );
        }
        let watermark = {
            let mut s = ctx.lock();
            s.ready.cert_expired = expired;
            s.stats.cert_not_after = leaf.not_after;
            s.watermark
        };
        let (r, src) = resume_point(
            watermark,
            db_max,
            now,
            cfg.backfill_secs,
            cfg.aggregation_interval,
        );
        log(
            Level::Info,
            "L-RESUME",
            &format!("resume start_time_gte={r} ({})", src.label()),
        );
        if cfg.tls_insecure {
            log(
                Level::Warn,
                "L-INSECURE",
                "GOLDMANE_TLS_INSECURE set: server certificate NOT verified",
            );
        }
        let end = match certs::client_config(&material, cfg.tls_insecure) {
            Err(e) => stream::End {
                reason: 3,
                tls_class: Some("other"),
                detail: e.to_string(),
                delivered: 0,
                open_for: Duration::ZERO,
            },
            Ok(tls) => {
                let target = stream::Target {
                    authority: &cfg.goldmane_host,
                    server_name: &cfg.server_name,
                    tls,
                    request: proto::FlowStreamRequest {
                        start_time_gte: r,
                        aggregation_interval: cfg.aggregation_interval,
                    },
                    stall: cfg.stall_timeout,
                };
                let c1 = ctx.clone();
                let c2 = ctx.clone();
                generation += 1;
                let gen = generation;
                let sess = stream::session(
                    target,
                    move |ch| {
                        c1.chan.send_replace(Some((gen, ch)));
                        let mut s = c1.lock();
                        s.ready.started = true;
                        s.ready.stream_open = true;
                        s.ready.cert_expired = false;
                        s.ready.last_stream_activity = c1.mono();
                        s.stats.stream_up = true;
                        log(
                            Level::Info,
                            "L-CONNECT",
                            &format!("stream open start_time_gte={r}"),
                        );
                    },
                    move |m| {
                        let now = unix_now();
                        let mut s = c2.lock();
                        on_flow(&c2, &mut s, &m, now);
                    },
                );
                tokio::select! {
                    e = sess => e,
                    _ = stop.changed() => {
                        ctx.chan.send_replace(None);
                        break;
                    }
                }
            }
        };
        // The connection goes with the session: no second stream, no lingering connection.
        ctx.chan.send_replace(None);
        {
            let mut s = ctx.lock();
            s.ready.started = true;
            s.ready.stream_open = false;
            s.stats.stream_up = false;
            s.stats.reconnects[end.reason] += 1;
        }
        if end.delivered > 0 && end.open_for >= Duration::from_secs(30) {
            attempt = 0;
        }
        attempt += 1;
        let delay = backoff(attempt, jitter(), cfg.backoff_max);
        let secs = format!("{:.1}", delay.as_secs_f64());
        match (end.reason, end.tls_class) {
            (stream::STALL, _) => log(
                Level::Warn,
                "L-STALL",
                &format!(
                    "stream stalled: no flow for {}s; reconnecting",
                    cfg.stall_timeout.as_secs()
                ),
            ),
            (_, Some(class)) => log(
                Level::Error,
                "L-TLS",
                &format!(
                    "tls {class}: {}; reconnect in {secs}s (attempt {attempt})",
                    end.detail
                ),
            ),
            _ => log(
                Level::Warn,
                "L-STREAMEND",
                &format!(
                    "stream ended: {}; reconnect in {secs}s (attempt {attempt})",
                    end.detail
                ),
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => break,
        }
    }
    let mut s = ctx.lock();
    s.ready.stream_open = false;
    s.stats.stream_up = false;
}

/// The flusher's DB state; returned at shutdown for the final flush.
pub struct FlushState {
    db: Option<db::Db>,
    pg: Option<db::Target>,
    attempt: u32,
    failing_since: Option<Instant>,
    auth_since: Option<Instant>,
    last_roundtrip: Instant,
    next_try: Instant,
    schema_logged: bool,
    m_tx: Option<oneshot::Sender<Option<i64>>>,
    flushed_edges: u64,
}

impl FlushState {
    /// Record a failure; Err(()) when DB authentication has failed for DB_AUTH_EXIT.
    fn failure(&mut self, ctx: &Ctx, err: &str, auth: bool, immediate: bool) -> Result<(), ()> {
        let now = Instant::now();
        self.failing_since.get_or_insert(now);
        self.attempt += 1;
        let delay = if immediate {
            Duration::ZERO
        } else {
            backoff(self.attempt, jitter(), ctx.cfg.backoff_max)
        };
        self.next_try = now + delay;
        let pending = {
            let mut s = ctx.lock();
            s.ready.db_failing = true;
            s.pending.len()
        };
        log(
            Level::Error,
            "L-DBERR",
            &format!(
                "db: {err}; {pending} edges pending, retry in {:.1}s",
                delay.as_secs_f64()
            ),
        );
        if let Some(tx) = self.m_tx.take() {
            let _ = tx.send(None);
        }
        if auth {
            let since = *self.auth_since.get_or_insert(now);
            if let Some(limit) = ctx.cfg.db_auth_exit {
                if since.elapsed() >= limit {
                    log(
                        Level::Error,
                        "L-AUTHEXIT",
                        &format!(
                            "db authentication failing for {}s; exiting to reload credentials",
                            since.elapsed().as_secs()
                        ),
                    );
                    return Err(());
                }
            }
        } else {
            self.auth_since = None;
        }
        Ok(())
    }

    fn ok(&mut self, ctx: &Ctx, flushed: usize) {
        let now = Instant::now();
        if let Some(since) = self.failing_since.take() {
            log(
                Level::Info,
                "L-DBOK",
                &format!(
                    "db recovered after {}s; flushed {flushed} edges",
                    since.elapsed().as_secs()
                ),
            );
        }
        self.attempt = 0;
        self.auth_since = None;
        self.last_roundtrip = now;
        self.next_try = now;
        let mut s = ctx.lock();
        s.ready.db_failing = false;
        s.ready.db_last_ok = Some(ctx.mono());
        s.stats.last_flush_success = unix_now();
    }

    /// One flusher step: (re)connect if needed, then flush what is pending. Err carries the
    /// last error text; `Err("auth-exit")` only when not shutting down.
    async fn step(&mut self, ctx: &Ctx, shutting_down: bool) -> Result<(), String> {
        if ctx.cfg.dry_run {
            let (rows, rec) = {
                let mut s = ctx.lock();
                (s.pending.take(), s.reconcile.pop_front())
            };
            for r in &rows {
                log(
                    Level::Info,
                    "L-DRYRUN",
                    &format!(
                        "dry-run would upsert {} action={} reporter={} first={} last={} count={}",
                        describe_row(r),
                        r.action,
                        r.reporter,
                        ts(r.first),
                        ts(r.last),
                        r.count
                    ),
                );
            }
            if let Some(b) = rec {
                log(
                    Level::Info,
                    "L-RECONCILE",
                    &format!(
                        "dry-run reconcile [{}, {}): {} flows in {} pages in {} ms, {} keys",
                        ts(b.window.0),
                        ts(b.window.1),
                        b.flows,
                        b.pages,
                        b.took_ms,
                        b.rows.len()
                    ),
                );
            }
            self.flushed_edges += rows.len() as u64;
            let mut s = ctx.lock();
            s.pending_full_episode = false;
            s.dedup.prune(unix_now(), dedup_keep(&ctx.cfg));
            return Ok(());
        }
        if self.db.is_none() {
            let Some(pg) = self.pg.clone() else {
                return Err("no DATABASE_URL".into());
            };
            match tokio::time::timeout(Duration::from_secs(15), db::connect(&pg)).await {
                Ok(Ok(d)) => {
                    if !self.schema_logged || d.created {
                        log_schema(d.created);
                        self.schema_logged = true;
                    }
                    if let Some(tx) = self.m_tx.take() {
                        let m = d.max_last_seen().await.ok().flatten();
                        let _ = tx.send(m);
                    }
                    self.db = Some(d);
                    self.ok_connected(ctx);
                }
                Ok(Err(e)) => {
                    let text = db::describe(&e);
                    if self
                        .failure(ctx, &text, db::is_auth_error(&e), false)
                        .is_err()
                        && !shutting_down
                    {
                        return Err("auth-exit".into());
                    }
                    return Err(text);
                }
                Err(_) => {
                    let _ = self.failure(ctx, "connect timed out", false, false);
                    return Err("connect timed out".into());
                }
            }
        }
        let (mut rows, batch) = {
            let mut s = ctx.lock();
            let rows = s.pending.take();
            let batch = s.reconcile.pop_front();
            s.pending_full_episode = false;
            s.dedup.prune(unix_now(), dedup_keep(&ctx.cfg));
            s.stats.pending_edges = 0;
            (rows, batch)
        };
        let Some(d) = self.db.as_mut() else {
            return Ok(());
        };
        let (rec_rows, batch) = match batch {
            Some(mut b) => {
                let rest = decide::absorb_known(&mut rows, std::mem::take(&mut b.rows));
                (rest, Some(b))
            }
            None => (Vec::new(), None),
        };
        if rows.is_empty() && batch.is_none() {
            if self.failing_since.is_some() {
                self.ok(ctx, 0);
            } else if self.last_roundtrip.elapsed() >= Duration::from_secs(30) {
                match tokio::time::timeout(Duration::from_secs(10), d.ping()).await {
                    Ok(Ok(())) => self.ok(ctx, 0),
                    Ok(Err(e)) => {
                        self.db = None;
                        let text = db::describe(&e);
                        let _ = self.failure(ctx, &text, false, false);
                        return Err(text);
                    }
                    Err(_) => {
                        self.db = None;
                        let _ = self.failure(ctx, "ping timed out", false, false);
                        return Err("ping timed out".into());
                    }
                }
            }
            return Ok(());
        }
        let t0 = Instant::now();
        let res = tokio::time::timeout(
            Duration::from_secs(30),
            d.flush(&rows, &rec_rows, ctx.cfg.batch_max),
        )
        .await;
        let dur = t0.elapsed().as_secs_f64();
        let n = rows.len();
        // A failed batch goes back whole: the List rows as found, re-checked next time.
        let requeue = |ctx: &Ctx, batch: Option<ReconcileBatch>, rec_rows: Vec<decide::Row>| {
            if let Some(mut b) = batch {
                b.rows = rec_rows;
                ctx.lock().reconcile.push_front(b);
            }
        };
        match res {
            Ok(Ok(out)) => {
                let (ins, ext) = out.reconciled.iter().fold((0u64, 0u64), |(i, x), e| {
                    if e.inserted {
                        (i + 1, x)
                    } else {
                        (i, x + 1)
                    }
                });
                {
                    let mut s = ctx.lock();
                    s.stats.flushes_ok += 1;
                    s.stats.flush_duration_sum += dur;
                    s.stats.flush_duration_count += 1;
                    s.stats.edges_upserted += n as u64;
                    s.stats.edges_new += out.new.len() as u64 + ins;
                    s.stats.reconcile_inserted += ins;
                    s.stats.reconcile_extended += ext;
                }
                for e in out
                    .new
                    .iter()
                    .chain(out.reconciled.iter().filter(|e| e.inserted))
                {
                    let found = if out.reconciled.iter().any(|r| std::ptr::eq(r, e)) {
                        " (found by reconciliation)"
                    } else {
                        ""
                    };
                    if e.egress {
                        log(
                            Level::Info,
                            "L-NEWEGRESS",
                            &format!(
                                "new egress {} -> {:?} action={} reporter={} first_seen={}{found}",
                                e.src,
                                e.dst,
                                e.action,
                                e.reporter,
                                ts(e.first_seen)
                            ),
                        );
                    } else {
                        log(
                            Level::Info,
                            "L-NEWEDGE",
                            &format!(
                                "new edge {} -> {} action={} reporter={} first_seen={}{found}",
                                e.src,
                                e.dst,
                                e.action,
                                e.reporter,
                                ts(e.first_seen)
                            ),
                        );
                    }
                }
                if let Some(b) = batch {
                    log(
                        Level::Info,
                        "L-RECONCILE",
                        &format!(
                            "reconcile [{}, {}): {} flows in {} pages in {} ms; the stream had missed {ins} keys (inserted) and {ext} first/last times (extended)",
                            ts(b.window.0),
                            ts(b.window.1),
                            b.flows,
                            b.pages,
                            b.took_ms
                        ),
                    );
                }
                self.flushed_edges += n as u64;
                self.ok(ctx, n);
                Ok(())
            }
            Ok(Err(db::FlushError::Failed(e))) => {
                let undefined = db::is_undefined_table(&e);
                let text = db::describe(&e);
                self.requeue(ctx, rows, dur, false);
                requeue(ctx, batch, rec_rows);
                self.db = None;
                let _ = self.failure(ctx, &text, false, undefined);
                Err(text)
            }
            Ok(Err(db::FlushError::Ambiguous(text))) => {
                log(
                    Level::Warn,
                    "L-AMBIGUOUS",
                    &format!(
                        "flush outcome unknown; re-applying {n} edges (flow_count may over-count)"
                    ),
                );
                self.requeue(ctx, rows, dur, true);
                requeue(ctx, batch, rec_rows);
                self.db = None;
                let _ = self.failure(ctx, &text, false, false);
                Err(text)
            }
            Err(_) => {
                self.requeue(ctx, rows, dur, false);
                requeue(ctx, batch, rec_rows);
                self.db = None;
                let _ = self.failure(ctx, "flush timed out after 30s", false, false);
                Err("flush timed out".into())
            }
        }
    }

    fn ok_connected(&mut self, ctx: &Ctx) {
        self.last_roundtrip = Instant::now();
        let mut s = ctx.lock();
        s.ready.db_failing = false;
        s.ready.db_last_ok = Some(ctx.mono());
        s.stats.last_flush_success = unix_now();
    }

    fn requeue(&mut self, ctx: &Ctx, rows: Vec<decide::Row>, dur: f64, ambiguous: bool) {
        let mut s = ctx.lock();
        s.pending.merge_back(rows);
        if ambiguous {
            s.stats.flushes_ambiguous += 1;
        } else {
            s.stats.flushes_error += 1;
        }
        s.stats.flush_duration_sum += dur;
        s.stats.flush_duration_count += 1;
    }
}

/// How long fingerprints are kept: the look-back window (a backfill or a skewed start can replay
/// that far) or the configured de-duplication window, plus a minute.
fn dedup_keep(cfg: &Config) -> i64 {
    cfg.backfill_secs.max(cfg.dedup_window_secs) + 60
}

/// A row for log lines: namespaces are checked labels; external names are quoted and escaped.
fn describe_row(r: &decide::Row) -> String {
    match &r.egress {
        None => format!("{} -> {}", r.src, r.dst),
        Some(e) => format!(
            "{} -> {}:{:?} {}/{}",
            r.src, e.dst_type, r.dst, e.proto, e.port
        ),
    }
}

async fn flusher_loop(
    ctx: Arc<Ctx>,
    mut stop: watch::Receiver<bool>,
    m_tx: oneshot::Sender<Option<i64>>,
    fatal: oneshot::Sender<()>,
) -> Option<FlushState> {
    let now = Instant::now();
    let mut st = FlushState {
        db: None,
        pg: ctx.pg.clone(),
        attempt: 0,
        failing_since: None,
        auth_since: None,
        last_roundtrip: now,
        next_try: now,
        schema_logged: false,
        m_tx: Some(m_tx),
        flushed_edges: 0,
    };
    if ctx.cfg.dry_run {
        if let Some(tx) = st.m_tx.take() {
            let _ = tx.send(None);
        }
    }
    loop {
        if Instant::now() >= st.next_try {
            if let Err(e) = st.step(&ctx, false).await {
                if e == "auth-exit" {
                    let _ = fatal.send(());
                    return None;
                }
            }
        }
        let wait = if st.failing_since.is_some() {
            st.next_try.saturating_duration_since(Instant::now())
        } else {
            ctx.cfg.flush_interval
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = ctx.flush_notify.notified() => {}
            _ = stop.changed() => return Some(st),
        }
        if *stop.borrow() {
            return Some(st);
        }
    }
}

#[cfg(test)]
mod proto_compat {
    //! 12.2 #12: every message, field and enum value of the vendored subset matches upstream's
    //! full `api.proto` (number, type, label, type name), so the subset decodes real encodings.

    use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorSet};

    fn load(dir: &str, file: &str) -> FileDescriptorSet {
        let root = env!("CARGO_MANIFEST_DIR");
        let dir = format!("{root}/{dir}");
        protox::compile([format!("{dir}/{file}")], [dir]).expect("proto compiles")
    }

    fn msg<'a>(fds: &'a FileDescriptorSet, name: &str) -> Option<&'a DescriptorProto> {
        fds.file
            .iter()
            .flat_map(|f| f.message_type.iter())
            .find(|m| m.name() == name)
    }

    fn enm<'a>(fds: &'a FileDescriptorSet, name: &str) -> Option<&'a EnumDescriptorProto> {
        fds.file
            .iter()
            .flat_map(|f| f.enum_type.iter())
            .find(|m| m.name() == name)
    }

    #[test]
    fn subset_matches_upstream() {
        let sub = load("proto", "goldmane_subset.proto");
        let up = load("../testkit/proto", "api.proto");
        assert_eq!(sub.file[0].package(), "goldmane");
        assert_eq!(up.file[0].package(), sub.file[0].package());
        let mut fields = 0;
        for m in sub.file.iter().flat_map(|f| f.message_type.iter()) {
            let u =
                msg(&up, m.name()).unwrap_or_else(|| panic!("upstream lacks message {}", m.name()));
            for f in &m.field {
                let uf = u
                    .field
                    .iter()
                    .find(|x| x.name() == f.name())
                    .unwrap_or_else(|| panic!("upstream lacks {}.{}", m.name(), f.name()));
                assert_eq!(f.number(), uf.number(), "{}.{} number", m.name(), f.name());
                assert_eq!(f.r#type(), uf.r#type(), "{}.{} type", m.name(), f.name());
                assert_eq!(f.label(), uf.label(), "{}.{} label", m.name(), f.name());
                assert_eq!(
                    f.type_name(),
                    uf.type_name(),
                    "{}.{} type name",
                    m.name(),
                    f.name()
                );
                fields += 1;
            }
        }
        assert_eq!(
            fields,
            2 + 2 + 4 + 11 + 4 + 2 + 2 + 1 + 1,
            "subset field count (3.1.2-3.1.5, List, pending policies)"
        );
        for e in sub.file.iter().flat_map(|f| f.enum_type.iter()) {
            let u =
                enm(&up, e.name()).unwrap_or_else(|| panic!("upstream lacks enum {}", e.name()));
            let vals = |x: &EnumDescriptorProto| -> Vec<(String, i32)> {
                x.value
                    .iter()
                    .map(|v| (v.name().to_string(), v.number()))
                    .collect()
            };
            assert_eq!(vals(e), vals(u), "enum {}", e.name());
        }
        let svc = &sub.file[0].service[0];
        assert_eq!(svc.name(), "Flows");
        let rpc = &svc.method[0];
        assert_eq!((rpc.name(), rpc.server_streaming()), ("Stream", true));
        assert_eq!(rpc.input_type(), ".goldmane.FlowStreamRequest");
        assert_eq!(rpc.output_type(), ".goldmane.FlowResult");
    }
}
