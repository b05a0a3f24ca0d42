//! Postgres behaviour: migration, outages, authentication, concurrent instances.

use super::common::*;
use nix::sys::signal::Signal;

/// 12.3 #3: `migrate` twice is idempotent; a pre-existing table from the original's nullable
/// DDL keeps its rows and shape, and upserts work on it (legacy NULL timestamps heal).
#[test]
fn migrate_is_idempotent_and_adopts_the_original_table() {
    let w = World::new(true);
    let env = w.env();
    let (c1, _, e1) = run_once(w.dir.path(), &["migrate"], &env, 20);
    assert_eq!(c1, 0, "{e1}");
    assert!(
        e1.contains("INFO schema ready (edge table created)"),
        "{e1}"
    );
    let (c2, _, e2) = run_once(w.dir.path(), &["migrate"], &env, 20);
    assert_eq!(c2, 0, "{e2}");
    assert!(
        e2.contains("INFO schema ready (edge table present)"),
        "{e2}"
    );
    let cols = w.pg().psql(
        "goldmane_edges",
        "SELECT column_name || ':' || data_type || ':' || is_nullable FROM information_schema.columns \
         WHERE table_name = 'edge' ORDER BY ordinal_position",
    );
    assert_eq!(
        cols.trim(),
        "src_ns:text:NO\ndst_ns:text:NO\naction:text:NO\nfirst_seen:timestamp with time zone:NO\n\
         last_seen:timestamp with time zone:NO\nflow_count:bigint:NO\nreporter:text:NO\n\
         pending_action:text:YES\npending_deny_last_seen:timestamp with time zone:YES"
    );
    let pk = w.pg().psql(
        "goldmane_edges",
        "SELECT string_agg(a.attname, ',' ORDER BY k.i) FROM pg_constraint c, unnest(c.conkey) \
         WITH ORDINALITY k(n, i), pg_attribute a WHERE c.conrelid = 'edge'::regclass AND c.contype = 'p' \
         AND a.attrelid = c.conrelid AND a.attnum = k.n",
    );
    assert_eq!(pk.trim(), "src_ns,dst_ns,action,reporter");
    let egress_cols = w.pg().psql(
        "goldmane_edges",
        "SELECT string_agg(column_name || ':' || data_type || ':' || is_nullable, ',' ORDER BY ordinal_position) \
         FROM information_schema.columns WHERE table_name = 'egress_edge'",
    );
    assert_eq!(
        egress_cols.trim(),
        "src_ns:text:NO,dst_type:text:NO,dst_name:text:NO,proto:text:NO,dst_port:integer:NO,\
         action:text:NO,reporter:text:NO,first_seen:timestamp with time zone:NO,\
         last_seen:timestamp with time zone:NO,flow_count:bigint:NO,pending_action:text:YES,\
         pending_deny_last_seen:timestamp with time zone:YES"
    );
    let objs = w.pg().psql(
        "goldmane_edges",
        "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace",
    );
    assert_eq!(
        objs.trim(),
        "4",
        "only the two tables and their primary key indexes"
    );

    // The original's table: nullable non-key columns, existing rows (one with NULL times).
    let legacy = Postgres::start();
    legacy.create_db("goldmane_edges");
    legacy.psql(
        "goldmane_edges",
        "CREATE TABLE edge (src_ns text, dst_ns text, action text, first_seen timestamptz, \
         last_seen timestamptz, flow_count bigint, PRIMARY KEY (src_ns, dst_ns, action)); \
         INSERT INTO edge VALUES ('a','b','allow', to_timestamp(1000), to_timestamp(2000), 5), \
         ('x','y','deny', NULL, NULL, 1);",
    );
    let mut env = w.env();
    env.insert(
        "DATABASE_URL".into(),
        format!(
            "postgres://postgres:{PW}@127.0.0.1:{}/goldmane_edges",
            legacy.port()
        ),
    );
    let (c3, _, e3) = run_once(w.dir.path(), &["migrate"], &env, 20);
    assert_eq!(c3, 0, "{e3}");
    assert!(e3.contains("edge table present"), "{e3}");
    let t = ago(300);
    w.fake
        .add_flows([flow(1, "a", "b", 1, t), flow(2, "x", "y", 2, t)]);
    let a = w.spawn(&[], &env);
    a.wait_for(20, "legacy rows updated", || total_count(&legacy) == 8);
    let reporters = legacy.psql(
        "goldmane_edges",
        "SELECT string_agg(reporter, ',') FROM edge",
    );
    assert_eq!(
        reporters.trim(),
        "src,src",
        "legacy rows are the source's side"
    );
    let rows = edges(&legacy);
    assert_eq!(
        rows[0],
        ("a".into(), "b".into(), "allow".into(), 1000, t + 15, 6)
    );
    assert_eq!(
        rows[1],
        ("x".into(), "y".into(), "deny".into(), t, t + 15, 2),
        "NULL times healed"
    );
    let nullable = legacy.psql(
        "goldmane_edges",
        "SELECT is_nullable FROM information_schema.columns WHERE table_name='edge' AND column_name='first_seen'",
    );
    assert_eq!(nullable.trim(), "YES", "legacy table never altered");
}

/// 12.3 #6: Postgres stopped mid-stream; 500 flows arrive meanwhile; after restart all are
/// reflected, with L-DBERR then L-DBOK, and no process restart.
#[test]
fn postgres_outage_loses_nothing() {
    let mut w = World::new(true);
    let t = ago(1200);
    w.fake.add_flows([flow(1, "a", "b", 1, t)]);
    let mut env = w.env();
    env.insert("GEA_STALL_TIMEOUT_SECS".into(), "60".into());
    let a = w.spawn(&[], &env);
    a.wait_for(20, "first row", || total_count(w.pg()) == 1);
    w.pg.as_mut().unwrap().stop_mode("fast");
    // 500 distinct Goldmane keys (one workload each) over 105 edges, streamed live.
    let flows: Vec<FlowResult> = (0..500)
        .map(|i| {
            let mut f = flow(
                100 + i,
                &format!("ns-{}", i % 7),
                &format!("dst-{}", i % 5),
                1 + (i % 3) as i32,
                0,
            );
            f.flow.as_mut().unwrap().key.as_mut().unwrap().source_name = format!("w-{i}");
            f
        })
        .collect();
    w.fake.add_live(flows);
    a.wait_log("ERROR db: ", 20);
    a.wait_for(10, "unready while db down", || {
        a.get("/readyz") == Some((503, "db_down\n".into()))
    });
    w.pg.as_mut().unwrap().start_server();
    a.wait_for(30, "all 501 flows", || total_count(w.pg()) == 501);
    a.wait_log("INFO db recovered after ", 10);
    assert!(
        a.stderr().contains("edges pending, retry in "),
        "{}",
        a.stderr()
    );
    a.wait_for(10, "ready again", || {
        a.get("/readyz").map(|r| r.0) == Some(200)
    });
}

/// §7 / 3.4.3: Postgres down at startup → stream from now − BACKFILL, buffer, migrate and
/// flush when it comes back.
#[test]
fn postgres_down_at_startup() {
    let mut w = World::new(true);
    w.pg.as_mut().unwrap().stop_mode("fast");
    let t = now() - 120;
    w.fake.add_flows([flow(1, "a", "b", 1, t)]);
    let a = w.spawn(&[], &w.env());
    a.wait_log("resume start_time_gte=", 30);
    // The line is logged before the request reaches the fake: wait for the fake to record it.
    a.wait_for(10, "stream request at the fake", || {
        !w.fake.calls().is_empty()
    });
    let call = w.fake.calls()[0].clone();
    assert!(
        (call.start_time_gte - (now() - 3570)).abs() < 60,
        "{call:?}"
    );
    a.wait_log("(default)", 1);
    w.pg.as_mut().unwrap().start_server();
    a.wait_for(30, "row after db start", || total_count(w.pg()) == 1);
    a.wait_log("INFO schema ready (edge table created)", 5);
}

/// 4.2.2: the table dropped mid-run → migrate again and retry; nothing lost.
#[test]
fn dropped_table_is_recreated() {
    let w = World::new(true);
    let t = now() - 300;
    w.fake.add_flows([flow(1, "a", "b", 1, t)]);
    let mut env = w.env();
    env.insert("GEA_STALL_TIMEOUT_SECS".into(), "60".into());
    let a = w.spawn(&[], &env);
    a.wait_for(20, "first row", || total_count(w.pg()) == 1);
    w.pg().psql("goldmane_edges", "DROP TABLE edge");
    w.fake.add_live([flow(2, "c", "d", 1, 0)]);
    a.wait_for(20, "row in recreated table", || {
        w.edges().iter().any(|e| e.0 == "c" && e.5 == 1)
    });
    // a -> b went with the dropped table; a reconciliation may bring it back (List's count),
    // never more.
    assert!(w.edges().iter().all(|e| e.5 == 1), "{:?}", w.edges());
    assert!(a.stderr().contains("(42P01)"), "{}", a.stderr());
}

/// 12.3 #12 and 4.6: authentication failing (here: an unknown role, SQLSTATE 28000) for
/// GEA_DB_AUTH_EXIT_SECS → L-AUTHEXIT, exit 1.
#[test]
fn persistent_auth_failure_exits() {
    let w = World::new(true);
    let mut env = w.env();
    env.insert(
        "DATABASE_URL".into(),
        format!(
            "postgres://nobody:{PW}@127.0.0.1:{}/goldmane_edges",
            w.pg().port()
        ),
    );
    env.insert("GEA_DB_AUTH_EXIT_SECS".into(), "3".into());
    let mut a = w.spawn(&[], &env);
    assert_eq!(a.wait_exit(30), 1);
    let log = a.stderr();
    assert!(
        log.contains("ERROR db authentication failing for "),
        "{log}"
    );
    assert!(log.contains("s; exiting to reload credentials"), "{log}");
}

/// 12.3 #16: two instances on one database with overlapping edges: no error or deadlock,
/// `flow_count` is the sum.
#[test]
fn two_instances_share_one_table() {
    let w = World::new(true);
    let t = now() - 900;
    let flows: Vec<FlowResult> = (0..300)
        .map(|i| {
            flow(
                i + 1,
                &format!("s{}", i % 10),
                &format!("d{}", i % 13),
                1,
                t + i,
            )
        })
        .collect();
    w.fake.add_flows(flows);
    let mut env = w.env();
    env.insert("GEA_STALL_TIMEOUT_SECS".into(), "60".into());
    let a = w.spawn(&[], &env);
    env.insert("GEA_HEALTH_ADDR".into(), "off".into());
    let b = w.spawn(&[], &env);
    a.wait_for(30, "both instances counted", || total_count(w.pg()) == 600);
    for x in [&a, &b] {
        assert!(!x.stderr().contains("ERROR"), "{}", x.stderr());
    }
    a.signal(Signal::SIGTERM);
    b.signal(Signal::SIGTERM);
}

/// GEA_LOG_FORMAT=json: one JSON object per line with ts, level, id, msg.
#[test]
fn json_log_format() {
    let w = World::new(true);
    let mut env = w.env();
    env.insert("GEA_LOG_FORMAT".into(), "json".into());
    let (code, _, err) = run_once(w.dir.path(), &["migrate"], &env, 20);
    assert_eq!(code, 0, "{err}");
    let line = err.lines().next().expect("a log line");
    let v: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["id"], "L-SCHEMA");
    assert_eq!(v["msg"], "schema ready (edge table created)");
    assert!(v["ts"].as_str().is_some_and(|t| t.ends_with("+00:00")));
}
