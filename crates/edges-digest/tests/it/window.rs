//! The announced set and the window on the DB clock (§3.3, 12.3 #1–3, 9, 10, 13, 14).

use super::support::*;
use homelab_core::log::Severity;

#[test]
fn first_run_posts_exact_text_rerun_is_quiet_and_new_row_alone_is_posted() {
    // 12.3 #1–3
    let env = Env::new();
    env.edge("recruiter-responder", "dbaas", "deny", "1 hour", 3);
    env.edge("monitoring", "immich", "allow", "2 hours", 12);
    env.edge("monitoring", "zot", "allow", "23 hours", 1);
    env.edge("old", "stuff", "allow", "30 hours", 5);
    let at = |src: &str, dst: &str| {
        env.sql(&format!(
            "SELECT to_char(first_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM edge WHERE src_ns='{src}' AND dst_ns='{dst}'"
        ))
    };
    let expected = format!(
        "*3 new edges in last 24h*  (deny 1, allow 2)\n\
         • `recruiter-responder` → `dbaas`  *deny* · 3 flows · first {}Z\n\
         • `monitoring` → `immich`  allow · 12 flows · first {}Z\n\
         • `monitoring` → `zot`  allow · 1 flow · first {}Z",
        at("recruiter-responder", "dbaas"),
        at("monitoring", "immich"),
        at("monitoring", "zot")
    );
    let r = env.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let posts = env.slack.posts();
    assert_eq!(posts.len(), 1);
    let p = posts[0].json();
    assert_eq!(p["text"], expected.as_str());
    assert_eq!(p["channel"], "#alerts");
    assert_eq!(p.as_object().unwrap().len(), 2);
    assert_eq!(posts[0].method, "POST");
    assert_eq!(
        posts[0].header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(env.announced(), 3);
    assert_eq!(
        r.line("posted "),
        "posted 3 new edges to #alerts (HTTP 200, 3 shown, 0 more)"
    );
    assert!(r
        .line("window since=")
        .ends_with("catchup=false candidates=3"));
    assert!(r
        .line("start ")
        .starts_with("start state=table window=24h channel=#alerts webhook=http://127.0.0.1:"));

    // 2: immediate re-run → no POST, run recorded.
    let r = env.run(&[]);
    assert_eq!(r.code, 0);
    assert_eq!(env.slack.posts().len(), 1);
    assert!(r.has("no new edges since "));
    assert_eq!(
        env.sql("SELECT count(*) FROM edge_digest_run WHERE NOT posted AND new_edges = 0"),
        "1"
    );

    // 3: one new row → only it is posted.
    env.edge("argocd", "monitoring", "pass", "5 minutes", 7);
    let r = env.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let texts = env.slack.texts();
    assert_eq!(texts.len(), 2);
    assert!(texts[1].starts_with("*1 new edge in last 24h*  (pass 1)\n• `argocd` → `monitoring`  pass · 7 flows · first "), "{}", texts[1]);
    assert_eq!(texts[1].lines().count(), 2);
    assert_eq!(env.announced(), 4);
}

#[test]
fn exact_text_for_three_rows_in_a_fixed_window() {
    // 12.3 #1 byte-exact with --since, independent of the wall clock.
    let env = Env::new();
    env.sql(
        "INSERT INTO edge (src_ns, dst_ns, action, first_seen, last_seen, flow_count, reporter) VALUES
         ('recruiter-responder', 'dbaas', 'deny', '2026-06-28 07:42:31+00', now(), 3, 'src'),
         ('monitoring', 'immich', 'allow', '2026-06-27 09:05:00+00', now(), 12, 'src'),
         ('a', 'b', 'unspecified', '2026-06-27 09:06:00+00', now(), 2, 'src'),
         ('old', 'stuff', 'allow', '2026-06-20 00:00:00+00', now(), 5, 'src')",
    );
    let r = env.run(&["--since", "2026-06-27"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let p = env.slack.posts()[0].json();
    assert_eq!(
        p["text"],
        "*3 new edges since 2026-06-27T00:00:00Z*  (deny 1, allow 1, unspecified 1)\n\
         • `recruiter-responder` → `dbaas`  *deny* · 3 flows · first 2026-06-28 07:42Z\n\
         • `monitoring` → `immich`  allow · 12 flows · first 2026-06-27 09:05Z\n\
         • `a` → `b`  unspecified · 2 flows · first 2026-06-27 09:06Z"
    );
    assert_eq!(p["channel"], "#alerts");
    assert_eq!(
        env.sql("SELECT string_agg(src_ns, ',' ORDER BY src_ns) FROM edge_digest_announced"),
        "a,monitoring,recruiter-responder"
    );
    assert_eq!(
        env.sql(
            "SELECT window_start = '2026-06-27 00:00+00', new_edges, posted FROM edge_digest_run"
        ),
        "t|3|t"
    );
}

#[test]
fn late_row_within_grace_is_announced_once_by_the_next_run() {
    // 12.3 #9
    let env = Env::new();
    env.edge("a", "b", "allow", "3 hours", 1);
    assert_eq!(env.run(&[]).code, 0);
    assert_eq!(env.slack.posts().len(), 1);
    // Pretend the last run ended 24 h ago (the next daily run), then a late row appears with
    // first_seen 30 min before that run's end.
    env.sql("UPDATE edge_digest_run SET window_end = window_end - interval '24 hours'");
    env.edge("late", "row", "deny", "24 hours 30 minutes", 2);
    let r = env.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let texts = env.slack.texts();
    assert_eq!(texts.len(), 2);
    assert!(
        texts[1].starts_with("*1 new edge in last 24h*  (deny 1)\n• `late` → `row`  *deny*"),
        "{}",
        texts[1]
    );
    // Announced once: the next run re-scans the grace but stays quiet.
    let r = env.run(&[]);
    assert!(r.has("no new edges since "));
    assert_eq!(env.slack.posts().len(), 2);
}

#[test]
fn dst_days_of_23_and_25_hours_lose_nothing() {
    // 08:00 Europe/London is 23 h after the previous run in spring and 25 h in autumn. The
    // window reaches back max(24 h, gap) + 2 h grace: 26 h and 27 h.
    for (gap, back) in [(23, 26), (25, 27)] {
        let env = Env::new();
        edges_digest_migrate(&env);
        env.sql(&format!(
            "INSERT INTO edge_digest_run (window_start, window_end, new_edges, posted) \
             VALUES (now() - interval '{gap} hours' - interval '1 day', now() - interval '{gap} hours', 0, false)"
        ));
        // Just after the previous end; a late row inside the grace before it; one just outside.
        env.edge(
            "after",
            "prev",
            "allow",
            &format!("{gap} hours - 1 minute"),
            1,
        );
        env.edge(
            "late",
            "grace",
            "allow",
            &format!("{back} hours - 10 minutes"),
            1,
        );
        env.edge(
            "too",
            "old",
            "allow",
            &format!("{back} hours + 10 minutes"),
            1,
        );
        let r = env.run(&[]);
        assert_eq!(r.code, 0, "{gap}: {}", r.all());
        assert!(r.line("window since=").contains("catchup=false"), "{gap}");
        let t = &env.slack.texts()[0];
        assert!(t.starts_with("*2 new edges in last 24h*"), "{gap}: {t}");
        assert!(
            t.contains("`after`") && t.contains("`late`") && !t.contains("`too`"),
            "{t}"
        );
    }
}

#[test]
fn three_failed_days_give_one_catch_up_post_with_since_label() {
    // 12.3 #10
    let env = Env::new();
    edges_digest_migrate(&env);
    env.sql("INSERT INTO edge_digest_run (window_start, window_end, new_edges, posted) VALUES (now() - interval '4 days', now() - interval '3 days', 0, false)");
    env.edge("d1", "x", "allow", "1 day", 1);
    env.edge("d2", "x", "allow", "2 days", 1);
    env.edge("d3", "x", "allow", "3 days 1 hour", 1);
    env.edge("d4", "x", "allow", "3 days 3 hours", 1); // before last_end - grace: announced by then
    let r = env.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.line("window since=").contains("catchup=true"));
    let t = &env.slack.texts()[0];
    let since = env.sql("SELECT to_char((SELECT max(window_start) FROM edge_digest_run) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')");
    assert!(
        t.starts_with(&format!("*3 new edges since {since}*  (allow 3)")),
        "{t}"
    );
    assert!(t.contains("`d3`") && !t.contains("`d4`"));
    assert!(!r.has("catch-up clipped"));
}

#[test]
fn catch_up_is_clipped_at_max_catchup() {
    let env = Env::new();
    edges_digest_migrate(&env);
    env.sql("INSERT INTO edge_digest_run (window_start, window_end, new_edges, posted) VALUES (now() - interval '11 days', now() - interval '10 days', 0, false)");
    env.edge("recent", "x", "allow", "6 days", 1);
    env.edge("lost", "x", "allow", "8 days", 1);
    let r = env.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let clip = r.line("catch-up clipped to 7d: edges first seen ");
    assert!(clip.ends_with(" are not announced"), "{clip}");
    assert_eq!(
        r.level("catch-up clipped"),
        homelab_core::log::Severity::Warning
    );
    let t = &env.slack.texts()[0];
    assert!(t.contains("`recent`") && !t.contains("`lost`"), "{t}");
}

#[test]
fn state_none_is_the_original_stateless_window() {
    let env = Env::new();
    env.edge("a", "b", "allow", "1 hour", 1);
    env.edge("c", "d", "allow", "25 hours", 1);
    for _ in 0..2 {
        let r = env.run(&["--state", "none"]);
        assert_eq!(r.code, 0, "{}", r.all());
    }
    let texts = env.slack.texts();
    assert_eq!(texts.len(), 2, "stateless: the re-run posts again");
    assert!(texts[0].starts_with("*1 new edge in last 24h*"));
    assert!(!env.state_tables_exist());
}

#[test]
fn before_the_per_side_migration_the_run_is_exit_3_with_the_migration_hint() {
    // Today's table (aggregator 0001) and the original nullable one: both predate `reporter`
    // and `egress_edge`; reading them as per-side rows would be wrong, so refuse loudly.
    for ddl in [OLD_EDGE_DDL, LEGACY_EDGE_DDL] {
        let env = Env::with_ddl(Some(ddl));
        env.sql("INSERT INTO edge (src_ns, dst_ns, action, first_seen, last_seen, flow_count) VALUES ('a', 'b', 'allow', now() - interval '1 hour', now(), 1)");
        let r = env.run(&[]);
        assert_eq!(r.code, 3, "{}", r.all());
        let l = r.line("table edge has no reporter");
        assert!(
            l.contains("run goldmane-edge-aggregator's migration"),
            "{l}"
        );
        assert_eq!(r.level("table edge has no reporter"), Severity::Error);
        assert!(env.slack.posts().is_empty());
        assert_eq!(env.runs(), 0, "nothing recorded");
    }
    // Per-side edge but no egress_edge yet: still refused.
    let env = Env::with_ddl(Some(EDGE_DDL));
    let r = env.run(&[]);
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.has("table edge has no reporter"));
}

#[test]
fn hundred_thousand_edges_one_post_plus_more_every_key_recorded() {
    // 12.3 #13
    let env = Env::new();
    env.sql(
        "INSERT INTO edge (src_ns, dst_ns, action, first_seen, last_seen, flow_count, reporter) SELECT 's' || lpad(i::text, 7, '0'), 'dst' || (i % 97), \
         (ARRAY['allow','deny','pass','unspecified'])[1 + i % 4], now() - interval '1 hour', now(), 1 + i % 9, 'src' \
         FROM generate_series(1, 100000) i",
    );
    let r = env.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let posts = env.slack.posts();
    assert_eq!(posts.len(), 1);
    assert!(posts[0].body.len() <= 4096, "{}", posts[0].body.len());
    let t = posts[0].json()["text"].as_str().unwrap().to_string();
    assert!(t.len() <= 3500);
    assert!(t.starts_with("*100000 new edges in last 24h*  (deny 25000, allow 25000, pass 25000, unspecified 25000)\n• `s0000001` → `dst1`  *deny*"), "{t}");
    assert!(
        t.ends_with("\n+99960 more — `homelab edges --new-since 24h`"),
        "{t}"
    );
    assert_eq!(t.lines().filter(|l| l.starts_with("• ")).count(), 40);
    assert_eq!(env.announced(), 100_000);
    assert!(r
        .line("posted ")
        .starts_with("posted 100000 new edges to #alerts (HTTP 200, 40 shown, 99960 more)"));
}

#[test]
fn thirty_thousand_long_names_stay_under_the_byte_cap() {
    let env = Env::new();
    env.sql(
        "INSERT INTO edge (src_ns, dst_ns, action, first_seen, last_seen, flow_count, reporter) SELECT repeat('n', 70) || i, repeat('m', 200) || i, 'deny', now() - interval '1 hour', now(), 1000000, 'src' \
         FROM generate_series(1, 30000) i",
    );
    let r = env.run(&["--max-edges", "200"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let p = &env.slack.posts()[0];
    let t = p.json()["text"].as_str().unwrap().to_string();
    assert!(
        t.len() <= 3500 && p.body.len() <= 4096,
        "{} {}",
        t.len(),
        p.body.len()
    );
    let shown = t.lines().filter(|l| l.starts_with("• ")).count();
    assert!(shown < 200);
    assert!(t.ends_with(&format!(
        "+{} more — `homelab edges --new-since 24h`",
        30000 - shown
    )));
    assert!(t.contains(&format!("`{}…`", "n".repeat(63))));
}

#[test]
fn hostile_names_are_escaped() {
    // 12.3 #14 and the §8 names row.
    let env = Env::new();
    env.edge("a&b", "<!channel>", "allow", "1 hour", 2);
    env.edge("x`y", "new\nline", "weird<action>", "1 hour", 2);
    env.edge("*_~", &"z".repeat(200), "deny", "1 hour", 2);
    let r = env.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let body = env.slack.posts()[0].body_str();
    assert!(!body.contains("<!"), "{body}");
    let t = env.slack.texts()[0].clone();
    assert!(!t.contains("<!"), "{t}");
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 4, "{t}");
    assert_eq!(
        lines[0],
        "*3 new edges in last 24h*  (deny 1, allow 1, weird&lt;action&gt; 1)"
    );
    assert!(
        lines[1].starts_with(&format!(
            "• `*_~` → `{}…`  *deny* · 2 flows",
            "z".repeat(63)
        )),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("• `a&amp;b` → `&lt;!channel&gt;`  allow · 2 flows"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].starts_with("• `x'y` → `new\u{FFFD}line`  weird&lt;action&gt; · 2 flows"),
        "{}",
        lines[3]
    );
}

#[test]
fn row_committed_during_the_post_is_left_for_the_next_run() {
    // One REPEATABLE READ snapshot: what was counted is exactly what is recorded.
    let env = Env::new();
    env.slack
        .push([testkit::slack::ok().delay(std::time::Duration::from_millis(1500))]);
    env.edge("a", "b", "allow", "1 hour", 1);
    let cfg = env.config(&[]);
    let h = std::thread::spawn(move || run(&cfg).code);
    testkit::wait_until(20, "the digest POST", || env.slack.posts().len() == 1);
    env.edge("during", "post", "allow", "1 minute", 1);
    assert_eq!(h.join().unwrap(), 0);
    assert_eq!(
        env.sql("SELECT string_agg(src_ns, ',') FROM edge_digest_announced"),
        "a"
    );
    let r = env.run(&[]);
    assert_eq!(r.code, 0);
    assert!(env.slack.texts()[1].contains("`during`"));
}

#[test]
fn two_concurrent_runs_post_once() {
    // 12.3 #8
    let env = Env::new();
    env.slack
        .push([testkit::slack::ok().delay(std::time::Duration::from_secs(2))]);
    env.edge("a", "b", "allow", "1 hour", 1);
    edges_digest_migrate(&env);
    let (c1, c2) = (env.config(&[]), env.config(&[]));
    let t1 = std::thread::spawn(move || run_sleeping(&c1, true));
    let t2 = std::thread::spawn(move || run_sleeping(&c2, true));
    let (r1, r2) = (t1.join().unwrap(), t2.join().unwrap());
    assert_eq!((r1.code, r2.code), (0, 0), "{}\n{}", r1.all(), r2.all());
    assert_eq!(env.slack.posts().len(), 1);
    assert_eq!(env.announced(), 1);
    assert!(r1.has("no new edges") || r2.has("no new edges"));
}

#[test]
fn lock_held_for_60s_skips() {
    let env = Env::new();
    env.edge("a", "b", "allow", "1 hour", 1);
    let mut holder = postgres::Client::connect(&env.pg.dsn(DB), postgres::NoTls).unwrap();
    holder
        .execute("SELECT pg_advisory_lock(7166126151938)", &[])
        .unwrap();
    let pgw = testkit::HttpServer::start(|_| testkit::Reply::new(200));
    let mut vars = env.vars();
    vars.push(("PUSHGATEWAY_URL".into(), pgw.url()));
    let r = run(&config(&vars, &["--json"]));
    assert_eq!(r.code, 0);
    assert_eq!(pgw.request_count(), 0, "no metrics for a skipped run");
    assert!(r.has("another edges-digest run holds the lock — skipping"));
    assert_eq!(r.sleeps.len(), 60);
    assert!(r.sleeps.iter().all(|d| d.as_secs() == 1));
    assert_eq!(r.json()["result"], "skipped");
    assert!(env.slack.posts().is_empty());
}

#[test]
fn migrate_creates_state_tables_idempotently() {
    let env = Env::new();
    let r = env.run(&["migrate", "--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.has("dry-run: state tables edge_digest_run and edge_digest_announced would be created")
    );
    assert!(!env.state_tables_exist());
    for _ in 0..2 {
        let r = env.run(&["migrate"]);
        assert_eq!(r.code, 0, "{}", r.all());
    }
    assert!(env.state_tables_exist());
    assert!(env.slack.posts().is_empty());
}

pub fn edges_digest_migrate(env: &Env) {
    let r = env.run(&["migrate"]);
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn old_table_fixture_matches_the_aggregator_migration_0001() {
    // The fixture for "before the per-side migration" is the aggregator's own first migration.
    let s = std::fs::read_to_string(AGGREGATOR_MIGRATION).expect("aggregator migration 0001");
    let norm = |x: &str| {
        x.lines()
            .map(|l| l.split("--").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        norm(&s),
        norm(OLD_EDGE_DDL),
        "0001 drifted from the fixture"
    );
}

/// Column name, type, nullability and primary-key position of a table, as Postgres sees it.
fn shape(env: &Env, table: &str) -> String {
    env.sql(&format!(
        "SELECT string_agg(c.column_name || ':' || c.data_type || ':' || c.is_nullable || ':' || \
           coalesce(k.ordinal_position::text, '-'), ',' ORDER BY c.column_name) \
         FROM information_schema.columns c LEFT JOIN information_schema.key_column_usage k \
           ON k.table_name = c.table_name AND k.column_name = c.column_name \
           AND k.constraint_name = '{table}_pkey' \
         WHERE c.table_name = '{table}'"
    ))
}

#[test]
fn schema_fixture_matches_the_aggregator_per_side_migration_when_present() {
    // The aggregator helper adds `migrations/0002_*.sql` (SCHEMA.md). Once it is in the tree,
    // 0001 + 0002 must leave exactly the tables these tests build from their DDL constants.
    let dir = std::path::Path::new(AGGREGATOR_MIGRATION).parent().unwrap();
    let mut later: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql") && !p.ends_with("0001_edge.sql"))
        .collect();
    later.sort();
    if later.is_empty() {
        eprintln!(
            "note: no aggregator migration after 0001 in this tree yet; SCHEMA.md DDL used as is"
        );
        return;
    }
    let migrated = Env::with_ddl(Some(OLD_EDGE_DDL));
    for m in &later {
        migrated.sql(&std::fs::read_to_string(m).unwrap());
    }
    let ours = Env::new();
    for t in ["edge", "egress_edge"] {
        assert_eq!(
            shape(&migrated, t),
            shape(&ours, t),
            "{t}: fixture drifted from {later:?}"
        );
    }
}
