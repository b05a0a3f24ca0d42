//! Issue 13/17 on the digest: per-side rows announced once per (src, dst, action), a pair
//! denied by either side shown as deny, "new external egress" and "would be denied by staged
//! policy" sections — real Postgres with the SCHEMA.md tables, Slack capture.

use super::support::*;

#[test]
fn both_sides_reporting_one_allow_is_announced_once_with_one_sides_flows() {
    let env = Env::new();
    env.edge_side("monitoring", "immich", "allow", "src", "1 hour", 12);
    env.edge_side("monitoring", "immich", "allow", "dst", "50 minutes", 11);
    let r = env.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let t = &env.slack.texts()[0];
    assert!(
        t.starts_with("*1 new edge in last 24h*  (allow 1)\n• `monitoring` → `immich`  allow · 12 flows · first "),
        "{t}"
    );
    assert_eq!(t.lines().count(), 2, "{t}");
    assert_eq!(env.announced(), 1);
    // Re-run: nothing new, nothing posted.
    let r = env.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(env.slack.posts().len(), 1);
}

#[test]
fn src_allow_dst_deny_shows_as_deny_only() {
    let env = Env::new();
    env.edge_side("recruiter-responder", "dbaas", "allow", "src", "1 hour", 3);
    env.edge_side("recruiter-responder", "dbaas", "deny", "dst", "1 hour", 3);
    let r = env.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let t = &env.slack.texts()[0];
    assert!(
        t.starts_with("*1 new edge in last 24h*  (deny 1)\n• `recruiter-responder` → `dbaas`  *deny* · 3 flows"),
        "{t}"
    );
    assert!(!t.contains("allow"), "{t}");
    assert_eq!(
        env.sql("SELECT string_agg(action, ',') FROM edge_digest_announced"),
        "deny"
    );
}

#[test]
fn a_later_deny_on_the_destination_side_is_announced_after_the_allow() {
    let env = Env::new();
    env.edge_side("a", "b", "allow", "src", "1 hour", 5);
    assert_eq!(env.run(&[]).code, 0);
    env.edge_side("a", "b", "deny", "dst", "1 minute", 1);
    let r = env.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let texts = env.slack.texts();
    assert_eq!(texts.len(), 2);
    assert!(
        texts[1].starts_with("*1 new edge in last 24h*  (deny 1)\n• `a` → `b`  *deny*"),
        "{}",
        texts[1]
    );
}

#[test]
fn new_external_egress_section_is_capped_deny_first_and_announced_once() {
    let env = Env::new();
    env.edge("a", "b", "allow", "1 hour", 1);
    env.egress(
        "immich", "network", "pub", "tcp", 443, "allow", "1 hour", 40,
    );
    env.egress("immich", "network", "pub", "udp", 443, "allow", "1 hour", 2);
    env.egress(
        "media",
        "networkset",
        "media/cdn",
        "tcp",
        80,
        "deny",
        "1 hour",
        7,
    );
    env.egress("t3", "network", "pvt", "icmp", 0, "allow", "1 hour", 1);
    // Old egress: not new.
    env.sql("INSERT INTO egress_edge VALUES ('old', 'network', 'pub', 'tcp', 22, 'allow', 'src', now() - interval '10 days', now(), 9, NULL, NULL)");
    let r = env.run(&["--max-edges", "3"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let t = &env.slack.texts()[0];
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines[0], "*1 new edge in last 24h*  (allow 1)", "{t}");
    assert!(lines[1].starts_with("• `a` → `b`  allow"), "{t}");
    assert_eq!(
        lines[2], "*4 new external egress*  (deny 1, allow 3)",
        "{t}"
    );
    assert!(
        lines[3]
            .starts_with("• `media` → networkset `media/cdn` tcp/80  *deny* · 7 flows · first "),
        "{t}"
    );
    assert!(
        lines[4].starts_with("• `immich` → network `pub` tcp/443  allow · 40 flows"),
        "{t}"
    );
    assert!(
        lines[5].starts_with("• `immich` → network `pub` udp/443  allow · 2 flows"),
        "{t}"
    );
    assert_eq!(
        lines[6], "+1 more — `edges-digest graph --since 24h`",
        "{t}"
    );
    assert_eq!(lines.len(), 7, "{t}");
    assert_eq!(env.announced(), 5);
    let j = env.run(&["--dry-run", "--json"]);
    assert_eq!(j.json()["new_egress"], 0);
    // Nothing new: quiet.
    assert_eq!(env.run(&[]).code, 0);
    assert_eq!(env.slack.posts().len(), 1);
}

#[test]
fn staged_policy_section_lists_pairs_that_would_be_denied_deny_first() {
    let env = Env::new();
    // Old edges (not new), one of them would be denied by a staged policy since 10 minutes.
    env.edge_side("immich", "dbaas", "allow", "src", "3 days", 100);
    env.sql("UPDATE edge SET pending_action = 'deny', pending_deny_last_seen = now() - interval '10 minutes' WHERE src_ns = 'immich'");
    env.edge_side("x", "dbaas", "deny", "dst", "3 days", 4);
    env.sql("UPDATE edge SET pending_action = 'deny', pending_deny_last_seen = now() - interval '5 minutes' WHERE src_ns = 'x'");
    // Staged deny long ago: outside the window.
    env.edge_side("y", "dbaas", "allow", "src", "3 days", 4);
    env.sql("UPDATE edge SET pending_action = 'allow', pending_deny_last_seen = now() - interval '3 days' WHERE src_ns = 'y'");
    env.egress(
        "immich", "network", "pub", "tcp", 443, "allow", "3 days", 40,
    );
    env.sql("UPDATE egress_edge SET pending_deny_last_seen = now() - interval '1 hour'");
    let r = env.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let t = &env.slack.texts()[0];
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines[0], "*0 new edges in last 24h*", "{t}");
    assert_eq!(
        lines[1], "*3 would be denied by staged policy*  (deny 1, allow 2)",
        "{t}"
    );
    assert!(
        lines[2].starts_with("• `x` → `dbaas`  *deny* today · staged deny last "),
        "{t}"
    );
    assert!(
        lines[3].starts_with("• `immich` → `dbaas`  allow today · staged deny last "),
        "{t}"
    );
    assert!(
        lines[4].starts_with("• `immich` → network `pub` tcp/443  allow today · staged deny last "),
        "{t}"
    );
    assert_eq!(lines.len(), 5, "{t}");
    assert_eq!(
        env.sql("SELECT count(*) FROM edge_digest_announced WHERE action = 'staged-deny'"),
        "3"
    );
    assert_eq!(env.run(&[]).code, 0);
    assert_eq!(env.slack.posts().len(), 1, "told once");
}

#[test]
fn hostile_networkset_names_are_escaped_in_the_egress_section() {
    let env = Env::new();
    env.egress(
        "a",
        "networkset",
        "<!channel>/`x`\n*",
        "tcp",
        443,
        "allow",
        "1 hour",
        1,
    );
    let r = env.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let body = env.slack.posts()[0].body_str();
    assert!(!body.contains("<!"), "{body}");
    let t = &env.slack.texts()[0];
    assert!(
        t.contains("• `a` → networkset `&lt;!channel&gt;/'x'\u{FFFD}*` tcp/443  allow"),
        "{t}"
    );
}

#[test]
fn many_sections_stay_under_the_byte_cap() {
    let env = Env::new();
    let cols = "(src_ns, dst_ns, action, reporter, first_seen, last_seen, flow_count, pending_deny_last_seen)";
    env.sql(&format!("INSERT INTO edge {cols} SELECT repeat('n', 70) || i, repeat('m', 200) || i, 'deny', 'src', now() - interval '1 hour', now(), 10, now() FROM generate_series(1, 3000) i"));
    env.sql("INSERT INTO egress_edge SELECT repeat('e', 70) || i, 'networkset', repeat('&', 300) || i, 'tcp', i, 'allow', 'src', now() - interval '1 hour', now(), 1, NULL, now() FROM generate_series(1, 3000) i");
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
    assert!(t.contains("*3000 new external egress*"), "{t}");
    assert!(t.contains("*6000 would be denied by staged policy*"), "{t}");
    assert!(
        t.ends_with("more — `edges-digest policy --check --namespace <ns>`"),
        "{t}"
    );
    assert_eq!(env.announced(), 12000);
}
