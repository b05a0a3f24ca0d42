//! Goldmane → aggregator → Postgres: the edge rules, resume, reconnects, stalls, health.

use super::common::*;
use nix::sys::signal::Signal;

/// The Wave-1 allowlist (issue 13): per source namespace, the destinations the source allowed
/// and the destination never denied.
pub const ALLOWLIST: &str = "SELECT s.src_ns, array_agg(DISTINCT s.dst_ns ORDER BY s.dst_ns) FROM edge s \
     WHERE s.action = 'allow' AND s.reporter = 'src' AND NOT EXISTS (SELECT 1 FROM edge d \
     WHERE d.src_ns = s.src_ns AND d.dst_ns = s.dst_ns AND d.action = 'deny' AND d.reporter = 'dst') \
     GROUP BY s.src_ns ORDER BY 1";

/// 12.3 #1, #13, #14 (issue 13: per side): allow A→B reported by the source and by the
/// destination, deny A→B, allow B→C, a self-edge, empty src, empty dst → one row per side and
/// verdict with Goldmane's bucket times; the read queries; `/metrics` matches.
#[test]
fn edges_upserted_per_spec() {
    let w = World::new(true);
    let t = ago(600);
    w.fake.add_flows([
        flow_full(1, "team-a", "team-b", 1, t, t + 15, 1),
        flow_full(2, "team-a", "team-b", 1, t + 15, t + 30, 2),
        flow_full(3, "team-a", "team-b", 2, t + 30, t + 45, 1),
        flow_full(4, "team-b", "team-c", 1, t + 45, t + 60, 1),
        flow(5, "team-a", "team-a", 1, t),
        flow(6, "", "team-b", 1, t),
        flow(7, "team-a", "", 1, t),
    ]);
    let mut env = w.env();
    env.insert("GEA_STALL_TIMEOUT_SECS".into(), "30".into());
    let mut a = w.spawn(&[], &env);
    a.wait_for(20, "4 edge rows", || w.edges().len() == 4);
    a.wait_log("new edge team-b -> team-c action=allow reporter=src", 10);
    let s = |a: &str, b: &str, act: &str, rep: &str, f: i64, l: i64, n: i64| {
        (
            a.to_string(),
            b.to_string(),
            act.to_string(),
            rep.to_string(),
            f,
            l,
            n,
        )
    };
    assert_eq!(
        sides(w.pg()),
        vec![
            s("team-a", "team-b", "allow", "dst", t + 15, t + 30, 1),
            s("team-a", "team-b", "allow", "src", t, t + 15, 1),
            s("team-a", "team-b", "deny", "src", t + 30, t + 45, 1),
            s("team-b", "team-c", "allow", "src", t + 45, t + 60, 1),
        ]
    );
    // Invariants (4.1.2).
    let bad = w.pg().psql(
        "goldmane_edges",
        "SELECT count(*) FROM edge WHERE src_ns = dst_ns OR first_seen > last_seen OR flow_count < 1 \
         OR action NOT IN ('allow','deny','pass','unspecified') OR reporter NOT IN ('src','dst')",
    );
    assert_eq!(bad.trim(), "0");
    // Read contract (4.7 as superseded by issue 13): the allowlist is "allowed by the source
    // and never denied by the destination".
    let q = |sql: &str| w.pg().psql("goldmane_edges", sql).trim().to_string();
    assert_eq!(
        q("SELECT count(*) FROM edge WHERE first_seen > now() - interval '24 hours'"),
        "4"
    );
    assert_eq!(
        q("SELECT DISTINCT src_ns || '>' || dst_ns FROM edge WHERE action='deny'"),
        "team-a>team-b"
    );
    assert_eq!(q(ALLOWLIST), "team-a|{team-b}\nteam-b|{team-c}");
    // /metrics (12.3 #14) and readiness.
    a.wait_for(10, "ready", || a.get("/readyz").map(|r| r.0) == Some(200));
    let (code, m) = a.get("/metrics").unwrap();
    assert_eq!(code, 200);
    for line in [
        "goldmane_edge_flows_received_total 7",
        "goldmane_edge_flows_dropped_total{reason=\"self_edge\"} 1",
        "goldmane_edge_flows_dropped_total{reason=\"empty_namespace\"} 2",
        "goldmane_edge_flows_dropped_total{reason=\"malformed\"} 0",
        "goldmane_edge_flows_dropped_total{reason=\"duplicate\"} 0",
        "goldmane_edge_edges_upserted_total 4",
        "goldmane_edge_edges_new_total 4",
        "goldmane_edge_stream_up 1",
        "goldmane_edge_pending_edges 0",
        &format!("goldmane_edge_last_flow_end_timestamp_seconds {}", t + 60),
    ] {
        assert!(m.lines().any(|l| l == line), "missing {line:?} in\n{m}");
    }
    assert_eq!(a.get("/healthz").map(|r| r.0), Some(200));
    assert_eq!(a.get("/nope").map(|r| r.0), Some(404));
    // The reconciliation after the connect found nothing the stream missed.
    a.wait_log("INFO reconcile [", 10);
    a.wait_log(
        "the stream had missed 0 keys (inserted) and 0 first/last times (extended)",
        1,
    );
    // Requests carry an absolute start and the interval; no filter.
    let calls = w.fake.calls();
    assert!(
        calls[0].start_time_gte > 0 && calls[0].aggregation_interval == 15 && !calls[0].filter_sent
    );
    assert_eq!(calls[0].client_serial, w.pki.client.serial);
    a.signal(Signal::SIGTERM);
    assert_eq!(a.wait_exit(10), 0);
    let log = a.stderr();
    assert!(
        log.contains("INFO schema ready (edge table created)"),
        "{log}"
    );
    assert!(log.contains(" INFO start version="), "{log}");
    assert!(
        log.contains("db=postgresql://postgres:***@127.0.0.1:")
            || log.contains("db=postgres://postgres:***@127.0.0.1:"),
        "{log}"
    );
    assert!(
        log.contains("INFO shutdown on SIGTERM: flushed 0 edges"),
        "{log}"
    );
}

/// 12.3 #2 with the real server (issue 13): a flow that lands late in an already-streamed
/// bucket never reaches the stream; the next reconciliation finds it. A new key is inserted with
/// List's count; for a known key `first_seen` moves earlier and the count is left alone.
#[test]
fn late_flow_in_streamed_bucket_appears_after_one_reconciliation() {
    let w = World::new(true);
    let t = ago(900);
    w.fake
        .add_flows([flow(1, "a", "b", 1, t + 300), flow(2, "a", "b", 1, t + 330)]);
    let mut env = w.env();
    env.insert("GEA_RECONCILE_SECS".into(), "2".into());
    env.insert("GEA_STALL_TIMEOUT_SECS".into(), "60".into());
    let a = w.spawn(&[], &env);
    a.wait_for(20, "first flush", || {
        w.edges().first().map(|e| e.5) == Some(2)
    });
    assert_eq!(w.edges()[0].3, t + 300);
    let calls_before = w.fake.calls().len();
    // Felix reports late: into old buckets the stream already carried.
    w.fake
        .add_flows([flow(3, "a", "b", 1, t), flow(4, "a", "c", 2, t + 15)]);
    a.wait_for(20, "reconciled", || {
        w.edges().len() == 2 && w.edges()[0].3 == t
    });
    let e = w.edges();
    assert_eq!(
        (e[0].3, e[0].4, e[0].5),
        (t, t + 345, 2),
        "first earlier, count kept"
    );
    assert_eq!(
        e[1],
        ("a".into(), "c".into(), "deny".into(), t + 15, t + 30, 1),
        "List-only key inserted with List's count"
    );
    assert_eq!(w.fake.calls().len(), calls_before, "no reconnect needed");
    a.wait_log(
        "the stream had missed 1 keys (inserted) and 1 first/last times (extended)",
        10,
    );
    a.wait_log("new edge a -> c action=deny reporter=src first_seen=", 1);
    assert!(
        a.stderr().contains("(found by reconciliation)"),
        "{}",
        a.stderr()
    );
    assert_eq!(
        metric(
            &a,
            "goldmane_edge_reconcile_missed_total{kind=\"inserted\"}"
        ),
        Some(1.0)
    );
    // The List window is [now − look-back, now − 30 s], in pages.
    let l = w.fake.list_calls();
    let last = l.last().unwrap();
    assert!((last.start_time_lt - (now() - 30)).abs() <= 10, "{last:?}");
    assert!(
        (last.start_time_gte - (now() - 3570)).abs() <= 10,
        "{last:?}"
    );
    assert_eq!(last.page, 0);
    assert!(last.page_size > 0);
}

/// 12.3 #4: the fake ends the stream (status OK) → the next request starts at the clamped
/// watermark with interval 15; the replayed last bucket is de-duplicated.
#[test]
fn stream_end_resumes_at_watermark_without_double_count() {
    let w = World::new(true);
    let t = ago(600);
    w.fake.add_flows([
        flow(1, "a", "b", 1, t),
        flow(2, "a", "b", 1, t + 15),
        flow(3, "a", "c", 1, t + 30),
    ]);
    let mut env = w.env();
    env.insert("GEA_STALL_TIMEOUT_SECS".into(), "30".into());
    let a = w.spawn(&[], &env);
    a.wait_for(20, "3 flows stored", || total_count(w.pg()) == 3);
    w.fake.end_streams();
    a.wait_for(20, "second stream", || w.fake.calls().len() >= 2);
    let calls = w.fake.calls();
    assert_eq!(calls[1].start_time_gte, t + 30, "resume at max start_time");
    assert_eq!(calls[1].aggregation_interval, 15);
    a.wait_log("stream ended: OK; reconnect in", 5);
    a.wait_log(&format!("resume start_time_gte={} (stream)", t + 30), 5);
    // The replayed flow 3 is a duplicate; a new flow still lands.
    a.wait_for(10, "duplicate counted", || {
        metric(
            &a,
            "goldmane_edge_flows_dropped_total{reason=\"duplicate\"}",
        ) == Some(1.0)
    });
    // A new report in the bucket the next rollover streams goes out live.
    w.fake.add_live([flow(4, "a", "c", 1, 0)]);
    a.wait_for(20, "4 flows stored", || total_count(w.pg()) == 4);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(total_count(w.pg()), 4, "no double count");
    assert_eq!(
        metric(&a, "goldmane_edge_stream_reconnects_total{reason=\"eof\"}"),
        Some(1.0)
    );
}

/// 12.3 #5: Goldmane stopped, then restarted on the same port (ring lost, Felix re-sending its
/// cache under new ids) → reconnect within backoff, the re-sent flows land via backfill;
/// `/readyz` 503 in the gap and 200 after; `/healthz` 200 throughout.
#[test]
fn goldmane_restart_reconnects_and_readiness_follows() {
    let mut w = World::new(true);
    let t = ago(300);
    w.fake.add_flows([flow(1, "a", "b", 1, t)]);
    let mut env = w.env();
    env.insert("GEA_STALL_TIMEOUT_SECS".into(), "30".into());
    let a = w.spawn(&[], &env);
    a.wait_for(20, "ready", || a.get("/readyz").map(|r| r.0) == Some(200));
    w.fake.stop();
    a.wait_for(10, "unready while Goldmane is away", || {
        a.get("/readyz") == Some((503, "no_stream\n".into()))
    });
    assert_eq!(a.get("/healthz").map(|r| r.0), Some(200));
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(a.get("/healthz").map(|r| r.0), Some(200));
    w.fake.restart_with([
        flow(101, "a", "b", 1, t + 15),
        flow(102, "b", "c", 1, t + 15),
    ]);
    a.wait_for(20, "new flows after restart", || total_count(w.pg()) == 3);
    a.wait_for(10, "ready again", || {
        a.get("/readyz").map(|r| r.0) == Some(200)
    });
    assert!(a.stderr().contains("WARN stream ended: "), "{}", a.stderr());
}

/// 12.3 #10: a silent stream is cancelled after the stall timeout and re-opened.
#[test]
fn silent_stream_is_reconnected() {
    let w = World::new(true);
    let a = w.spawn(&[], &w.env());
    a.wait_for(20, "second request", || w.fake.calls().len() >= 2);
    a.wait_log("WARN stream stalled: no flow for 2s; reconnecting", 5);
    assert!(
        metric(
            &a,
            "goldmane_edge_stream_reconnects_total{reason=\"stall\"}"
        )
        .unwrap_or(0.0)
            >= 1.0
    );
}

/// 12.3 #11 and §7 (a buggy server: messages injected verbatim): unknown action →
/// `unspecified` with one L-UNKACTION; unknown Reporter / EndpointType values are dropped with
/// L-UNKENUM; malformed results and invalid namespaces are dropped while the stream continues; a
/// far-future end is clamped.
#[test]
fn bad_flows_are_dropped_or_normalised() {
    let w = World::new(true);
    let t = ago(300);
    let mut odd_enums = flow(13, "a", "b", 1, t);
    {
        let k = odd_enums.flow.as_mut().unwrap().key.as_mut().unwrap();
        k.source_type = 99;
        k.dest_type = -3;
        k.reporter = 42;
    }
    let mut nokey = flow(3, "a", "b", 1, t);
    nokey.flow.as_mut().unwrap().key = None;
    let mut env = w.env();
    env.insert("GEA_STALL_TIMEOUT_SECS".into(), "60".into());
    let a = w.spawn(&[], &env);
    a.wait_for(20, "stream open", || w.fake.open_streams() == 1);
    w.fake.inject_raw([
        flow(1, "a", "b", 7, t),
        flow(2, "a", "b", 7, t + 15),
        FlowResult { id: 9, flow: None },
        nokey,
        flow(4, "Foo", "b", 1, t),
        flow(5, "a_b", "b", 1, t),
        flow(6, &"x".repeat(64), "b", 1, t),
        flow(7, "a", "b/c", 1, t),
        flow(8, "a\0", "b", 1, t),
        flow_full(10, "a", "c", 1, t, now() + 100_000, 1),
        flow(11, "a", "d", -1, t),
        odd_enums,
    ]);
    a.wait_for(20, "3 rows", || w.edges().len() == 3);
    let e = w.edges();
    assert_eq!(
        (e[0].1.as_str(), e[0].2.as_str(), e[0].5),
        ("b", "unspecified", 2)
    );
    assert_eq!(e[1].1, "c");
    assert!(e[1].4 <= now() + 5, "future end clamped: {e:?}");
    assert_eq!((e[2].1.as_str(), e[2].2.as_str()), ("d", "unspecified"));
    assert_eq!(a.count("unknown action value 7 mapped to unspecified"), 1);
    a.wait_log("WARN dropped 1 malformed flow(s) (last: id=9 no flow)", 5);
    a.wait_log("WARN dropped 1 flow(s) with a Reporter or EndpointType value this version does not know (last: id=13 unknown reporter: reporter=42 source_type=99 dest_type=-3)", 5);
    let m = |k: &str| metric(&a, k);
    a.wait_for(5, "metrics", || {
        m("goldmane_edge_flows_received_total") == Some(12.0)
    });
    assert_eq!(
        m("goldmane_edge_flows_dropped_total{reason=\"malformed\"}"),
        Some(2.0)
    );
    assert_eq!(
        m("goldmane_edge_flows_dropped_total{reason=\"invalid_namespace\"}"),
        Some(5.0)
    );
    assert_eq!(
        m("goldmane_edge_flows_dropped_total{reason=\"unknown_enum\"}"),
        Some(1.0)
    );
    assert_eq!(m("goldmane_edge_unknown_action_total"), Some(3.0));
    assert_eq!(m("goldmane_edge_time_clamped_total"), Some(1.0));
    assert!(
        a.stderr().contains("WARN clock skew: flow id=10 ends ")
            && a.stderr()
                .contains("s after this pod's clock (stored as now)"),
        "{}",
        a.stderr()
    );
    // The stream continued: a later flow lands.
    w.fake.inject_raw([flow(12, "z", "y", 3, t)]);
    a.wait_for(20, "later flow", || {
        w.edges().iter().any(|e| e.0 == "z" && e.2 == "pass")
    });
}

/// 12.3 #7: SIGTERM with a 60 s flush interval → pending rows written, exit 0; with Postgres
/// down → exit 1 and L-SHUTFAIL with the pending count.
#[test]
fn sigterm_flushes_pending_edges() {
    let mut w = World::new(true);
    let t = ago(300);
    w.fake
        .add_flows([flow(1, "a", "b", 1, t), flow(2, "b", "c", 2, t)]);
    let mut env = w.env();
    env.insert("GEA_FLUSH_INTERVAL_SECS".into(), "60".into());
    env.insert("GEA_STALL_TIMEOUT_SECS".into(), "60".into());
    env.insert("GEA_SHUTDOWN_TIMEOUT_SECS".into(), "3".into());
    let mut a = w.spawn(&[], &env);
    a.wait_for(20, "flows received", || {
        metric(&a, "goldmane_edge_pending_edges") == Some(2.0)
    });
    assert!(w.edges().is_empty(), "nothing flushed before the signal");
    a.signal(Signal::SIGTERM);
    assert_eq!(a.wait_exit(10), 0);
    assert_eq!(w.edges().len(), 2);
    assert!(
        a.stderr()
            .contains("INFO shutdown on SIGTERM: flushed 2 edges"),
        "{}",
        a.stderr()
    );

    w.fake.add_flows([flow(3, "c", "d", 1, t + 15)]);
    let mut b = w.spawn(&[], &env);
    // Resume from max(last_seen) − interval re-reads the last bucket too (3.4.5): 3 edges.
    b.wait_for(20, "flows received", || {
        metric(&b, "goldmane_edge_pending_edges") == Some(3.0)
    });
    w.pg.as_mut().unwrap().stop_mode("fast");
    b.signal(Signal::SIGINT);
    let code = b.wait_exit(15);
    assert_eq!(code, 1, "{}", b.stderr());
    assert!(
        b.stderr().contains("; 3 edges not written"),
        "{}",
        b.stderr()
    );
    assert!(
        b.stderr().contains("ERROR shutdown flush failed: "),
        "{}",
        b.stderr()
    );
}

/// 12.3 #15: dry-run logs would-be upserts and never touches Postgres.
#[test]
fn dry_run_never_touches_postgres() {
    let w = World::new(true);
    let t = ago(300);
    w.fake
        .add_flows([flow(1, "a", "b", 1, t), flow(2, "a", "b", 1, t + 15)]);
    let mut env = w.env();
    env.insert("DRY_RUN".into(), "1".into());
    let mut a = w.spawn(&[], &env);
    a.wait_log(
        &format!(
            "INFO dry-run would upsert a -> b action=allow reporter=src first={} last={} count=2",
            homelab_core::log::format_utc(time::OffsetDateTime::from_unix_timestamp(t).unwrap()),
            homelab_core::log::format_utc(
                time::OffsetDateTime::from_unix_timestamp(t + 30).unwrap()
            ),
        ),
        20,
    );
    a.wait_for(10, "ready without db", || {
        a.get("/readyz").map(|r| r.0) == Some(200)
    });
    let q = |sql: &str| w.pg().psql("goldmane_edges", sql).trim().to_string();
    assert_eq!(q("SELECT to_regclass('edge') IS NULL"), "t");
    assert_eq!(
        q("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'goldmane-edge-aggregator'"),
        "0"
    );
    a.signal(Signal::SIGTERM);
    assert_eq!(a.wait_exit(10), 0);
    assert!(a.stderr().contains("dry_run=1"));
}

/// 12.3 #17: flows as a minimal wire-compatible server would send them (no reporter, labels,
/// statistics or policy trace) work the same.
#[test]
fn minimal_flows_work_the_same() {
    let w = World::new(true);
    let t = ago(300);
    let minimal = |id: i64, s: &str, d: &str, t: i64| FlowResult {
        id,
        flow: Some(testkit::goldmane::Flow {
            key: Some(testkit::goldmane::FlowKey {
                source_namespace: s.into(),
                dest_namespace: d.into(),
                action: 2,
                ..Default::default()
            }),
            start_time: t,
            end_time: t + 15,
            ..Default::default()
        }),
    };
    w.fake.add_flows([
        minimal(1, "a", "b", t),
        minimal(2, "a", "b", t + 15),
        minimal(3, "b", "b", t),
    ]);
    let a = w.spawn(&[], &w.env());
    a.wait_for(20, "row", || total_count(w.pg()) == 2);
    assert_eq!(
        w.edges(),
        vec![("a".into(), "b".into(), "deny".into(), t, t + 30, 2)]
    );
}

/// 2.1 GEA_HEALTH_ADDR: a bind failure is logged (L-HEALTHBIND) and the aggregator keeps
/// working without the endpoints.
#[test]
fn health_bind_failure_is_not_fatal() {
    let w = World::new(true);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    w.fake.add_flows([flow(1, "a", "b", 1, now() - 60)]);
    let mut env = w.env();
    env.insert("GEA_HEALTH_ADDR".into(), addr.clone());
    let a = w.spawn(&[], &env);
    a.wait_log(&format!("ERROR health listener {addr}: "), 20);
    a.wait_log("; continuing without /healthz /readyz /metrics", 1);
    a.wait_for(20, "row without health endpoints", || {
        total_count(w.pg()) == 1
    });
}
