//! §7 rows and §10.2 items 7, 10, 13: a clear one-line FAIL naming the input, the documented
//! exit code, zero HTTP calls where the spec says so, never a half-written token file.

use super::common::*;
use std::os::unix::fs::PermissionsExt;
use testkit::{HttpServer, Reply};

/// A server that must not be called: every request is recorded and answered 500.
fn tripwire() -> HttpServer {
    HttpServer::start(|_| Reply::new(500))
}

fn fail_without_http(env: &Env, srv: &HttpServer, want: &str) {
    let lines_before = std::fs::read_to_string(env.log_file())
        .unwrap_or_default()
        .lines()
        .count();
    let out = env.run(&["--json"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(out.log_texts().len(), lines_before + 1, "one line per run");
    assert_eq!(out.last(), want);
    assert_eq!(srv.request_count(), 0, "no HTTP call allowed: {want}");
    assert_eq!(out.json()["result"], "fail");
    assert_eq!(out.json()["error"], want);
    assert!(out.stderr.contains(want), "{out:#?}");
}

#[test]
fn token_file_problems_fail_before_any_http() {
    let srv = tripwire();
    let env = Env::new(&srv.url());
    fail_without_http(&env, &srv, "FAIL: token lookup: ~/.vault-token not found");
    for empty in [&b""[..], b"   \n\t\n"] {
        env.write_raw(empty);
        fail_without_http(&env, &srv, "FAIL: token lookup: ~/.vault-token is empty");
    }
    let two = format!("{}\n{}\n", fake_token('A'), fake_token('B'));
    let big = "x".repeat(5 * 1024);
    let nul = format!("{}\0x", fake_token('C'));
    for bad in [two.as_str(), "a b", big.as_str(), "t\u{f6}k", nul.as_str()] {
        env.secret(bad.lines().next().unwrap_or(bad));
        env.write_raw(bad.as_bytes());
        fail_without_http(
            &env,
            &srv,
            "FAIL: token lookup: ~/.vault-token does not hold a single token",
        );
        assert_eq!(
            env.read_token_bytes(),
            bad.as_bytes(),
            "file must stay as it was"
        );
    }
}

#[test]
fn directory_and_fifo_never_block_and_name_the_reason() {
    let srv = tripwire();
    let env = Env::new(&srv.url());
    std::fs::create_dir(env.token_file()).unwrap();
    fail_without_http(
        &env,
        &srv,
        "FAIL: token lookup: ~/.vault-token: is a directory, not a file",
    );
    std::fs::remove_dir(env.token_file()).unwrap();
    nix::unistd::mkfifo(
        &env.token_file(),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    fail_without_http(
        &env,
        &srv,
        "FAIL: token lookup: ~/.vault-token: is not a regular file (FIFO, socket or device)",
    );
}

#[test]
fn group_readable_file_is_tightened_with_a_warning() {
    let srv = HttpServer::start(|r| match r.path() {
        "/v1/auth/token/lookup-self" => Reply::json(200, &ours()),
        _ => Reply::json(200, &renew_ok()),
    });
    let env = Env::new(&srv.url());
    env.write_token(&fake_token('G'));
    std::fs::set_permissions(env.token_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr.contains("WARNING: ~/.vault-token was mode 0644"),
        "{out:#?}"
    );
    assert_eq!(mode(&env.token_file()), 0o600);
}

#[test]
fn unmapped_user_is_refused_without_http() {
    let srv = tripwire();
    let mut env = Env::new(&srv.url());
    env.user = "nobody-xyz".into();
    env.write_token(&fake_token('U'));
    fail_without_http(
        &env,
        &srv,
        "FAIL: no policy mapping for OS user nobody-xyz \u{2014} add it to the user map (built-in table)",
    );
    // With a config file, the file is the source and replaces the built-ins entirely.
    env.user = "wizard".into();
    env.write_config(
        r#"{"version": 1, "users": {"alice": {"required_policy": "a", "mint_policies": ["a"]}}}"#,
    );
    let want = format!(
        "FAIL: no policy mapping for OS user wizard \u{2014} add it to the user map ({})",
        env.config_file().display()
    );
    fail_without_http(&env, &srv, &want);
}

#[test]
fn invalid_config_never_falls_back_and_makes_no_http_call() {
    let srv = tripwire();
    let env = Env::new(&srv.url());
    env.write_token(&fake_token('C'));
    let path = env.config_file().display().to_string();
    env.write_config(
        r#"{"version": 1, "users": {"wizard": {"required_policy": "vault-admin", "mint_policies": ["sops-admin"]}}}"#,
    );
    fail_without_http(
        &env,
        &srv,
        &format!("FAIL: config {path}: users.wizard.required_policy \"vault-admin\" is not in mint_policies"),
    );
    env.write_config(
        r#"{"version": 1, "users": {"wizard": {"required_policy": "vault-admin", "mint_policies": ["vault-admin"]}}}"#,
    );
    std::fs::set_permissions(env.config_file(), std::fs::Permissions::from_mode(0o664)).unwrap();
    fail_without_http(
        &env,
        &srv,
        &format!("FAIL: config {path}: mode 0664 is group- or world-writable; chmod go-w it"),
    );
    env.write_config("{ not json");
    let out = env.run(&[]);
    assert_eq!(out.code, 1);
    assert!(out
        .log_texts()
        .last()
        .unwrap()
        .starts_with(&format!("FAIL: config {path}: invalid JSON")));
    assert_eq!(srv.request_count(), 0);
}

#[test]
fn bad_vault_addr_is_a_config_failure_without_http() {
    let srv = tripwire();
    let mut env = Env::new("ftp://127.0.0.1:1");
    env.write_token(&fake_token('V'));
    fail_without_http(
        &env,
        &srv,
        "FAIL: config VAULT_ADDR: scheme \"ftp\" is not http or https",
    );
    // Empty means default (not an error); trailing slash stripped.
    env.addr = format!("{}/", srv.url());
    let out = env.run(&[]);
    assert_eq!(srv.requests()[0].target, "/v1/auth/token/lookup-self");
    assert_eq!(out.code, 1);
}

#[test]
fn lock_held_elsewhere_skips_with_exit_0_and_no_http() {
    let srv = tripwire();
    let env = Env::new(&srv.url());
    env.write_token(&fake_token('L'));
    let lock = env.state().join("vault-token-renew.lock");
    let _held = homelab_core::fsx::try_lock(&lock).unwrap();
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(
        out.stderr.trim(),
        format!(
            "SKIP: another vault-token-renew run holds {}",
            lock.display()
        )
    );
    assert!(!env.log_file().exists(), "SKIP must not go to the log file");
    assert_eq!(srv.request_count(), 0);
}

#[test]
fn unwritable_log_turns_success_into_exit_1() {
    let srv = HttpServer::start(|r| match r.path() {
        "/v1/auth/token/lookup-self" => Reply::json(200, &ours()),
        _ => Reply::json(200, &renew_ok()),
    });
    let env = Env::new(&srv.url());
    env.write_token(&fake_token('W'));
    std::fs::create_dir_all(env.log_file()).unwrap();
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out
        .stderr
        .contains("OK renewed (dn=token-devvm-wizard ttl=2764800s)"));
    assert!(out.stderr.contains("could not append to log"), "{out:#?}");
    assert_eq!(srv.request_count(), 2, "the renew itself is not skipped");
}

#[test]
fn env_tokens_are_ignored_with_one_warning() {
    let srv = HttpServer::start(|r| match r.path() {
        "/v1/auth/token/lookup-self" => Reply::json(200, &ours()),
        _ => Reply::json(200, &renew_ok()),
    });
    let mut env = Env::new(&srv.url());
    env.write_token(&fake_token('F'));
    env.setenv("VAULT_TOKEN", &fake_token('E'));
    env.secret(&fake_token('E'));
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(
        out.stderr.matches("VAULT_TOKEN is set and ignored").count(),
        1
    );
    for r in srv.requests() {
        assert_eq!(r.header("X-Vault-Token"), Some(fake_token('F').as_str()));
    }
}

#[test]
fn help_documents_options_env_defaults_and_exit_codes() {
    let o = std::process::Command::new(BIN)
        .arg("--help")
        .output()
        .unwrap();
    assert!(o.status.success());
    let h = String::from_utf8_lossy(&o.stdout);
    for want in [
        "--vault-addr",
        "VAULT_ADDR",
        "--state-home",
        "XDG_STATE_HOME",
        "--config",
        "VTR_CONFIG",
        "--cacert",
        "VAULT_CACERT",
        "--namespace",
        "VAULT_NAMESPACE",
        "--metrics-textfile",
        "VTR_METRICS_TEXTFILE",
        "--pushgateway-url",
        "VTR_PUSHGATEWAY_URL",
        "https://vault.viktorbarzin.me",
        "Exit codes:",
    ] {
        assert!(h.contains(want), "--help lacks {want}");
    }
    let o = std::process::Command::new(BIN)
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
