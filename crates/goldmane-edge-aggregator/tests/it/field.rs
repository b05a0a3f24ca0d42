//! Issue 13 / 17 against the modelled Goldmane (testkit `FakeGoldmane`: ring, rollovers,
//! backfill and List rules of projectcalico/calico v3.30.7, Felix-style reports): backfill
//! bounds, reconciliation, restarts, per-side verdicts, external egress, staged verdicts, one
//! stream, the migration.

use super::common::*;
use super::stream::ALLOWLIST;

fn pod(ns: &str) -> Endpoint {
    Endpoint::pod(ns)
}

/// 20 distinct keys over 4 edges in old (already streamed) buckets.
fn old_flows(t: i64) -> Vec<FlowResult> {
    (0..20)
        .map(|i| {
            let mut f = flow(
                0,
                &format!("s{}", i % 2),
                &format!("d{}", i % 2 + 2),
                1,
                t + 15 * (i % 5),
            );
            f.flow.as_mut().unwrap().key.as_mut().unwrap().source_name = format!("w-{i}");
            f
        })
        .collect()
}

/// `GEA_BACKFILL_SECS=0`: every connect asks for live only (`start_time_gte=0`), the
/// reconciliation after it covers the ring; three reconnects leave `sum(flow_count)` unchanged.
#[test]
fn backfill_zero_three_reconnects_keep_the_sum() {
    let w = World::new(true);
    w.fake.add_flows(old_flows(ago(1200)));
    let mut env = w.env();
    env.insert("GEA_BACKFILL_SECS".into(), "0".into());
    env.insert("GEA_RECONCILE_SECS".into(), "0".into());
    env.insert("GEA_STALL_TIMEOUT_SECS".into(), "60".into());
    let a = w.spawn(&[], &env);
    a.wait_for(30, "reconciled ring", || total_count(w.pg()) == 20);
    let sum = total_count(w.pg());
    for n in 2..=4 {
        w.fake.drop_connections();
        a.wait_for(30, "reconnect and reconciliation", || {
            a.count("INFO reconcile [") >= n
        });
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(total_count(w.pg()), sum, "no count re-added by reconnects");
    let calls = w.fake.calls();
    assert!(calls.len() >= 4, "{calls:?}");
    assert!(
        calls
            .iter()
            .all(|c| c.start_time_gte == 0 && c.backfilled == 0),
        "{calls:?}"
    );
    a.wait_log("resume start_time_gte=0 (default)", 1);
}

/// `GEA_BACKFILL_SECS=3570` with the pod clock 10 s behind Goldmane's still backfills about an
/// hour (the old default reached past the ring's oldest bucket and got nothing).
#[test]
fn backfill_3570_with_clock_10s_behind_backfills_the_hour() {
    let w = World::new(true);
    w.fake.set_clock_offset(10);
    let gm_now = w.fake.now();
    let oldest = bucket_start(gm_now - 3570);
    w.fake.add_flows([
        flow(0, "a", "b", 1, oldest),
        flow(0, "c", "d", 1, bucket_start(gm_now - 60)),
    ]);
    let mut env = w.env();
    env.insert("GEA_BACKFILL_SECS".into(), "3570".into());
    env.insert("GEA_STALL_TIMEOUT_SECS".into(), "60".into());
    let a = w.spawn(&[], &env);
    a.wait_for(20, "both rows", || total_count(w.pg()) == 2);
    let c = &w.fake.calls()[0];
    assert_eq!(
        c.backfilled, 2,
        "the backfill, not reconciliation, delivered both: {c:?}"
    );
    assert!(c.start_time_gte >= w.fake.oldest_bucket(), "{c:?}");
    assert_eq!(w.edges()[0].3, oldest);
    drop(a);
    // The ring limit is enforced: a larger value is refused before any I/O.
    let mut env = w.env();
    env.insert("GEA_BACKFILL_SECS".into(), "3600".into());
    let (code, _, err) = run_once(w.dir.path(), &[], &env, 10);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("config GEA_BACKFILL_SECS: 3600 is above the ring limit 3570"),
        "{err}"
    );
}

/// Goldmane restarts (abrupt close, ring lost) and Felix re-sends its cache under new ids into
/// the old buckets: no edge lost, no `flow_count` counted twice; a flow only sent after the
/// restart still lands.
#[test]
fn goldmane_restart_with_felix_resend_neither_loses_nor_doubles() {
    let mut w = World::new(true);
    let t = ago(600);
    let cache = old_flows(t);
    w.fake.add_flows(cache.clone());
    let mut env = w.env();
    env.insert("GEA_STALL_TIMEOUT_SECS".into(), "60".into());
    let a = w.spawn(&[], &env);
    a.wait_for(20, "first rows", || total_count(w.pg()) == 20);
    // Re-sent in reverse: every key gets another id than before.
    let mut resend: Vec<FlowResult> = cache.into_iter().rev().collect();
    resend.push(flow(0, "e", "f", 2, t + 60));
    let passes = a.count("INFO reconcile [");
    w.fake.restart_with(resend);
    a.wait_for(30, "new key after restart", || {
        w.edges().iter().any(|e| e.0 == "e" && e.1 == "f")
    });
    a.wait_for(20, "reconciliation after reconnect", || {
        a.count("INFO reconcile [") > passes
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(total_count(w.pg()), 21, "{:?}", w.edges());
    assert_eq!(w.edges().len(), 3);
    assert!(
        metric(
            &a,
            "goldmane_edge_flows_dropped_total{reason=\"duplicate\"}"
        )
        .unwrap_or(0.0)
            >= 4.0,
        "the replayed bucket (4 re-sent keys, new ids) recognised by content"
    );
    assert!(w.fake.calls().len() >= 2);
    assert!(a.stderr().contains("WARN stream ended: "), "{}", a.stderr());
}

/// Felix reports A→B from both sides: allowed by A's egress, denied by B's ingress → rows
/// (A,B,allow,src) and (A,B,deny,dst), no (A,B,allow,dst); the allowlist leaves A→B out;
/// nothing is doubled for a pair both sides allow.
#[test]
fn src_allow_dst_deny_gives_one_row_per_side() {
    let w = World::new(true);
    let t = ago(300);
    w.fake.add_connections(&[
        Connection::new(pod("a"), pod("b"), 1, 2, t),
        Connection::new(pod("a"), pod("c"), 1, 1, t),
        Connection::new(pod("a"), pod("d"), 2, 1, t),
    ]);
    let a = w.spawn(&[], &w.env());
    a.wait_for(20, "rows", || sides(w.pg()).len() == 5);
    let got: Vec<String> = sides(w.pg())
        .into_iter()
        .map(|r| format!("{}>{} {} {} {}", r.0, r.1, r.2, r.3, r.6))
        .collect();
    assert_eq!(
        got,
        [
            "a>b allow src 1",
            "a>b deny dst 1",
            "a>c allow dst 1",
            "a>c allow src 1",
            "a>d deny src 1"
        ]
    );
    assert_eq!(w.pg().psql("goldmane_edges", ALLOWLIST).trim(), "a|{c}");
}

/// `"-"` sources (the internet, host endpoints) with in-cluster destinations count as
/// empty_namespace; flows to networks, NetworkSets and host endpoints fill `egress_edge`; a
/// namespaced NetworkSet never becomes an edge to its namespace; staged verdicts are kept.
#[test]
fn dash_flows_and_external_egress() {
    let w = World::new(true);
    let t = ago(300);
    let set = |ns: Option<&str>, name: &str| Endpoint::NetworkSet {
        ns: ns.map(str::to_string),
        name: name.into(),
    };
    w.fake.add_connections(&[
        Connection::new(Endpoint::Network("pub".into()), pod("web"), 1, 1, t),
        Connection::new(Endpoint::HostEndpoint("node-1".into()), pod("web"), 1, 1, t),
        Connection::new(pod("web"), Endpoint::Network("pub".into()), 1, 1, t)
            .proto("tcp", 443)
            .pending(Some(2), None),
        Connection::new(pod("web"), Endpoint::Network("pub".into()), 1, 1, t + 15).proto("udp", 53),
        Connection::new(pod("mon"), Endpoint::Network("pvt".into()), 2, 1, t).proto("icmp", 0),
        Connection::new(pod("web"), set(Some("b"), "partners"), 1, 1, t).proto("tcp", 8443),
        Connection::new(pod("web"), set(None, "cloudflare"), 1, 1, t).proto("tcp", 443),
        Connection::new(pod("web"), Endpoint::HostEndpoint("node-1".into()), 1, 1, t)
            .proto("tcp", 10250),
        Connection::new(pod("web"), pod("b"), 1, 1, t).pending(Some(2), Some(1)),
    ]);
    let a = w.spawn(&[], &w.env());
    a.wait_for(20, "egress rows", || egress(w.pg()).len() == 6);
    assert_eq!(
        egress(w.pg()),
        [
            "mon network pvt icmp/0 deny src 1",
            "web hostendpoint node-1 tcp/10250 allow src 1",
            "web network pub tcp/443 allow src 1",
            "web network pub udp/53 allow src 1",
            "web networkset b/partners tcp/8443 allow src 1",
            "web networkset cloudflare tcp/443 allow src 1",
        ]
    );
    // The only edge is the pod-to-pod one (both sides): no web→b from the namespaced set.
    a.wait_for(10, "edge rows", || sides(w.pg()).len() == 2);
    assert_eq!(total_count(w.pg()), 2);
    a.wait_for(5, "metrics", || {
        metric(&a, "goldmane_edge_flows_received_total") == Some(11.0)
    });
    assert_eq!(
        metric(
            &a,
            "goldmane_edge_flows_dropped_total{reason=\"empty_namespace\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &a,
            "goldmane_edge_flows_dropped_total{reason=\"invalid_namespace\"}"
        ),
        Some(0.0)
    );
    // Issue 17: staged verdicts per side.
    let q = |sql: &str| w.pg().psql("goldmane_edges", sql).trim().to_string();
    assert_eq!(
        q("SELECT reporter || ':' || coalesce(pending_action, '-') || ':' || (pending_deny_last_seen IS NOT NULL) \
           FROM edge WHERE src_ns = 'web' AND dst_ns = 'b' ORDER BY reporter"),
        "dst:allow:false\nsrc:deny:true"
    );
    assert_eq!(
        q(
            "SELECT extract(epoch FROM pending_deny_last_seen)::bigint FROM egress_edge \
           WHERE dst_name = 'pub' AND proto = 'tcp'"
        ),
        (t + 15).to_string()
    );
    assert_eq!(
        q("SELECT count(*) FROM egress_edge WHERE pending_action IS NOT NULL"),
        "1"
    );
    a.wait_log(
        r#"new egress web -> "networkset:b/partners tcp/8443" action=allow reporter=src"#,
        5,
    );
}

/// Exactly one open stream: after 20 stall-reconnects the stand-in counts 1 (upstream crashes
/// above 100 concurrent streams).
#[test]
fn one_open_stream_after_twenty_stalls() {
    let w = World::new(true);
    let mut env = w.env();
    env.insert("GEA_STALL_TIMEOUT_SECS".into(), "1".into());
    env.insert("GEA_BACKOFF_MAX_SECS".into(), "1".into());
    let a = w.spawn(&[], &env);
    a.wait_for(90, "20 stall reconnects", || w.fake.calls().len() >= 21);
    a.wait_for(5, "the 21st stream open", || w.fake.open_streams() == 1);
    assert_eq!(w.fake.max_open_streams(), 1, "never two streams at once");
    assert_eq!(w.fake.crashes(), 0);
    assert!(
        w.fake.open_connections() <= 2,
        "{}",
        w.fake.open_connections()
    );
    assert!(a.count("WARN stream stalled: no flow for 1s; reconnecting") >= 20);
}

/// Today's table (primary key src_ns, dst_ns, action; NOT NULL columns) migrates keeping every
/// row as reporter = 'src', staged columns NULL; `migrate` again is a no-op.
#[test]
fn migration_from_todays_table_keeps_every_row() {
    let w = World::new(true);
    w.pg().psql(
        "goldmane_edges",
        include_str!("../../migrations/0001_edge.sql"),
    );
    let mut values = Vec::new();
    for i in 0..50 {
        values.push(format!(
            "('s{i}', 'd{}', '{}', to_timestamp({}), to_timestamp({}), {})",
            i % 7,
            if i % 3 == 0 { "deny" } else { "allow" },
            1000 + i,
            2000 + i,
            i + 1
        ));
    }
    w.pg().psql(
        "goldmane_edges",
        &format!("INSERT INTO edge VALUES {}", values.join(",")),
    );
    let before = w.pg().psql(
        "goldmane_edges",
        "SELECT md5(string_agg(src_ns||dst_ns||action||first_seen||last_seen||flow_count, ',' ORDER BY 1)) FROM edge",
    );
    for _ in 0..2 {
        let (code, _, err) = run_once(w.dir.path(), &["migrate"], &w.env(), 20);
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("edge table present"), "{err}");
    }
    let q = |sql: &str| w.pg().psql("goldmane_edges", sql).trim().to_string();
    assert_eq!(
        q("SELECT md5(string_agg(src_ns||dst_ns||action||first_seen||last_seen||flow_count, ',' ORDER BY 1)) FROM edge"),
        before.trim()
    );
    assert_eq!(q("SELECT count(*) FROM edge WHERE reporter = 'src' AND pending_action IS NULL AND pending_deny_last_seen IS NULL"), "50");
    assert_eq!(q("SELECT to_regclass('egress_edge') IS NOT NULL"), "t");
    // The new key takes a destination-side row next to the source-side one.
    w.pg().psql(
        "goldmane_edges",
        "INSERT INTO edge VALUES ('s1','d1','allow',now(),now(),1,'dst')",
    );
    assert_eq!(q("SELECT count(*) FROM edge WHERE src_ns = 's1'"), "2");
    let (code, out, _) = run_once(w.dir.path(), &["check"], &w.env(), 30);
    assert!(
        out.contains("(edge table present, per side; egress_edge present)"),
        "{code} {out}"
    );
}

/// A List that errors mid-way: a clear line, the stream keeps going, the pass is retried next
/// period and then finds the late flow.
#[test]
fn list_failure_keeps_the_stream_and_retries_next_period() {
    let w = World::new(true);
    let t = ago(900);
    w.fake.add_flows([flow(0, "a", "b", 1, t)]);
    w.fake.set_list_faults(ListFaults {
        fail_page: Some((0, 2)),
        ..Default::default()
    });
    let mut env = w.env();
    env.insert("GEA_RECONCILE_SECS".into(), "2".into());
    env.insert("GEA_STALL_TIMEOUT_SECS".into(), "60".into());
    let a = w.spawn(&[], &env);
    a.wait_log("WARN reconcile failed: List [", 20);
    a.wait_log(
        "Unavailable: scripted List failure; the stream continues, retry in 2s",
        1,
    );
    w.fake.add_live([flow(0, "x", "y", 1, 0)]);
    a.wait_for(20, "live flow while List fails", || {
        w.edges().iter().any(|e| e.0 == "x")
    });
    w.fake.add_flows([flow(0, "a", "c", 1, t + 15)]);
    a.wait_for(30, "late flow after the retry", || {
        w.edges().iter().any(|e| e.1 == "c")
    });
    assert!(
        metric(&a, "goldmane_edge_reconcile_runs_total{result=\"error\"}").unwrap_or(0.0) >= 2.0
    );
    assert!(!a.stderr().contains("panicked"));
}

/// A List page over the 4 MiB message limit: a clear line, smaller pages, nothing lost.
#[test]
fn oversized_list_pages_are_split() {
    let w = World::new(true);
    let t = ago(1800);
    let flows: Vec<FlowResult> = (0..700)
        .map(|i| {
            let mut f = flow(0, "big", &format!("d{}", i % 3), 1, t + 15 * (i % 40));
            f.flow.as_mut().unwrap().key.as_mut().unwrap().source_name = format!("w-{i}");
            f
        })
        .collect();
    w.fake.add_flows(flows);
    w.fake.set_list_faults(ListFaults {
        pad_bytes: 8192,
        ..Default::default()
    });
    let mut env = w.env();
    env.insert("GEA_BACKFILL_SECS".into(), "0".into());
    env.insert("GEA_STALL_TIMEOUT_SECS".into(), "60".into());
    let a = w.spawn(&[], &env);
    a.wait_for(40, "all keys via List", || total_count(w.pg()) == 700);
    a.wait_log(
        "WARN reconcile: List page 0 over the 4 MiB message limit",
        1,
    );
    a.wait_log("; asking for 256 flows per page", 1);
    let sizes: Vec<i64> = w.fake.list_calls().iter().map(|c| c.page_size).collect();
    assert!(sizes.contains(&256) && !sizes.contains(&128), "{sizes:?}");
}
