use homelab_core::pushgateway::{push, read_groups, render, Gauge, Method};
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

/// Push then read back from the real Pushgateway, with a label value containing `/`.
#[test]
fn push_and_read_back() {
    let pg = testkit::Pushgateway::start();
    let body = render(&[
        Gauge::new("k8s_upgrade_blocked", "blocked", 1.0),
        Gauge::new("k8s_upgrade_gate_blockers", "blockers", 2.0).label("class", "actionable"),
        Gauge::new("k8s_upgrade_gate_blockers", "blockers", 0.0).label("class", "pinned"),
    ]);
    push(
        &pg.url(),
        "k8s-upgrade",
        &[("instance", "node/a")],
        &body,
        Method::Post,
        T,
    )
    .unwrap();
    let groups = read_groups(&pg.url(), T).unwrap();
    let g = groups
        .iter()
        .find(|g| g.labels.get("job").map(String::as_str) == Some("k8s-upgrade"))
        .expect("group");
    assert_eq!(g.labels["instance"], "node/a");
    let blocked = g
        .samples
        .iter()
        .find(|s| s.name == "k8s_upgrade_blocked")
        .unwrap();
    assert_eq!(blocked.value, Some(1.0));
    let actionable = g
        .samples
        .iter()
        .find(|s| {
            s.name == "k8s_upgrade_gate_blockers"
                && s.labels.get("class").map(String::as_str) == Some("actionable")
        })
        .unwrap();
    assert_eq!(actionable.raw, "2");
    assert!(g.push_time_seconds.unwrap() > 1.7e9);
    assert!(pg
        .metrics_text()
        .contains("k8s_upgrade_blocked{instance=\"node/a\",job=\"k8s-upgrade\"} 1"));
}

/// POST keeps series other jobs put in the group; PUT replaces the whole group.
#[test]
fn post_keeps_foreign_series_put_replaces() {
    let pg = testkit::Pushgateway::start();
    pg.seed("/metrics/job/k8s-upgrade", "k8s_upgrade_in_flight 1\n");
    let ours = render(&[Gauge::new("k8s_upgrade_held", "held", 0.0)]);
    push(&pg.url(), "k8s-upgrade", &[], &ours, Method::Post, T).unwrap();
    let text = pg.metrics_text();
    assert!(
        text.contains("k8s_upgrade_in_flight{instance=\"\",job=\"k8s-upgrade\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("k8s_upgrade_held{instance=\"\",job=\"k8s-upgrade\"} 0"),
        "{text}"
    );
    push(&pg.url(), "k8s-upgrade", &[], &ours, Method::Put, T).unwrap();
    let text = pg.metrics_text();
    assert!(!text.contains("k8s_upgrade_in_flight{"), "{text}");
}

/// A down gateway is a clear transport error naming the path, never the credentials.
#[test]
fn unreachable_gateway_error_is_redacted() {
    let port = testkit::free_port();
    let e = push(
        &format!("http://admin:hunter22@127.0.0.1:{port}"),
        "j",
        &[],
        "x 1\n",
        Method::Post,
        Duration::from_secs(1),
    )
    .unwrap_err();
    let s = format!("{e} {e:?}");
    assert!(s.starts_with("POST /metrics/job/j: "), "{s}");
    assert!(!s.contains("hunter22") && !s.contains("admin:"), "{s}");
    assert!(e.not_sent());
}

/// A rejected push (bad exposition) surfaces the gateway's status and message.
#[test]
fn rejected_push_shows_status() {
    let pg = testkit::Pushgateway::start();
    let e = push(
        &pg.url(),
        "j",
        &[],
        "not valid exposition {{{\n",
        Method::Post,
        T,
    )
    .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
}
