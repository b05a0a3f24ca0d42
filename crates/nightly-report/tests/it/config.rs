//! Spec §2.1: every bad value → `ERROR config <VAR>: <reason>`, exit 2, no request sent; flags
//! beat env; empty env = unset; `--help` documents options, env, defaults and exit codes.

use super::common::*;

const HOOK: &str = "https://hooks.slack.com/services/T0TESTKIT/B0TESTKIT/s3cr3tW3bh00kT0k3n";

#[test]
fn each_bad_value_exits_2_naming_the_variable_and_sends_nothing() {
    let w = World::new(cluster(homelab_nodes("v1.35.6"), vec![]));
    let cases: &[(&str, &str)] = &[
        ("PUSHGATEWAY_URL", "pushgateway:9091"),
        (
            "SLACK_WEBHOOK_URL",
            "http://hooks.slack.com/services/T0TESTKIT/B0TESTKIT/s3cr3tW3bh00kT0k3n",
        ),
        (
            "SLACK_WEBHOOK_URL",
            "https://user:s3cr3tW3bh00kT0k3n@hooks.slack.com/x",
        ),
        ("SLACK_WEBHOOK_URL", "https://hooks.slack.com"),
        ("SLACK_CHANNEL", "#not a channel"),
        ("SLACK_TIMEOUT_SECS", "0"),
        ("SLACK_TIMEOUT_SECS", "61"),
        ("REPORT_NAMESPACE", "K8s_Upgrade"),
        ("DETECTOR_STALE_HOURS", "0"),
        ("DETECTOR_STALE_HOURS", "169"),
        ("JOBS_LOOKBACK_HOURS", "1d"),
        ("MAX_JOBS", "51"),
        ("REPORT_GATE", "sometimes"),
        ("GATE_DEADLINE_SECONDS", "120"),
        ("REPORT_DEADLINE_SECONDS", "-1"),
        ("PROMETHEUS_URL", "prometheus:9090"),
        ("DRY_RUN", "maybe"),
        ("REPORT_JSON", "2"),
        ("REPORT_NOW", "yesterday"),
    ];
    for (var, value) in cases {
        let o = w.run(&[(var, value)], &[]);
        assert_eq!(o.code, 2, "{var}={value}: {o:?}");
        assert!(
            o.stderr.contains(&format!(" ERROR config {var}: ")),
            "{var}={value}: {}",
            o.stderr
        );
        assert_eq!(o.stderr.lines().count(), 1, "one line: {}", o.stderr);
        assert!(o.stdout.is_empty());
    }
    assert!(w.slack.posts().is_empty());
    assert_eq!(
        w.kube.request_count(),
        0,
        "no request before the config is valid"
    );
}

#[test]
fn missing_required_values_exit_2() {
    let w = World::new(cluster(homelab_nodes("v1.35.6"), vec![]));
    for (var, want) in [
        ("PUSHGATEWAY_URL", "PUSHGATEWAY_URL"),
        ("SLACK_WEBHOOK_URL", "SLACK_WEBHOOK_URL"),
    ] {
        let o = w.run(&[(var, "")], &[]);
        assert_eq!(o.code, 2, "{o:?}");
        assert!(
            o.stderr
                .contains(&format!(" ERROR config {want}: required")),
            "{}",
            o.stderr
        );
    }
    // Dry-run needs no webhook.
    let o = w.run(
        &[("SLACK_WEBHOOK_URL", ""), ("REPORT_GATE", "off")],
        &["--dry-run"],
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stderr.contains(" webhook=- dry_run=true\n"),
        "{}",
        o.stderr
    );
    // Unknown flag: clap's usage error, exit 2.
    let o = w.run(&[], &["--no-such-flag"]);
    assert_eq!(o.code, 2);
}

#[test]
fn webhook_alias_and_flag_beats_env() {
    let w = World::new(cluster(homelab_nodes("v1.35.6"), night_jobs()));
    seed_detector(&w.pg, "1.35.6", "1.35.6", "patch", 0.0, T23);
    // SLACK_WEBHOOK (alias) is used when SLACK_WEBHOOK_URL is unset.
    let o = w.run(
        &[
            ("SLACK_WEBHOOK_URL", ""),
            ("SLACK_WEBHOOK", &w.slack.webhook_url()),
            ("MAX_JOBS", "1"),
        ],
        &[],
    );
    assert_eq!(o.code, 0, "{o:?}");
    let t = w.posted();
    assert!(
        t.ends_with("\n• `k8s-version-check-29185380` ✅ Complete · 23:00Z · 0m14s\n+1 more"),
        "{t}"
    );
    // The flag wins over the env twin; an empty env value is unset (default 15).
    let o = w.run(&[("MAX_JOBS", "1")], &["--dry-run", "--max-jobs", "2"]);
    assert!(o.stdout.ends_with("· 1m02s\n"), "{}", o.stdout);
    let o = w.run(&[("MAX_JOBS", "")], &["--dry-run"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.ends_with("· 1m02s\n"), "{}", o.stdout);
    let o = w.run(&[("DRY_RUN", "off")], &["--dry-run"]);
    assert!(
        o.stdout.starts_with("*K8s upgrade nightly report"),
        "flag beats DRY_RUN=off: {o:?}"
    );
    assert_eq!(w.slack.posts().len(), 1);
    // The env twins of the booleans.
    let o = w.run(&[("DRY_RUN", "yes"), ("REPORT_JSON", "on")], &[]);
    assert_eq!(o.code, 0);
    assert!(o.stdout.starts_with('{'), "{}", o.stdout);
    assert_eq!(w.slack.posts().len(), 1, "DRY_RUN=yes: no POST");
}

#[test]
fn help_documents_options_env_defaults_and_exit_codes() {
    let o = run(&[("SLACK_WEBHOOK_URL", HOOK.to_string())], &["--help"]);
    assert_eq!(o.code, 0);
    for var in [
        "PUSHGATEWAY_URL",
        "REPORT_PUSHGATEWAY_JOB",
        "SLACK_WEBHOOK_URL",
        "SLACK_WEBHOOK",
        "SLACK_CHANNEL",
        "SLACK_TIMEOUT_SECS",
        "REPORT_NAMESPACE",
        "DETECTOR_STALE_HOURS",
        "JOBS_LOOKBACK_HOURS",
        "MAX_JOBS",
        "REPORT_GATE",
        "COMPAT_MATRIX",
        "GATE_DEADLINE_SECONDS",
        "REPORT_DEADLINE_SECONDS",
        "PROMETHEUS_URL",
        "DRY_RUN",
        "REPORT_JSON",
        "KUBECONFIG",
        "KUBE_CONTEXT",
        "KUBERNETES_SERVICE_HOST",
        "KUBERNETES_SERVICE_PORT",
        "KUBE_TOKEN_FILE",
        "KUBE_CA_FILE",
    ] {
        assert!(o.stdout.contains(var), "--help lacks {var}:\n{}", o.stdout);
    }
    for s in [
        "[default: 26]",
        "[default: k8s-upgrade]",
        "Exit codes:",
        "  4  Slack refused",
        "  5  Slack unreachable",
    ] {
        assert!(o.stdout.contains(s), "--help lacks {s:?}:\n{}", o.stdout);
    }
    assert!(
        !o.stdout.contains("s3cr3t"),
        "env values of the webhook are hidden"
    );
}
