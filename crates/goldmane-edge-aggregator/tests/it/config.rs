//! Bad configuration (2.1.2, 2.2.2): one-line L-CONFIG naming the variable, exit 2, before
//! any network I/O; `--help`; the `check` subcommand.

use super::common::*;

#[test]
fn invalid_values_exit_2_before_any_network_io() {
    let w = World::new(false);
    let cases: &[(&str, &str)] = &[
        ("GOLDMANE_HOST", "ftp://goldmane:7443"),
        ("GOLDMANE_HOST", "goldmane"),
        ("GOLDMANE_TLS_INSECURE", "perhaps"),
        ("DRY_RUN", "yes please"),
        ("GEA_BACKFILL_SECS", "3571"),
        ("GEA_FLUSH_INTERVAL_SECS", "0"),
        ("GEA_BATCH_MAX_EDGES", "many"),
        ("GEA_HEALTH_ADDR", "everywhere"),
        ("GEA_LOG_FORMAT", "yaml"),
        ("DATABASE_URL", "mysql://root@db/x"),
        ("GOLDMANE_CLIENT_CERT", "/nonexistent/tls.crt"),
        ("GOLDMANE_CLIENT_KEY", "/nonexistent/tls.key"),
        ("GOLDMANE_CA", "/nonexistent/ca.crt"),
    ];
    for (var, val) in cases {
        let mut env = w.env();
        env.insert(var.to_string(), val.to_string());
        let (code, out, err) = run_once(w.dir.path(), &[], &env, 10);
        assert_eq!(code, 2, "{var}={val}: {err}");
        assert!(out.is_empty(), "{out}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!(" ERROR config {var}: ")),
            "{var}={val}: {err}"
        );
    }
    // The ring limit is named (issue 13).
    let mut env = w.env();
    env.insert("GEA_BACKFILL_SECS".into(), "86400".into());
    let (code, _, err) = run_once(w.dir.path(), &[], &env, 10);
    assert_eq!(code, 2);
    assert!(
        err.contains("config GEA_BACKFILL_SECS: 86400 is above the ring limit 3570: Goldmane keeps 242 buckets of 15 s"),
        "{err}"
    );
    // No DATABASE_URL outside dry-run.
    let mut env = w.env();
    env.remove("DATABASE_URL");
    let (code, _, err) = run_once(w.dir.path(), &[], &env, 10);
    assert_eq!(code, 2);
    assert!(
        err.contains("config DATABASE_URL: required unless DRY_RUN=1"),
        "{err}"
    );
    // Flag beats env: a valid flag overrides an invalid env value.
    let mut env = w.env();
    env.insert("GEA_LOG_FORMAT".into(), "yaml".into());
    env.insert("GEA_FLUSH_INTERVAL_SECS".into(), "0".into());
    let (code, _, err) = run_once(
        w.dir.path(),
        &["--log-format", "text", "--flush-interval", "1", "migrate"],
        &env,
        20,
    );
    assert_eq!(
        code, 1,
        "migrate without postgres fails at runtime, not config: {err}"
    );
    assert_eq!(w.fake.connections(), 0, "no connection to Goldmane");
}

/// 2.2.2: unparseable cert, key not matching the leaf, empty CA bundle → exit 2.
#[test]
fn bad_certificate_files_exit_2() {
    let w = World::new(false);
    let junk = w.dir.path().join("junk.pem");
    std::fs::write(&junk, "not a pem\n").unwrap();
    let other = w.pki.ca.issue("other", &[], false);
    let (_, other_key) = other.write(w.dir.path(), "other");
    for (var, path, needle) in [
        ("GOLDMANE_CLIENT_CERT", junk.clone(), "no PEM certificate"),
        ("GOLDMANE_CLIENT_KEY", junk.clone(), "private key"),
        ("GOLDMANE_CLIENT_KEY", other_key, "does not match"),
        ("GOLDMANE_CA", junk.clone(), "no usable CA certificate"),
    ] {
        let mut env = w.env();
        env.insert(var.into(), path.display().to_string());
        let (code, _, err) = run_once(w.dir.path(), &[], &env, 10);
        assert_eq!(code, 2, "{var}: {err}");
        assert!(
            err.contains(&format!("config {var}: ")) && err.contains(needle),
            "{var}: {err}"
        );
    }
    assert_eq!(w.fake.connections(), 0);
}

#[test]
fn help_documents_every_option_env_default_and_exit_code() {
    let w = World::new(false);
    let (code, out, _) = run_once(
        w.dir.path(),
        &["--help"],
        &std::collections::HashMap::new(),
        10,
    );
    assert_eq!(code, 0);
    for s in [
        "--goldmane-host",
        "GOLDMANE_HOST",
        "--server-name",
        "GOLDMANE_SERVER_NAME",
        "--tls-insecure",
        "GOLDMANE_TLS_INSECURE",
        "--client-cert",
        "GOLDMANE_CLIENT_CERT",
        "--client-key",
        "GOLDMANE_CLIENT_KEY",
        "--ca",
        "GOLDMANE_CA",
        "--database-url",
        "DATABASE_URL",
        "visible in `ps`",
        "--dry-run",
        "DRY_RUN",
        "--aggregation-interval",
        "GEA_AGGREGATION_INTERVAL",
        "--backfill",
        "GEA_BACKFILL_SECS",
        "--reconcile",
        "GEA_RECONCILE_SECS",
        "--flush-interval",
        "GEA_FLUSH_INTERVAL_SECS",
        "--batch-max",
        "GEA_BATCH_MAX_EDGES",
        "--max-pending",
        "GEA_MAX_PENDING_EDGES",
        "--dedup-window",
        "GEA_DEDUP_WINDOW_SECS",
        "--stall-timeout",
        "GEA_STALL_TIMEOUT_SECS",
        "--backoff-max",
        "GEA_BACKOFF_MAX_SECS",
        "--health-addr",
        "GEA_HEALTH_ADDR",
        "--shutdown-timeout",
        "GEA_SHUTDOWN_TIMEOUT_SECS",
        "--db-auth-exit",
        "GEA_DB_AUTH_EXIT_SECS",
        "--log-format",
        "GEA_LOG_FORMAT",
        "Exit codes:",
        "migrate",
        "check",
        "[default: 15]",
    ] {
        assert!(out.contains(s), "--help lacks {s}:\n{out}");
    }
    let (code, _, _) = run_once(
        w.dir.path(),
        &["--no-such-flag"],
        &std::collections::HashMap::new(),
        10,
    );
    assert_eq!(code, 2);
}

/// 2.3.1 `check`: config, certs, DB, one stream message; writes nothing; exit 1 when
/// Goldmane sends nothing.
#[test]
fn check_reports_and_writes_nothing() {
    let mut w = World::new(true);
    w.fake.add_flows([flow(1, "a", "b", 1, now() - 60)]);
    let (code, out, err) = run_once(w.dir.path(), &["check"], &w.env(), 30);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("db: ok postgres"), "{out}");
    assert!(
        out.contains("goldmane: ok 127.0.0.1:") && out.contains("a -> b"),
        "{out}"
    );
    assert!(out.contains("check ok"), "{out}");
    assert_eq!(
        w.pg()
            .psql("goldmane_edges", "SELECT to_regclass('edge') IS NULL")
            .trim(),
        "t"
    );
    w.fake.stop();
    let (code, out, _) = run_once(w.dir.path(), &["check"], &w.env(), 40);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("goldmane: FAILED"), "{out}");
    assert!(out.contains("check FAILED"), "{out}");
}
